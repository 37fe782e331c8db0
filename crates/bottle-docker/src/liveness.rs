//! Is the process that launched a bottle still running?
//!
//! `cleanup` must be safe while other bottles run, and a bottle's containers outlive a launcher
//! killed with SIGKILL, so "the containers are running" says nothing. Every object therefore
//! carries [`label::LAUNCHER`](crate::names::label::LAUNCHER): the host's boot id, the launching
//! process's pid and its start time (pids are reused; the pair is not). A bottle is live while a
//! process with that pid and start time exists on this boot of this host.

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
    let boot = boot_id(proc)?;
    let pid = std::process::id();
    let start = start_time(proc, pid)?;
    Some(format!("{boot}:{pid}:{start}"))
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
    let Some(our_boot) = boot_id(proc) else {
        return Liveness::Unknown;
    };
    if our_boot != boot {
        // Launched on another host or before a reboot. After a reboot the process is surely
        // gone, but another host sharing the engine cannot be told apart: stay safe.
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
    after.split_whitespace().nth(19)?.parse().ok()
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
    fn other_hosts_and_garbage_are_unknown() {
        let proc = fake_proc("b1", &[(42, 1000)]);
        assert_eq!(check_in(proc.path(), "b2:42:1000"), Liveness::Unknown);
        assert_eq!(check_in(proc.path(), "nonsense"), Liveness::Unknown);
        assert_eq!(check_in(proc.path(), "b1:x:1"), Liveness::Unknown);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_is_live() {
        let me = current().expect("Linux has /proc");
        assert_eq!(check(&me), Liveness::Live);
    }
}
