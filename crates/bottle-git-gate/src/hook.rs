//! `bottle-git-gate pre-receive`: what git runs for every push into a gate repository, inside
//! the quarantine (the pushed objects are readable, no ref has moved yet).
//!
//! In order, stopping at the first refusal, with everything the pusher should know printed to
//! stderr (git shows it as `remote:` lines):
//!
//! 1. the pushed ref names and push options are scanned for secrets;
//! 2. each update is classified (create, fast-forward, force, delete) and checked against the
//!    entry's ref policy ([`policy`](crate::policy));
//! 3. the objects the gate does not have are scanned ([`scan`](crate::scan));
//! 4. the updates are forwarded upstream as one compare-and-swap push with the entry's key;
//!    the upstream's refusal is the pusher's refusal.
//!
//! Only when all four pass does the hook exit 0, and git move the gate's refs.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use bottle_manifest::GitEntry;
use bottle_manifest::git::TAGS_PREFIX;

use crate::config::GateConfig;
use crate::error::GateError;
use crate::policy::{self, RefUpdate, UpdateKind};
use crate::repo::Layout;
use crate::scan::{self, Place};
use crate::upstream::{self, Forward, Operation};

/// What the hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The push was forwarded upstream; git may move the refs.
    Accepted,
    /// The push is refused; the reason was written.
    Refused,
}

/// One line of the hook's input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    /// The ref's value before the push (zeros: it did not exist).
    pub old: String,
    /// The value the push asks for (zeros: delete).
    pub new: String,
    /// The ref.
    pub refname: String,
}

/// Parse the hook's standard input.
///
/// # Errors
///
/// [`GateError::Hook`] for a line that is not `<old> <new> <ref>`.
pub fn parse_updates(input: impl BufRead) -> Result<Vec<PushedRef>, GateError> {
    let mut updates = Vec::new();
    for line in input.lines() {
        let line = line.map_err(GateError::io("<pre-receive stdin>"))?;
        if line.is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, ' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(old), Some(new), Some(refname)) if is_id(old) && is_id(new) => {
                updates.push(PushedRef {
                    old: old.to_owned(),
                    new: new.to_owned(),
                    refname: refname.to_owned(),
                });
            }
            _ => {
                return Err(GateError::Hook(
                    "pre-receive got a line that is not `<old> <new> <ref>`; it is run by git for a push, not by hand".to_owned(),
                ));
            }
        }
    }
    Ok(updates)
}

fn is_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The push options git gives the hook (`GIT_PUSH_OPTION_COUNT`, `GIT_PUSH_OPTION_<i>`).
pub fn push_options(env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let count: usize = env("GIT_PUSH_OPTION_COUNT")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (0..count)
        .filter_map(|i| env(&format!("GIT_PUSH_OPTION_{i}")))
        .collect()
}

