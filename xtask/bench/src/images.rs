//! `cargo xtask images` — builds every image the tests need from local parts, no registry.
//!
//! 1. `base`: a Debian bookworm root filesystem made with `mmdebstrap` (variant `minbase`, docs
//!    and locales left out like the official slim image), imported as `debian:bookworm-slim`, so
//!    that `FROM debian:bookworm-slim` resolves without a pull. Skipped when the tag exists.
//!    Machines that can pull from a registry never need this step.
//! 2. `egress`: the static `bottle-egress` binary (the gnu target with `+crt-static`, no musl
//!    toolchain needed) and `Dockerfile.egress`, tagged `claude-bottle-egress:<version>` and
//!    labelled with a content hash; rebuilt only when the binary or the Dockerfile changes.
//! 3. `git-gate`: the static `bottle-git-gate` binary and `crates/bottle-git-gate/Dockerfile`
//!    (Debian slim + git + openssh-client), tagged `claude-bottle-git-gate:<version>`
//!    (`CLAUDE_BOTTLE_GIT_GATE_IMAGE` replaces it) and labelled with a content hash; rebuilt only
//!    when the binary or the Dockerfile changes.
//! 4. `agent`: the agent image from the Dockerfile embedded in bottle-docker — the very recipe
//!    `claude-bottle start` uses — tagged with its content hash; skipped when it exists.
//!
//! Usage: `cargo xtask images [base|egress|git-gate|agent]... [--force] [--verbose]`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bottle_docker::api::{BuildRequest, DockerApi, Progress};
use bottle_docker::engine::Engine;
use bottle_docker::image::{self, AgentImageRecipe, ImageSettings};
use bottle_docker::names::label;

/// The tag the imported root filesystem gets.
const BASE_REPO: &str = "debian";
const BASE_TAG: &str = "bookworm-slim";

/// Debian sources for the root filesystem; `CLAUDE_BOTTLE_DEBIAN_MIRROR` replaces the main one.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Base,
    Egress,
    GitGate,
    Agent,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Base => "base",
            Step::Egress => "egress",
            Step::GitGate => "git-gate",
            Step::Agent => "agent",
        }
    }
}

