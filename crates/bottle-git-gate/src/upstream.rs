//! How the gate talks to an upstream: the one `ssh` command line (strict host-key checking, the
//! entry's key and nothing else), the `known_hosts` line, the environment every git process of
//! the gate runs with, and what an upstream failure means in one sentence.
//!
//! Pure: these build strings and argument lists; `repo.rs`, `server.rs` and `hook.rs` run them.

use std::ffi::OsString;
use std::path::Path;

use bottle_manifest::GitEntry;
use bottle_manifest::git::host_key_without_comment;

use crate::repo::Layout;

/// The `known_hosts` line of an entry: `[host]:port` (or `host` on port 22), then the key type
/// and key of `KnownHostKey`. The only line of the entry's own file: nothing is ever learned.
pub fn known_hosts_line(entry: &GitEntry) -> String {
    format!(
        "{} {}\n",
        entry.upstream.known_hosts_name(),
        host_key_without_comment(&entry.known_host_key)
    )
}

/// The `GIT_SSH_COMMAND` for an entry: OpenSSH with no config file, no agent, no other key,
/// no host key but the pinned one (looked up under the name [`known_hosts_line`] writes, also
/// when `ExtraHosts` changes the address dialled), no prompts, no forwarding.
pub fn ssh_command(entry: &GitEntry, layout: &Layout) -> String {
    let mut parts: Vec<String> = vec![
        "ssh".to_owned(),
        // No ~/.ssh/config and no /etc/ssh/ssh_config: every option is on this line.
        "-F".to_owned(),
        "/dev/null".to_owned(),
        "-i".to_owned(),
        shell_quote(&entry.identity_file.to_string_lossy()),
    ];
    let host_key_alias = entry.upstream.known_hosts_name();
    let known_hosts = layout.known_hosts(&entry.name);
    let options: Vec<(&str, String)> = vec![
        ("IdentitiesOnly", "yes".to_owned()),
        ("IdentityAgent", "none".to_owned()),
        ("PreferredAuthentications", "publickey".to_owned()),
        ("PasswordAuthentication", "no".to_owned()),
        ("KbdInteractiveAuthentication", "no".to_owned()),
        ("BatchMode", "yes".to_owned()),
        ("StrictHostKeyChecking", "yes".to_owned()),
        (
            "UserKnownHostsFile",
            shell_quote(&known_hosts.to_string_lossy()),
        ),
        ("GlobalKnownHostsFile", "/dev/null".to_owned()),
        ("HostKeyAlias", shell_quote(&host_key_alias)),
        ("UpdateHostKeys", "no".to_owned()),
        ("CheckHostIP", "no".to_owned()),
        ("ControlMaster", "no".to_owned()),
        ("ControlPath", "none".to_owned()),
        ("ForwardAgent", "no".to_owned()),
        ("ForwardX11", "no".to_owned()),
        ("ClearAllForwardings", "yes".to_owned()),
        ("ConnectTimeout", "15".to_owned()),
        // A silent upstream is given up on after a minute.
        ("ServerAliveInterval", "15".to_owned()),
        ("ServerAliveCountMax", "4".to_owned()),
        ("LogLevel", "ERROR".to_owned()),
    ];
    for (key, value) in options {
        parts.push("-o".to_owned());
        parts.push(format!("{key}={value}"));
    }
    if let Some(address) = entry.extra_hosts.get(&entry.upstream.host) {
        parts.push("-o".to_owned());
        parts.push(format!("Hostname={address}"));
    }
    parts.join(" ")
}

/// The environment of every git process the gate starts (after clearing its own): a fixed
/// `HOME` with nothing in it, no system or global git config, no prompts, C messages (the
/// failure classifier reads them), and `PATH` to find git and ssh.
pub fn base_env(layout: &Layout) -> Vec<(&'static str, OsString)> {
    vec![
        (
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME", layout.home().into_os_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        ("GIT_ASKPASS", "/bin/false".into()),
        ("SSH_ASKPASS", "/bin/false".into()),
        ("LC_ALL", "C".into()),
    ]
}

/// [`base_env`] plus what reaches the entry's upstream: the ssh command.
pub fn upstream_env(entry: &GitEntry, layout: &Layout) -> Vec<(&'static str, OsString)> {
    let mut env = base_env(layout);
    env.push(("GIT_SSH_VARIANT", "ssh".into()));
    env.push(("GIT_SSH_COMMAND", ssh_command(entry, layout).into()));
    env
}

/// `git fetch` arguments that make the gate's repository reflect the upstream's branches and
/// tags, removed ones included.
pub fn fetch_args(entry: &GitEntry, repo: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--git-dir".into(),
        repo.into(),
        "fetch".into(),
        "--prune".into(),
        "--no-tags".into(),
        "--no-write-fetch-head".into(),
        "--no-auto-maintenance".into(),
        "--quiet".into(),
        entry.upstream.to_string().into(),
    ];
    args.push("+refs/heads/*:refs/heads/*".into());
    args.push("+refs/tags/*:refs/tags/*".into());
    args
}

