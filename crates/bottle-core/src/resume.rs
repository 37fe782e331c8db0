//! Save and restore: what a kept bottle keeps besides its state file, so that `resume` continues
//! where the agent was.
//!
//! When a bottle's state is kept after its session ran (a non-zero exit, a signal, a failure
//! of the session), [`run_bottle`](crate::run_bottle) calls [`save`] before teardown: the
//! workspace ([`WORKDIR`]) and Claude Code's conversations held there ([`CLAUDE_PROJECT_DIR`])
//! are copied out through the backend ([`Bottle::cp_out`]) into the bottle's state folder, as
//! [`WORKSPACE_ARCHIVE`] and [`CONVERSATIONS_ARCHIVE`], with [`SAVED_FILE`] saying what is
//! there and which conversation was the last. When resuming, [`restore`] puts both back after
//! provisioning and before the session; [`continue_args`] makes Claude Code continue that
//! conversation.
//!
//! Invariants:
//! - A save never prevents teardown and never fails silently: each problem is a
//!   [`SaveProblem`], one sentence with its fix, in the [`Outcome`](crate::Outcome).
//! - Each archive is bounded by the store's save limit ([`StateStore::save_limit`],
//!   `CLAUDE_BOTTLE_SAVE_LIMIT`, default [`DEFAULT_SAVE_LIMIT`]); an archive past it is thrown
//!   away, not kept cut short. The conversations are saved first: a workspace too large does
//!   not cost the conversation.
//! - Archives are written next to their final name and renamed when whole, in the state folder
//!   (0700), as files only the user can read (0600): a conversation holds everything the agent
//!   read.
//! - Only these two folders are saved. The bottle's own secrets (its env values, the proxy
//!   token, injected credentials) live in the agent's environment, the egress and the host,
//!   never in them; what the agent itself wrote into its workspace is the user's.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::agent::{CLAUDE_PROJECT_DIR, HOME, WORKDIR};
use crate::backend::{Bottle, BottleFile, CopiedOut, ExecUser, FileOwner};
use crate::error::{Error, Result};
use crate::host::HostContext;
use crate::state::StateStore;

/// The saved workspace, in a bottle's state folder.
pub const WORKSPACE_ARCHIVE: &str = "workspace.tar";
/// Claude Code's saved conversations, in a bottle's state folder.
pub const CONVERSATIONS_ARCHIVE: &str = "claude-code.tar";
/// What was saved ([`SavedSession`]), in a bottle's state folder.
pub const SAVED_FILE: &str = "saved.json";
/// The variable that sets the save limit (bytes, or `512MiB`, `2GiB`, ...).
pub const SAVE_LIMIT_VAR: &str = "CLAUDE_BOTTLE_SAVE_LIMIT";
/// The save limit when [`SAVE_LIMIT_VAR`] is not set: 512 MiB per archive.
pub const DEFAULT_SAVE_LIMIT: u64 = 512 << 20;

/// Lists the newest conversation file in [`CLAUDE_PROJECT_DIR`] (run as the agent): its
/// name, `<session>.jsonl`, or nothing.
pub const NEWEST_CONVERSATION_SCRIPT: &str = "cd /home/node/.claude/projects/-home-node-workspace 2>/dev/null && ls -t -- *.jsonl 2>/dev/null | head -n 1";

/// One of the folders a save keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Saved {
    /// Claude Code's conversations ([`CLAUDE_PROJECT_DIR`]).
    Conversations,
    /// The workspace ([`WORKDIR`]).
    Workspace,
}

impl Saved {
    /// In the order a save takes them: the small conversations first.
    pub const ALL: [Saved; 2] = [Saved::Conversations, Saved::Workspace];

    /// The folder in the bottle.
    pub fn bottle_path(self) -> &'static str {
        match self {
            Saved::Conversations => CLAUDE_PROJECT_DIR,
            Saved::Workspace => WORKDIR,
        }
    }

    /// The folder it is restored into (the saved folder's parent).
    pub fn bottle_parent(self) -> &'static str {
        match self {
            Saved::Conversations => "/home/node/.claude/projects",
            Saved::Workspace => HOME,
        }
    }

    /// The archive's name in the state folder.
    pub fn archive(self) -> &'static str {
        match self {
            Saved::Conversations => CONVERSATIONS_ARCHIVE,
            Saved::Workspace => WORKSPACE_ARCHIVE,
        }
    }
}

