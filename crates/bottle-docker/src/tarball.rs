//! Small, deterministic tar archives for build contexts and uploads into containers.
//!
//! The engine extracts uploads as root and applies each entry's owner and mode, so the archive —
//! not a later `chown` inside the container — decides who owns a file. That is why the agent
//! needs no `CAP_CHOWN`.

use std::path::{Path, PathBuf};

use bottle_core::{BottleFile, FileContents, FileOwner};
use bytes::Bytes;

use crate::error::{DockerError, Result};

/// Builds an in-memory tar archive, entry by entry, with fixed mtimes so equal inputs give equal
/// bytes.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
    label: PathBuf,
}

impl std::fmt::Debug for TarBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBuilder")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TarBuilder {
    /// A new archive; `label` names it in error messages.
    pub fn new(label: impl Into<PathBuf>) -> Self {
        let mut inner = tar::Builder::new(Vec::new());
        inner.mode(tar::HeaderMode::Deterministic);
        TarBuilder {
            inner,
            label: label.into(),
        }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32, owner: FileOwner) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(u64::from(owner.uid));
        header.set_gid(u64::from(owner.gid));
        header.set_mtime(0);
        header
    }

    fn err(&self, source: std::io::Error) -> DockerError {
        DockerError::Pack {
            path: self.label.clone(),
            source,
        }
    }

    /// Adds a directory entry.
    pub fn dir(&mut self, path: &str, mode: u32, owner: FileOwner) -> Result<&mut Self> {
        let mut header = Self::header(tar::EntryType::Directory, 0, mode, owner);
        let path = format!("{}/", path.trim_end_matches('/'));
        self.inner
            .append_data(&mut header, path, std::io::empty())
            .map_err(|e| self.err(e))?;
        Ok(self)
    }

    /// Adds a regular file with `contents`.
    pub fn file(
        &mut self,
        path: &str,
        contents: &[u8],
        mode: u32,
        owner: FileOwner,
    ) -> Result<&mut Self> {
        let mut header = Self::header(tar::EntryType::Regular, contents.len() as u64, mode, owner);
        self.inner
            .append_data(&mut header, path, contents)
            .map_err(|e| self.err(e))?;
        Ok(self)
    }

    /// Adds a host directory tree under `prefix`, every entry owned by `owner`, keeping the
    /// host's permission bits (minus group/other write). Symlinks are stored as links, never
    /// followed, so a link cannot pull a host file from outside the tree into the bottle.
    pub fn host_tree(
        &mut self,
        host_dir: &Path,
        prefix: &str,
        owner: FileOwner,
    ) -> Result<&mut Self> {
        let mut stack = vec![(
            host_dir.to_path_buf(),
            prefix.trim_end_matches('/').to_owned(),
        )];
        let mut first = true;
        while let Some((dir, inner)) = stack.pop() {
            let meta = std::fs::symlink_metadata(&dir).map_err(|source| DockerError::Pack {
                path: dir.clone(),
                source,
            })?;
            if !meta.is_dir() && first {
                return Err(DockerError::Pack {
                    path: dir,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a directory",
                    ),
                });
            }
            first = false;
            if !inner.is_empty() {
                self.dir(&inner, mode_of(&meta, 0o755), owner)?;
            }
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|source| DockerError::Pack {
                    path: dir.clone(),
                    source,
                })?
                .collect::<std::io::Result<_>>()
                .map_err(|source| DockerError::Pack {
                    path: dir.clone(),
                    source,
                })?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries.into_iter().rev() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let target = if inner.is_empty() {
                    name
                } else {
                    format!("{inner}/{name}")
                };
                let meta =
                    std::fs::symlink_metadata(&path).map_err(|source| DockerError::Pack {
                        path: path.clone(),
                        source,
                    })?;
                if meta.is_dir() {
                    stack.push((path, target));
                } else if meta.file_type().is_symlink() {
                    let link = std::fs::read_link(&path).map_err(|source| DockerError::Pack {
                        path: path.clone(),
                        source,
                    })?;
                    let mut header = Self::header(tar::EntryType::Symlink, 0, 0o777, owner);
                    self.inner
                        .append_link(&mut header, &target, &link)
                        .map_err(|source| DockerError::Pack { path, source })?;
                } else if meta.is_file() {
                    let file = std::fs::File::open(&path).map_err(|source| DockerError::Pack {
                        path: path.clone(),
                        source,
                    })?;
                    let mut header = Self::header(
                        tar::EntryType::Regular,
                        meta.len(),
                        mode_of(&meta, 0o644),
                        owner,
                    );
                    self.inner
                        .append_data(&mut header, &target, file)
                        .map_err(|source| DockerError::Pack { path, source })?;
                }
                // Sockets, fifos and devices have no place in a bottle: skipped.
            }
        }
        Ok(self)
    }

    /// Adds in-memory files by their absolute paths, for extraction at `/` ([`archive`]).
    pub fn bottle_files(&mut self, files: &[BottleFile]) -> Result<&mut Self> {
        for file in files {
            let path = file.path.trim_start_matches('/');
            match &file.contents {
                FileContents::Dir => self.dir(path, file.mode, file.owner)?,
                FileContents::File(bytes) => self.file(path, bytes, file.mode, file.owner)?,
            };
        }
        Ok(self)
    }

    /// Finishes the archive.
    pub fn finish(self) -> Result<Bytes> {
        let label = self.label.clone();
        self.inner
            .into_inner()
            .map(Bytes::from)
            .map_err(|source| DockerError::Pack {
                path: label,
                source,
            })
    }
}

