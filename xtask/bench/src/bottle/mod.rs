//! `cargo xtask bench bottle`: the bottle's life on the Docker engine, each figure beside a bare
//! `docker run --rm <agent image> true` measured in the same run.
//!
//! - `claude-bottle start --yes --exec true`, from the command to its exit, split into its
//!   steps by the CLI's own plain progress lines (stderr is not a terminal, so the CLI prints
//!   one line per step; each is timestamped as it is read — the CLI is not changed for this);
//! - teardown alone (from the CLI's "tearing down" line to its exit);
//! - `claude-bottle cleanup --yes` of orphaned bottles, made by killing launchers with SIGKILL;
//! - the agent image: its size, its biggest layers, a cold build (no cache) and a warm one.
//!
//! Everything it creates carries the label of one agent name of its own
//! (`claude-bottle.agent=bench-…`) or a tag of its own, and a [`Leftovers`] guard removes exactly
//! that at the end, on failure and on Ctrl-C too. Nothing else on the engine is touched: before
//! `cleanup` runs, its dry run must list only this run's bottles (other engineers' bottles share
//! the engine), or the cleanup row is not measured.

mod report;
mod timeline;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util;
pub(crate) use report::Results;
use report::{Build, ImageFacts, Layer, Settings, StartRun};
use timeline::Timeline;

pub(crate) const USAGE: &str = "\
cargo xtask bench bottle [--smoke] [--rounds N] [--orphans N] [--skip-builds] [--out-dir DIR]

  --smoke        every row, briefly (1 round, 3 orphans), written to target/bench-smoke/
  --rounds N     interleaved rounds of `start` and the bare `docker run` (5)
  --orphans N    orphaned bottles for the cleanup row (20)
  --skip-builds  leave out the cold and warm image builds (they take minutes); the rows say so
  --out-dir DIR  write DIR/bench/bottle.json and DIR/performance.md (DIR is docs/ by default)";

/// The engine settings passed on to the CLI, as the CLI's Docker tests do.
const PASSED_ON: &[&str] = &[
    "DOCKER_HOST",
    "CLAUDE_BOTTLE_RUNTIME",
    "CLAUDE_BOTTLE_EGRESS_IMAGE",
    "CLAUDE_BOTTLE_BASE_IMAGE",
];

/// The label every object of a bottle carries, with its agent's name.
const AGENT_LABEL: &str = "claude-bottle.agent";
/// The label of what the bench creates itself (the bare container, the image builds), with the
/// run's agent name: not a bottle's label, so no claude-bottle command mistakes them for one.
const BENCH_LABEL: &str = "claude-bottle-bench.run";
/// Orphans are launched this many at a time.
const LAUNCH_BATCH: usize = 4;

#[derive(Debug, Clone)]
struct Options {
    settings: Settings,
    out_dir: Option<PathBuf>,
    smoke: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut o = Options {
        settings: Settings {
            rounds: if smoke { 1 } else { 5 },
            orphans: if smoke { 3 } else { 20 },
            builds: true,
        },
        out_dir: None,
        smoke,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("`{a}` needs a value; see `cargo xtask bench --help`"))
        };
        match a.as_str() {
            "--smoke" => {}
            "--rounds" => o.settings.rounds = value()?.parse().context("--rounds takes a count")?,
            "--orphans" => {
                o.settings.orphans = value()?.parse().context("--orphans takes a count")?;
            }
            "--skip-builds" => o.settings.builds = false,
            "--out-dir" => o.out_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument `{other}`; see `cargo xtask bench --help`"),
        }
    }
    if o.settings.rounds == 0 || o.settings.rounds > 20 {
        bail!("--rounds must be between 1 and 20");
    }
    if o.settings.orphans == 0 || o.settings.orphans > 50 {
        bail!("--orphans must be between 1 and 50");
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    util::require(
        "bench bottle",
        &[util::Tool {
            name: "docker",
            version_args: &["--version"],
            install: "see .ci/docker-setup.sh",
        }],
    )?;
    let cli = util::build_release(None, "claude-bottle")?;
    let out_dir = o.out_dir.clone().unwrap_or_else(|| {
        util::workspace_root().join(if o.smoke {
            "target/bench-smoke"
        } else {
            "docs"
        })
    });
    let world = World::new(&cli)?;
    let leftovers = Leftovers {
        agent: world.agent.clone(),
        image: world.bench_image.clone(),
    };
    // The measuring is blocking work; a signal ends the run, and the guard still cleans up.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let results = runtime.block_on(async {
        let work = tokio::task::spawn_blocking(move || bench(&o, &world));
        tokio::select! {
            r = work => r.context("the benchmark thread")?,
            s = util::interrupted() => bail!("{s}: removing what this run created"),
        }
    });
    drop(leftovers);
    runtime.shutdown_background();
    let results = results?;
    println!(
        "{}",
        crate::verdict::table(&results.verdicts(), report::PROFILE_MEANS)
    );
    crate::doc::save(&out_dir, crate::doc::Part::Bottle(Box::new(results)))
}