impl fmt::Display for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Saved::Conversations => "Claude Code's conversation",
            Saved::Workspace => "the workspace",
        })
    }
}

/// What a bottle's state folder holds besides its state: [`SAVED_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    /// The folders saved (their archives are in the state folder).
    pub saved: Vec<Saved>,
    /// The last conversation's session id, when Claude Code had one: `claude --resume <id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// When it was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl SavedSession {
    /// Whether `what` was saved.
    pub fn has(&self, what: Saved) -> bool {
        self.saved.contains(&what)
    }
}

/// Something a save could not keep. Its `Display` is one sentence with the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum SaveProblem {
    /// The folder's archive passed the limit; it was not kept.
    TooLarge {
        /// The folder.
        what: Saved,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Entries that cannot be restored safely were left out.
    Skipped {
        /// The folder.
        what: Saved,
        /// How many.
        entries: u64,
    },
    /// What was saved could not be recorded ([`SAVED_FILE`]).
    Unrecorded {
        /// Why.
        error: String,
    },
    /// The copy failed.
    Failed {
        /// The folder.
        what: Saved,
        /// Why.
        error: String,
    },
}

impl fmt::Display for SaveProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveProblem::TooLarge { what, limit } => write!(
                f,
                "{what} was not saved: it is larger than the save limit of {}; set \
                 {SAVE_LIMIT_VAR} higher (such as 2GiB) to keep it next time",
                human_bytes(*limit)
            ),
            SaveProblem::Skipped { what, entries } => write!(
                f,
                "{entries} entries of {what} were not saved (devices, sockets, or links that \
                 point out of it); everything else was"
            ),
            SaveProblem::Unrecorded { error } => write!(
                f,
                "what was saved could not be recorded ({error}); `resume` will start without it"
            ),
            SaveProblem::Failed { what, error } => write!(
                f,
                "{what} could not be saved ({error}); the bottle was torn down without it"
            ),
        }
    }
}

/// What [`save`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SaveReport {
    /// The folders saved.
    pub saved: Vec<Saved>,
    /// The archives' total size.
    pub bytes: u64,
    /// The last conversation's session id, when one was saved.
    pub conversation: Option<String>,
    /// What could not be kept.
    pub problems: Vec<SaveProblem>,
}

/// `n` bytes for people: `512 MiB`, `1.5 GiB`, `160 KiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() < 0.05 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size: bytes (`1048576`), or a number with a unit (`512MiB`, `2GiB`, `100M`, `1.5G`;
/// K/M/G/T and KiB/MiB/GiB/TiB are both powers of 1024). `None` for anything else, zero
/// included (a zero limit would save nothing at all).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    let bytes = (value * (1u64 << shift) as f64).round();
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The save limit the host asks for ([`SAVE_LIMIT_VAR`]), else [`DEFAULT_SAVE_LIMIT`];
/// [`Error::SaveLimit`] for a value that is not a size.
pub fn save_limit(host: &HostContext) -> Result<u64> {
    match host.var(SAVE_LIMIT_VAR) {
        None => Ok(DEFAULT_SAVE_LIMIT),
        Some(value) => parse_size(value).ok_or_else(|| Error::SaveLimit {
            value: value.to_owned(),
        }),
    }
}

/// A Claude Code session id: a UUID (`8-4-4-4-12` hexadecimal digits).
fn is_session_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The newest conversation in the bottle, by its file's time; `None` without one (or when the
/// bottle does not answer: the save goes on without it, and `--continue` picks it instead).
async fn newest_conversation<B: Bottle>(bottle: &B) -> Option<String> {
    let out = bottle
        .exec(ExecUser::Agent, NEWEST_CONVERSATION_SCRIPT)
        .await
        .ok()?;
    let id = out.stdout.trim().strip_suffix(".jsonl")?;
    is_session_id(id).then(|| id.to_owned())
}

