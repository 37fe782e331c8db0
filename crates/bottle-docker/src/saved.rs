//! A folder copied out of a bottle for resume ([`Bottle::cp_out`](bottle_core::Bottle::cp_out)):
//! the engine's archive of it, re-packed on the host into the state folder as an archive that
//! is safe to extract into the next bottle, within a size limit.
//!
//! The engine extracts an upload as root, so an archive made from what the agent left must not
//! be able to place anything outside the folder or as anyone but the agent: the re-packing
//! keeps only directories, regular files, hard links to files kept before them and symbolic
//! links (relative ones only when they stay inside the folder), each owned by the agent with
//! no set-id or sticky bit, and nothing under a kept link (extraction would follow it). The
//! folder itself must be a directory: one the agent replaced by a link is refused.
//!
//! It streams: entries go from the engine's stream to the file as they come, so memory is
//! bounded whatever the folder holds, and the file never grows past the limit.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bottle_core::FileOwner;

/// What [`repack`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repacked {
    /// The archive is complete: its size, and the entries left out.
    Copied { bytes: u64, skipped: u64 },
    /// The archive reached the limit; what was written is incomplete.
    TooLarge,
}

/// A writer that refuses to grow past `limit` bytes.
struct Limited<W> {
    inner: W,
    written: u64,
    limit: u64,
    reached: bool,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.written + data.len() as u64 > self.limit {
            self.reached = true;
            return Err(io::Error::other(LimitReached));
        }
        let n = self.inner.write(data)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `path` as its normal components, or `None` for an absolute path or one with `..`.
fn normal(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Whether the relative link `target`, found at `link`, resolves inside `root`.
fn stays_inside(link: &Path, target: &Path, root: &Path) -> bool {
    let mut resolved: Vec<Component<'_>> = link
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(_) => resolved.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                if resolved.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    resolved.iter().collect::<PathBuf>().starts_with(root)
}

/// Re-packs the engine's archive of folder `root` (read from `reader`) into `writer`, as the
/// module docs say, writing at most `limit` bytes.
pub(crate) fn repack<R: Read, W: Write>(
    reader: R,
    writer: W,
    root: &str,
    limit: u64,
) -> io::Result<Repacked> {
    let root = Path::new(root);
    let mut archive = tar::Archive::new(reader);
    let mut out = tar::Builder::new(Limited {
        inner: io::BufWriter::new(writer),
        written: 0,
        limit,
        reached: false,
    });
    let mut links: Vec<PathBuf> = Vec::new();
    let mut files: HashSet<PathBuf> = HashSet::new();
    let mut skipped = 0u64;
    let mut first = true;
    let result = (|| -> io::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            let kind = entry.header().entry_type();
            if kind == tar::EntryType::XGlobalHeader {
                continue;
            }
            let Some(path) = normal(&entry.path()?) else {
                skipped += 1;
                continue;
            };
            if first {
                first = false;
                if path != root || !kind.is_dir() {
                    return Err(io::Error::other(format!(
                        "{} is not a folder in the bottle (the agent replaced it)",
                        root.display()
                    )));
                }
            }
            if !path.starts_with(root) || links.iter().any(|link| path.starts_with(link)) {
                skipped += 1;
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(entry.header().mode()? & 0o777);
            header.set_uid(u64::from(FileOwner::AGENT.uid));
            header.set_gid(u64::from(FileOwner::AGENT.gid));
            header.set_mtime(entry.header().mtime().unwrap_or(0));
            header.set_size(0);
            match kind {
                tar::EntryType::Directory => {
                    out.append_data(&mut header, &path, io::empty())?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(entry.size());
                    out.append_data(&mut header, &path, &mut entry)?;
                    files.insert(path);
                }
                tar::EntryType::Symlink => {
                    let Some(target) = entry.link_name()?.map(|t| t.into_owned()) else {
                        skipped += 1;
                        continue;
                    };
                    if target.is_relative() && !stays_inside(&path, &target, root) {
                        skipped += 1;
                        continue;
                    }
                    out.append_link(&mut header, &path, &target)?;
                    links.push(path);
                }
                tar::EntryType::Link => {
                    let target = entry.link_name()?.and_then(|t| normal(&t));
                    match target.filter(|t| files.contains(t)) {
                        Some(target) => out.append_link(&mut header, &path, &target)?,
                        None => skipped += 1,
                    }
                }
                _ => skipped += 1,
            }
        }
        if first {
            return Err(io::Error::other("the engine sent an empty archive"));
        }
        Ok(())
    })();
    if let Err(error) = result {
        return if out.get_ref().reached {
            Ok(Repacked::TooLarge)
        } else {
            Err(error)
        };
    }
    match out.into_inner() {
        Ok(mut limited) => {
            limited.flush()?;
            Ok(Repacked::Copied {
                bytes: limited.written,
                skipped,
            })
        }
        // The archive's closing blocks did not fit.
        Err(error) if error.get_ref().is_some_and(|e| e.is::<LimitReached>()) => {
            Ok(Repacked::TooLarge)
        }
        Err(error) => Err(error),
    }
}

/// The error a [`Limited`] writer fails with at its limit.
#[derive(Debug)]
struct LimitReached;

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the save limit was reached")
    }
}

