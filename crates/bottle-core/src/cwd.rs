//! Copying the working directory in: which directories must never be copied, and which
//! credentials a copied `.git` would carry. Pure reads of the host; nothing is changed.
//!
//! The agent can read everything that is copied in, so a working directory that holds the
//! user's home, SSH keys, Claude Code login or claude-bottle home is refused, and the git config
//! that goes with the tree is searched for the credentials CI checkouts and hand-made remotes
//! leave there (`http.<url>.extraheader`, `https://user:token@…`). The findings are data on the
//! plan ([`PreparedSpec::cwd_credentials`](crate::PreparedSpec::cwd_credentials)), which the
//! preflight shows by file and line; the copy ([`workdir_copy`]) reads each config again and
//! carries it with those credentials stripped, never changing the host's file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::HostTree;
use crate::error::{Error, Result};
use crate::host::HostContext;

/// A credential found in a git config file that copying the working directory would carry into
/// the bottle. Holds where it is and what kind it is, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitCredential {
    /// The config file, relative to the working directory (`.git/config`,
    /// `.git/modules/lib/config`).
    pub file: PathBuf,
    /// The 1-based line holding it.
    pub line: usize,
    /// The git config key (`http.https://github.com/.extraheader`, `remote.origin.url`), with
    /// any credential inside the key itself masked as `…`.
    pub key: String,
    /// What it is.
    pub kind: GitCredentialKind,
}

/// The kinds of credential found in a git config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitCredentialKind {
    /// `http.extraheader` / `http.<url>.extraheader`: a header git sends with every request,
    /// typically `AUTHORIZATION: basic …` left by a CI checkout.
    ExtraHeader,
    /// An `http(s)://` URL with a password (`user:token@`) or a token-length user name
    /// (`https://<token>@host/…`).
    UrlCredentials,
}

impl GitCredentialKind {
    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            GitCredentialKind::ExtraHeader => "an HTTP header git sends (a token, usually)",
            GitCredentialKind::UrlCredentials => "a URL with a token or password in it",
        }
    }
}