/// Saves the workspace and Claude Code's conversations of `bottle` into `store`'s folder for
/// `identity` (see the module docs). Never fails: what could not be kept is in
/// [`SaveReport::problems`]. Replaces what an earlier save kept.
pub async fn save<B: Bottle>(
    bottle: &B,
    store: &StateStore,
    identity: &crate::Identity,
) -> SaveReport {
    let dir = store.dir(identity);
    let limit = store.save_limit();
    let mut report = SaveReport::default();
    let conversation = newest_conversation(bottle).await;
    for what in Saved::ALL {
        let path = dir.join(what.archive());
        let partial = dir.join(format!(".{}.partial", what.archive()));
        let copied = match create_private_file(&partial) {
            Ok(file) => bottle.cp_out(what.bottle_path(), file, limit).await,
            Err(source) => Err(Error::StateIo {
                action: "write",
                path: partial.clone(),
                source,
            }),
        };
        let failed = |error: Error| SaveProblem::Failed {
            what,
            error: error.to_string().trim_end_matches('.').to_owned(),
        };
        let kept = match copied {
            Ok(CopiedOut::Copied { bytes, skipped }) => {
                if skipped > 0 {
                    report.problems.push(SaveProblem::Skipped {
                        what,
                        entries: skipped,
                    });
                }
                match fs::rename(&partial, &path) {
                    Ok(()) => Some(bytes),
                    Err(source) => {
                        report.problems.push(failed(Error::StateIo {
                            action: "write",
                            path: path.clone(),
                            source,
                        }));
                        None
                    }
                }
            }
            Ok(CopiedOut::Missing) => None,
            Ok(CopiedOut::TooLarge) => {
                report.problems.push(SaveProblem::TooLarge { what, limit });
                None
            }
            Err(error) => {
                report.problems.push(failed(error));
                None
            }
        };
        match kept {
            Some(bytes) => {
                report.bytes += bytes;
                report.saved.push(what);
            }
            None => {
                // An earlier save of this folder no longer matches the rest: it goes too.
                let _ = fs::remove_file(&partial);
                let _ = fs::remove_file(&path);
            }
        }
    }
    if report.saved.contains(&Saved::Conversations) {
        report.conversation = conversation;
    }
    let session = SavedSession {
        saved: report.saved.clone(),
        conversation: report.conversation.clone(),
        at: OffsetDateTime::now_utc(),
    };
    if let Err(error) = store.write_saved(identity, &session) {
        report.problems.push(SaveProblem::Unrecorded {
            error: error.to_string().trim_end_matches('.').to_owned(),
        });
    }
    report
}

/// Puts back what [`save`] kept for `identity` into the freshly provisioned `bottle`: the saved
/// workspace *replaces* the one provisioning made (a `--cwd` copy, or the image's empty folder),
/// and the conversations go back to [`CLAUDE_PROJECT_DIR`].
///
/// Replacing, not overlaying: the saved workspace is what the agent left, with its deletions
/// and renames; laid over a fresh copy it would bring back files the agent removed and mix two
/// versions of a tree, and a fresh copy's links could lead the extraction out of the folder.
pub async fn restore<B: Bottle>(
    bottle: &B,
    store: &StateStore,
    identity: &crate::Identity,
    saved: &SavedSession,
) -> Result<()> {
    let dir = store.dir(identity);
    let open = |what: Saved| {
        let path = dir.join(what.archive());
        fs::File::open(&path).map_err(|source| Error::StateIo {
            action: "read",
            path,
            source,
        })
    };
    if saved.has(Saved::Workspace) {
        let archive = open(Saved::Workspace)?;
        let script =
            format!("chmod -R u+w {WORKDIR} 2>/dev/null; find {WORKDIR} -mindepth 1 -delete");
        let out = bottle.exec(ExecUser::Agent, &script).await?;
        if !out.success() {
            return Err(Error::InBottle {
                action: "empty the workspace before restoring the saved one".to_owned(),
                exit_code: out.exit_code,
                detail: out.stderr.trim().to_owned(),
            });
        }
        bottle
            .cp_in_archive(archive, Saved::Workspace.bottle_parent())
            .await?;
    }
    if saved.has(Saved::Conversations) {
        let archive = open(Saved::Conversations)?;
        bottle
            .write_files(&[
                BottleFile::dir("/home/node/.claude", 0o755, FileOwner::AGENT),
                BottleFile::dir(
                    Saved::Conversations.bottle_parent(),
                    0o755,
                    FileOwner::AGENT,
                ),
            ])
            .await?;
        bottle
            .cp_in_archive(archive, Saved::Conversations.bottle_parent())
            .await?;
    }
    Ok(())
}

