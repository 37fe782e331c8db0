//! [`DockerBottle`]: the running bottle's handle, bottle-core's transport over the engine.
//!
//! Everything bottle-core's provisioning recipe and the session need goes through here: a
//! command as the agent or as root (an exec), in-memory files (an archive extracted by the
//! engine, whose headers carry each file's owner and mode), a host tree (the same, packed on
//! the host) and an attached session.

use std::path::Path;
use std::sync::Arc;

use bottle_core::agent::{USER, WORKDIR};
use bottle_core::{
    Bottle, BottleFile, CopiedOut, ExecResult, ExecUser, FileOwner, HostTree, Role, TerminalHost,
};

use crate::api::{DockerApi, ExecSpec, Interactive};
use crate::backend::{BACKEND_NAME, core_err};
use crate::engine::Engine;
use crate::error::DockerError;
use crate::{saved, tarball};

/// A running Docker bottle.
pub struct DockerBottle<D: DockerApi + Clone + 'static = Engine> {
    pub(crate) api: D,
    pub(crate) name: String,
    /// The sidecars' containers, in start order.
    pub(crate) sidecars: Vec<(Role, String)>,
    pub(crate) ca_pem: String,
    pub(crate) terminal: Arc<dyn TerminalHost>,
}

impl<D: DockerApi + Clone + 'static> std::fmt::Debug for DockerBottle<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBottle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<D: DockerApi + Clone + 'static> DockerBottle<D> {
    fn spec(user: ExecUser, cmd: Vec<String>) -> ExecSpec {
        let (user, dir) = match user {
            ExecUser::Agent => (USER, WORKDIR),
            ExecUser::Root => ("0", "/"),
        };
        ExecSpec {
            cmd,
            user: Some(user.to_owned()),
            working_dir: Some(dir.to_owned()),
            env: Vec::new(),
        }
    }

    async fn attached(&self, cmd: Vec<String>, tty: bool) -> bottle_core::Result<i32> {
        let spec = Self::spec(ExecUser::Agent, cmd);
        let _raw = if tty {
            Some(
                self.terminal
                    .enter_raw()
                    .map_err(|e| bottle_core::Error::backend(BACKEND_NAME, "enter raw mode", e))?,
            )
        } else {
            None
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let watcher = if tty {
            let terminal = self.terminal.clone();
            Some(tokio::spawn(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let Ok(mut winch) = signal(SignalKind::window_change()) else {
                        return;
                    };
                    while winch.recv().await.is_some() {
                        if let Some(size) = terminal.size()
                            && tx.send(size).await.is_err()
                        {
                            return;
                        }
                    }
                }
                #[cfg(not(unix))]
                drop((terminal, tx));
            }))
        } else {
            None
        };
        let io = Interactive {
            tty,
            stdin: Some(Box::pin(tokio::io::stdin())),
            stdout: Box::pin(tokio::io::stdout()),
            stderr: Box::pin(tokio::io::stderr()),
            size: if tty { self.terminal.size() } else { None },
            resize: tty.then_some(rx),
        };
        let result = self.api.exec_interactive(&self.name, &spec, io).await;
        if let Some(w) = watcher {
            w.abort();
        }
        let code = result.map_err(|e| core_err(format!("run a session in {}", self.name), e))?;
        if code != 0 {
            self.check_sidecars().await?;
        }
        Ok(i32::try_from(code).unwrap_or(1))
    }

    /// After a failed session: if a sidecar died (the egress first), that is what the user
    /// needs to hear — without the egress the agent had no network from that moment on — not
    /// the session's own exit code.
    async fn check_sidecars(&self) -> bottle_core::Result<()> {
        for (role, sidecar) in &self.sidecars {
            let Ok(Some(info)) = self.api.inspect_container(sidecar).await else {
                continue;
            };
            if info.running {
                continue;
            }
            let log = self.api.logs_tail(sidecar, 20).await.unwrap_or_default();
            let cut_off = if *role == Role::Egress {
                ", which cut the bottle off from the network"
            } else {
                ""
            };
            return Err(core_err(
                format!("run a session in {}", self.name),
                DockerError::SidecarNotReady {
                    role: *role,
                    container: sidecar.clone(),
                    detail: format!(
                        "it stopped (exit code {}) during the session{cut_off}; its log ends \
                         with:\n{}",
                        info.exit_code.unwrap_or(-1),
                        log.trim_end()
                    ),
                },
            ));
        }
        Ok(())
    }
}

