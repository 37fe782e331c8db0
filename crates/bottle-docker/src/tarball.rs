//! Small, deterministic tar archives for build contexts and uploads into containers.
//!
//! The engine extracts uploads as root and applies each entry's owner and mode, so the archive —
//! not a later `chown` inside the container — decides who owns a file. That is why the agent
//! needs no `CAP_CHOWN`.
//!
//! A host tree (the working tree, a skill) is [streamed](stream): packed on a blocking thread
//! while the engine reads it, in chunks of [`CHUNK_BYTES`] with at most [`CHUNKS_IN_FLIGHT`]
//! waiting, so a tree of any size costs bounded memory. Each host file is read for exactly the
//! size its header states: a file that grows or shrinks meanwhile fails the copy
//! ([`DockerError::FileChanged`]) instead of shifting every later entry of the stream.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bottle_core::{BottleFile, FileContents, FileOwner, HostTree};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::api::TarStream;
use crate::error::{DockerError, Result};

/// The size of the chunks a streamed archive is sent in.
pub const CHUNK_BYTES: usize = 256 << 10;

/// How many packed chunks may wait for the engine: a streamed archive holds at most
/// `(CHUNKS_IN_FLIGHT + 2) * CHUNK_BYTES` in memory (the waiting chunks, the one being filled
/// and the one being sent), whatever the tree's size.
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// Builds a tar archive, entry by entry, with fixed mtimes so equal inputs give equal bytes:
/// in memory (`TarBuilder::new`), or into any writer ([`TarBuilder::into_writer`]).
pub struct TarBuilder<W: Write = Vec<u8>> {
    inner: tar::Builder<W>,
    label: PathBuf,
}

impl<W: Write> std::fmt::Debug for TarBuilder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBuilder")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TarBuilder {
    /// A new in-memory archive; `label` names it in error messages.
    pub fn new(label: impl Into<PathBuf>) -> Self {
        TarBuilder::into_writer(label, Vec::new())
    }

    /// Finishes the archive.
    pub fn finish(self) -> Result<Bytes> {
        self.finish_writer().map(Bytes::from)
    }
}

impl<W: Write> TarBuilder<W> {
    /// A new archive written to `writer` as entries are added; `label` names it in errors.
    pub fn into_writer(label: impl Into<PathBuf>, writer: W) -> Self {
        let mut inner = tar::Builder::new(writer);
        inner.mode(tar::HeaderMode::Deterministic);
        TarBuilder {
            inner,
            label: label.into(),
        }
    }

    /// Finishes the archive (its closing blocks) and returns the writer.
    pub fn finish_writer(self) -> Result<W> {
        let label = self.label.clone();
        self.inner.into_inner().map_err(|source| DockerError::Pack {
            path: label,
            source,
        })
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

    /// Adds the host file or directory tree `tree.path` as `prefix`, every entry owned by
    /// `owner`, keeping the host's permission bits (minus group/other write), each of
    /// `tree.replaced` with its given bytes instead of the host's. Symlinks are stored as links,
    /// never followed, so a link cannot pull a host file from outside the tree into the bottle.
    /// A file that changes size while it is read fails with [`DockerError::FileChanged`].
    pub fn host_tree(
        &mut self,
        tree: &HostTree,
        prefix: &str,
        owner: FileOwner,
    ) -> Result<&mut Self> {
        let prefix = prefix.trim_end_matches('/').to_owned();
        let top = std::fs::symlink_metadata(&tree.path).map_err(|source| DockerError::Pack {
            path: tree.path.clone(),
            source,
        })?;
        if top.is_file() {
            self.host_file(&tree.path, &top, &prefix, owner)?;
            return Ok(self);
        }
        if !top.is_dir() {
            return Err(DockerError::Pack {
                path: tree.path.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither a file nor a directory",
                ),
            });
        }
        // (host dir, its path relative to the tree, its name in the archive)
        let mut stack = vec![(tree.path.clone(), PathBuf::new(), prefix)];
        while let Some((dir, relative, inner)) = stack.pop() {
            let meta = std::fs::symlink_metadata(&dir).map_err(|source| DockerError::Pack {
                path: dir.clone(),
                source,
            })?;
            if !inner.is_empty() {
                self.dir(&inner, mode_of(&meta, 0o755), owner)?;
            }
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|source| DockerError::Pack {
                    path: dir.clone(),
                    source,
                })?
                .collect::<io::Result<_>>()
                .map_err(|source| DockerError::Pack {
                    path: dir.clone(),
                    source,
                })?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries.into_iter().rev() {
                let path = entry.path();
                let relative = relative.join(entry.file_name());
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
                    stack.push((path, relative, target));
                } else if meta.file_type().is_symlink() {
                    let link = std::fs::read_link(&path).map_err(|source| DockerError::Pack {
                        path: path.clone(),
                        source,
                    })?;
                    let mut header = Self::header(tar::EntryType::Symlink, 0, 0o777, owner);
                    self.inner
                        .append_link(&mut header, &target, &link)
                        .map_err(|source| DockerError::Pack { path, source })?;
                } else if let Some(bytes) = tree.replaced.get(&relative) {
                    // The checked copy, never the host's file read again.
                    self.file(&target, bytes, mode_of(&meta, 0o644), owner)?;
                } else if meta.is_file() {
                    self.host_file(&path, &meta, &target, owner)?;
                }
                // Sockets, fifos and devices have no place in a bottle: skipped.
            }
        }
        Ok(self)
    }

    /// Adds the host file `path` (of `meta`) as `target`, read for exactly its listed size.
    fn host_file(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
        target: &str,
        owner: FileOwner,
    ) -> Result<()> {
        let file = std::fs::File::open(path).map_err(|source| DockerError::Pack {
            path: path.to_path_buf(),
            source,
        })?;
        self.exact_file(path, target, file, meta.len(), mode_of(meta, 0o644), owner)
    }

    /// Adds `reader` as the regular file `target` of `len` bytes: exactly `len` bytes are
    /// taken, and a reader with fewer or more fails with [`DockerError::FileChanged`] (tar
    /// copies whatever a reader yields, so a mismatch would shift every later entry).
    fn exact_file(
        &mut self,
        path: &Path,
        target: &str,
        reader: impl Read,
        len: u64,
        mode: u32,
        owner: FileOwner,
    ) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, len, mode, owner);
        let exact = Exact {
            inner: reader,
            remaining: len,
            len,
        };
        self.inner
            .append_data(&mut header, target, exact)
            .map_err(|source| match changed_detail(&source) {
                Some(detail) => DockerError::FileChanged {
                    path: path.to_path_buf(),
                    detail,
                },
                None => DockerError::Pack {
                    path: path.to_path_buf(),
                    source,
                },
            })
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
}