/// Refuses a working directory that is, or holds, one of the user's secret stores: the home
/// folder, `$CLAUDE_BOTTLE_HOME`, `~/.ssh` and `~/.claude`. Compared both as given and with
/// symlinks resolved, so that neither a symlinked working directory nor a symlinked `~/.ssh`
/// slips past.
pub(crate) fn refuse_secret_stores(cwd: &Path, host: &HostContext) -> Result<()> {
    let stores: [(PathBuf, &'static str); 4] = [
        (host.home.clone(), "your home folder"),
        (host.bottle_home.clone(), "the claude-bottle home"),
        (host.home.join(".ssh"), "your SSH keys"),
        (host.home.join(".claude"), "your Claude Code login"),
    ];
    let cwds = with_resolved(cwd);
    for (store, what) in stores {
        let inside = with_resolved(&store)
            .iter()
            .any(|s| cwds.iter().any(|c| s.starts_with(c)));
        if inside {
            return Err(Error::CwdHoldsSecrets {
                cwd: cwd.to_path_buf(),
                holds: store,
                what,
            });
        }
    }
    Ok(())
}

/// `path` and, when it exists and differs, the path with symlinks resolved.
fn with_resolved(path: &Path) -> Vec<PathBuf> {
    let mut paths = vec![path.to_path_buf()];
    if let Ok(real) = fs::canonicalize(path)
        && real != path
    {
        paths.push(real);
    }
    paths
}

/// Git config files bigger than this are read only this far.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// How deep nested submodules (`.git/modules/a/modules/b/…`) are searched.
const MAX_MODULE_DEPTH: usize = 8;

/// The credentials in the git config files under `cwd/.git` that a copy of the tree carries:
/// `.git/config` and each submodule's `.git/modules/**/config`. Symlinks are not followed (a
/// copy stores them as links, not as what they point to); unreadable files are skipped.
pub fn git_credentials(cwd: &Path) -> Vec<GitCredential> {
    let mut found = Vec::new();
    for file in git_config_files(cwd) {
        let mut bytes = Vec::new();
        if fs::File::open(cwd.join(&file))
            .and_then(|f| f.take(MAX_CONFIG_BYTES).read_to_end(&mut bytes))
            .is_err()
        {
            continue;
        }
        found.extend(scan_config(&file, &String::from_utf8_lossy(&bytes)));
    }
    found
}

/// The working tree `cwd` as a copy carries it: each git config under `.git` (the files
/// [`git_credentials`] reads) is read here, once, and replaced in the copy by its text with
/// every credential stripped — an `http.*.extraheader` line becomes a comment saying what was
/// removed, a URL's `user:token@` is cut out. A config without credentials is carried byte for
/// byte. Because the copy takes these bytes instead of reading the file again, what arrives is
/// what was checked. The host's files are never changed.
///
/// Fails (rather than copy a credential) for a config that cannot be read, is larger than
/// 1 MiB, or still shows a credential after stripping.
pub fn workdir_copy(cwd: &Path) -> Result<HostTree> {
    let mut tree = HostTree::new(cwd);
    for file in git_config_files(cwd) {
        let path = cwd.join(&file);
        let refuse = |reason: String| Error::GitConfigCopy {
            path: path.clone(),
            reason,
        };
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| refuse(format!("it could not be read ({e})")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(refuse("it is larger than 1 MiB".to_owned()));
        }
        let stripped = strip_credentials(&file, &bytes).map_err(refuse)?;
        tree.replaced.insert(file, stripped);
    }
    Ok(tree)
}

/// The git config files a copy of `cwd` carries, relative to it: `.git/config` and each
/// submodule's `.git/modules/**/config`, real files only (symlinks are copied as links).
fn git_config_files(cwd: &Path) -> Vec<PathBuf> {
    if !is_real_dir(&cwd.join(".git")) {
        return Vec::new();
    }
    let mut files = vec![PathBuf::from(".git/config")];
    module_configs(cwd, Path::new(".git/modules"), 0, &mut files);
    files.retain(|file| cwd.join(file).symlink_metadata().is_ok_and(|m| m.is_file()));
    files
}

/// `bytes` (the config file `file`) without the credentials [`scan_config`] finds in it: each
/// extraheader line (and its continuation lines) replaced by a comment, each credential
/// user-info cut out of the URLs on its line. Unchanged when there is nothing to strip. An
/// error when a credential remains: the copy is then refused.
fn strip_credentials(file: &Path, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let text = String::from_utf8_lossy(bytes);
    let found = scan_config(file, &text);
    if found.is_empty() {
        return Ok(bytes.to_vec());
    }
    let mut out = String::with_capacity(text.len());
    let mut continued = false;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let ending = &raw[raw.trim_end_matches(['\r', '\n']).len()..];
        let content = &raw[..raw.len() - ending.len()];
        // The continuation lines of a removed value go with it.
        if continued {
            continued = content.ends_with('\\');
            continue;
        }
        let here: Vec<&GitCredential> = found.iter().filter(|c| c.line == index + 1).collect();
        if let Some(header) = here
            .iter()
            .find(|c| c.kind == GitCredentialKind::ExtraHeader)
        {
            // `[http] extraheader = …` keeps its section header; a key line goes whole.
            let line = content.trim_start();
            if line.starts_with('[')
                && let Some((_, _, rest)) = parse_header(line)
            {
                out.push_str(&strip_url_credentials(
                    &content[..content.len() - rest.len()],
                ));
                out.push_str(ending);
            }
            out.push_str(&format!(
                "# claude-bottle removed {} (a credential) from this copy\n",
                header.key
            ));
            continued = content.ends_with('\\');
        } else if here.is_empty() {
            out.push_str(raw);
        } else {
            out.push_str(&strip_url_credentials(content));
            out.push_str(ending);
        }
    }
    if !scan_config(file, &out).is_empty() {
        return Err("a credential was still there after stripping".to_owned());
    }
    Ok(out.into_bytes())
}
fn is_real_dir(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
}

fn module_configs(cwd: &Path, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_MODULE_DEPTH || !is_real_dir(&cwd.join(dir)) {
        return;
    }
    let Ok(entries) = fs::read_dir(cwd.join(dir)) else {
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let relative = dir.join(&name);
        if name == "config" {
            out.push(relative);
        } else if is_real_dir(&cwd.join(&relative)) {
            module_configs(cwd, &relative, depth + 1, out);
        }
    }
}

