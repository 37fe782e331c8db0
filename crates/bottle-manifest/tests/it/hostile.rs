//! Hostile inputs: each gets a clear error, no panic, bounded time and memory.

use crate::{Fixture, md};

fn agent_file_error(bytes: &[u8]) -> String {
    let f = Fixture::new();
    f.write(f.cwd().join(".claude-bottle/agents/evil.md"), bytes);
    let out = f.check_errors();
    assert!(!out.is_empty());
    // A broken repository agent fails only when selected: others still work.
    assert!(f.load().manifest("default").is_ok());
    out
}

#[test]
fn billion_laughs() {
    let mut front =
        String::from("bottle: default\ntools:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = String::from("a");
    for i in 0..9 {
        let name = format!("l{i}");
        let refs = vec![format!("*{prev}"); 10].join(", ");
        front.push_str(&format!("  {name}: &{name} [{refs}]\n"));
        prev = name;
    }
    insta::assert_snapshot!(agent_file_error(md(&front).as_bytes()));
}

#[test]
fn deep_flow_nesting() {
    let front = format!(
        "bottle: default\ntools: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    insta::assert_snapshot!(agent_file_error(md(&front).as_bytes()));
}

#[test]
fn deep_block_nesting() {
    let mut front = String::from("bottle: default\ntools:\n");
    for depth in 1..200 {
        front.push_str(&" ".repeat(depth));
        front.push_str("- \n");
    }
    insta::assert_snapshot!(agent_file_error(md(&front).as_bytes()));
}

#[test]
fn deep_mapping_nesting() {
    let mut front = String::from("bottle: default\ntools:\n");
    for depth in 1..200 {
        front.push_str(&" ".repeat(depth * 2));
        front.push_str(&format!("k{depth}:\n"));
    }
    insta::assert_snapshot!(agent_file_error(md(&front).as_bytes()));
}

#[test]
fn over_one_mib() {
    let mut text = md("bottle: default\n");
    text.push_str(&"x".repeat(1024 * 1024));
    insta::assert_snapshot!(agent_file_error(text.as_bytes()));
}

#[test]
fn non_utf8() {
    let mut bytes = b"---\nbottle: default\ndescription: caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b"\n---\n");
    insta::assert_snapshot!(agent_file_error(&bytes));
}

#[test]
fn nul_byte_in_front_matter() {
    insta::assert_snapshot!(agent_file_error(b"---\nbottle: de\0fault\n---\n"));
}

#[test]
fn nul_byte_in_body() {
    insta::assert_snapshot!(agent_file_error(
        b"---\nbottle: default\n---\nhello\0world\n"
    ));
}

#[test]
fn duplicate_keys() {
    insta::assert_snapshot!(agent_file_error(
        b"---\nbottle: default\nbottle: stolen\n---\n"
    ));
}

#[test]
fn terminal_escapes_are_not_echoed() {
    let out = agent_file_error(b"---\nbottle: default\n\x1b[31mevil: 1\n---\n");
    assert!(!out.contains('\u{1b}'), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn document_end_marker_closes_the_front_matter() {
    let f = Fixture::new();
    f.repo_agent("a", "---\nbottle: default\n...\n---\nbottle: stolen\n---\n");
    let m = f.load().manifest("a").expect("valid");
    assert_eq!(m.agent.bottle, "default");
    assert_eq!(m.agent.prompt, "---\nbottle: stolen\n---\n");
}

#[cfg(unix)]
#[test]
fn symlink_out_of_the_folder_is_refused() {
    let f = Fixture::new();
    let secret = f.write(f.root().join("secret.md"), md("bottle: default\n"));
    let agents = f.cwd().join(".claude-bottle/agents");
    std::fs::create_dir_all(&agents).expect("mkdir");
    std::os::unix::fs::symlink(&secret, agents.join("leak.md")).expect("symlink");
    insta::assert_snapshot!(f.check_errors());
    assert!(f.load().manifest("leak").is_err());
}

#[cfg(unix)]
#[test]
fn symlink_inside_the_folder_is_read() {
    let f = Fixture::new();
    let real = f.repo_agent("real", &md("bottle: default\n"));
    std::os::unix::fs::symlink(&real, real.with_file_name("alias.md")).expect("symlink");
    assert!(f.load().manifest("alias").is_ok());
    assert!(f.load().check().errors.is_empty());
}

#[cfg(unix)]
#[test]
fn repo_agents_folder_symlinked_out_of_the_repo_is_refused() {
    let f = Fixture::new();
    let elsewhere = f.root().join("elsewhere");
    f.write(elsewhere.join("x.md"), md("bottle: default\n"));
    std::fs::create_dir_all(f.cwd().join(".claude-bottle")).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, f.cwd().join(".claude-bottle/agents")).expect("symlink");
    insta::assert_snapshot!(f.check_errors());
    assert!(f.load().manifest("x").is_err());
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    let f = Fixture::new();
    let agents = f.home().join("agents");
    std::fs::create_dir_all(&agents).expect("mkdir");
    let status = std::process::Command::new("mkfifo")
        .arg(agents.join("pipe.md"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    insta::assert_snapshot!(f.check_errors());
}

#[test]
fn directory_named_like_a_manifest_is_refused() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.home().join("agents/dir.md")).expect("mkdir");
    insta::assert_snapshot!(f.check_errors());
}

/// A cloned repository names its files: a name with ESC, CR, LF or BEL would, printed raw,
/// forge lines above the launch question or hide the real ones. Every warning and diagnostic
/// shows them escaped.
#[cfg(unix)]
#[test]
fn control_characters_in_file_and_folder_names_are_escaped() {
    let f = Fixture::new();
    let cwd = f.root().join("clone\u{1b}]52;c;aGk=\u{7}");
    let agents = cwd.join(".claude-bottle/agents");
    let forged = "x\n  agent      default\n  bottle     default\r\u{1b}[1;1r\u{9b}8m.md";
    f.write(agents.join(forged), "");
    f.write(agents.join("broken.md"), md("bottle: default\nbogus: 1\n"));
    f.write(agents.join("default.md"), md("bottle: default\n"));
    f.write(cwd.join(".claude-bottle/bottles/b.md"), md(""));
    let layout = bottle_manifest::Layout::new(f.home(), Some(f.user_home()), &cwd);
    let index = bottle_manifest::ManifestIndex::load(&layout, None);

    let mut shown: Vec<String> = index.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    for warning in &shown {
        assert!(!warning.contains(char::is_control), "{warning:?}");
    }
    let errors = index.check().errors;
    assert_eq!(errors.len(), 1);
    let diagnostic = errors[0].to_string();
    assert!(
        diagnostic
            .lines()
            .all(|line| !line.contains(|c: char| c.is_control() && c != '\t')),
        "{diagnostic:?}"
    );
    assert_eq!(diagnostic.lines().count(), 4, "{diagnostic}");
    shown.push(diagnostic);
    insta::assert_snapshot!(f.redact(&shown.join("\n")));
}
