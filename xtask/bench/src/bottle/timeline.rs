//! The CLI's plain progress lines, timestamped as they were read, and their split into the
//! steps of a bottle's life.
//!
//! With stderr not a terminal, `claude-bottle start` prints one line per step and per engine
//! action. A step runs from the line that starts it to the line that starts the next one, so
//! every millisecond from the command to its exit belongs to exactly one step.

use std::time::Duration;

use anyhow::{Result, bail};

use super::report::StartRun;

/// The line after which a bottle is fully launched: every object of it exists.
pub(crate) const SESSION_STARTED: &str = "✓ launched";

/// The steps, each with the text of the line that starts it (the first line containing it,
/// after the previous step's). `prepare` starts at the command; the session (`exec`) starts at
/// the last line before teardown, and has no text of its own.
const STEPS: [(&str, Option<&str>); 8] = [
    ("prepare", None),
    ("runtime check", Some("launching the bottle")),
    ("networks", Some("creating network")),
    ("egress and agent", Some("creating egress")),
    ("CA", Some(SESSION_STARTED)),
    ("provisioning", Some("CA installed")),
    ("exec", None),
    ("teardown", Some("tearing down")),
];

/// What a launcher printed, and when.
/// The parts of `egress and agent` (which the launch runs at once): name, the line that starts
/// it, and the line that ends it as (its start, its end).
const OVERLAPPING: [(&str, &str, (&str, &str)); 2] = [
    ("egress ready", "creating egress", ("egress ", " ready")),
    ("agent started", "creating agent", ("agent ", " started")),
];

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Timeline {
    /// Each line with the time since the command started.
    pub(crate) lines: Vec<(Duration, String)>,
    /// When the command exited.
    pub(crate) exited: Option<Duration>,
}

impl Timeline {
    pub(crate) fn push(&mut self, at: Duration, line: String) {
        self.lines.push((at, line));
    }

