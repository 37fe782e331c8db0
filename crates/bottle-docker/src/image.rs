//! The images a bottle runs: the agent image (built from a Dockerfile embedded in this crate)
//! and the egress image (from `Dockerfile.egress`).
//!
//! The agent image is tagged with a hash of everything that goes into it — the Dockerfile, the
//! base image reference, the Claude Code version and the build host's extra CA certificates — so
//! it is rebuilt exactly when one of them changes, and `prepare` can name it without touching the
//! engine.
//!
//! Builds carry the build host's locally added CA certificates (the system trust store's local
//! additions, e.g. `/usr/local/share/ca-certificates` on Debian) into the context, so apt and npm
//! work behind a TLS-intercepting company proxy; the proxy settings of the host environment go in
//! as the engine's predefined proxy build args, which stay out of the image history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bottle_core::FileOwner;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::api::{BuildRequest, DockerApi, EnvVar, Progress, ProgressSink};
use crate::error::{DockerError, Result};
use crate::names::label;
use crate::tarball::TarBuilder;

/// The Dockerfile of the agent image.
pub const AGENT_DOCKERFILE: &str = include_str!("assets/agent.Dockerfile");

/// The base image the agent Dockerfile starts from unless overridden.
pub const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";

/// The repository of agent image tags: `claude-bottle-agent:<content hash>`.
pub const AGENT_IMAGE_REPO: &str = "claude-bottle-agent";

/// The npm version of `@anthropic-ai/claude-code` installed unless overridden: pinned, so an
/// image is reproducible and its content-hash tag changes exactly when the version does (the
/// `latest` dist-tag moves every working day). The built-in route table and the provisioned
/// configuration were measured on this version; bump them together.
pub const DEFAULT_CLAUDE_CODE_VERSION: &str = "2.1.332";

/// The repository of the egress image.
pub const EGRESS_IMAGE_REPO: &str = "claude-bottle-egress";

/// The default egress image reference: `claude-bottle-egress:<this crate's version>`.
pub fn default_egress_image() -> String {
    format!("{EGRESS_IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// Environment variables that override image settings.
pub mod env {
    /// Base image of the agent Dockerfile (`BASE_IMAGE` build arg).
    pub const BASE_IMAGE: &str = "CLAUDE_BOTTLE_BASE_IMAGE";
    /// Path of a Dockerfile that replaces the embedded one.
    pub const DOCKERFILE: &str = "CLAUDE_BOTTLE_DOCKERFILE";
    /// npm version or dist-tag of Claude Code.
    pub const CLAUDE_CODE_VERSION: &str = "CLAUDE_BOTTLE_CLAUDE_CODE_VERSION";
    /// Extra CA certificates for builds: `:`-separated PEM files or directories. Replaces the
    /// default locations when set (an empty value means none).
    pub const BUILD_CA_CERTS: &str = "CLAUDE_BOTTLE_BUILD_CA_CERTS";
    /// The egress image reference.
    pub const EGRESS_IMAGE: &str = "CLAUDE_BOTTLE_EGRESS_IMAGE";
}

/// Where systems keep locally added CA certificates (the additions, not the whole bundle).
pub const DEFAULT_CA_DIRS: &[&str] = &[
    "/usr/local/share/ca-certificates", // Debian, Ubuntu, Alpine
    "/etc/pki/ca-trust/source/anchors", // Fedora, RHEL
    "/etc/ca-certificates/trust-source/anchors", // Arch
    "/usr/share/pki/trust/anchors",     // openSUSE
];

/// Host proxy variables passed into builds as the engine's predefined build args.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
];

/// Image choices from the environment and the manifest, before any file is read. Manifest
/// values (set by the caller) win over the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSettings {
    /// The base image (`None`: [`DEFAULT_BASE_IMAGE`]).
    pub base_image: Option<String>,
    /// A Dockerfile replacing the embedded one.
    pub dockerfile: Option<PathBuf>,
    /// The Claude Code version (`None`: [`DEFAULT_CLAUDE_CODE_VERSION`]).
    pub claude_code_version: Option<String>,
    /// Extra CA sources for builds (`None`: [`DEFAULT_CA_DIRS`]).
    pub build_ca_sources: Option<Vec<PathBuf>>,
}

impl ImageSettings {
    /// Settings from the `CLAUDE_BOTTLE_*` variables of [`env`].
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// These settings with a bottle's `image:` overrides applied: the manifest wins over the
    /// environment, field by field.
    pub fn with_manifest(mut self, image: &bottle_manifest::AgentImage) -> Self {
        if let Some(base) = &image.base {
            self.base_image = Some(base.clone());
        }
        if let Some(dockerfile) = &image.dockerfile {
            self.dockerfile = Some(dockerfile.clone());
        }
        if let Some(version) = &image.claude_code_version {
            self.claude_code_version = Some(version.clone());
        }
        self
    }