impl<D: DockerApi + Clone + 'static> Bottle for DockerBottle<D> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec_claude(&self, argv: &[String], tty: bool) -> bottle_core::Result<i32> {
        let mut cmd = vec!["claude".to_owned()];
        cmd.extend(argv.iter().cloned());
        self.attached(cmd, tty).await
    }

    async fn exec_attached(&self, script: &str, tty: bool) -> bottle_core::Result<i32> {
        self.attached(vec!["sh".into(), "-c".into(), script.to_owned()], tty)
            .await
    }

    async fn exec(&self, user: ExecUser, script: &str) -> bottle_core::Result<ExecResult> {
        let spec = Self::spec(user, vec!["sh".into(), "-c".into(), script.to_owned()]);
        let out = self
            .api
            .exec(&self.name, &spec, None)
            .await
            .map_err(|e| core_err(format!("exec in {}", self.name), e))?;
        Ok(ExecResult {
            exit_code: i32::try_from(out.exit_code).unwrap_or(1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn write_files(&self, files: &[BottleFile]) -> bottle_core::Result<()> {
        let action = format!("write files into {}", self.name);
        let tar = tarball::archive("bottle files", files).map_err(|e| core_err(&action, e))?;
        self.api
            .upload(&self.name, "/", tar)
            .await
            .map_err(|e| core_err(action, e))
    }

    async fn cp_in(&self, tree: &HostTree, bottle_path: &str) -> bottle_core::Result<()> {
        let target = Path::new(bottle_path);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(core_err(
                format!("copy into {bottle_path}"),
                DockerError::InvalidSetting {
                    name: "bottle path".to_owned(),
                    value: bottle_path.to_owned(),
                    hint: "give an absolute path with a file name".to_owned(),
                },
            ));
        };
        let action = format!("copy {} into {bottle_path}", tree.path.display());
        // Packed while it is sent: bounded memory for a tree of any size.
        let (tar, packer) = tarball::stream(
            tree.clone(),
            name.to_string_lossy().into_owned(),
            FileOwner::AGENT,
        );
        let sent = self
            .api
            .upload_stream(&self.name, &parent.to_string_lossy(), tar)
            .await;
        // The packer's error (a file that changed, one that cannot be read) says more than the
        // engine's view of a stream that ended failed.
        let packed = packer.done.await.unwrap_or_else(|e| {
            Err(DockerError::Pack {
                path: tree.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        });
        packed.and(sent).map_err(|e| core_err(action, e))
    }

    async fn cp_out(
        &self,
        bottle_path: &str,
        to: std::fs::File,
        limit: u64,
    ) -> bottle_core::Result<CopiedOut> {
        use futures_util::StreamExt;
        let action = format!("copy {bottle_path} out of {}", self.name);
        let failed = |source: std::io::Error| {
            core_err(
                &action,
                DockerError::Pack {
                    path: bottle_path.into(),
                    source,
                },
            )
        };
        let Some(root) = Path::new(bottle_path).file_name() else {
            return Err(failed(std::io::Error::other("not a folder path")));
        };
        let root = root.to_string_lossy().into_owned();
        let mut chunks = self
            .api
            .download(&self.name, bottle_path)
            .await
            .map_err(|e| core_err(&action, e))?;
        // The engine answers a missing folder with an error before any byte.
        let first = match chunks.next().await {
            None => return Ok(CopiedOut::Missing),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CopiedOut::Missing);
            }
            Some(Err(e)) => return Err(failed(e)),
            Some(Ok(chunk)) => chunk,
        };
        let stream = futures_util::stream::iter([Ok(first)]).chain(chunks);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        let repacked = tokio::task::spawn_blocking(move || saved::repack(reader, to, &root, limit))
            .await
            .map_err(|e| failed(std::io::Error::other(e.to_string())))?
            .map_err(failed)?;
        Ok(match repacked {
            saved::Repacked::Copied { bytes, skipped } => CopiedOut::Copied { bytes, skipped },
            saved::Repacked::TooLarge => CopiedOut::TooLarge,
        })
    }

    async fn cp_in_archive(
        &self,
        archive: std::fs::File,
        bottle_dir: &str,
    ) -> bottle_core::Result<()> {
        let action = format!("restore saved files into {bottle_dir} of {}", self.name);
        let file = tokio::fs::File::from_std(archive);
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, tarball::CHUNK_BYTES);
        self.api
            .upload_stream(&self.name, bottle_dir, Box::pin(chunks))
            .await
            .map_err(|e| core_err(action, e))
    }

    fn ca_pem(&self) -> Option<&str> {
        Some(&self.ca_pem)
    }

    async fn close(&self) -> bottle_core::Result<()> {
        // Teardown removes the containers; the handle holds nothing of its own.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::RecordingDocker;

    fn bottle(api: &RecordingDocker) -> DockerBottle<RecordingDocker> {
        DockerBottle {
            api: api.clone(),
            name: "claude-bottle-t-aaaaa".to_owned(),
            sidecars: Vec::new(),
            ca_pem: String::new(),
            terminal: Arc::new(bottle_core::NoTerminal),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cp_out_repacks_what_the_engine_sends_and_a_missing_folder_is_no_error() {
        let api = RecordingDocker::default();
        let mut engine = tar::Builder::new(Vec::new());
        for (path, kind, data) in [
            ("workspace", tar::EntryType::Directory, ""),
            ("workspace/notes.md", tar::EntryType::Regular, "hello"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(0o4755);
            header.set_uid(0);
            header.set_size(data.len() as u64);
            engine
                .append_data(&mut header, path, data.as_bytes())
                .unwrap();
        }
        let sent = engine.into_inner().unwrap();
        api.serve(
            "claude-bottle-t-aaaaa",
            "/home/node/workspace",
            bytes::Bytes::from(sent),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workspace.tar");
        let file = std::fs::File::create(&path).unwrap();
        let copied = bottle(&api)
            .cp_out("/home/node/workspace", file, 1 << 20)
            .await
            .unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(
            copied,
            CopiedOut::Copied {
                bytes: written.len() as u64,
                skipped: 0
            }
        );
        let mut archive = tar::Archive::new(&written[..]);
        let owners: Vec<(String, u64, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            owners,
            [
                ("workspace".to_owned(), 1000, 0o755),
                ("workspace/notes.md".to_owned(), 1000, 0o755)
            ]
        );

        let file = std::fs::File::create(dir.path().join("other.tar")).unwrap();
        let missing = bottle(&api)
            .cp_out(
                "/home/node/.claude/projects/-home-node-workspace",
                file,
                1 << 20,
            )
            .await
            .unwrap();
        assert_eq!(missing, CopiedOut::Missing);
    }
}
