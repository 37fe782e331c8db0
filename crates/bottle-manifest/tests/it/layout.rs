//! The trust boundary: where files are read from, shadowing, warnings.

use std::ffi::OsStr;
use std::path::Path;

use bottle_manifest::{Layout, ManifestError, Origin, RepositoryAgents, Warning};

use crate::{Fixture, md};

#[test]
fn home_resolution() {
    let cwd = Path::new("/work/repo");
    let l = Layout::from_env(None, Some(OsStr::new("/home/me")), cwd).expect("home");
    assert_eq!(l.home(), Path::new("/home/me/.claude-bottle"));
    assert_eq!(l.user_home(), Some(Path::new("/home/me")));
    let l = Layout::from_env(
        Some(OsStr::new("/etc/cb")),
        Some(OsStr::new("/home/me")),
        cwd,
    )
    .expect("home");
    assert_eq!(l.home(), Path::new("/etc/cb"));
    let l = Layout::from_env(Some(OsStr::new("")), Some(OsStr::new("/h")), cwd)
        .expect("empty is unset");
    assert_eq!(l.home(), Path::new("/h/.claude-bottle"));
    assert_eq!(
        Layout::from_env(None, None, cwd),
        Err(ManifestError::NoHome)
    );
    assert_eq!(
        Layout::from_env(None, Some(OsStr::new("")), cwd),
        Err(ManifestError::NoHome)
    );
    insta::assert_snapshot!(format!(
        "{}\nhint: {}",
        ManifestError::NoHome,
        ManifestError::NoHome.hint().unwrap_or_default()
    ));
}

#[test]
fn a_relative_home_is_refused() {
    // Resolved against the working directory, it would trust a repository's own bottles.
    let cwd = Path::new("/work/repo");
    let mut shown = Vec::new();
    for (bottle_home, home) in [
        (Some(".claude-bottle"), Some("/home/me")),
        (Some("./cfg"), None),
        (None, Some("home/me")),
        (None, Some(".")),
    ] {
        let err = Layout::from_env(bottle_home.map(OsStr::new), home.map(OsStr::new), cwd)
            .expect_err("relative");
        assert!(matches!(err, ManifestError::RelativeHome { .. }), "{err:?}");
        shown.push(format!("{err}\nhint: {}", err.hint().unwrap_or_default()));
    }
    // An absolute CLAUDE_BOTTLE_HOME makes a relative HOME harmless for the home itself.
    let l = Layout::from_env(Some(OsStr::new("/etc/cb")), Some(OsStr::new("rel")), cwd)
        .expect("absolute home");
    assert_eq!(l.home(), Path::new("/etc/cb"));
    insta::assert_snapshot!(shown.join("\n\n"));
}

#[test]
fn bottles_only_from_home() {
    let f = Fixture::new();
    f.write(
        f.cwd().join(".claude-bottle/bottles/evil.md"),
        md("env: {A: b}\n"),
    );
    let index = f.load();
    assert!(index.bottles().iter().all(|b| b.name != "evil"));
    assert!(matches!(
        index.warnings(),
        [Warning::RepoBottlesIgnored { .. }]
    ));
    insta::assert_snapshot!(f.redact(&index.warnings()[0].to_string()));
}

#[test]
fn a_repo_agent_never_replaces_a_home_agent() {
    let f = Fixture::new();
    f.bottle("work", &md("repository_agents: allow\n"));
    let home = f.agent("dev", &md("bottle: default\n"));
    f.repo_agent("dev", &md("bottle: work\n"));
    let index = f.load();
    let m = index.manifest("dev").expect("valid");
    assert_eq!(
        m.agent.origin,
        Origin::Home,
        "the user's own agent keeps its name"
    );
    assert_eq!(m.agent.bottle, "default");
    let entry = index
        .agents()
        .into_iter()
        .find(|a| a.name == "dev")
        .expect("listed");
    assert_eq!(entry.path.as_deref(), Some(home.as_path()));
    assert!(matches!(
        index.warnings(),
        [Warning::RepoAgentIgnored { kept: Some(_), .. }]
    ));
    insta::assert_snapshot!(f.redact(&index.warnings()[0].to_string()));
}

#[test]
fn a_repo_agent_never_replaces_the_builtin_default() {
    let f = Fixture::new();
    f.repo_agent("default", &md("bottle: default\n"));
    let index = f.load();
    let m = index.manifest("default").expect("valid");
    assert_eq!(m.agent.origin, Origin::BuiltIn);
    assert!(m.agent.path.is_none());
    insta::assert_snapshot!(f.redact(&index.warnings()[0].to_string()));
}

#[test]
fn a_repo_agent_runs_in_the_builtin_bottle() {
    let f = Fixture::new();
    let path = f.repo_agent("helper", &md("bottle: default\n"));
    let m = f
        .load()
        .manifest("helper")
        .expect("the built-in bottle takes repository agents");
    assert_eq!((m.agent.origin, m.agent.path), (Origin::Repo, Some(path)));
    assert_eq!(m.bottle.origin, Origin::BuiltIn);
}