/// An isolated claude-bottle home with one agent of this run's own, and the images.
struct World {
    _root: tempfile::TempDir,
    home: PathBuf,
    cwd: PathBuf,
    cli: PathBuf,
    agent: String,
    agent_image: String,
    /// The tag this run's own image builds get.
    bench_image: String,
}

impl World {
    fn new(cli: &Path) -> Result<World> {
        let root = tempfile::Builder::new().prefix("bench-bottle-").tempdir()?;
        let home = root.path().join("home");
        let cwd = root.path().join("repo");
        std::fs::create_dir_all(home.join(".claude-bottle/agents"))?;
        std::fs::create_dir_all(&cwd)?;
        let run_id = format!("{}-{}", std::process::id(), unix_seconds() % 100_000);
        let agent = format!("bench-{run_id}");
        std::fs::write(
            home.join(format!(".claude-bottle/agents/{agent}.md")),
            "---\nbottle: default\n---\nAn agent of `cargo xtask bench bottle`.\n",
        )?;
        let recipe = agent_recipe()?;
        let agent_image = recipe.tag();
        if !docker_ok(&["image", "inspect", &agent_image]) {
            bail!(
                "the agent image `{agent_image}` is not on the engine; build it with `cargo xtask images` (the bench measures with images cached)"
            );
        }
        Ok(World {
            _root: root,
            home,
            cwd,
            cli: cli.to_path_buf(),
            agent,
            agent_image,
            bench_image: format!("claude-bottle-bench-agent:{run_id}"),
        })
    }

    /// `claude-bottle <args>` in the isolated home, with the engine settings passed on.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.home)
            .env("CLAUDE_BOTTLE_HOME", self.home.join(".claude-bottle"))
            .env("CLAUDE_BOTTLE_BACKEND", "docker")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for name in PASSED_ON {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        cmd
    }

    /// `claude-bottle start <agent> --yes --exec <command>`, stderr piped, stdin closed.
    fn start(&self, command: &str) -> Result<Launcher> {
        let child = self
            .cli(&["start", &self.agent, "--yes", "--exec", command])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting claude-bottle")?;
        Ok(Launcher::new(child))
    }
}