/// `files` as one archive to extract at `/` of a container; `label` names it in errors.
pub fn archive(label: &str, files: &[BottleFile]) -> Result<Bytes> {
    let mut tar = TarBuilder::new(label);
    tar.bottle_files(files)?;
    tar.finish()
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata, _default: u32) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o755
}

#[cfg(not(unix))]
fn mode_of(_meta: &std::fs::Metadata, default: u32) -> u32 {
    default
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(bytes: &Bytes) -> Vec<(String, u64, u64, u32)> {
        let mut archive = tar::Archive::new(&bytes[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn entries_carry_owner_and_mode() {
        let mut t = TarBuilder::new("test");
        t.dir("skills", 0o755, FileOwner::AGENT)
            .unwrap()
            .file("skills/a.md", b"hi", 0o600, FileOwner::AGENT)
            .unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(
            entries(&bytes),
            vec![
                ("skills/".into(), 1000, 1000, 0o755),
                ("skills/a.md".into(), 1000, 1000, 0o600)
            ]
        );
    }

    #[test]
    fn host_trees_are_packed_with_the_given_owner_and_links_kept_as_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("top.txt"), b"y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let mut t = TarBuilder::new("tree");
        t.host_tree(dir.path(), "skill", FileOwner::AGENT).unwrap();
        let bytes = t.finish().unwrap();
        let names: Vec<_> = entries(&bytes).into_iter().map(|e| (e.0, e.1)).collect();
        assert!(names.contains(&("skill/".into(), 1000)), "{names:?}");
        assert!(names.contains(&("skill/top.txt".into(), 1000)), "{names:?}");
        assert!(
            names.contains(&("skill/sub/f.txt".into(), 1000)),
            "{names:?}"
        );
        #[cfg(unix)]
        {
            let mut archive = tar::Archive::new(&bytes[..]);
            let link = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap())
                .find(|e| e.path().unwrap().ends_with("link"))
                .unwrap();
            assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
            assert_eq!(link.header().size().unwrap(), 0, "link target not inlined");
        }
    }

    #[test]
    fn equal_inputs_give_equal_bytes() {
        let make = || {
            let mut t = TarBuilder::new("x");
            t.file("a", b"1", 0o644, FileOwner::ROOT).unwrap();
            t.finish().unwrap()
        };
        assert_eq!(make(), make());
    }
}
