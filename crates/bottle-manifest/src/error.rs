//! Errors and warnings. Every problem in a file is a [`Diagnostic`] with its position and the
//! offending line; [`ManifestError`] is what the API returns.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::escape::{escape, escape_path, push_char};

/// One problem at one place in one manifest file.
///
/// Rendered (with `Display`) like a compiler message:
///
/// ```text
/// /home/me/.claude-bottle/bottles/work.md:4:3: unknown key `egres`
///     4 |   egres:
///       |   ^
///   hint: allowed keys: extends, env, git, egress, supervise; did you mean `egress`?
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub path: PathBuf,
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column (in characters) in the line.
    pub column: usize,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when we can say.
    pub hint: Option<String>,
    /// The text of the offending line, when the file could be read as text.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A problem with the file as a whole (it cannot be read, is too large, ...): position 1:1.
    pub(crate) fn file(path: &Path, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: message.into(),
            hint,
            source_line: None,
        }
    }

    /// A problem at `line`:`column` of `text` (the whole file), showing that line. Used by
    /// the manifest and by the sidecars' config files (the git gate's), so every config error
    /// of the project reads the same.
    pub fn at(
        path: &Path,
        text: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let line = line.max(1);
        Diagnostic {
            path: path.to_owned(),
            line,
            column: column.max(1),
            message: message.into(),
            hint,
            source_line: text.lines().nth(line - 1).map(sanitize_line),
        }
    }
}

/// Keep control characters (a hostile file's escape sequences) out of the terminal, and very
/// long lines short. Tabs stay, so that the caret lines up under the offending character.
fn sanitize_line(line: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for (i, c) in line.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c == '\t' {
            out.push(c);
        } else {
            push_char(&mut out, c);
        }
    }
    out
}

/// Every part is escaped: the path is a file name a repository chose, and messages quote
/// values from the file.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            escape_path(&self.path),
            self.line,
            self.column,
            escape(&self.message)
        )?;
        if let Some(source) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs before the column keep the caret aligned under the offending character.
            let caret_pad: String = source
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n {number} | {source}\n {pad} | {caret_pad}^")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", escape(hint))?;
        }
        Ok(())
    }
}

/// Something that does not stop anything but that the user should know. `Display` escapes
/// every path ([`escape_path`]): these are shown before the launch question.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A `bottles/` folder under the working directory: bottles come only from the home.
    RepoBottlesIgnored {
        /// The ignored folder.
        dir: PathBuf,
    },
    /// A file in a manifest folder whose name is not `<name>.md` with a valid name.
    NotAManifest {
        /// The file.
        path: PathBuf,
    },
    /// A repository agent with the name of a home agent or of the built-in `default`: it is
    /// ignored, so that a name the user knows always means the user's own agent.
    RepoAgentIgnored {
        /// The agent name.
        name: String,
        /// The ignored repository file.
        path: PathBuf,
        /// The home file that keeps the name, `None` for the built-in agent.
        kept: Option<PathBuf>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::RepoBottlesIgnored { dir } => write!(
                f,
                "{}: ignored: bottles are read only from the claude-bottle home, never from a \
                 working directory (move them to $CLAUDE_BOTTLE_HOME/bottles/ if you trust them)",
                escape_path(dir)
            ),
            Warning::NotAManifest { path } => write!(
                f,
                "{}: skipped: manifest files are named `<name>.md` with a name matching \
                 [a-z][a-z0-9-]*",
                escape_path(path)
            ),
            Warning::RepoAgentIgnored { name, path, kept } => {
                write!(f, "{}: ignored: ", escape_path(path))?;
                match kept {
                    Some(kept) => write!(
                        f,
                        "a repository agent cannot replace your agent `{name}` ({})",
                        escape_path(kept)
                    )?,
                    None => write!(
                        f,
                        "a repository agent cannot replace the built-in agent `{name}`"
                    )?,
                }
                f.write_str("; rename the file to start it by its own name")
            }
        }
    }
}

/// The error type of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Neither `CLAUDE_BOTTLE_HOME` nor `HOME` is set, so there is no place to read bottles from.
    #[error("cannot find the claude-bottle home: neither CLAUDE_BOTTLE_HOME nor HOME is set")]
    NoHome,
    /// `CLAUDE_BOTTLE_HOME` (or the `HOME` it defaults under) is a relative path: resolved
    /// against the working directory, it would make a repository's own `.claude-bottle/bottles`
    /// the trusted home.
    #[error(
        "{var} is a relative path (`{}`), which would make the working directory's files trusted",
        escape_path(value)
    )]
    RelativeHome {
        /// `CLAUDE_BOTTLE_HOME` or `HOME`.
        var: &'static str,
        /// Its value.
        value: PathBuf,
    },
    /// The agent asked for does not exist.
    #[error("there is no agent named `{}`", escape(name))]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// Every known agent name, sorted.
        known: Vec<String>,
    },
    /// The agent, its bottle or a bottle it extends has errors.
    #[error("{}", render_invalid(agent, diagnostics))]
    Invalid {
        /// The agent that was selected.
        agent: String,
        /// Every problem found on the way, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render_invalid(agent: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = format!(
        "agent `{agent}` cannot be used: {} error{} in its manifest",
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        out.push('\n');
        out.push_str(&d.to_string());
    }
    out
}

impl ManifestError {
    /// How to fix it, in one sentence.
    pub fn hint(&self) -> Option<String> {
        match self {
            ManifestError::NoHome => {
                Some("set CLAUDE_BOTTLE_HOME to the folder holding bottles/ and agents/".to_owned())
            }
            ManifestError::RelativeHome { var, .. } => Some(if *var == "HOME" {
                "set HOME to the absolute path of your home folder, or set CLAUDE_BOTTLE_HOME \
                 to an absolute path"
                    .to_owned()
            } else {
                format!("set {var} to an absolute path, such as \"$HOME/.claude-bottle\"")
            }),
            ManifestError::UnknownAgent { name, known } => {
                let suggestion = crate::yaml::did_you_mean(name, known.iter().map(String::as_str));
                Some(match suggestion {
                    Some(s) => format!("did you mean `{s}`? (known agents: {})", known.join(", ")),
                    None => format!(
                        "known agents: {}; `claude-bottle list agents` shows where they come from",
                        known.join(", ")
                    ),
                })
            }
            ManifestError::Invalid { .. } => {
                Some("fix the errors above; `claude-bottle check` lists every problem".to_owned())
            }
        }
    }
}