/// `git ls-remote --symref <upstream> HEAD`: the upstream's default branch.
pub fn head_args(entry: &GitEntry, repo: &Path) -> Vec<OsString> {
    vec![
        "--git-dir".into(),
        repo.into(),
        "ls-remote".into(),
        "--symref".into(),
        entry.upstream.to_string().into(),
        "HEAD".into(),
    ]
}

/// The branch `git ls-remote --symref … HEAD` names (`ref: refs/heads/main\tHEAD`).
pub fn parse_symref(output: &str) -> Option<&str> {
    output.lines().find_map(|line| {
        let rest = line.strip_prefix("ref: ")?;
        let (target, name) = rest.split_once('\t')?;
        (name == "HEAD" && target.starts_with("refs/heads/")).then_some(target)
    })
}

/// One ref update forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward<'a> {
    /// The value the gate (and so the pusher) saw; all zeros for a create.
    pub old: &'a str,
    /// The new value; all zeros for a delete.
    pub new: &'a str,
    /// The ref.
    pub refname: &'a str,
}

/// `git push` arguments that forward `updates` to the upstream as one compare-and-swap: each
/// ref must still have the value the pusher saw (`--force-with-lease=<ref>:<old>`, empty for a
/// create), so nothing the agent did not see is overwritten; several refs go `--atomic`.
pub fn push_args(
    entry: &GitEntry,
    updates: &[Forward<'_>],
    push_options: &[String],
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "push".into(),
        "--porcelain".into(),
        "--no-verify".into(),
        "--quiet".into(),
    ];
    if updates.len() > 1 {
        args.push("--atomic".into());
    }
    for option in push_options {
        args.push(format!("--push-option={option}").into());
    }
    for u in updates {
        let expect = if is_zero(u.old) { "" } else { u.old };
        args.push(format!("--force-with-lease={}:{expect}", u.refname).into());
    }
    args.push(entry.upstream.to_string().into());
    for u in updates {
        if is_zero(u.new) {
            args.push(format!(":{}", u.refname).into());
        } else {
            args.push(format!("{}:{}", u.new, u.refname).into());
        }
    }
    args
}

/// Whether an object id is git's "no object" (all zeros, SHA-1 or SHA-256).
pub fn is_zero(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}

/// What the gate was doing when the upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Refreshing its repository before serving a fetch or a push.
    Fetch,
    /// Forwarding a push.
    Push,
}

/// One sentence: which upstream, what the gate was doing, and why it failed (from git's and
/// ssh's messages), with the fix when the cause is a known one.
pub fn explain(operation: Operation, upstream: &str, stderr: &str) -> String {
    let doing = match operation {
        Operation::Fetch => format!("cannot fetch from {upstream}"),
        Operation::Push => format!("cannot push to {upstream}"),
    };
    let has = |needle: &str| stderr.contains(needle);
    let cause = if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("has changed and you have requested strict checking")
    {
        "the upstream's host key does not match the entry's KnownHostKey (compare it with `ssh-keyscan` of the upstream; the gate never trusts a key it was not given)".to_owned()
    } else if has("host key is known for") {
        "the upstream did not offer a host key of the type of the entry's KnownHostKey (give the key `ssh-keyscan` prints for the upstream)".to_owned()
    } else if has("Host key verification failed") {
        "the upstream's host key could not be verified against the entry's KnownHostKey".to_owned()
    } else if has("Permission denied (publickey") {
        "the upstream refused the entry's key (IdentityFile); add its public key to the upstream account or as a deploy key with write access".to_owned()
    } else if let Some(line) = stderr.lines().find(|l| l.starts_with("ssh: ")) {
        // ssh's own words are exact: `connect to host … port …: Connection refused`,
        // `Could not resolve hostname …`, timeouts.
        format!(
            "{} (is the upstream up, and its host and port right?)",
            line.trim_start_matches("ssh: ").trim()
        )
    } else if has("does not appear to be a git repository") || has("not found") {
        "the upstream has no repository at that path (check the entry's Upstream)".to_owned()
    } else {
        let boilerplate = [
            "fatal: Could not read from remote repository.",
            "Please make sure you have the correct access rights",
            "and the repository exists.",
        ];
        stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !boilerplate.contains(l))
            .map(|l| {
                l.trim_start_matches("fatal: ")
                    .trim_start_matches("error: ")
                    .to_owned()
            })
            .unwrap_or_else(|| "git reported no reason".to_owned())
    };
    let sentence = format!("{doing}: {cause}");
    // It travels as one pkt-line and one `remote:` line.
    sentence.replace(['\n', '\r'], " ")
}