/// A reader that yields exactly `len` bytes of `inner`, or fails: with fewer (the file
/// shrank) or more (it grew) than its header says.
struct Exact<R> {
    inner: R,
    remaining: u64,
    len: u64,
}

/// The error payload of a file that changed size while it was read.
#[derive(Debug)]
struct Changed(String);

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Changed {}

fn changed_detail(error: &io::Error) -> Option<String> {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<Changed>())
        .map(|c| c.0.clone())
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // The header's size is packed: one more byte means the file grew meanwhile.
            let mut probe = [0u8; 1];
            return loop {
                match self.inner.read(&mut probe) {
                    Ok(0) => break Ok(0),
                    Ok(_) => {
                        break Err(io::Error::other(Changed(format!(
                            "it grew past the {} bytes it had when it was listed",
                            self.len
                        ))));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
        }
        let room = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let max = buf.len().min(room);
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 && max > 0 {
            return Err(io::Error::other(Changed(format!(
                "it shrank to {} of the {} bytes it had when it was listed",
                self.len - self.remaining,
                self.len
            ))));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer that cuts what it is given into [`CHUNK_BYTES`] chunks and sends each to the
/// archive's reader, waiting while [`CHUNKS_IN_FLIGHT`] are unread.
struct ChunkWriter {
    buffer: Vec<u8>,
    sender: mpsc::Sender<io::Result<Bytes>>,
    written: Arc<AtomicU64>,
}

/// The error payload of a stream whose reader is gone (the upload ended first).
#[derive(Debug)]
struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the engine stopped reading the archive")
    }
}

impl std::error::Error for ReaderGone {}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.written
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::other(ReaderGone))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == CHUNK_BYTES {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The packing of a streamed archive: its result, and how many bytes it has handed over.
#[derive(Debug)]
pub struct Packer {
    /// The packer's result once the archive is finished or abandoned. `Ok` also when the
    /// stream's reader went away first (the upload's own error then says why).
    pub done: tokio::task::JoinHandle<Result<()>>,
    /// Bytes packed and handed to the stream so far.
    pub written: Arc<AtomicU64>,
}

/// `tree` packed as `prefix`, entries owned by `owner` ([`TarBuilder::host_tree`]), as a
/// stream made while it is read: in bounded memory ([`CHUNKS_IN_FLIGHT`]). When packing fails,
/// the stream ends with an error item and [`Packer::done`] holds the clear error. Needs a
/// tokio runtime (the packing runs on its blocking pool).
pub fn stream(tree: HostTree, prefix: String, owner: FileOwner) -> (TarStream, Packer) {
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let written = Arc::new(AtomicU64::new(0));
    let writer = ChunkWriter {
        buffer: Vec::with_capacity(CHUNK_BYTES),
        sender: sender.clone(),
        written: Arc::clone(&written),
    };
    let done = tokio::task::spawn_blocking(move || {
        let packed = (|| {
            let mut tar = TarBuilder::into_writer(&tree.path, writer);
            tar.host_tree(&tree, &prefix, owner)?;
            let mut writer = tar.finish_writer()?;
            writer.flush().map_err(|source| DockerError::Pack {
                path: tree.path.clone(),
                source,
            })
        })();
        match packed {
            Err(DockerError::Pack { source, .. })
                if source
                    .get_ref()
                    .is_some_and(|e| e.downcast_ref::<ReaderGone>().is_some()) =>
            {
                Ok(())
            }
            Err(e) => {
                // End the stream failed, so the engine never extracts a cut archive as whole.
                let _ = sender.blocking_send(Err(io::Error::other(e.to_string())));
                Err(e)
            }
            Ok(()) => Ok(()),
        }
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    (Box::pin(chunks), Packer { done, written })
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
    use std::collections::BTreeMap;

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
        t.host_tree(&HostTree::new(dir.path()), "skill", FileOwner::AGENT)
            .unwrap();
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

    /// A reader that yields `actual` bytes, whatever the header said.
    struct Lying {
        actual: usize,
    }

    impl Read for Lying {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.actual);
            buf[..n].fill(b'x');
            self.actual -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_file_that_grows_or_shrinks_while_it_is_packed_fails_the_copy() {
        for (actual, detail) in [
            (13, "it grew past the 12 bytes it had when it was listed"),
            (
                5,
                "it shrank to 5 of the 12 bytes it had when it was listed",
            ),
        ] {
            let mut t = TarBuilder::new("tree");
            let err = t
                .exact_file(
                    Path::new("/host/log.txt"),
                    "log.txt",
                    Lying { actual },
                    12,
                    0o644,
                    FileOwner::AGENT,
                )
                .unwrap_err();
            assert!(
                matches!(&err, DockerError::FileChanged { detail: d, .. } if d == detail),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "`/host/log.txt` changed while it was copied into the bottle ({detail}); \
                     copy again once nothing writes to it, or move it out of the tree"
                )
            );
        }
        // The exact size packs.
        let mut t = TarBuilder::new("tree");
        t.exact_file(
            Path::new("/h"),
            "f",
            Lying { actual: 12 },
            12,
            0o644,
            FileOwner::AGENT,
        )
        .unwrap();
        assert_eq!(entries(&t.finish().unwrap()).len(), 1);
    }

    #[test]
    fn replaced_files_are_packed_with_their_given_bytes_not_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config"), b"secret").unwrap();
        std::fs::write(dir.path().join("a.txt"), b"a").unwrap();
        let tree = HostTree::new(dir.path()).replacing(".git/config", b"clean".to_vec());
        let mut t = TarBuilder::new("tree");
        t.host_tree(&tree, "work", FileOwner::AGENT).unwrap();
        let bytes = t.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut files = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut contents = String::new();
            entry.read_to_string(&mut contents).unwrap();
            files.insert(entry.path().unwrap().display().to_string(), contents);
        }
        assert_eq!(files["work/.git/config"], "clean");
        assert_eq!(files["work/a.txt"], "a");
        assert_eq!(
            std::fs::read(dir.path().join(".git/config")).unwrap(),
            b"secret"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_tree_is_packed_in_bounded_memory() {
        use futures_util::StreamExt;
        const FILE_BYTES: u64 = 64 << 20;
        let dir = tempfile::tempdir().unwrap();
        // Sparse: 64 MiB to read, no disk used.
        std::fs::File::create(dir.path().join("big.bin"))
            .unwrap()
            .set_len(FILE_BYTES)
            .unwrap();
        let (mut stream, packer) = stream(
            HostTree::new(dir.path()),
            "work".to_owned(),
            FileOwner::AGENT,
        );
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.len(), CHUNK_BYTES);
        // While nothing more is read, the packer stops once the waiting chunks are full: it
        // never holds the tree. Wait until it has stalled (its count stops moving).
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = packer.written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let bound = ((CHUNKS_IN_FLIGHT + 2) * CHUNK_BYTES) as u64;
        assert!(last <= bound, "{last} bytes packed ahead, bound {bound}");
        // Then the whole archive arrives, intact.
        let mut whole = first.to_vec();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= CHUNK_BYTES);
            whole.extend_from_slice(&chunk);
        }
        packer.done.await.unwrap().unwrap();
        let mut archive = tar::Archive::new(&whole[..]);
        let sizes: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.size())
            })
            .collect();
        assert_eq!(
            sizes,
            [
                ("work/".to_owned(), 0),
                ("work/big.bin".to_owned(), FILE_BYTES)
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_tree_that_cannot_be_packed_ends_failed_with_the_reason() {
        use futures_util::StreamExt;
        let (mut stream, packer) = stream(
            HostTree::new("/nonexistent/claude-bottle-test"),
            "work".to_owned(),
            FileOwner::AGENT,
        );
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item);
        }
        assert!(items.last().unwrap().is_err());
        let err = packer.done.await.unwrap().unwrap_err();
        assert!(matches!(err, DockerError::Pack { .. }), "{err:?}");
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