/// Run the hook for `entry` of `config` on `updates`, writing what the pusher should read to
/// `out`. `env` reads the known secrets (and the push options).
///
/// # Errors
///
/// [`GateError`] when git cannot be run; the caller refuses the push.
pub fn pre_receive(
    config: &GateConfig,
    entry: &GitEntry,
    updates: &[PushedRef],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<Verdict, GateError> {
    let mut say = |text: &str| {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    if updates.is_empty() {
        return Ok(Verdict::Accepted);
    }
    let scanner = config.scanner(env)?;
    let options = push_options(env);

    // 1. Names and options: a secret there is never echoed back, so this comes first.
    let mut texts: Vec<(Place, &[u8])> = updates
        .iter()
        .map(|u| (Place::RefName, u.refname.as_bytes()))
        .collect();
    texts.extend(
        options
            .iter()
            .enumerate()
            .map(|(i, o)| (Place::PushOption(i), o.as_bytes())),
    );
    let findings = scan::scan_texts(&scanner, &texts);
    if !findings.is_empty() {
        say(&prefixed(&scan::report(&findings)));
        return Ok(Verdict::Refused);
    }

    // 2. The ref policy.
    let mut classified = Vec::with_capacity(updates.len());
    for u in updates {
        classified.push(RefUpdate {
            refname: u.refname.clone(),
            kind: classify(u)?,
        });
    }
    let refusals = policy::check(entry, &classified);
    if !refusals.is_empty() {
        let mut text = format!(
            "push refused by the policy of `{}` (nothing was sent upstream):\n",
            entry.name
        );
        for refusal in &refusals {
            text.push_str(&format!("  {refusal}\n"));
        }
        say(&prefixed(&text));
        return Ok(Verdict::Refused);
    }

    // 3. The new objects.
    let tips: Vec<&str> = updates
        .iter()
        .filter(|u| !upstream::is_zero(&u.new))
        .map(|u| u.new.as_str())
        .collect();
    let mut objects = Vec::new();
    if !tips.is_empty() {
        let output = Command::new("git")
            .args(scan::rev_list_args(&tips))
            .stdin(Stdio::null())
            .output()
            .map_err(GateError::io("git rev-list"))?;
        if !output.status.success() {
            return Err(GateError::Git {
                command: "git rev-list --objects".to_owned(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        objects = scan::parse_rev_list(&String::from_utf8_lossy(&output.stdout));
    }
    let findings = scan::scan_objects(&scanner, &objects)?;
    if !findings.is_empty() {
        say(&prefixed(&scan::report(&findings)));
        return Ok(Verdict::Refused);
    }

    // 4. Upstream, with the entry's key; its answer is the pusher's answer.
    let forwards: Vec<Forward<'_>> = updates
        .iter()
        .map(|u| Forward {
            old: &u.old,
            new: &u.new,
            refname: &u.refname,
        })
        .collect();
    let layout = Layout::new(&config.state);
    let mut push = Command::new("git");
    push.args(upstream::push_args(entry, &forwards, &options))
        .stdin(Stdio::null());
    // The quarantine environment stays (the objects are only there); what reaches ssh is the
    // entry's command, and no known secret.
    for (key, value) in upstream::upstream_env(entry, &layout) {
        if key.starts_with("GIT_SSH") {
            push.env(key, value);
        }
    }
    for name in &config.known_secrets {
        push.env_remove(name);
    }
    // Server-side variables of the agent's request; the upstream push negotiates its own.
    push.env_remove("GIT_PROTOCOL");
    let output = push.output().map_err(GateError::io("git push"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut text = String::new();
        for line in stdout.lines().chain(stderr.lines()) {
            let line = line.trim_end();
            // `--porcelain` status lines of refused refs (`!\t…`) and git's own words.
            if !line.is_empty() && line != "Done" && !line.starts_with("To ") {
                text.push_str(&format!("  upstream: {line}\n"));
            }
        }
        let first = upstream::explain(
            Operation::Push,
            &entry.upstream.to_string(),
            &format!("{stderr}{stdout}"),
        );
        say(&prefixed(&format!(
            "push refused: {first}; nothing changed here\n{text}"
        )));
        return Ok(Verdict::Refused);
    }
    let blobs = objects.len();
    say(&prefixed(&format!(
        "forwarded {} ref{} to {} ({} new object{} scanned, no secrets)\n",
        updates.len(),
        if updates.len() == 1 { "" } else { "s" },
        entry.upstream,
        blobs,
        if blobs == 1 { "" } else { "s" },
    )));
    Ok(Verdict::Accepted)
}

/// Create, fast-forward, force or delete: a moved tag is a force whatever its history.
fn classify(u: &PushedRef) -> Result<UpdateKind, GateError> {
    if upstream::is_zero(&u.old) {
        return Ok(UpdateKind::Create);
    }
    if upstream::is_zero(&u.new) {
        return Ok(UpdateKind::Delete);
    }
    if u.refname.starts_with(TAGS_PREFIX) {
        return Ok(UpdateKind::Force);
    }
    let status = Command::new("git")
        .args(["merge-base", "--is-ancestor", &u.old, &u.new])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(GateError::io("git merge-base"))?;
    // 1: not an ancestor; anything else (a non-commit) cannot be a fast-forward either.
    Ok(if status.success() {
        UpdateKind::FastForward
    } else {
        UpdateKind::Force
    })
}

/// Every line starts with `bottle-git-gate: ` (the first) or two spaces, so the pusher sees
/// where the words come from.
fn prefixed(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str("bottle-git-gate: ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_parsed_and_garbage_refused() {
        let zero = "0".repeat(40);
        let a = "a".repeat(40);
        let input = format!("{zero} {a} refs/heads/main\n{a} {zero} refs/heads/old\n");
        let updates = parse_updates(input.as_bytes()).unwrap();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[1].refname, "refs/heads/old");
        assert!(parse_updates("not a push\n".as_bytes()).is_err());
    }

    #[test]
    fn push_options_come_from_the_environment() {
        let env = |k: &str| match k {
            "GIT_PUSH_OPTION_COUNT" => Some("2".to_owned()),
            "GIT_PUSH_OPTION_0" => Some("ci.skip".to_owned()),
            "GIT_PUSH_OPTION_1" => Some("merge_request.create".to_owned()),
            _ => None,
        };
        assert_eq!(push_options(&env), ["ci.skip", "merge_request.create"]);
        assert!(push_options(&|_: &str| None).is_empty());
    }
}