/// `'…'` for a POSIX shell (git runs `GIT_SSH_COMMAND` through one).
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> GitEntry {
        bottle_manifest::yaml::parse(yaml).unwrap()
    }

    const APP: &str = "Name: app\nUpstream: ssh://git@git.example.com:2222/me/app.git\nIdentityFile: /etc/bottle-git-gate/keys/app\nKnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA comment\n";

    #[test]
    fn the_ssh_command_is_strict() {
        let layout = Layout::new("/var/lib/bottle-git-gate");
        insta::assert_snapshot!(ssh_command(&entry(APP), &layout));
        assert_eq!(
            known_hosts_line(&entry(APP)),
            "[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n"
        );
    }

    #[test]
    fn extra_hosts_change_the_address_not_the_host_key_name() {
        let layout = Layout::new("/state");
        let e = entry(&format!("{APP}ExtraHosts: {{git.example.com: 10.1.2.3}}\n"));
        let cmd = ssh_command(&e, &layout);
        assert!(cmd.ends_with("-o Hostname=10.1.2.3"), "{cmd}");
        assert!(
            cmd.contains("-o HostKeyAlias='[git.example.com]:2222'"),
            "{cmd}"
        );
    }

    #[test]
    fn odd_paths_are_quoted() {
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
        assert_eq!(shell_quote("/plain/path"), "/plain/path");
    }

    #[test]
    fn a_push_is_a_compare_and_swap() {
        let e = entry(APP);
        let zero = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let args = push_args(
            &e,
            &[
                Forward {
                    old: &a,
                    new: &b,
                    refname: "refs/heads/main",
                },
                Forward {
                    old: &zero,
                    new: &a,
                    refname: "refs/heads/new",
                },
                Forward {
                    old: &b,
                    new: &zero,
                    refname: "refs/heads/old",
                },
            ],
            &["ci.skip".to_owned()],
        );
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        insta::assert_snapshot!(args.join("\n"));
    }

    #[test]
    fn symref_parsing() {
        assert_eq!(
            parse_symref("ref: refs/heads/trunk\tHEAD\nabc\tHEAD\n"),
            Some("refs/heads/trunk")
        );
        assert_eq!(parse_symref("abc\tHEAD\n"), None);
    }

    #[test]
    fn failures_in_one_sentence() {
        let u = "ssh://git@git.example.com:2222/me/app.git";
        let cases = [
            "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n…\nHost key verification failed.\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
            "No ED25519 host key is known for [git.example.com]:2222 and you have requested strict checking.\nHost key verification failed.\nfatal: Could not read from remote repository.\n",
            "git@git.example.com: Permission denied (publickey).\r\nfatal: Could not read from remote repository.\n",
            "ssh: connect to host git.example.com port 2222: Connection refused\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
            "ssh: Could not resolve hostname git.example.com: Name or service not known\r\nfatal: Could not read from remote repository.\n",
            "fatal: '/me/app.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n",
            "error: something unexpected\n",
            "",
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| explain(Operation::Fetch, u, c))
            .collect();
        insta::assert_snapshot!(out.join("\n"));
        assert!(explain(Operation::Push, u, "").starts_with("cannot push to ssh://"));
    }
}
