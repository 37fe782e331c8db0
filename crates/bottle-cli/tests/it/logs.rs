//! No log level shows a secret. bollard (the Docker client) logs every body it sends and every
//! response it decodes at debug level, and the `log` bridge hands those lines to our subscriber:
//! the CLI keeps them below `info` out whatever `-v` or `RUST_LOG` say. Tested here against a
//! fake engine on a Unix socket in the test's own folder (no Docker needed) whose every answer
//! holds a known secret; the Docker-gated test in `docker.rs` does it on a real launch.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::TestContext;

const SECRET: &str = "fake-engine-secret-never-shown";

/// An HTTP/1.1 server on a Unix socket answering every request with one JSON body that holds
/// [`SECRET`], recording the request lines.
struct FakeEngine {
    socket: std::path::PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    fn start() -> FakeEngine {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake engine's socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        answer(stream, &requests);
                    }
                }
            })
        };
        FakeEngine {
            socket,
            requests,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request (headers and a `Content-Length` body) and answers it.
fn answer(stream: UnixStream, requests: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    requests
        .lock()
        .expect("lock")
        .push(request_line.trim_end().to_owned());
    let json = format!(
        r#"[{{"Id":"0123456789ab","Names":["/claude-bottle-x"],"State":"running","Labels":{{"note":"{SECRET}"}}}}]"#
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = reader.get_mut().write_all(response.as_bytes());
}

#[test]
fn no_verbosity_or_rust_log_shows_what_the_docker_client_received() {
    let engine = FakeEngine::start();
    let ctx = TestContext::new()
        .env("CLAUDE_BOTTLE_BACKEND", "docker")
        .env("DOCKER_HOST", &engine.docker_host());
    for (args, rust_log) in [
        (&["-vv", "list", "active"][..], None),
        (&["-vvv", "list", "active"], None),
        (&["list", "active"], Some("trace")),
        (
            &["list", "active"],
            Some("bollard=trace,hyper=trace,hyper_util=trace"),
        ),
        (&["list", "active"], Some("bollard::docker=trace")),
    ] {
        let before = engine.requests().len();
        let mut cmd = ctx.command(args);
        if let Some(directives) = rust_log {
            cmd.env("RUST_LOG", directives);
        }
        let out = cmd.output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            engine.requests().len() > before,
            "{args:?}: the Docker client talked to the fake engine\n{stderr}"
        );
        assert!(
            !stderr.contains(SECRET) && !stdout.contains(SECRET),
            "{args:?} RUST_LOG={rust_log:?} shows an engine response:\n{stderr}"
        );
    }
}