#[derive(Debug)]
struct Options {
    steps: Vec<Step>,
    force: bool,
    verbose: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        steps: Vec::new(),
        force: false,
        verbose: false,
    };
    for arg in args {
        match arg.as_str() {
            "base" => options.steps.push(Step::Base),
            "egress" => options.steps.push(Step::Egress),
            "git-gate" => options.steps.push(Step::GitGate),
            "agent" => options.steps.push(Step::Agent),
            "--force" => options.force = true,
            "-v" | "--verbose" => options.verbose = true,
            "-h" | "--help" => {
                println!(
                    "cargo xtask images [base|egress|git-gate|agent]... [--force] [--verbose]\n\n\
                     Builds the images the tests need without a registry (all four by default).\n\
                     CLAUDE_BOTTLE_EGRESS_IMAGE and CLAUDE_BOTTLE_GIT_GATE_IMAGE replace the sidecar tags.\n\
                     --force rebuilds even when an image is up to date."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` to `cargo xtask images`; see --help"),
        }
    }
    if options.steps.is_empty() {
        options.steps = vec![Step::Base, Step::Egress, Step::GitGate, Step::Agent];
    }
    Ok(options)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: Options) -> Result<()> {
    let started = Instant::now();
    let engine = Engine::connect()
        .await
        .context("`cargo xtask images` needs a Docker engine (see .ci/docker-setup.sh)")?;
    let info = engine.engine_info().await?;
    say(&format!(
        "engine {} (API {}), runtimes: {}",
        info.server_version,
        info.api_version,
        info.runtimes.join(", ")
    ));
    for step in &options.steps {
        let t = Instant::now();
        match step {
            Step::Base => base(&engine, &options).await?,
            Step::Egress => egress(&engine, &options).await?,
            Step::GitGate => git_gate(&engine, &options).await?,
            Step::Agent => agent(&engine, &options).await?,
        }
        say(&format!(
            "{} done in {:.1}s",
            step.name(),
            t.elapsed().as_secs_f64()
        ));
    }
    say(&format!(
        "all images ready in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn say(line: &str) {
    println!("images: {line}");
}

fn progress_printer(verbose: bool) -> impl Fn(Progress) + Send + Sync {
    move |event| match event {
        Progress::BuildStep {
            image,
            step,
            total,
            text,
        } => {
            let text: String = text.chars().take(100).collect();
            say(&format!("[{image}] step {step}/{total}: {text}"));
        }
        Progress::BuildOutput { image, line } if verbose => say(&format!("[{image}]   {line}")),
        Progress::Warning { message } => say(&format!("warning: {message}")),
        _ => {}
    }
}

/// Step 1: the Debian base from mmdebstrap.
async fn base(engine: &Engine, options: &Options) -> Result<()> {
    let reference = format!("{BASE_REPO}:{BASE_TAG}");
    if !options.force && image::image_exists(engine, &reference).await? {
        say(&format!("base: `{reference}` exists, skipping"));
        return Ok(());
    }
    if !crate::util::on_path("mmdebstrap") {
        bail!(
            "`mmdebstrap` is needed to make `{reference}` without a registry; \
             install it (`apt-get install mmdebstrap`) or run .ci/docker-setup.sh"
        );
    }
    let mirror =
        std::env::var("CLAUDE_BOTTLE_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_owned());
    let dir = std::env::temp_dir().join(format!("claude-bottle-rootfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tarball = dir.join("rootfs.tar");
    say(&format!(
        "base: mmdebstrap bookworm (minbase) from {mirror} → {}",
        tarball.display()
    ));
    let t = Instant::now();
    let status = Command::new("mmdebstrap")
        .args([
            "--variant=minbase",
            "--quiet",
            // Like the official slim images: no man pages, docs (except copyright) or locales.
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/info/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--aptopt=APT::Install-Recommends \"false\"",
            "bookworm",
        ])
        .arg(&tarball)
        .arg(format!("deb {mirror} bookworm main"))
        .arg(format!("deb {mirror} bookworm-updates main"))
        .arg(format!("deb {SECURITY_MIRROR} bookworm-security main"))
        .status()
        .context("running mmdebstrap")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        bail!("mmdebstrap failed ({status}); see its output above");
    }
    let size = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
    say(&format!(
        "base: root filesystem {:.0} MB in {:.1}s; importing as `{reference}`",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    let file = tokio::fs::File::open(&tarball)
        .await
        .with_context(|| format!("opening {}", tarball.display()))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let result = engine
        .import_rootfs(
            stream,
            BASE_REPO,
            BASE_TAG,
            vec!["CMD [\"bash\"]".to_owned()],
        )
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    Ok(())
}

/// Step 2: the egress image.
async fn egress(engine: &Engine, options: &Options) -> Result<()> {
    let root = crate::util::workspace_root();
    let dockerfile_path = root.join("Dockerfile.egress");
    let dockerfile = std::fs::read_to_string(&dockerfile_path).with_context(|| {
        format!(
            "reading {} (the egress image recipe)",
            dockerfile_path.display()
        )
    })?;
    let binary = build_static("egress", "bottle-egress")?;
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let reference = std::env::var(image::env::EGRESS_IMAGE)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(image::default_egress_image);
    build_sidecar(
        engine,
        options,
        SidecarImage {
            step: "egress",
            reference,
            dockerfile: "Dockerfile.egress",
            hash: image::egress_content_hash(&dockerfile, &bytes),
            context: image::egress_context(&dockerfile, &bytes, "bottle-egress")?,
            binary_len: bytes.len(),
        },
    )
    .await
}

/// Step 3: the git gate's image: Debian slim with git and the OpenSSH client, and the static
/// gate binary.
async fn git_gate(engine: &Engine, options: &Options) -> Result<()> {
    let dockerfile = bottle_git_gate::DOCKERFILE;
    let binary = build_static("git-gate", "bottle-git-gate")?;
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let reference = std::env::var(bottle_git_gate::IMAGE_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(bottle_git_gate::default_image);
    build_sidecar(
        engine,
        options,
        SidecarImage {
            step: "git-gate",
            reference,
            dockerfile: "Dockerfile",
            hash: git_gate_content_hash(dockerfile, &bytes),
            context: git_gate_context(dockerfile, &bytes)?,
            binary_len: bytes.len(),
        },
    )
    .await
}

/// A sidecar image whose inputs are ready: its build context (the Dockerfile and a static
/// binary) and their content hash.
struct SidecarImage {
    /// The step's name, also the image's `IMAGE` label.
    step: &'static str,
    reference: String,
    /// The Dockerfile's name inside the context.
    dockerfile: &'static str,
    hash: String,
    context: bytes::Bytes,
    binary_len: usize,
}

/// Build a sidecar image unless an image of that reference already carries its content hash.
async fn build_sidecar(engine: &Engine, options: &Options, sidecar: SidecarImage) -> Result<()> {
    let SidecarImage {
        step,
        reference,
        dockerfile,
        hash,
        context,
        binary_len,
    } = sidecar;
    if !options.force
        && let Some(info) = engine.image_info(&reference).await?
        && info.labels.get(label::CONTENT_HASH) == Some(&hash)
    {
        say(&format!("{step}: `{reference}` is up to date, skipping"));
        return Ok(());
    }
    say(&format!(
        "{step}: building `{reference}` ({:.1} MB binary)",
        binary_len as f64 / 1e6
    ));
    let request = BuildRequest {
        tag: reference,
        dockerfile: dockerfile.to_owned(),
        context,
        build_args: image::host_proxy_args(|n| std::env::var(n).ok()),
        labels: [
            (label::IMAGE.to_owned(), step.to_owned()),
            (label::CONTENT_HASH.to_owned(), hash),
        ]
        .into(),
    };
    engine
        .build_image(request, &progress_printer(options.verbose))
        .await?;
    Ok(())
}

/// The build context of the gate image: its Dockerfile and the binary, owned by root.
fn git_gate_context(dockerfile: &str, binary: &[u8]) -> Result<bytes::Bytes> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("bottle-git-gate", binary, 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        tar.append_data(&mut header, name, data)
            .with_context(|| format!("adding {name} to the git-gate build context"))?;
    }
    Ok(tar
        .into_inner()
        .context("finishing the git-gate build context")?
        .into())
}

/// The content hash of the gate image's inputs, hex.
fn git_gate_content_hash(dockerfile: &str, binary: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"claude-bottle git-gate image v1\0");
    h.update((dockerfile.len() as u64).to_le_bytes());
    h.update(dockerfile.as_bytes());
    h.update(binary);
    format!("{:x}", h.finalize())
}

/// `cargo build --release -p <package>` as a static executable for the host's gnu target;
/// `step` names the image step in the progress lines. The egress's is also the binary
/// `bench guard` counts.
pub(crate) fn build_static(step: &str, package: &str) -> Result<PathBuf> {
    let triple = host_triple()?;
    if !triple.ends_with("-linux-gnu") {
        bail!(
            "the {step} image needs a static Linux binary; the host target is {triple}. \
             Build on Linux (or add a linux-musl target and adapt this step)"
        );
    }
    say(&format!(
        "{step}: cargo build --release -p {package} --target {triple} (+crt-static)"
    ));
    let t = Instant::now();
    // Flags given through the environment apply to the target only when `--target` is passed, so
    // build scripts and proc macros stay dynamic while the binary is linked statically.
    let status = crate::util::cargo()
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            package,
            "--target",
            &triple,
        ])
        .status()
        .with_context(|| format!("running cargo build for {package}"))?;
    if !status.success() {
        bail!("building the static {package} binary failed ({status})");
    }
    let binary = crate::util::target_dir()?
        .join(&triple)
        .join("release")
        .join(package);
    say(&format!(
        "{step}: binary built in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        binary.display()
    ));
    Ok(binary)
}

/// Step 4: the agent image.
async fn agent(engine: &Engine, options: &Options) -> Result<()> {
    let recipe = AgentImageRecipe::resolve(&ImageSettings::from_env())?;
    let tag = recipe.tag();
    let cas: Vec<String> = recipe
        .extra_cas
        .iter()
        .map(|c| c.source.display().to_string())
        .collect();
    say(&format!(
        "agent: `{tag}` from {} on `{}`, Claude Code {}, build CAs: {}",
        match &recipe.origin {
            image::DockerfileOrigin::Builtin => "the embedded Dockerfile".to_owned(),
            image::DockerfileOrigin::File(p) => p.display().to_string(),
        },
        recipe.base_image,
        recipe.claude_code_version,
        if cas.is_empty() {
            "none".to_owned()
        } else {
            cas.join(", ")
        }
    ));
    if options.force {
        engine
            .build_image(recipe.build_request()?, &progress_printer(options.verbose))
            .await?;
    } else {
        let before = image::image_exists(engine, &tag).await?;
        image::ensure_agent_image(engine, &recipe, &progress_printer(options.verbose)).await?;
        if before {
            say(&format!("agent: `{tag}` exists, skipping"));
        }
    }
    Ok(())
}

fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host line")
}