#[test]
fn a_repo_agent_runs_only_in_a_home_bottle_that_allows_it() {
    let f = Fixture::new();
    f.bottle("work", &md("env: {GH_TOKEN: \"${GH_PAT}\"}\n"));
    f.bottle("open", &md("repository_agents: allow\n"));
    f.bottle("child", &md("extends: open\n"));
    f.repo_agent("thief", &md("bottle: work\n"));
    f.repo_agent("guest", &md("bottle: open\n"));
    f.repo_agent("heir", &md("bottle: child\n"));
    f.agent("mine", &md("bottle: work\n"));
    let index = f.load();

    assert!(index.manifest("mine").is_ok(), "home agents use any bottle");
    let guest = index
        .manifest("guest")
        .expect("`open` allows repository agents");
    assert_eq!(guest.bottle.repository_agents, RepositoryAgents::Allow);
    let err = f.select_error("thief");
    assert!(err.contains("does not allow repository agents"), "{err}");
    let err = f.select_error("heir");
    assert!(
        err.contains("bottle `child`"),
        "the opt-in is not inherited through `extends`: {err}"
    );
    // `check` reports the refusals too.
    insta::assert_snapshot!(f.check_errors());
}

#[test]
fn a_home_default_bottle_needs_the_opt_in_too() {
    let f = Fixture::new();
    f.bottle("default", &md("env: {GH_TOKEN: \"${GH_PAT}\"}\n"));
    f.repo_agent("helper", &md("bottle: default\n"));
    assert!(
        f.select_error("helper")
            .contains("cannot use bottle `default`")
    );
}

#[test]
fn home_agent_overriding_builtin_is_silent() {
    let f = Fixture::new();
    f.agent("default", &md("bottle: default\n"));
    let index = f.load();
    assert!(index.warnings().is_empty());
    assert_eq!(
        index.manifest("default").expect("valid").agent.origin,
        Origin::Home
    );
}

#[test]
fn badly_named_files_are_warned_about_and_skipped() {
    let f = Fixture::new();
    f.agent("Bad_Name", "whatever");
    f.write(f.home().join("agents/notes.txt"), "x");
    f.write(f.home().join("agents/9lives.md"), "x");
    let index = f.load();
    assert_eq!(index.agents().len(), 1, "only the built-in default");
    assert!(index.check().errors.is_empty());
    let warnings: Vec<String> = index
        .warnings()
        .iter()
        .map(|w| f.redact(&w.to_string()))
        .collect();
    insta::assert_snapshot!(warnings.join("\n"));
}

#[test]
fn cwd_equal_to_user_home_reads_the_home_once() {
    let f = Fixture::new();
    // The working directory is the folder holding `.claude-bottle`: repo == home.
    let layout = Layout::new(f.home(), None, f.home().parent().expect("parent"));
    f.bottle("b", &md(""));
    f.agent("a", &md("bottle: b\n"));
    let index = bottle_manifest::ManifestIndex::load(&layout, None);
    assert!(index.warnings().is_empty(), "{:?}", index.warnings());
    assert_eq!(
        index.manifest("a").expect("valid").agent.origin,
        Origin::Home
    );
}

#[test]
fn missing_folders_are_fine() {
    let f = Fixture::new();
    let layout = Layout::new(f.root().join("nope"), None, f.root().join("nope2"));
    let index = bottle_manifest::ManifestIndex::load(&layout, None);
    assert!(index.check().errors.is_empty());
    assert_eq!(
        index.manifest("default").expect("builtin").bottle.name,
        "default"
    );
}

#[test]
fn broken_file_fails_only_when_selected_but_check_reports_all() {
    let f = Fixture::new();
    f.agent("good", &md("bottle: default\n"));
    f.agent("bad1", &md("bottle: default\nfoo: 1\n"));
    f.agent("bad2", &md("bottle: nope\n"));
    f.bottle("broken", &md("egress: 3\n"));
    let index = f.load();
    assert!(index.manifest("good").is_ok());
    assert!(index.manifest("bad1").is_err());
    assert!(index.manifest("bad2").is_err());
    let report = index.check();
    assert_eq!(report.errors.len(), 3, "{}", f.render(&report.errors));
    assert_eq!(report.files, 4);
    assert_eq!(report.agents, 4);
    assert_eq!(report.bottles, 2);
    insta::assert_snapshot!(f.render(&report.errors));
}

#[test]
fn an_ignored_repo_agent_is_still_checked() {
    let f = Fixture::new();
    f.agent("dev", &md("bottle: default\n"));
    f.repo_agent("dev", &md("bottle: default\nbogus: 1\n"));
    let index = f.load();
    assert!(index.manifest("dev").is_ok());
    assert_eq!(index.check().errors.len(), 1);
}
