//! The entry's key stays where the config says: never copied into the state the gate serves,
//! never in an answer of its HTTP side, whatever path a client asks for.

use std::path::Path;

use crate::support::{GateProcess, TestContext, Upstream, commit};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn the_key_is_never_copied_into_the_state_nor_served() {
    let ctx = TestContext::new();
    let upstream = Upstream::start(&ctx);
    let bare = upstream.repo(&ctx, "app");
    let gate = GateProcess::serving(&ctx, &upstream, "app", &bare, "");
    let work = ctx.clone(&upstream.url(&bare), "work");
    commit(&ctx, &work, &[("a.txt", "a\n")], "a");
    ctx.git_ok(&work, &["push", "--quiet", "origin", "HEAD:main"]);

    let key = std::fs::read(&upstream.user_key).unwrap();
    let key_body: Vec<u8> = key
        .split(|b| *b == b'\n')
        .nth(1)
        .expect("a PEM body line")
        .to_vec();
    // No file the gate wrote holds the key or a line of it.
    for file in files_under(&gate.state) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(key_body.len())
                .any(|w| w == key_body.as_slice()),
            "{} holds the key",
            file.display()
        );
    }
    // Nor does anything the HTTP side answers, for any path a client may try.
    let key_path = upstream.user_key.display().to_string();
    for target in [
        "/app.git/HEAD".to_owned(),
        "/app.git/config".to_owned(),
        "/app.git/objects/info/packs".to_owned(),
        "/app.git/info/refs".to_owned(),
        "/../../../../../../..".to_owned() + &key_path,
        format!("/app.git/../../..{key_path}"),
        key_path.clone(),
        "/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/ssh/app.known_hosts".to_owned(),
        "/hooks/pre-receive".to_owned(),
    ] {
        let (status, body) = gate.get(&target);
        assert!(status.starts_with("HTTP/1.1 404"), "{target}: {status}");
        assert!(
            !String::from_utf8_lossy(&body).contains("PRIVATE KEY")
                && !body
                    .windows(key_body.len())
                    .any(|w| w == key_body.as_slice()),
            "{target} answered with the key"
        );
    }
    // A ref advertisement names refs, nothing else.
    let (status, body) = gate.get("/app.git/info/refs?service=git-upload-pack");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(!String::from_utf8_lossy(&body).contains("PRIVATE KEY"));
    // The agent's git config names the gate and the upstream, never a key.
    let agent = std::fs::read_to_string(ctx.home.join(".gitconfig")).unwrap();
    assert!(
        !agent.contains(&key_path) && !agent.contains("id_gate"),
        "{agent}"
    );
}
