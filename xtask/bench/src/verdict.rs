//! A target and whether a run met it, with the margin either way: a miss says by how much.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One target judged on one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    pub(crate) target: String,
    /// The figure the target is about, with its unit, and what it came from.
    pub(crate) measured: String,
    /// How far from the line it is: "… to spare" on a pass, "short by …" or "over by …" on a
    /// miss.
    pub(crate) margin: String,
    pub(crate) pass: bool,
}

impl Verdict {
    /// Passes when `value ≥ goal`.
    pub(crate) fn at_least(
        target: String,
        value: f64,
        goal: f64,
        unit: &str,
        detail: String,
    ) -> Verdict {
        let pass = value >= goal;
        let diff = (value - goal).abs();
        Verdict {
            target,
            measured: format!("{value:.2}{unit} ({detail})"),
            margin: if pass {
                format!("{diff:.2}{unit} to spare")
            } else {
                format!("short by {diff:.2}{unit}")
            },
            pass,
        }
    }

    /// Passes when `value ≤ limit`.
    pub(crate) fn at_most(
        target: String,
        value: f64,
        limit: f64,
        unit: &str,
        detail: String,
    ) -> Verdict {
        Self::under(target, value, limit, unit, detail, value <= limit)
    }

    /// Passes when `value < limit` strictly.
    pub(crate) fn below(
        target: String,
        value: f64,
        limit: f64,
        unit: &str,
        detail: String,
    ) -> Verdict {
        Self::under(target, value, limit, unit, detail, value < limit)
    }

    fn under(
        target: String,
        value: f64,
        limit: f64,
        unit: &str,
        detail: String,
        pass: bool,
    ) -> Verdict {
        let diff = (limit - value).abs();
        Verdict {
            target,
            measured: format!("{value:.2}{unit} ({detail})"),
            margin: if pass {
                format!("{diff:.2}{unit} to spare")
            } else {
                format!("over by {diff:.2}{unit}")
            },
            pass,
        }
    }
}

/// The targets as a Markdown table, then, when any was missed, the line a profile of a real run
/// fills in, naming `means`: how to find out why (see `docs/performance.md`, "When a target is
/// missed").
pub(crate) fn table(verdicts: &[Verdict], means: &str) -> String {
    let mut s = String::from("| target | measured | margin | result |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            v.target,
            v.measured,
            v.margin,
            if v.pass { "PASS" } else { "**FAIL**" }
        );
    }
    let missed = verdicts.iter().filter(|v| !v.pass).count();
    let _ = writeln!(
        s,
        "\n{} of {} targets met.",
        verdicts.len() - missed,
        verdicts.len()
    );
    if missed > 0 {
        let _ = writeln!(
            s,
            "\nWhat a profile shows for the misses: _to be filled in from a profile of a real run \
             ({means})._"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_says_by_how_much() {
        let v = Verdict::at_least("t".into(), 1.5, 2.0, "×", "3 vs 2".into());
        assert_eq!((v.pass, v.margin.as_str()), (false, "short by 0.50×"));
        assert_eq!(v.measured, "1.50× (3 vs 2)");
        let v = Verdict::at_most("t".into(), 0.75, 1.0, " ms", String::new());
        assert_eq!((v.pass, v.margin.as_str()), (true, "0.25 ms to spare"));
        let v = Verdict::below("t".into(), 1.0, 1.0, " ms", String::new());
        assert_eq!((v.pass, v.margin.as_str()), (false, "over by 0.00 ms"));
        let t = table(&[v], "a profiler");
        assert!(t.contains("0 of 1 targets met."), "{t}");
        assert!(t.contains("a real run (a profiler)._"), "{t}");
        let t = table(
            &[Verdict::at_most("t".into(), 0.5, 1.0, "", String::new())],
            "a profiler",
        );
        assert!(!t.contains("What a profile shows"), "{t}");
    }
}
