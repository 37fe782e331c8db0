//! The questions, answered through a real pseudo-terminal: the launch y/N, the hidden secret
//! prompt and the agent picker.

use crate::bottle_support::{
    PtyRun, fake_context, kept_states, record, redact_identity, run_detached,
};

#[test]
fn yes_at_the_terminal_launches() {
    let ctx = fake_context();
    let mut pty = PtyRun::spawn(&ctx.command(&["start", "--exec", "true"]));
    pty.expect("launch this agent? [y/N] ");
    pty.send("y\r");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    let record = record(&ctx);
    assert!(record.names().contains(&"launch"), "{:?}", record.names());
    assert_eq!(
        record.call("exec-attached").expect("exec")["tty"],
        true,
        "a terminal on both sides: the session gets one"
    );
    assert!(record.resources.is_empty());
}

#[test]
fn anything_but_yes_declines_and_creates_nothing() {
    for answer in ["\r", "n\r", "nope\r"] {
        let ctx = fake_context();
        let mut pty = PtyRun::spawn(&ctx.command(&["start", "--exec", "true"]));
        pty.expect("launch this agent? [y/N] ");
        pty.send(answer);
        let (code, screen) = pty.finish();
        assert_eq!(code, 6, "answer {answer:?}: {screen}");
        assert!(screen.contains("not launched"), "{screen}");
        assert_eq!(record(&ctx).names(), ["resolve-plan"], "answer {answer:?}");
        assert!(kept_states(&ctx).is_empty());
    }
}

#[test]
fn a_prompted_secret_is_read_without_echo() {
    let ctx = fake_context();
    ctx.bottle(
        "asks",
        "---\nenv:\n  API_TOKEN: \"?paste the token\"\n---\n",
    )
    .agent("asker", "---\nbottle: asks\n---\n");
    let mut pty = PtyRun::spawn(&ctx.command(&["start", "asker", "--exec", "true"]));
    pty.expect("launch this agent? [y/N] ");
    pty.send("y\r");
    pty.expect("paste the token (API_TOKEN, hidden): ");
    pty.send("typed-secret-value\r");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("typed-secret-value"), "echoed:\n{screen}");
    let record = record(&ctx);
    assert_eq!(
        record.call("launch").expect("launch")["env"],
        serde_json::json!(["API_TOKEN"])
    );
}

#[test]
fn ctrl_c_at_the_secret_prompt_cancels_and_restores_the_terminal() {
    let ctx = fake_context();
    ctx.bottle("asks", "---\nenv:\n  API_TOKEN: \"?\"\n---\n")
        .agent("asker", "---\nbottle: asks\n---\n");
    let mut pty = PtyRun::spawn(&ctx.command(&["start", "asker", "--yes", "--exec", "true"]));
    pty.expect("value for API_TOKEN (hidden): ");
    pty.send("half\x03");
    let (code, screen) = pty.finish();
    assert_eq!(code, 130, "{screen}");
    assert!(screen.contains("cancelled"), "{screen}");
    assert_eq!(record(&ctx).names(), ["resolve-plan"], "nothing launched");
}

#[test]
fn without_an_agent_name_a_picker_offers_them() {
    let ctx = fake_context();
    ctx.agent("alpha", "---\nbottle: default\n---\n")
        .agent("beta", "---\nbottle: default\n---\n");
    let mut pty = PtyRun::spawn(&ctx.command(&["start", "--yes", "--exec", "true"]));
    pty.expect("or a name (empty to cancel): ");
    pty.send("beta\r");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    let record = record(&ctx);
    let identity = record.call("resolve-plan").expect("plan")["identity"]
        .as_str()
        .expect("identity")
        .to_owned();
    assert!(identity.starts_with("beta-"), "{identity}");
    insta::assert_snapshot!(
        redact_identity(&screen.replace("\r\n", "\n"), "beta")
            .lines()
            .take_while(|l| !l.contains("agent "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn without_an_agent_name_the_only_one_defined_starts() {
    let ctx = fake_context().env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-never-shown");
    ctx.agent("solo", "---\nbottle: default\n---\n");
    let run = ctx.run(&["start", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("agent      solo"), "{}", run.stdout);
}

#[test]
fn several_agents_and_no_terminal_ask_for_a_name() {
    let ctx = fake_context();
    ctx.agent("alpha", "---\nbottle: default\n---\n")
        .agent("beta", "---\nbottle: default\n---\n");
    let run = run_detached(&ctx, ctx.command(&["start", "--yes"]), "");
    assert_eq!(run.code, 2, "{}", run.all());
    insta::assert_snapshot!(run.all());
}
