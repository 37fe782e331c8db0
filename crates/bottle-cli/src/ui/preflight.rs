//! The preflight: what a bottle will be granted, shown before the launch question. Rendered
//! from core's [`PlanSummary`] (data), so it can never show a value the summary does not hold —
//! and the summary holds names and modes only, never an env value or a credential.

use std::path::Path;

use bottle_core::{CleanupSummary, EnvMode, Feature, PlanSummary};

use crate::render;
use crate::ui::Paint;

/// The compact preflight, one fact per line, labels in a column.
pub(crate) fn render(
    summary: &PlanSummary,
    paint: Paint,
    show_path: &dyn Fn(&Path) -> String,
) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    // Labels are padded by hand (not `render::table`): values carry colour codes.
    let mut push = |label: &'static str, value: String| rows.push((label, value));

    let mut agent = paint.bold(&summary.agent);
    if summary.resuming {
        agent.push_str(&paint.dim(&format!("  (resuming {})", summary.identity)));
    }
    push("agent", agent);

    let mut bottle = paint.bold(&summary.bottle);
    if !summary.extends.is_empty() {
        // Parents first, as folded: `base → team → work`.
        let chain: Vec<&str> = summary
            .extends
            .iter()
            .map(String::as_str)
            .chain([summary.bottle.as_str()])
            .collect();
        bottle.push_str(&paint.dim(&format!("  ({})", chain.join(" → "))));
    }
    push("bottle", bottle);

    let env_width = summary.env.iter().map(|e| e.name.len()).max().unwrap_or(0);
    list(
        &mut push,
        "env",
        summary.env.iter().map(|e| {
            let mode = match e.mode {
                EnvMode::Literal => "literal",
                EnvMode::Host => "host",
                EnvMode::Prompt => "prompt (asked after you confirm)",
            };
            format!("{:<env_width$}  {}", e.name, paint.dim(mode))
        }),
    );
    list(&mut push, "skills", summary.skills.iter().cloned());
    let git_width = summary.git.iter().map(|g| g.name.len()).max().unwrap_or(0);
    list(
        &mut push,
        "git",
        summary
            .git
            .iter()
            .map(|g| format!("{:<git_width$}  {}", g.name, g.upstream)),
    );
    missing_grant(&mut push, summary, Feature::GitGate, paint);
    let host_width = summary
        .egress
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(0);
    list(
        &mut push,
        "egress",
        summary.egress.iter().map(|r| {
            let mut line = r.host.clone();
            let mut marks = Vec::new();
            if let Some(auth) = &r.auth {
                marks.push(format!("[auth:{auth}]"));
            }
            if !r.methods.is_empty() {
                marks.push(r.methods.join(","));
            }
            if !r.paths.is_empty() {
                marks.push(r.paths.join(" "));
            }
            if r.allow_private {
                marks.push("[private]".to_owned());
            }
            if !marks.is_empty() {
                line = format!("{line:<host_width$}  {}", marks.join(" "));
            }
            line
        }),
    );

    if !summary.networks.is_empty() {
        list(&mut push, "networks", summary.networks.iter().cloned());
        missing_grant(&mut push, summary, Feature::EgressNetworks, paint);
    }

    if let Some(cwd) = &summary.copy_cwd {
        push(
            "cwd",
            format!("{}  {}", show_path(cwd), paint.dim("(copied in)")),
        );
    }
    if summary.remote_control {
        push("remote", "Claude Code --remote-control".to_owned());
    }
    // A convenience: what is missing is said, never refused (see bottle_core::capability).
    let supervise = if !summary.supervise {
        "off".to_owned()
    } else if summary.unimplemented.contains(&Feature::Supervise) {
        paint.dim(&format!(
            "not available on the {} backend yet",
            summary.backend
        ))
    } else {
        "on".to_owned()
    };
    push("supervise", supervise);
    push("runtime", summary.runtime.clone());
    push("image", summary.image.clone());
    // The backend's own lines, grouped under its name: its labels (`agent`, `egress`) would
    // read as duplicates of ours otherwise.
    let detail_width = summary
        .details
        .iter()
        .map(|d| d.label.len())
        .max()
        .unwrap_or(0);
    if summary.details.is_empty() {
        rows.push(("backend", summary.backend.clone()));
    }
    for (i, detail) in summary.details.iter().enumerate() {
        rows.push((
            if i == 0 { summary.backend.as_str() } else { "" },
            format!(
                "{}  {}",
                paint.dim(&format!("{:<detail_width$}", detail.label)),
                detail.value
            ),
        ));
    }
    rows.push(("identity", summary.identity.to_string()));

    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in rows {
        let label = if label.is_empty() {
            " ".repeat(width)
        } else {
            format!("{label:<width$}")
        };
        out.push_str(&format!("  {}  {value}\n", paint.dim(&label)));
    }
    out
}

/// Below a grant's lines: the backend does not implement it, and what that means for the launch.
fn missing_grant(
    push: &mut impl FnMut(&'static str, String),
    summary: &PlanSummary,
    feature: Feature,
    paint: Paint,
) {
    if !summary.unimplemented.contains(&feature) {
        return;
    }
    let what = paint.warn(&format!(
        "not implemented by the {} backend",
        summary.backend
    ));
    let then = if summary.allow_unimplemented {
        "launched without it (--allow-unimplemented)"
    } else {
        "refused unless --allow-unimplemented"
    };
    push("", format!("{what}: {then}"));
}

/// A multi-line entry: the label on the first line, `(none)` when empty.
fn list(
    push: &mut impl FnMut(&'static str, String),
    label: &'static str,
    items: impl Iterator<Item = String>,
) {
    let mut first = true;
    for item in items {
        push(if first { label } else { "" }, item);
        first = false;
    }
    if first {
        push(label, "(none)".to_owned());
    }
}

/// What `cleanup` would remove, as a table.
pub(crate) fn cleanup(summary: &CleanupSummary) -> String {
    let mut rows = vec![vec![
        "KIND".to_owned(),
        "NAME".to_owned(),
        "BOTTLE".to_owned(),
    ]];
    rows.extend(summary.items.iter().map(|item| {
        vec![
            item.kind.clone(),
            item.name.clone(),
            item.identity
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ]
    }));
    render::table(&rows, "  ")
}