    /// Settings from an arbitrary variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        ImageSettings {
            base_image: non_empty(env::BASE_IMAGE),
            dockerfile: non_empty(env::DOCKERFILE).map(PathBuf::from),
            claude_code_version: non_empty(env::CLAUDE_CODE_VERSION),
            build_ca_sources: lookup(env::BUILD_CA_CERTS).map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            }),
        }
    }
}

/// One extra CA certificate carried into a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCa {
    /// Its file name in the context's `build-cas/` (always ending in `.crt`, which Debian's
    /// `update-ca-certificates` requires).
    pub file_name: String,
    /// Where it came from on the host.
    pub source: PathBuf,
    /// The PEM text.
    pub pem: Vec<u8>,
}

/// Where the agent Dockerfile came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerfileOrigin {
    /// The one embedded in this crate.
    Builtin,
    /// A replacement on the host.
    File(PathBuf),
}

/// Everything the agent image is built from, read and ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentImageRecipe {
    /// The Dockerfile text.
    pub dockerfile: String,
    /// Where it came from.
    pub origin: DockerfileOrigin,
    /// The base image.
    pub base_image: String,
    /// The Claude Code version.
    pub claude_code_version: String,
    /// The build host's extra CAs.
    pub extra_cas: Vec<ExtraCa>,
}

impl AgentImageRecipe {
    /// Reads the Dockerfile override and the extra CAs named by `settings`.
    pub fn resolve(settings: &ImageSettings) -> Result<Self> {
        let (dockerfile, origin) = match &settings.dockerfile {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| DockerError::HostFile {
                    path: path.clone(),
                    source,
                })?,
                DockerfileOrigin::File(path.clone()),
            ),
            None => (AGENT_DOCKERFILE.to_owned(), DockerfileOrigin::Builtin),
        };
        let sources: Vec<PathBuf> = match &settings.build_ca_sources {
            Some(paths) => paths.clone(),
            None => DEFAULT_CA_DIRS.iter().map(PathBuf::from).collect(),
        };
        Ok(AgentImageRecipe {
            dockerfile,
            origin,
            base_image: settings
                .base_image
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_IMAGE.to_owned()),
            claude_code_version: settings
                .claude_code_version
                .clone()
                .unwrap_or_else(|| DEFAULT_CLAUDE_CODE_VERSION.to_owned()),
            extra_cas: collect_extra_cas(&sources)?,
        })
    }

    /// The SHA-256 of every build input, hex.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"claude-bottle agent image v1\0");
        for part in [
            self.dockerfile.as_bytes(),
            self.base_image.as_bytes(),
            self.claude_code_version.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        for ca in &self.extra_cas {
            h.update((ca.file_name.len() as u64).to_le_bytes());
            h.update(ca.file_name.as_bytes());
            h.update((ca.pem.len() as u64).to_le_bytes());
            h.update(&ca.pem);
        }
        format!("{:x}", h.finalize())
    }

    /// `claude-bottle-agent:<first 16 hex digits of the content hash>`.
    pub fn tag(&self) -> String {
        format!("{AGENT_IMAGE_REPO}:{}", &self.content_hash()[..16])
    }

    /// The build context: `Dockerfile` and `build-cas/`.
    pub fn context(&self) -> Result<Bytes> {
        let mut tar = TarBuilder::new("agent image build context");
        tar.file(
            "Dockerfile",
            self.dockerfile.as_bytes(),
            0o644,
            FileOwner::ROOT,
        )?;
        tar.dir("build-cas", 0o755, FileOwner::ROOT)?;
        for ca in &self.extra_cas {
            tar.file(
                &format!("build-cas/{}", ca.file_name),
                &ca.pem,
                0o644,
                FileOwner::ROOT,
            )?;
        }
        tar.finish()
    }

    /// The build request: context, args (with the host's proxy settings), labels.
    pub fn build_request(&self) -> Result<BuildRequest> {
        let mut build_args = vec![
            EnvVar::new("BASE_IMAGE", &self.base_image),
            EnvVar::new("CLAUDE_CODE_VERSION", &self.claude_code_version),
        ];
        build_args.extend(host_proxy_args(|n| std::env::var(n).ok()));
        Ok(BuildRequest {
            tag: self.tag(),
            dockerfile: "Dockerfile".to_owned(),
            context: self.context()?,
            build_args,
            labels: BTreeMap::from([
                (label::IMAGE.to_owned(), "agent".to_owned()),
                (label::CONTENT_HASH.to_owned(), self.content_hash()),
            ]),
        })
    }
}