/// The credentials in one git config file's text. Line-based, as git's own format is: section
/// headers (`[http "https://github.com/"]`, also followed by a key on the same line) and
/// `key = value` lines; comments and continuation lines cannot hide a key from it, at worst
/// they add a finding.
fn scan_config(file: &Path, text: &str) -> Vec<GitCredential> {
    let mut found = Vec::new();
    let mut section = String::new();
    let mut section_name = String::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let mut line = raw.trim_start();
        if line.starts_with('[') {
            let Some((name, subsection, rest)) = parse_header(line) else {
                continue;
            };
            section_name = name.to_ascii_lowercase();
            section = match &subsection {
                Some(sub) => format!("{section_name}.{}", mask_url_credentials(sub)),
                None => section_name.clone(),
            };
            if subsection.as_deref().is_some_and(has_url_credentials) {
                found.push(GitCredential {
                    file: file.to_path_buf(),
                    line: line_number,
                    key: section.clone(),
                    kind: GitCredentialKind::UrlCredentials,
                });
            }
            line = rest.trim_start();
        }
        if line.is_empty() || line.starts_with(['#', ';']) || section.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (line.trim(), ""),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        let key = key.to_ascii_lowercase();
        let kind = if section_name == "http" && key == "extraheader" {
            GitCredentialKind::ExtraHeader
        } else if has_url_credentials(value) {
            GitCredentialKind::UrlCredentials
        } else {
            continue;
        };
        found.push(GitCredential {
            file: file.to_path_buf(),
            line: line_number,
            key: format!("{section}.{key}"),
            kind,
        });
    }
    found
}

/// `[name]`, `[name "sub"]` or the old `[name.sub]`, and what follows the `]` on the line.
fn parse_header(line: &str) -> Option<(String, Option<String>, &str)> {
    let inner = line.strip_prefix('[')?;
    if let Some(quote) = inner.find('"') {
        let name = inner[..quote].trim().to_owned();
        let mut sub = String::new();
        let mut chars = inner[quote + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => sub.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    let after = &inner[quote + 1 + i + 1..];
                    let rest = after.trim_start().strip_prefix(']')?;
                    return Some((name, Some(sub), rest));
                }
                _ => sub.push(c),
            }
        }
        return None;
    }
    let close = inner.find(']')?;
    let header = inner[..close].trim();
    let rest = &inner[close + 1..];
    Some(match header.split_once('.') {
        Some((name, sub)) => (name.to_owned(), Some(sub.to_owned()), rest),
        None => (header.to_owned(), None, rest),
    })
}

/// The user-info part of each `http://` or `https://` URL in `text`, with its byte range.
fn url_userinfos(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("://") {
        let scheme_end = from + at;
        let start = scheme_end + 3;
        let scheme_start = lower[..scheme_end]
            .rfind(|c: char| !c.is_ascii_alphanumeric() && !"+-.".contains(c))
            .map_or(0, |i| i + 1);
        let authority_end = text[start..]
            .find(|c: char| "/?#\"' \t".contains(c))
            .map_or(text.len(), |i| start + i);
        if matches!(&lower[scheme_start..scheme_end], "http" | "https")
            && let Some(at_sign) = text[start..authority_end].rfind('@')
        {
            found.push((start, start + at_sign));
        }
        from = start;
    }
    found
}

/// Whether `text` holds an `http(s)` URL with a password (`user:token@`) or a user name long
/// enough to be a token (`https://ghp_…@github.com`); a plain short user name
/// (`https://me@bitbucket.org`) is not a credential.
fn has_url_credentials(text: &str) -> bool {
    url_userinfos(text)
        .into_iter()
        .any(|(start, end)| is_credential(&text[start..end]))
}

/// Whether a URL's user-info is a credential: it has a password, or it is long enough to be a
/// token.
fn is_credential(userinfo: &str) -> bool {
    const TOKEN_LENGTH: usize = 20;
    userinfo.contains(':') || userinfo.len() >= TOKEN_LENGTH
}