    /// The lines with their times, for an error message.
    pub(crate) fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(at, l)| format!("{:>8.3} s  {l}", at.as_secs_f64()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The bottle's identity, from the preflight's `identity` line.
    pub(crate) fn identity(&self) -> Option<String> {
        self.lines.iter().find_map(|(_, l)| {
            l.trim()
                .strip_prefix("identity")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    }

    fn find(&self, from: usize, text: &str) -> Option<usize> {
        (from..self.lines.len()).find(|&i| self.lines[i].1.contains(text))
    }

    /// Each step's seconds, in [`STEPS`] order, summing to the whole run.
    /// The parts of the `egress and agent` step that run at the same time, each from the line
    /// that starts it to the line that ends it; a part the CLI did not report is left out.
    fn overlapping(&self) -> Vec<(String, f64)> {
        OVERLAPPING
            .iter()
            .filter_map(|(name, start, end)| {
                let i = self.find(0, start)?;
                let j = (i + 1..self.lines.len()).find(|&j| {
                    let l = self.lines[j].1.trim();
                    l.starts_with(end.0) && l.ends_with(end.1)
                })?;
                let took = self.lines[j].0.saturating_sub(self.lines[i].0);
                Some(((*name).to_owned(), took.as_secs_f64()))
            })
            .collect()
    }

    pub(crate) fn split(&self) -> Result<StartRun> {
        let Some(exited) = self.exited else {
            bail!("the command has not exited");
        };
        let mut starts = vec![Duration::ZERO];
        let mut next = 0;
        let mut teardown_line = None;
        for (name, text) in &STEPS[1..] {
            let at = match (*name, text) {
                ("exec", _) => continue,
                (_, Some(text)) => {
                    let Some(i) = self.find(next, text) else {
                        bail!(
                            "no line with {text:?} (the start of step `{name}`) in the CLI's output"
                        );
                    };
                    next = i + 1;
                    if *name == "teardown" {
                        teardown_line = Some(i);
                    }
                    self.lines[i].0
                }
                (_, None) => unreachable!("only exec has no text"),
            };
            starts.push(at);
        }
        // The session starts with the last line before teardown: provisioning ends there.
        let teardown = teardown_line.expect("teardown is the last step");
        if teardown == 0 {
            bail!("teardown began before anything else");
        }
        let exec_start = self.lines[teardown - 1].0;
        starts.insert(STEPS.len() - 2, exec_start);
        starts.push(exited);
        let steps = STEPS
            .iter()
            .zip(starts.windows(2))
            .map(|((name, _), w)| {
                (
                    (*name).to_owned(),
                    (w[1].saturating_sub(w[0])).as_secs_f64(),
                )
            })
            .collect();
        Ok(StartRun {
            total_s: exited.as_secs_f64(),
            steps,
            overlapping: self.overlapping(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `claude-bottle start --yes --exec true` printed in a real run, with its times.
    fn real_run() -> Timeline {
        let lines = [
            (0.010, "  identity   bench-try-eo3io"),
            (0.100, "· launching the bottle…"),
            (
                1.100,
                "  agent runtime: runc (gVisor (runsc) failed its networked probe)",
            ),
            (
                1.150,
                "  creating network claude-bottle-net-bench-try-eo3io",
            ),
            (
                1.200,
                "  creating network claude-bottle-egress-net-bench-try-eo3io",
            ),
            (
                1.300,
                "  creating egress claude-bottle-egress-bench-try-eo3io",
            ),
            (1.310, "  creating agent claude-bottle-bench-try-eo3io"),
            (1.750, "  agent claude-bottle-bench-try-eo3io started"),
            (
                1.900,
                "  waiting for egress claude-bottle-egress-bench-try-eo3io",
            ),
            (1.950, "  egress claude-bottle-egress-bench-try-eo3io ready"),
            (2.400, "✓ launched"),
            (2.500, "· installing the bottle's CA…"),
            (4.100, "✓ CA installed"),
            (4.150, "· copying the system prompt…"),
            (4.200, "✓ system prompt copied"),
            (4.300, "✓ supervise registered"),
            (4.400, "· tearing down…"),
            (5.000, "✓ torn down"),
        ];
        Timeline {
            lines: lines
                .iter()
                .map(|(t, l)| (Duration::from_secs_f64(*t), (*l).to_owned()))
                .collect(),
            exited: Some(Duration::from_secs_f64(5.1)),
        }
    }

    #[test]
    fn every_millisecond_belongs_to_one_step() {
        let run = real_run().split().unwrap();
        let got: Vec<(&str, u64)> = run
            .steps
            .iter()
            .map(|(n, s)| (n.as_str(), (s * 1000.0).round() as u64))
            .collect();
        assert_eq!(
            got,
            [
                ("prepare", 100),
                ("runtime check", 1050),
                ("networks", 150),
                ("egress and agent", 1100),
                ("CA", 1700),
                ("provisioning", 200),
                ("exec", 100),
                ("teardown", 700),
            ]
        );
        let parts: Vec<(&str, u64)> = run
            .overlapping
            .iter()
            .map(|(n, s)| (n.as_str(), (s * 1000.0).round() as u64))
            .collect();
        assert_eq!(parts, [("egress ready", 650), ("agent started", 440)]);
        let sum: f64 = run.steps.iter().map(|(_, s)| s).sum();
        assert!((sum - run.total_s).abs() < 1e-6);
        assert_eq!(real_run().identity().as_deref(), Some("bench-try-eo3io"));
    }

    #[test]
    fn a_missing_step_is_an_error_naming_it() {
        let mut t = real_run();
        t.lines.retain(|(_, l)| !l.contains("creating egress"));
        let err = t.split().unwrap_err().to_string();
        assert!(err.contains("`egress and agent`"), "{err}");
        let mut t = real_run();
        t.exited = None;
        assert!(t.split().is_err());
    }
}
