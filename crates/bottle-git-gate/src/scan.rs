//! What a push brings, and the secrets in it.
//!
//! Exactly the objects the gate does not have yet are scanned: `git rev-list --objects
//! --in-commit-order --reverse <new>… --not --all` (inside the pre-receive quarantine `--all`
//! is the refs before the push), each blob as it streams out of `git cat-file --batch`, with
//! the oldest new commit that introduced it and its path; every new commit and tag object whole
//! (message, author and committer lines); every new path (a file name can carry a token too);
//! and the pushed ref names and push options.
//!
//! A [`Finding`] names the rule, the commit and the place, never the secret: a path or ref name
//! that itself holds a secret is not shown.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::process::{Command, Stdio};

use bottle_manifest::escape;
use bottle_secrets::{Rule, Scanner};

use crate::error::GateError;

/// How much of a blob is read at a time.
const CHUNK: usize = 64 * 1024;

/// A new object of a push, as `rev-list --objects` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    /// Its id.
    pub id: String,
    /// The path (trees and blobs), or a tag's name; `None` for a commit.
    pub path: Option<String>,
    /// The new commit it was first reached from (itself for a commit), oldest first.
    pub commit: Option<String>,
}

/// Parse `git rev-list --objects --in-commit-order --reverse` output: a commit is a bare id,
/// every object after it up to the next commit is reached from it first.
pub fn parse_rev_list(output: &str) -> Vec<NewObject> {
    let mut commit: Option<String> = None;
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once(' ') {
            None => {
                commit = Some(line.to_owned());
                NewObject {
                    id: line.to_owned(),
                    path: None,
                    commit: commit.clone(),
                }
            }
            Some((id, path)) => NewObject {
                id: id.to_owned(),
                path: Some(path.to_owned()),
                commit: commit.clone(),
            },
        })
        .collect()
}

/// Where in a push a finding is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// A file's contents.
    File {
        /// The commit that first has it.
        commit: String,
        /// Its path; `None` when the path itself holds a secret (so it is not shown).
        path: Option<String>,
    },
    /// A commit's author, committer or other header lines.
    CommitHeader {
        /// The commit.
        commit: String,
    },
    /// A commit's message.
    CommitMessage {
        /// The commit.
        commit: String,
    },
    /// An annotated tag object (its name, tagger or message).
    Tag {
        /// The tag object.
        id: String,
    },
    /// A path (file or directory name) of a commit.
    Path {
        /// The commit that first has it.
        commit: Option<String>,
    },
    /// The name of a pushed ref.
    RefName,
    /// A push option (`git push -o`), by position.
    PushOption(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File {
                commit,
                path: Some(path),
            } => write!(f, "commit {}, file {}", short(commit), escape(path)),
            Place::File { commit, path: None } => write!(
                f,
                "commit {}, a file whose name also holds a secret",
                short(commit)
            ),
            Place::CommitHeader { commit } => {
                write!(f, "commit {}, its author or committer", short(commit))
            }
            Place::CommitMessage { commit } => write!(f, "commit {}, its message", short(commit)),
            Place::Tag { id } => write!(f, "tag object {}", short(id)),
            Place::Path {
                commit: Some(commit),
            } => write!(f, "commit {}, a file or directory name", short(commit)),
            Place::Path { commit: None } => f.write_str("a file or directory name"),
            Place::RefName => f.write_str("the name of a pushed ref"),
            Place::PushOption(i) => write!(f, "push option {}", i + 1),
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A secret found in a push: its rule, where, and the byte range there (never the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule that matched (`aws-access-key-id`, `known-secret GH_TOKEN (base64)`, …).
    pub rule: Rule,
    /// Where.
    pub place: Place,
    /// The bytes of the place it spans.
    pub range: Range<u64>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {} (bytes {}..{})",
            self.rule, self.place, self.range.start, self.range.end
        )
    }
}

