//! `--help` of every command, snapshotted.

use crate::TestContext;

fn help(args: &[&str]) -> String {
    let run = TestContext::new().run(args);
    assert_eq!(run.code, 0, "{}", run.all());
    run.stdout
}

#[test]
fn root_help() {
    let out = help(&["--help"]);
    assert!(out.contains("Exit codes:"));
    insta::assert_snapshot!(out);
}

#[test]
fn check_help() {
    insta::assert_snapshot!(help(&["check", "--help"]));
}

#[test]
fn list_help() {
    insta::assert_snapshot!(help(&["list", "--help"]));
}

#[test]
fn info_help() {
    insta::assert_snapshot!(help(&["info", "--help"]));
}

#[test]
fn usage_error_exits_2() {
    let run = TestContext::new().run(&["frobnicate"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.all());
}

#[test]
fn missing_argument_exits_2() {
    let run = TestContext::new().run(&["info"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.all());
}
