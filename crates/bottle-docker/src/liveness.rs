//! Is the process that launched a bottle still running?
//!
//! `cleanup` must be safe while other bottles run, and a bottle's containers outlive a launcher
//! killed with SIGKILL, so "the containers are running" says nothing. Every object therefore
//! carries [`label::LAUNCHER`](crate::names::label::LAUNCHER): the host's boot id with the pid
//! namespace of the launcher (`<boot id>+<namespace inode>`), the launching process's pid and its
//! start time (pids are reused; the pair is not). A bottle is live while a process with that pid
//! and start time exists on this boot of this host, in this pid namespace.
//!
//! The engine may be elsewhere (a remote engine, or a launcher in a container of its own): a
//! launcher on another machine, or in another pid namespace of this one (a CLI in a container
//! shares the kernel's boot id but not its pids), cannot be judged, so its bottle is
//! [`Liveness::Unknown`] and cleanup leaves it alone; run cleanup where it was launched.

use std::path::Path;

/// What a launcher label says about its bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The launching process still runs.
    Live,
    /// The launching process is gone: the bottle is a leftover.
    Dead,
    /// Cannot tell (another host, no `/proc`): treated as live, so cleanup never removes a
    /// bottle that may be in use.
    Unknown,
}

/// The launcher label value for the current process, or `None` where `/proc` is missing.
pub fn current() -> Option<String> {
    current_in(Path::new("/proc"))
}

fn current_in(proc: &Path) -> Option<String> {
    let machine = machine(proc)?;
    let pid = std::process::id();
    let start = start_time(proc, pid)?;
    Some(format!("{machine}:{pid}:{start}"))
}

/// Where pids mean what they say: the boot id, and the pid namespace's inode when known.
fn machine(proc: &Path) -> Option<String> {
    let boot = boot_id(proc)?;
    // `pid:[4026531836]`: the number alone, as the label's fields are split at `:`.
    let namespace = std::fs::read_link(proc.join("self/ns/pid"))
        .ok()
        .and_then(|link| {
            let link = link.to_string_lossy().into_owned();
            let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?.to_owned();
            inode.chars().all(|c| c.is_ascii_digit()).then_some(inode)
        });
    Some(match namespace {
        Some(inode) => format!("{boot}+{inode}"),
        None => boot,
    })
}

/// Judges a launcher label value.
pub fn check(value: &str) -> Liveness {
    check_in(Path::new("/proc"), value)
}

fn check_in(proc: &Path, value: &str) -> Liveness {
    let mut parts = value.splitn(3, ':');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return Liveness::Unknown;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return Liveness::Unknown;
    };
    let Some(ours) = machine(proc) else {
        return Liveness::Unknown;
    };
    if ours != boot {
        // Launched on another host, in another pid namespace (a CLI in a container) or before
        // a reboot. After a reboot the process is surely gone, but another host or namespace
        // sharing the engine cannot be told apart: stay safe.
        return Liveness::Unknown;
    }
    match start_time(proc, pid) {
        Some(s) if s == start => Liveness::Live,
        _ => Liveness::Dead,
    }
}

fn boot_id(proc: &Path) -> Option<String> {
    let id = std::fs::read_to_string(proc.join("sys/kernel/random/boot_id")).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot. The command name (field
/// 2) may contain spaces and parentheses, so parse after its last `)`.
fn start_time(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; starttime is field 22, i.e. index 19.
    let mut fields = after.split_whitespace();
    // A zombie has exited; only nobody reaped it (a launcher under a container's `sleep` as
    // pid 1 stays one).
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(boot: &str, procs: &[(u32, u64)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel/random")).unwrap();
        std::fs::write(
            dir.path().join("sys/kernel/random/boot_id"),
            format!("{boot}\n"),
        )
        .unwrap();
        for (pid, start) in procs {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            let fields: Vec<String> = (3..=52)
                .map(|i| {
                    if i == 22 {
                        start.to_string()
                    } else {
                        "0".into()
                    }
                })
                .collect();
            std::fs::write(
                p.join("stat"),
                format!("{pid} (odd) name) {}", fields.join(" ")),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn a_running_launcher_is_live_and_a_gone_or_reused_pid_is_dead() {
        let proc = fake_proc("b1", &[(42, 1000)]);
        assert_eq!(check_in(proc.path(), "b1:42:1000"), Liveness::Live);
        assert_eq!(
            check_in(proc.path(), "b1:42:999"),
            Liveness::Dead,
            "pid reused"
        );
        assert_eq!(check_in(proc.path(), "b1:43:1000"), Liveness::Dead, "gone");
    }

    #[test]
    fn a_zombie_launcher_is_dead() {
        let proc = fake_proc("b1", &[(42, 1000)]);
        let stat = proc.path().join("42/stat");
        let text = std::fs::read_to_string(&stat).unwrap();
        std::fs::write(&stat, text.replacen(") 0 ", ") Z ", 1)).unwrap();
        assert_eq!(check_in(proc.path(), "b1:42:1000"), Liveness::Dead);
    }

    #[test]
    fn other_hosts_and_garbage_are_unknown() {
        let proc = fake_proc("b1", &[(42, 1000)]);
        assert_eq!(check_in(proc.path(), "b2:42:1000"), Liveness::Unknown);
        assert_eq!(check_in(proc.path(), "nonsense"), Liveness::Unknown);
        assert_eq!(check_in(proc.path(), "b1:x:1"), Liveness::Unknown);
    }

    #[test]
    fn another_pid_namespace_is_unknown() {
        let proc = fake_proc("b1", &[(42, 1000)]);
        std::fs::create_dir_all(proc.path().join("self/ns")).unwrap();
        std::os::unix::fs::symlink("pid:[7]", proc.path().join("self/ns/pid")).unwrap();
        assert!(
            current_in(proc.path()).is_none(),
            "pid 42 is not this process"
        );
        assert_eq!(check_in(proc.path(), "b1+7:42:1000"), Liveness::Live);
        assert_eq!(check_in(proc.path(), "b1+7:42:999"), Liveness::Dead);
        // A launcher in a container (same kernel, its own pids), or a label without the
        // namespace: its pid means nothing here.
        assert_eq!(check_in(proc.path(), "b1+8:42:1000"), Liveness::Unknown);
        assert_eq!(check_in(proc.path(), "b1:43:1000"), Liveness::Unknown);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_is_live() {
        let me = current().expect("Linux has /proc");
        assert_eq!(check(&me), Liveness::Live);
    }
}