/// `text` with each credential user-info and its `@` cut out of its `http(s)` URLs
/// (`https://user:token@host/` → `https://host/`); a plain user name stays.
fn strip_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in url_userinfos(text) {
        if is_credential(&text[start..end]) {
            out.push_str(&text[last..start]);
            last = end + 1;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// `text` with the user-info of each `http(s)` URL shown as `…`.
fn mask_url_credentials(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (start, end) in url_userinfos(text) {
        out.push_str(&text[last..start]);
        out.push('…');
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<(usize, String, GitCredentialKind)> {
        scan_config(Path::new(".git/config"), text)
            .into_iter()
            .map(|c| (c.line, c.key, c.kind))
            .collect()
    }

    #[test]
    fn finds_what_checkouts_and_people_leave_in_a_git_config() {
        let config = r#"[core]
	bare = false
[remote "origin"]
	url = https://x-access-token:ghs_abcdef@github.com/me/app.git
	fetch = +refs/heads/*:refs/remotes/origin/*
[remote "mirror"]
	url = https://ghp_0123456789abcdefghij0123@github.com/me/app.git
[remote "bitbucket"]
	url = https://me@bitbucket.org/team/app.git
[remote "ssh"]
	url = ssh://git@github.com/me/app.git
[http "https://github.com/"]
	extraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hz
[HTTP] extraHeader = X-Token: abc
[url "https://oauth2:glpat-secret@gitlab.example.com/"]
	insteadOf = https://gitlab.example.com/
[submodule.lib]
	url = http://user:pw@example.com/lib.git
"#;
        assert_eq!(
            scan(config),
            [
                (
                    4,
                    "remote.origin.url".to_owned(),
                    GitCredentialKind::UrlCredentials
                ),
                (
                    7,
                    "remote.mirror.url".to_owned(),
                    GitCredentialKind::UrlCredentials
                ),
                (
                    13,
                    "http.https://github.com/.extraheader".to_owned(),
                    GitCredentialKind::ExtraHeader
                ),
                (
                    14,
                    "http.extraheader".to_owned(),
                    GitCredentialKind::ExtraHeader
                ),
                (
                    15,
                    "url.https://…@gitlab.example.com/".to_owned(),
                    GitCredentialKind::UrlCredentials
                ),
                (
                    18,
                    "submodule.lib.url".to_owned(),
                    GitCredentialKind::UrlCredentials
                ),
            ]
        );
    }

    #[test]
    fn a_clean_config_has_nothing() {
        assert!(
            scan("[core]\n\tbare = false\n# url = https://a:b@c/\n[remote \"o\"]\n\turl = git@github.com:me/x.git\n")
                .is_empty()
        );
    }

    fn strip(text: &str) -> String {
        String::from_utf8(strip_credentials(Path::new(".git/config"), text.as_bytes()).unwrap())
            .unwrap()
    }

    #[test]
    fn stripping_removes_every_credential_and_keeps_everything_else() {
        let config = "[core]\r\n\tbare = false\r\n\
[remote \"origin\"]\n\turl = https://x-access-token:ghs_abcdef@github.com/me/app.git\n\
\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
[remote \"bitbucket\"]\n\turl = https://me@bitbucket.org/team/app.git\n\
[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic \\\n\t  eC1hY2Nlc3M=\n\
[HTTP] extraHeader = X-Token: abc\n\
[url \"https://oauth2:glpat-secret@gitlab.example.com/\"]\n\tinsteadOf = https://gitlab.example.com/\n";
        assert_eq!(
            strip(config),
            "[core]\r\n\tbare = false\r\n\
[remote \"origin\"]\n\turl = https://github.com/me/app.git\n\
\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
[remote \"bitbucket\"]\n\turl = https://me@bitbucket.org/team/app.git\n\
[http \"https://github.com/\"]\n\
# claude-bottle removed http.https://github.com/.extraheader (a credential) from this copy\n\
[HTTP]\n# claude-bottle removed http.extraheader (a credential) from this copy\n\
[url \"https://gitlab.example.com/\"]\n\tinsteadOf = https://gitlab.example.com/\n"
        );
    }

    #[test]
    fn the_copy_of_a_tree_carries_its_git_configs_stripped_and_leaves_the_hosts_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        fs::create_dir_all(cwd.join(".git/modules/lib")).unwrap();
        let top =
            "[remote \"origin\"]\n\turl = https://me:ghp_0123456789abcdefghij@github.com/a/b\n";
        let sub = "[http]\n\textraheader = Authorization: bearer xyz\n[core]\n\tbare = true\n";
        fs::write(cwd.join(".git/config"), top).unwrap();
        fs::write(cwd.join(".git/modules/lib/config"), sub).unwrap();
        let tree = workdir_copy(cwd).unwrap();
        assert_eq!(tree.path, cwd);
        let text = |p: &str| String::from_utf8(tree.replaced[Path::new(p)].clone()).unwrap();
        assert_eq!(
            text(".git/config"),
            "[remote \"origin\"]\n\turl = https://github.com/a/b\n"
        );
        assert_eq!(
            text(".git/modules/lib/config"),
            "[http]\n# claude-bottle removed http.extraheader (a credential) from this copy\n\
             [core]\n\tbare = true\n"
        );
        assert_eq!(fs::read_to_string(cwd.join(".git/config")).unwrap(), top);
        assert_eq!(
            fs::read_to_string(cwd.join(".git/modules/lib/config")).unwrap(),
            sub
        );
    }

    #[test]
    fn a_config_without_credentials_is_copied_byte_for_byte() {
        let bytes = b"[core]\n\tbare = false\n\xff\xfe not utf-8\n";
        assert_eq!(
            strip_credentials(Path::new(".git/config"), bytes).unwrap(),
            bytes
        );
    }

    #[test]
    fn masking_keeps_the_rest_of_the_url() {
        assert_eq!(
            mask_url_credentials("https://a:b@h/x and http://c@d/"),
            "https://…@h/x and http://…@d/"
        );
    }
}