fn agent_recipe() -> Result<bottle_docker::image::AgentImageRecipe> {
    use bottle_docker::image::{AgentImageRecipe, ImageSettings};
    Ok(AgentImageRecipe::resolve(&ImageSettings::from_env())?)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running `claude-bottle start`, its stderr read line by line, each line timestamped.
struct Launcher {
    child: Child,
    started: Instant,
    lines: std::sync::mpsc::Receiver<(Duration, String)>,
    reader: Option<std::thread::JoinHandle<()>>,
    timeline: Timeline,
}

impl Launcher {
    fn new(mut child: Child) -> Launcher {
        let started = Instant::now();
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send((started.elapsed(), line)).is_err() {
                    break;
                }
            }
        });
        Launcher {
            child,
            started,
            lines,
            reader: Some(reader),
            timeline: Timeline::default(),
        }
    }

    /// Reads lines until one contains `text`; fails if the CLI exits first or after `within`.
    fn wait_for(&mut self, text: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let seen = line.contains(text);
                    self.timeline.push(at, line);
                    if seen {
                        return Ok(());
                    }
                }
                Err(_) => bail!(
                    "claude-bottle did not print {text:?} within {} s; it printed:\n{}",
                    within.as_secs(),
                    self.timeline.text()
                ),
            }
        }
    }

    /// Waits for the exit; the timeline is complete then, ending with the exit itself.
    fn finish(mut self, within: Duration) -> Result<(std::process::ExitStatus, Timeline)> {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!(
                    "claude-bottle did not exit within {} s; it printed:\n{}",
                    within.as_secs(),
                    self.timeline.text()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let exited = self.started.elapsed();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        while let Ok((at, line)) = self.lines.try_recv() {
            self.timeline.push(at, line);
        }
        self.timeline.exited = Some(exited);
        Ok((status, std::mem::take(&mut self.timeline)))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        // A launcher still running when we give up is stopped as Ctrl-C would (it tears its
        // bottle down); the leftovers guard removes anything it could not.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.kill();
        }
    }
}

/// Removes every container, network and volume labelled with this run's agent, and this run's
/// image tag, when dropped: at the end of the run, on failure and on Ctrl-C.
struct Leftovers {
    agent: String,
    image: String,
}

