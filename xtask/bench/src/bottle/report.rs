//! The figures of one run of `bench bottle`, its targets and their Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::util::{Machine, median};
use crate::verdict::Verdict;

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub(crate) rounds: u32,
    pub(crate) orphans: usize,
    /// Whether the cold and warm image builds were measured.
    pub(crate) builds: bool,
}

/// One `claude-bottle start --yes --exec true`: the whole and each step, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StartRun {
    pub(crate) total_s: f64,
    /// `(step, seconds)` in the order of a bottle's life; they sum to `total_s`.
    pub(crate) steps: Vec<(String, f64)>,
    /// `(part, seconds)` of the `egress and agent` step, which run at the same time.
    #[serde(default)]
    pub(crate) overlapping: Vec<(String, f64)>,
}

impl StartRun {
    fn step(&self, name: &str) -> Option<f64> {
        self.steps.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }
}

/// `claude-bottle cleanup --yes` of orphaned bottles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cleanup {
    pub(crate) orphans: usize,
    /// Containers, networks and volumes they left.
    pub(crate) objects: usize,
    pub(crate) seconds: Option<f64>,
    /// Why `seconds` is missing.
    pub(crate) not_measured: Option<String>,
}

/// One layer of the agent image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Layer {
    pub(crate) bytes: u64,
    pub(crate) created_by: String,
}

/// The agent image's size and biggest layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImageFacts {
    pub(crate) bytes: u64,
    pub(crate) biggest_layers: Vec<Layer>,
}

/// Cold (no cache) and warm builds of the agent image, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Build {
    pub(crate) cold_s: f64,
    pub(crate) warm_s: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) started: String,
    pub(crate) machine: Machine,
    pub(crate) settings: Settings,
    pub(crate) agent_image: String,
    /// Each round's bare `docker run --rm <agent image> true`.
    pub(crate) bare_docker_run_s: Vec<f64>,
    /// Each round's `claude-bottle start --yes --exec true`.
    pub(crate) start: Vec<StartRun>,
    pub(crate) cleanup: Cleanup,
    pub(crate) image: ImageFacts,
    pub(crate) builds: Option<Build>,
}

/// How to find out why a bottle target was missed.
pub(crate) const PROFILE_MEANS: &str = "the step table below says which step; `docker events` \
    during a run shows the engine's side of it";

const START_TIMES_BARE: f64 = 3.0;
const TEARDOWN_S: f64 = 1.0;
const CLEANUP_S: f64 = 5.0;

/// A Dockerfile instruction from `docker history`, shortened for a table cell.
pub(crate) fn short_instruction(created_by: &str) -> String {
    let created_by = created_by.trim();
    if created_by.is_empty() {
        return "(the base image)".to_owned();
    }
    // `RUN` steps read `|2 ARG=value … /bin/sh -c <command>`: the command is what tells.
    let created_by = match created_by.find("/bin/sh -c ") {
        Some(i) if created_by.starts_with('|') => &created_by[i..],
        _ => created_by,
    };
    let text = created_by
        .trim_start_matches("/bin/sh -c ")
        .trim_start_matches("#(nop) ")
        .replace('|', "\\|")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(119).collect::<String>())
    } else {
        text
    }
}

impl Results {
    fn bare_s(&self) -> f64 {
        median(&self.bare_docker_run_s)
    }

    fn start_s(&self) -> f64 {
        median(&self.start.iter().map(|r| r.total_s).collect::<Vec<_>>())
    }