/// Claude Code's arguments for a resumed session: `--resume <id>` of the saved conversation
/// (or `--continue` when its id is not known) before `args`, unless `fresh`, nothing was saved,
/// or `args` already choose a conversation themselves.
pub fn continue_args(saved: Option<&SavedSession>, fresh: bool, args: Vec<String>) -> Vec<String> {
    const CHOOSERS: [&str; 6] = [
        "-c",
        "--continue",
        "-r",
        "--resume",
        "--session-id",
        "--fork-session",
    ];
    let Some(saved) = saved.filter(|s| !fresh && s.has(Saved::Conversations)) else {
        return args;
    };
    if args
        .iter()
        .any(|a| CHOOSERS.contains(&a.split('=').next().unwrap_or(a)))
    {
        return args;
    }
    let mut argv = match &saved.conversation {
        Some(id) => vec!["--resume".to_owned(), id.clone()],
        None => vec!["--continue".to_owned()],
    };
    argv.extend(args);
    argv
}

/// Creates `path` for writing, readable by the user alone (0600), replacing a leftover.
pub(crate) fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("2 G"), Some(2 << 30));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("100k"), Some(100 << 10));
        for bad in ["", "0", "-1", "lots", "5 parsecs", "1e9"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(163_840), "160 KiB");
        assert_eq!(human_bytes(DEFAULT_SAVE_LIMIT), "512 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn only_uuids_are_session_ids() {
        assert!(is_session_id("0b6c4a8e-3f1d-4c2a-9e7b-5d8f1a2b3c4d"));
        for bad in [
            "",
            "history",
            "0b6c4a8e-3f1d-4c2a-9e7b-5d8f1a2b3c4d; rm -rf /",
            "0b6c4a8e_3f1d_4c2a_9e7b_5d8f1a2b3c4d",
            "--dangerously-skip-permissions-0000000",
        ] {
            assert!(!is_session_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_script_lists_the_project_folder() {
        assert!(NEWEST_CONVERSATION_SCRIPT.contains(CLAUDE_PROJECT_DIR));
    }

    fn saved(conversation: Option<&str>) -> SavedSession {
        SavedSession {
            saved: vec![Saved::Conversations, Saved::Workspace],
            conversation: conversation.map(str::to_owned),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_resumed_session_continues_the_saved_conversation() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let id = "0b6c4a8e-3f1d-4c2a-9e7b-5d8f1a2b3c4d";
        let with_id = saved(Some(id));
        assert_eq!(
            continue_args(Some(&with_id), false, args(&["-p", "go on"])),
            args(&["--resume", id, "-p", "go on"])
        );
        assert_eq!(
            continue_args(Some(&saved(None)), false, Vec::new()),
            args(&["--continue"])
        );
        // --fresh, nothing saved, or a conversation the user chose: their arguments as given.
        assert_eq!(continue_args(Some(&with_id), true, Vec::new()), args(&[]));
        assert_eq!(continue_args(None, false, Vec::new()), args(&[]));
        for own in [&["-c"][..], &["--resume=abc"], &["--session-id", "x"]] {
            assert_eq!(continue_args(Some(&with_id), false, args(own)), args(own));
        }
        let workspace_only = SavedSession {
            saved: vec![Saved::Workspace],
            ..with_id
        };
        assert_eq!(
            continue_args(Some(&workspace_only), false, Vec::new()),
            args(&[])
        );
    }
}