/// The host's proxy variables, as build args.
pub fn host_proxy_args(lookup: impl Fn(&str) -> Option<String>) -> Vec<EnvVar> {
    PROXY_ARGS
        .iter()
        .filter_map(|name| lookup(name).map(|v| EnvVar::new(*name, v)))
        .collect()
}

/// Reads every PEM certificate file (`.crt` or `.pem`) under `sources` (files or directories,
/// searched recursively; missing ones are skipped), in a stable order.
pub fn collect_extra_cas(sources: &[PathBuf]) -> Result<Vec<ExtraCa>> {
    let mut files = Vec::new();
    for source in sources {
        gather(source, &mut files)?;
    }
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for (i, path) in files.into_iter().enumerate() {
        let pem = std::fs::read(&path).map_err(|source| DockerError::HostFile {
            path: path.clone(),
            source,
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>();
        out.push(ExtraCa {
            file_name: format!("{i:02}-{stem}.crt"),
            source: path,
            pem,
        });
    }
    Ok(out)
}

fn gather(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_file() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "crt" || ext == "pem" {
            out.push(path.to_path_buf());
        }
    } else if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| DockerError::HostFile {
            path: path.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            gather(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Whether the engine has image `reference`.
pub async fn image_exists<D: DockerApi>(api: &D, reference: &str) -> Result<bool> {
    Ok(api.image_info(reference).await?.is_some())
}

/// Makes sure the agent image of `recipe` exists, building it when it does not. Returns its tag.
pub async fn ensure_agent_image<D: DockerApi>(
    api: &D,
    recipe: &AgentImageRecipe,
    progress: ProgressSink<'_>,
) -> Result<String> {
    let tag = recipe.tag();
    if image_exists(api, &tag).await? {
        return Ok(tag);
    }
    if !image_exists(api, &recipe.base_image).await? {
        // The classic builder would try to pull it; say what to do instead of a registry error.
        progress(Progress::Warning {
            message: format!(
                "base image `{}` is not on the engine; the build will try to pull it",
                recipe.base_image
            ),
        });
    }
    api.build_image(recipe.build_request()?, progress).await?;
    Ok(tag)
}

/// The build context of the egress image: `Dockerfile.egress` and the static `bottle-egress`
/// binary next to it, as the Dockerfile's `COPY` expects.
pub fn egress_context(dockerfile: &str, binary: &[u8], binary_name: &str) -> Result<Bytes> {
    let mut tar = TarBuilder::new("egress image build context");
    tar.file(
        "Dockerfile.egress",
        dockerfile.as_bytes(),
        0o644,
        FileOwner::ROOT,
    )?;
    tar.file(binary_name, binary, 0o755, FileOwner::ROOT)?;
    tar.finish()
}

/// The content hash of the egress image's inputs, hex.
pub fn egress_content_hash(dockerfile: &str, binary: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"claude-bottle egress image v1\0");
    h.update((dockerfile.len() as u64).to_le_bytes());
    h.update(dockerfile.as_bytes());
    h.update(binary);
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn recipe_with(dir: &Path) -> AgentImageRecipe {
        AgentImageRecipe::resolve(&ImageSettings {
            build_ca_sources: Some(vec![dir.to_path_buf()]),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn extra_cas_are_found_recursively_and_non_certificates_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("corp")).unwrap();
        std::fs::write(dir.path().join("corp/proxy ca.crt"), PEM).unwrap();
        std::fs::write(dir.path().join("b.pem"), PEM).unwrap();
        std::fs::write(dir.path().join("notes.crt"), "not a cert").unwrap();
        std::fs::write(dir.path().join("key.txt"), PEM).unwrap();
        let cas = collect_extra_cas(&[dir.path().to_path_buf(), "/nonexistent".into()]).unwrap();
        let names: Vec<_> = cas.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(names, ["00-b.crt", "01-proxy_ca.crt"]);
    }

    #[test]
    fn the_tag_changes_exactly_when_an_input_changes() {
        let dir = tempfile::tempdir().unwrap();
        let base = recipe_with(dir.path());
        assert_eq!(base.tag(), recipe_with(dir.path()).tag(), "stable");
        assert!(base.tag().starts_with("claude-bottle-agent:"));

        std::fs::write(dir.path().join("corp.crt"), PEM).unwrap();
        let with_ca = recipe_with(dir.path());
        assert_ne!(base.tag(), with_ca.tag(), "a new CA rebuilds");

        let mut other_base = base.clone();
        other_base.base_image = "ubuntu:24.04".into();
        assert_ne!(base.tag(), other_base.tag(), "a new base rebuilds");

        let mut other_version = base.clone();
        other_version.claude_code_version = "2.1.0".into();
        assert_ne!(
            base.tag(),
            other_version.tag(),
            "a new Claude Code rebuilds"
        );

        let mut other_file = base.clone();
        other_file.dockerfile.push_str("\nRUN true\n");
        assert_ne!(base.tag(), other_file.tag(), "a new Dockerfile rebuilds");
    }

    #[test]
    fn the_claude_code_version_is_pinned_and_the_manifest_wins_over_the_environment() {
        assert!(
            DEFAULT_CLAUDE_CODE_VERSION
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            "a version, not a moving dist-tag: {DEFAULT_CLAUDE_CODE_VERSION}"
        );
        assert!(
            AGENT_DOCKERFILE.contains(&format!(
                "ARG CLAUDE_CODE_VERSION={DEFAULT_CLAUDE_CODE_VERSION}"
            )),
            "the Dockerfile's own default is the same pin"
        );
        let from_env = ImageSettings::from_lookup(|n| {
            (n == env::CLAUDE_CODE_VERSION).then(|| "2.1.330".to_owned())
        });
        assert_eq!(from_env.claude_code_version.as_deref(), Some("2.1.330"));
        let image = bottle_manifest::AgentImage {
            claude_code_version: Some("2.1.331".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            from_env
                .with_manifest(&image)
                .claude_code_version
                .as_deref(),
            Some("2.1.331")
        );
    }

    #[test]
    fn settings_come_from_the_environment() {
        let vars = BTreeMap::from([
            (env::BASE_IMAGE, "my/base:1"),
            (env::DOCKERFILE, "/tmp/Dockerfile.mine"),
            (env::CLAUDE_CODE_VERSION, " "),
            (env::BUILD_CA_CERTS, "/a.crt:/b"),
        ]);
        let s = ImageSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(s.base_image.as_deref(), Some("my/base:1"));
        assert_eq!(s.dockerfile, Some(PathBuf::from("/tmp/Dockerfile.mine")));
        assert_eq!(s.claude_code_version, None, "blank means unset");
        assert_eq!(
            s.build_ca_sources,
            Some(vec![PathBuf::from("/a.crt"), PathBuf::from("/b")])
        );
    }

    #[test]
    fn a_replacement_dockerfile_is_read_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM scratch\n").unwrap();
        let r = AgentImageRecipe::resolve(&ImageSettings {
            dockerfile: Some(path.clone()),
            build_ca_sources: Some(vec![]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.dockerfile, "FROM scratch\n");
        assert_eq!(r.origin, DockerfileOrigin::File(path));
        let missing = AgentImageRecipe::resolve(&ImageSettings {
            dockerfile: Some(dir.path().join("nope")),
            ..Default::default()
        });
        assert!(matches!(missing, Err(DockerError::HostFile { .. })));
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_cas() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("corp.crt"), PEM).unwrap();
        let ctx = recipe_with(dir.path()).context().unwrap();
        let mut archive = tar::Archive::new(&ctx[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile", "build-cas/", "build-cas/00-corp.crt"]);
    }

    #[test]
    fn proxy_settings_become_build_args_without_other_variables() {
        let vars = BTreeMap::from([
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", "localhost"),
            ("HOME", "/root"),
        ]);
        let args = host_proxy_args(|n| vars.get(n).map(|v| v.to_string()));
        let names: Vec<_> = args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["HTTPS_PROXY", "no_proxy"]);
        assert_eq!(format!("{:?}", args[0]), "HTTPS_PROXY=<redacted>");
    }

    #[test]
    fn the_embedded_dockerfile_installs_what_the_agent_needs() {
        for needle in [
            "ARG BASE_IMAGE=debian:bookworm-slim",
            "git curl openssh-client",
            "nodejs npm",
            "python3",
            "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}",
            "ARG CLAUDE_CODE_VERSION=2.1.332",
            "claude-code-linux-x64-musl",
            "useradd --uid 1000 --gid node",
            "NODE_EXTRA_CA_CERTS=",
            "COPY build-cas/",
            "USER node",
        ] {
            assert!(AGENT_DOCKERFILE.contains(needle), "missing {needle}");
        }
    }
}