impl std::error::Error for LimitReached {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive as an engine would send it, entries given as `(path, kind, mode, uid, data
    /// or link target)`.
    fn engine_archive(entries: &[(&str, tar::EntryType, u32, u64, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, mode, uid, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_uid(*uid);
            header.set_gid(*uid);
            header.set_mtime(1_700_000_000);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    header.set_size(0);
                    builder.append_link(&mut header, path, data).unwrap();
                }
                _ => {
                    header.set_size(data.len() as u64);
                    // Written by hand: `append_data` refuses `..` in a path, an engine may not.
                    let name = path.as_bytes();
                    header.as_old_mut().name[..name.len()].copy_from_slice(name);
                    header.set_cksum();
                    builder.append(&header, data.as_bytes()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    /// `(path, kind, mode, uid, gid, data or link)` of each entry of `tar`.
    fn listing(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = String::new();
                e.read_to_string(&mut data).unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| format!(" -> {}", l.display()))
                    .unwrap_or_default();
                format!(
                    "{} {:?} {:o} {}:{}{link} {data}",
                    e.path().unwrap().display(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    use tar::EntryType::{Block, Directory, Fifo, Link, Regular, Symlink};

    #[test]
    fn only_what_can_be_put_back_safely_is_kept() {
        let from_engine = engine_archive(&[
            ("workspace/", Directory, 0o755, 1000, ""),
            ("workspace/notes.md", Regular, 0o644, 1000, "hello"),
            ("workspace/run.sh", Regular, 0o4755, 0, "#!/bin/sh"),
            ("workspace/same.sh", Link, 0o755, 1000, "workspace/run.sh"),
            ("workspace/bin", Symlink, 0o777, 1000, "/usr/bin"),
            ("workspace/bin/evil", Regular, 0o755, 1000, "x"),
            ("workspace/up", Symlink, 0o777, 1000, "../../../etc"),
            ("workspace/inside", Symlink, 0o777, 1000, "notes.md"),
            ("workspace/pipe", Fifo, 0o644, 1000, ""),
            ("workspace/disk", Block, 0o644, 1000, ""),
            ("workspace/../etc/passwd", Regular, 0o644, 1000, "root::0:0"),
            ("elsewhere/file", Regular, 0o644, 1000, "x"),
            ("workspace/outside-link", Link, 0o644, 1000, "etc/shadow"),
        ]);
        let mut out = Vec::new();
        let repacked = repack(&from_engine[..], &mut out, "workspace", 1 << 20).unwrap();
        assert_eq!(
            repacked,
            Repacked::Copied {
                bytes: out.len() as u64,
                skipped: 7
            }
        );
        assert_eq!(
            listing(&out),
            [
                "workspace Directory 755 1000:1000 ",
                "workspace/notes.md Regular 644 1000:1000 hello",
                "workspace/run.sh Regular 755 1000:1000 #!/bin/sh",
                "workspace/same.sh Link 755 1000:1000 -> workspace/run.sh ",
                "workspace/bin Symlink 777 1000:1000 -> /usr/bin ",
                "workspace/inside Symlink 777 1000:1000 -> notes.md ",
            ]
        );
    }

    #[test]
    fn a_folder_replaced_by_a_link_is_refused() {
        let from_engine = engine_archive(&[("workspace", Symlink, 0o777, 1000, "/etc")]);
        let err = repack(&from_engine[..], Vec::new(), "workspace", 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "workspace is not a folder in the bottle (the agent replaced it)"
        );
    }

    #[test]
    fn the_archive_never_grows_past_the_limit() {
        let big = "x".repeat(64 << 10);
        let from_engine = engine_archive(&[
            ("workspace/", Directory, 0o755, 1000, ""),
            ("workspace/big", Regular, 0o644, 1000, &big),
        ]);
        let mut out = Vec::new();
        let repacked = repack(&from_engine[..], &mut out, "workspace", 16 << 10).unwrap();
        assert_eq!(repacked, Repacked::TooLarge);
        assert!(out.len() <= 16 << 10, "{} bytes written", out.len());
        // With room, the same archive is whole.
        let mut out = Vec::new();
        let repacked = repack(&from_engine[..], &mut out, "workspace", 1 << 20).unwrap();
        assert!(matches!(repacked, Repacked::Copied { skipped: 0, .. }));
    }

    #[test]
    fn links_resolve_lexically() {
        let root = Path::new("ws");
        assert!(stays_inside(Path::new("ws/a/l"), Path::new("../b"), root));
        assert!(!stays_inside(Path::new("ws/l"), Path::new("../x"), root));
        assert!(!stays_inside(
            Path::new("ws/l"),
            Path::new("../../../x"),
            root
        ));
    }
}