impl Leftovers {
    fn remove(&self) -> usize {
        let mut removed = 0;
        let bench = format!("label={BENCH_LABEL}={}", self.agent);
        for id in docker_lines(&["ps", "-aq", "--filter", &bench]) {
            if docker_ok(&["rm", "-f", &id]) {
                removed += 1;
            }
        }
        let filter = format!("label={AGENT_LABEL}={}", self.agent);
        for (list, rm) in [
            (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
            (
                &["network", "ls", "-q", "--filter"][..],
                &["network", "rm"][..],
            ),
            (
                &["volume", "ls", "-q", "--filter"][..],
                &["volume", "rm", "-f"][..],
            ),
        ] {
            for id in docker_lines(&[list, &[filter.as_str()]].concat()) {
                if docker_ok(&[rm, &[id.as_str()]].concat()) {
                    removed += 1;
                }
            }
        }
        if docker_ok(&["image", "inspect", &self.image]) && docker_ok(&["image", "rm", &self.image])
        {
            eprintln!(
                "bench: removed the bench's own image build `{}`",
                self.image
            );
        }
        removed
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let removed = self.remove();
        if removed > 0 {
            eprintln!(
                "bench: removed {removed} containers, networks and volumes this run left on the engine"
            );
        }
    }
}

/// The objects on the engine labelled with `agent`.
fn resources_of(agent: &str) -> Vec<String> {
    let filter = format!("label={AGENT_LABEL}={agent}");
    let mut all = docker_lines(&["ps", "-aq", "--filter", &filter]);
    all.extend(docker_lines(&["network", "ls", "-q", "--filter", &filter]));
    all.extend(docker_lines(&["volume", "ls", "-q", "--filter", &filter]));
    all
}

fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `cmd` to its end; how long it took. Fails with its stderr if it fails.
fn timed(what: &str, mut cmd: Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

fn bench(o: &Options, world: &World) -> Result<Results> {
    let started = util::utc_now();
    let machine = util::Machine::describe(&[
        (
            "claude-bottle",
            util::first_line(&world.cli.to_string_lossy(), &["--version"]),
        ),
        (
            "Docker engine",
            util::first_line(
                "docker",
                &[
                    "version",
                    "--format",
                    "{{.Server.Version}} (API {{.Server.APIVersion}})",
                ],
            ),
        ),
    ]);
    let (bare, start) = start_rounds(o, world)?;
    let cleanup = cleanup_orphans(o, world)?;
    let image = image_facts(&world.agent_image)?;
    let builds = if o.settings.builds {
        Some(builds(world)?)
    } else {
        None
    };
    let left = resources_of(&world.agent);
    if !left.is_empty() {
        bail!(
            "claude-bottle left {} objects of this run on the engine: {}",
            left.len(),
            left.join(", ")
        );
    }
    Ok(Results {
        started,
        machine,
        settings: o.settings.clone(),
        agent_image: world.agent_image.clone(),
        bare_docker_run_s: bare,
        start,
        cleanup,
        image,
        builds,
    })
}

/// Interleaved rounds: a bare `docker run --rm <agent image> true`, then a whole
/// `claude-bottle start --yes --exec true`. A first start, not measured, proves the agent
/// runtime (the gVisor probe, whose verdict a user's machine keeps for a day per engine) in the
/// bench's fresh home, so every measured start is the one a user makes every day.
fn start_rounds(o: &Options, world: &World) -> Result<(Vec<f64>, Vec<StartRun>)> {
    let (mut bare, mut runs) = (Vec::new(), Vec::new());
    eprintln!("bench: warm-up (not measured): claude-bottle start --yes --exec true");
    let (status, timeline) = world.start("true")?.finish(Duration::from_secs(300))?;
    if !status.success() {
        bail!(
            "claude-bottle start --exec true failed ({status}):\n{}",
            timeline.text()
        );
    }
    for round in 1..=o.settings.rounds {
        eprintln!(
            "bench: round {round}/{}: docker run --rm {} true",
            o.settings.rounds, world.agent_image
        );
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", "--label"])
            .arg(format!("{BENCH_LABEL}={}", world.agent))
            .args([&world.agent_image, "true"]);
        bare.push(timed("docker run --rm", cmd)?.as_secs_f64());
        eprintln!(
            "bench: round {round}/{}: claude-bottle start --yes --exec true",
            o.settings.rounds
        );
        let launcher = world.start("true")?;
        let (status, timeline) = launcher.finish(Duration::from_secs(300))?;
        if !status.success() {
            bail!(
                "claude-bottle start --exec true failed ({status}):\n{}",
                timeline.text()
            );
        }
        runs.push(timeline.split().with_context(|| {
            format!(
                "splitting the CLI's progress into steps; it printed:\n{}",
                timeline.text()
            )
        })?);
    }
    Ok((bare, runs))
}

/// Launches `orphans` bottles running `sleep`, kills their launchers with SIGKILL (no teardown
/// runs), then times `claude-bottle cleanup --yes`.
fn cleanup_orphans(o: &Options, world: &World) -> Result<report::Cleanup> {
    let n = o.settings.orphans;
    let mut identities = Vec::new();
    let mut launched = 0;
    while launched < n {
        let batch = LAUNCH_BATCH.min(n - launched);
        eprintln!(
            "bench: launching orphans {}–{} of {n}",
            launched + 1,
            launched + batch
        );
        let mut launchers: Vec<Launcher> = (0..batch)
            .map(|_| world.start("sleep 600"))
            .collect::<Result<_>>()?;
        for l in &mut launchers {
            l.wait_for(timeline::SESSION_STARTED, Duration::from_secs(300))?;
            identities.push(
                l.timeline
                    .identity()
                    .context("the preflight names no identity")?,
            );
        }
        for mut l in launchers {
            // SIGKILL: no teardown runs; the labelled objects stay behind for cleanup.
            l.kill();
        }
        launched += batch;
    }
    let orphaned = resources_of(&world.agent).len();
    // Cleanup is engine-wide: it may only run when everything it would remove is ours.
    let mut foreign = Vec::new();
    for _ in 0..10 {
        foreign = foreign_leftovers(world, &identities)?;
        if foreign.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    if !foreign.is_empty() {
        return Ok(report::Cleanup {
            orphans: n,
            objects: orphaned,
            seconds: None,
            not_measured: Some(format!(
                "not measured: the engine holds {} leftovers of other bottles, which `cleanup` would remove too",
                foreign.len()
            )),
        });
    }
    eprintln!("bench: claude-bottle cleanup --yes ({n} orphaned bottles, {orphaned} objects)");
    let took = timed(
        "claude-bottle cleanup --yes",
        world.cli(&["cleanup", "--yes"]),
    )?;
    let left = resources_of(&world.agent);
    if !left.is_empty() {
        bail!(
            "cleanup left {} of this run's objects behind: {}",
            left.len(),
            left.join(", ")
        );
    }
    Ok(report::Cleanup {
        orphans: n,
        objects: orphaned,
        seconds: Some(took.as_secs_f64()),
        not_measured: None,
    })
}

/// What `cleanup --dry-run --json` would remove that is not one of `ours`.
fn foreign_leftovers(world: &World, ours: &[String]) -> Result<Vec<String>> {
    let out = world
        .cli(&["cleanup", "--dry-run", "--json"])
        .output()
        .context("running claude-bottle cleanup --dry-run --json")?;
    if !out.status.success() {
        bail!(
            "claude-bottle cleanup --dry-run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .context("reading claude-bottle cleanup --dry-run --json")?;
    Ok(plan["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|item| {
                    !item["identity"]
                        .as_str()
                        .is_some_and(|id| ours.iter().any(|o| o == id))
                })
                .map(|item| item["name"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default())
}

/// The agent image's size and its biggest layers.
fn image_facts(tag: &str) -> Result<ImageFacts> {
    let size: u64 = docker_lines(&["image", "inspect", "--format", "{{.Size}}", tag])
        .first()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("reading the size of `{tag}`"))?;
    let mut layers: Vec<Layer> = docker_lines(&[
        "history",
        "--no-trunc",
        "--human=false",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        tag,
    ])
    .iter()
    .filter_map(|l| {
        let (size, by) = l.split_once('\t')?;
        Some(Layer {
            bytes: size.parse().ok()?,
            created_by: report::short_instruction(by),
        })
    })
    .collect();
    layers.sort_by_key(|l| std::cmp::Reverse(l.bytes));
    layers.truncate(6);
    Ok(ImageFacts {
        bytes: size,
        biggest_layers: layers,
    })
}

/// A cold build of the agent image (no cache) and a warm one right after, under this run's own
/// tag, with the recipe `claude-bottle start` uses.
fn builds(world: &World) -> Result<Build> {
    let request = agent_recipe()?.build_request()?;
    let context =
        std::env::temp_dir().join(format!("bench-agent-context-{}.tar", std::process::id()));
    std::fs::write(&context, &request.context)?;
    let build = |cold: bool| -> Result<Duration> {
        let mut cmd = Command::new("docker");
        // The engine's own builder, which the backend's API call uses too.
        cmd.env("DOCKER_BUILDKIT", "0")
            .args([
                "build",
                "--quiet",
                "-t",
                &world.bench_image,
                "-f",
                &request.dockerfile,
            ])
            .args(["--label", &format!("{BENCH_LABEL}={}", world.agent)]);
        if cold {
            cmd.arg("--no-cache");
        }
        for arg in &request.build_args {
            // Passed by name: the values (proxy settings may hold credentials) stay off argv.
            cmd.env(&arg.name, arg.value())
                .args(["--build-arg", &arg.name]);
        }
        cmd.arg("-").stdin(std::fs::File::open(&context)?);
        let t = Instant::now();
        let out = cmd.output().context("running docker build")?;
        if !out.status.success() {
            bail!(
                "docker build of the agent image failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(t.elapsed())
    };
    eprintln!(
        "bench: cold build of the agent image (no cache) as {}",
        world.bench_image
    );
    let cold = build(true);
    let warm = cold.as_ref().ok().map(|_| {
        eprintln!("bench: warm build of the agent image");
        build(false)
    });
    let _ = std::fs::remove_file(&context);
    Ok(Build {
        cold_s: cold?.as_secs_f64(),
        warm_s: warm.expect("built after a cold build")?.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn options_are_bounded() {
        let o = parse(&args(&["--rounds", "2", "--skip-builds"])).unwrap();
        assert_eq!(
            (o.settings.rounds, o.settings.orphans, o.settings.builds),
            (2, 20, false)
        );
        let smoke = parse(&args(&["--smoke"])).unwrap();
        assert_eq!((smoke.settings.rounds, smoke.settings.orphans), (1, 3));
        assert!(parse(&args(&["--orphans", "0"])).is_err());
        assert!(parse(&args(&["--what"])).is_err());
    }
}