/// The message the pusher sees for `findings` (at most 20 listed), ending with the fix.
pub fn report(findings: &[Finding]) -> String {
    const SHOWN: usize = 20;
    let mut out = format!(
        "push refused: it carries {} secret{}; nothing was sent upstream\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for finding in findings.iter().take(SHOWN) {
        out.push_str(&format!("  {finding}\n"));
    }
    if findings.len() > SHOWN {
        out.push_str(&format!("  … and {} more\n", findings.len() - SHOWN));
    }
    out.push_str("hint: remove each one from every commit of the push (`git commit --amend` for the last commit, `git rebase -i` for older ones), then push again; a secret that was committed should be rotated\n");
    out
}

/// Scan small in-memory values: the pushed ref names and push options.
pub fn scan_texts(scanner: &Scanner, items: &[(Place, &[u8])]) -> Vec<Finding> {
    items
        .iter()
        .flat_map(|(place, bytes)| {
            scanner.scan(bytes).into_iter().map(|m| Finding {
                rule: m.rule().clone(),
                place: place.clone(),
                range: m.range(),
            })
        })
        .collect()
}

/// Scan the new objects of a push: their paths, then every commit, tag and blob through
/// `git cat-file --batch`, run as `git` with the hook's environment (so it sees the
/// quarantine).
///
/// # Errors
///
/// [`GateError::Io`] or [`GateError::Git`] when git cannot be run or its output is cut short.
pub fn scan_objects(scanner: &Scanner, objects: &[NewObject]) -> Result<Vec<Finding>, GateError> {
    let mut findings = Vec::new();
    // Paths first: a path holding a secret is then never shown.
    let mut secret_paths = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for object in objects {
        let Some(path) = object.path.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        if !seen.insert(path) {
            continue;
        }
        let matches = scanner.scan(path.as_bytes());
        if !matches.is_empty() {
            secret_paths.insert(path.to_owned());
        }
        findings.extend(matches.into_iter().map(|m| Finding {
            rule: m.rule().clone(),
            place: Place::Path {
                commit: object.commit.clone(),
            },
            range: m.range(),
        }));
    }

    let mut child = Command::new("git")
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GateError::io("git cat-file"))?;
    let mut stdin = child.stdin.take().ok_or_else(|| cut("its input"))?;
    let ids: Vec<String> = objects.iter().map(|o| o.id.clone()).collect();
    // Fed from a thread while the output is read here, so neither pipe fills up and blocks.
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for id in ids {
            stdin.write_all(id.as_bytes())?;
            stdin.write_all(b"\n")?;
        }
        Ok(())
    });
    let stdout = child.stdout.take().ok_or_else(|| cut("its output"))?;
    let mut reader = BufReader::with_capacity(CHUNK, stdout);
    let mut header = String::new();
    let mut buf = vec![0u8; CHUNK];
    for object in objects {
        header.clear();
        reader
            .read_line(&mut header)
            .map_err(GateError::io("git cat-file"))?;
        let mut fields = header.split_whitespace();
        let (Some(_id), Some(kind), Some(size)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(cut(&format!(
                "the object {} (got `{}`)",
                object.id,
                header.trim()
            )));
        };
        let size: u64 = size.parse().map_err(|_| cut("an object's size"))?;
        let commit = object.commit.clone().unwrap_or_default();
        match kind {
            "blob" => {
                let path = object.path.clone().filter(|p| !secret_paths.contains(p));
                let place = Place::File {
                    commit: commit.clone(),
                    path,
                };
                let mut stream = scanner.stream_with(place);
                let mut left = size;
                while left > 0 {
                    let want = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
                    reader
                        .read_exact(&mut buf[..want])
                        .map_err(|_| cut(&format!("the blob {}", object.id)))?;
                    findings.extend(
                        stream
                            .feed(&buf[..want])
                            .into_matches()
                            .into_iter()
                            .map(to_finding),
                    );
                    left -= want as u64;
                }
                findings.extend(stream.finish().into_iter().map(to_finding));
            }
            "commit" | "tag" => {
                let mut body = vec![0u8; usize::try_from(size).map_err(|_| cut("a commit"))?];
                reader
                    .read_exact(&mut body)
                    .map_err(|_| cut(&format!("the object {}", object.id)))?;
                // A commit's headers end at the first empty line; the message follows.
                let header_end = body
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map_or(body.len(), |i| i + 1) as u64;
                for m in scanner.scan(&body) {
                    let place = match kind {
                        "tag" => Place::Tag {
                            id: object.id.clone(),
                        },
                        _ if m.range().start < header_end => Place::CommitHeader {
                            commit: object.id.clone(),
                        },
                        _ => Place::CommitMessage {
                            commit: object.id.clone(),
                        },
                    };
                    findings.push(Finding {
                        rule: m.rule().clone(),
                        place,
                        range: m.range(),
                    });
                }
            }
            _ => {
                // Trees: their names were scanned as paths; the rest is modes and ids.
                std::io::copy(&mut (&mut reader).take(size), &mut std::io::sink())
                    .map_err(|_| cut("a tree"))?;
            }
        }
        let mut newline = [0u8; 1];
        reader
            .read_exact(&mut newline)
            .map_err(|_| cut("the end of an object"))?;
    }
    drop(reader);
    let _ = writer.join();
    let output = child
        .wait_with_output()
        .map_err(GateError::io("git cat-file"))?;
    if !output.status.success() {
        return Err(GateError::Git {
            command: "git cat-file --batch".to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    findings.sort_by(|a, b| {
        a.place
            .cmp(&b.place)
            .then(a.range.start.cmp(&b.range.start))
    });
    Ok(findings)
}

fn to_finding(m: bottle_secrets::Match<Place>) -> Finding {
    Finding {
        rule: m.rule().clone(),
        place: m.context().clone(),
        range: m.range(),
    }
}

fn cut(what: &str) -> GateError {
    GateError::Git {
        command: "git cat-file --batch".to_owned(),
        message: format!("its output ended early, reading {what}"),
    }
}

/// The `rev-list` that lists the new objects of the pushed `tips`.
pub fn rev_list_args(tips: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["rev-list", "--objects", "--in-commit-order", "--reverse"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(tips.iter().map(|t| (*t).to_owned()));
    args.push("--not".to_owned());
    args.push("--all".to_owned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_belong_to_the_commit_listed_before_them() {
        let out = "c1\nt1 \nb1 a.txt\nc2\nt2 \nb2 dir/b.txt\ntag1 v1\n";
        let objects = parse_rev_list(out);
        let pairs: Vec<(&str, Option<&str>, Option<&str>)> = objects
            .iter()
            .map(|o| (o.id.as_str(), o.path.as_deref(), o.commit.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("c1", None, Some("c1")),
                ("t1", Some(""), Some("c1")),
                ("b1", Some("a.txt"), Some("c1")),
                ("c2", None, Some("c2")),
                ("t2", Some(""), Some("c2")),
                ("b2", Some("dir/b.txt"), Some("c2")),
                ("tag1", Some("v1"), Some("c2")),
            ]
        );
    }

    #[test]
    fn the_report_names_rule_commit_and_place_but_no_secret() {
        let scanner = Scanner::new();
        let findings = scan_texts(
            &scanner,
            &[
                (Place::RefName, b"refs/heads/x-AKIAZ3MHQ4VX7NB2KDLT"),
                (Place::PushOption(0), b"note=AKIAZ3MHQ4VX7NB2KDLT"),
            ],
        );
        let mut all = findings;
        all.push(Finding {
            rule: Rule::Detector(bottle_secrets::Detector::AwsAccessKeyId),
            place: Place::File {
                commit: "0123456789abcdef0123".to_owned(),
                path: Some("config/aws.ini".to_owned()),
            },
            range: 13..33,
        });
        all.push(Finding {
            rule: Rule::Detector(bottle_secrets::Detector::PrivateKey),
            place: Place::File {
                commit: "0123456789abcdef0123".to_owned(),
                path: None,
            },
            range: 0..64,
        });
        let text = report(&all);
        assert!(!text.contains("AKIAZ3MHQ4VX7NB2KDLT"), "{text}");
        insta::assert_snapshot!(text);
    }
}