    fn overlapping_s(&self, name: &str) -> Option<f64> {
        let all: Vec<f64> = self
            .start
            .iter()
            .filter_map(|r| {
                r.overlapping
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| *s)
            })
            .collect();
        (!all.is_empty()).then(|| median(&all))
    }

    fn step_s(&self, name: &str) -> f64 {
        median(
            &self
                .start
                .iter()
                .filter_map(|r| r.step(name))
                .collect::<Vec<_>>(),
        )
    }

    pub(crate) fn verdicts(&self) -> Vec<Verdict> {
        let mut out = vec![
            Verdict::at_most(
                format!("`start --yes --exec true` ≤ {START_TIMES_BARE}× a bare `docker run --rm`"),
                self.start_s() / self.bare_s(),
                START_TIMES_BARE,
                "×",
                format!("{:.2} vs {:.2} s, medians", self.start_s(), self.bare_s()),
            ),
            Verdict::at_most(
                format!("teardown ≤ {TEARDOWN_S} s"),
                self.step_s("teardown"),
                TEARDOWN_S,
                " s",
                "median".to_owned(),
            ),
        ];
        let c = &self.cleanup;
        let target = format!("cleanup of {} orphaned bottles ≤ {CLEANUP_S} s", c.orphans);
        out.push(match c.seconds {
            Some(s) => {
                Verdict::at_most(target, s, CLEANUP_S, " s", format!("{} objects", c.objects))
            }
            None => Verdict {
                target,
                measured: c.not_measured.clone().unwrap_or_default(),
                margin: "not measured".to_owned(),
                pass: false,
            },
        });
        out
    }

    /// This run's section of `docs/performance.md`.
    pub(crate) fn markdown(&self) -> String {
        let mut s = format!(
            "## The bottle's life\n\n\
             One run of `cargo xtask bench bottle`, started {}: `claude-bottle start --yes --exec\n\
             true` with the images cached, beside a bare `docker run --rm {} true` in each\n\
             round (rounds: {}), after one unmeasured start that proves the agent runtime (the\n\
             gVisor probe, whose verdict is kept for a day per engine). The steps come from the\n\
             CLI's own plain progress lines (stderr is not a terminal), timestamped as they were\n\
             read; a step runs from the line that starts it to the next step's, so the steps add\n\
             up to the whole. The egress and the agent start at the same time (runc); the rows\n\
             marked ↳ are each one's own span inside that step.\n\n\
             ### Machine\n\n{}\n\
             ### Targets\n\n{}\n",
            self.started,
            self.agent_image,
            self.settings.rounds,
            self.machine.markdown(),
            crate::verdict::table(&self.verdicts(), PROFILE_MEANS),
        );
        let total = self.start_s();
        let _ = writeln!(
            s,
            "### `claude-bottle start --yes --exec true`, step by step (medians)\n\n\
             | step | s | share |\n|---|---:|---:|"
        );
        if let Some(first) = self.start.first() {
            for (name, _) in &first.steps {
                let v = self.step_s(name);
                let _ = writeln!(s, "| {name} | {v:.3} | {:.0}% |", v / total * 100.0);
                if name == "egress and agent" {
                    for (part, _) in &first.overlapping {
                        if let Some(p) = self.overlapping_s(part) {
                            let _ = writeln!(s, "| ↳ {part} (at the same time) | {p:.3} | |");
                        }
                    }
                }
            }
        }
        let _ = writeln!(
            s,
            "| **whole command** | **{total:.3}** | 100% |\n\
             | bare `docker run --rm … true` | {:.3} | |\n",
            self.bare_s()
        );
        let c = &self.cleanup;
        let _ = writeln!(
            s,
            "### Cleanup\n\n{} bottles launched with `--exec 'sleep 600'`, their launchers killed with\n\
             SIGKILL (no teardown runs), leaving {} containers, networks and volumes; then\n\
             `claude-bottle cleanup --yes`: {}.\n",
            c.orphans,
            c.objects,
            match (c.seconds, &c.not_measured) {
                (Some(sec), _) => format!("{sec:.2} s"),
                (None, Some(why)) => why.clone(),
                (None, None) => "not measured".to_owned(),
            }
        );
        let _ = writeln!(
            s,
            "### The agent image\n\n\
             `{}`: {:.0} MB. Whether that is \"no larger than what Claude Code and the tools in it\n\
             need\" is for a person to judge; its biggest layers:\n\n\
             | MB | instruction |\n|---:|---|",
            self.agent_image,
            self.image.bytes as f64 / 1e6
        );
        for layer in &self.image.biggest_layers {
            let _ = writeln!(
                s,
                "| {:.1} | `{}` |",
                layer.bytes as f64 / 1e6,
                layer.created_by
            );
        }
        match &self.builds {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "\nBuilds with the recipe `claude-bottle start` uses (the engine's own builder, under\n\
                     a tag of the bench's own): cold, without cache, {:.1} s; warm, right after, {:.1} s.",
                    b.cold_s, b.warm_s
                );
            }
            None => {
                let _ = writeln!(s, "\nBuilds: not measured in this run (`--skip-builds`).");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(total: f64, teardown: f64) -> StartRun {
        StartRun {
            total_s: total,
            steps: vec![
                ("prepare".to_owned(), 0.2),
                ("egress and agent".to_owned(), total - 0.2 - teardown),
                ("teardown".to_owned(), teardown),
            ],
            overlapping: vec![
                ("egress ready".to_owned(), 0.5),
                ("agent started".to_owned(), total / 10.0),
            ],
        }
    }

    fn results() -> Results {
        Results {
            started: "2026-01-01 00:00 UTC".to_owned(),
            machine: Machine::fixture(("Docker engine", "20.10.24")),
            settings: Settings {
                rounds: 3,
                orphans: 20,
                builds: true,
            },
            agent_image: "claude-bottle-agent:0123".to_owned(),
            bare_docker_run_s: vec![1.7, 1.8, 1.9],
            start: vec![run(4.0, 0.8), run(5.0, 0.9), run(4.5, 1.2)],
            cleanup: Cleanup {
                orphans: 20,
                objects: 80,
                seconds: Some(6.5),
                not_measured: None,
            },
            image: ImageFacts {
                bytes: 1_320_000_000,
                biggest_layers: vec![Layer {
                    bytes: 700_000_000,
                    created_by: short_instruction(
                        "/bin/sh -c npm install -g @anthropic-ai/claude-code@2.0.0 | tee",
                    ),
                }],
            },
            builds: Some(Build {
                cold_s: 240.0,
                warm_s: 3.0,
            }),
        }
    }

    #[test]
    fn the_targets_are_judged_on_medians() {
        let v = results().verdicts();
        let judged: Vec<(bool, &str)> = v.iter().map(|v| (v.pass, v.margin.as_str())).collect();
        assert_eq!(
            judged,
            [
                (true, "0.50× to spare"),
                (true, "0.10 s to spare"),
                (false, "over by 1.50 s")
            ]
        );
        let mut r = results();
        r.cleanup.seconds = None;
        r.cleanup.not_measured = Some("not measured: other leftovers".to_owned());
        assert!(!r.verdicts()[2].pass);
    }

    #[test]
    fn long_instructions_are_shortened_for_the_table() {
        assert_eq!(
            short_instruction("/bin/sh -c #(nop)  CMD [\"bash\"]"),
            "CMD [\"bash\"]"
        );
        assert!(short_instruction(&"x ".repeat(100)).ends_with('…'));
        assert_eq!(short_instruction("a | b"), "a \\| b");
        assert_eq!(
            short_instruction("|2 A=1 B=2 /bin/sh -c set -eux; apt-get install -y git"),
            "set -eux; apt-get install -y git"
        );
        assert_eq!(short_instruction(""), "(the base image)");
    }

    #[test]
    fn the_results_survive_json() {
        let r = results();
        let back: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_section_has_every_figure() {
        insta::assert_snapshot!(results().markdown());
    }
}
