//! `claude-bottle list [agents|bottles]`.

use bottle_manifest::Entry;
use serde::Serialize;

use crate::cli::{ListArgs, ListKind};
use crate::commands::Output;
use crate::context::Context;
use crate::error::CliError;
use crate::render;

#[derive(Debug, Serialize)]
struct EntryJson {
    name: String,
    origin: &'static str,
    path: Option<String>,
    /// Agents: the bottle; bottles: the bottles extended.
    uses: Vec<String>,
    errors: usize,
}

#[derive(Debug, Serialize)]
struct ListJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<EntryJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bottles: Option<Vec<EntryJson>>,
}

pub(crate) fn run(ctx: &Context, args: &ListArgs) -> Result<Output, CliError> {
    let index = ctx.load();
    let stderr = render::warnings(ctx, index.warnings());
    let want = |k: ListKind| args.what.is_none_or(|w| w == k);
    let agents = want(ListKind::Agents).then(|| index.agents());
    let bottles = want(ListKind::Bottles).then(|| index.bottles());

    if args.json {
        let json = |entries: Vec<Entry>| -> Vec<EntryJson> {
            entries
                .into_iter()
                .map(|e| EntryJson {
                    path: e.path.as_ref().map(|p| ctx.show_path(p)),
                    name: e.name,
                    origin: e.origin.as_str(),
                    uses: e.uses,
                    errors: e.errors,
                })
                .collect()
        };
        let out = ListJson {
            agents: agents.map(json),
            bottles: bottles.map(json),
        };
        let text = serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?;
        return Ok(Output::ok(text + "\n", stderr));
    }

    let mut stdout = String::new();
    if let Some(agents) = agents {
        stdout.push_str("AGENTS\n");
        let mut rows = vec![vec![
            "NAME".into(),
            "BOTTLE".into(),
            "SOURCE".into(),
            "FILE".into(),
        ]];
        rows.extend(agents.iter().map(|e| {
            vec![
                e.name.clone(),
                e.uses.first().cloned().unwrap_or_else(|| "?".into()),
                e.origin.to_string(),
                file_cell(ctx, e),
            ]
        }));
        stdout.push_str(&render::table(&rows, "  "));
    }
    if let Some(bottles) = bottles {
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        stdout.push_str("BOTTLES\n");
        let mut rows = vec![vec![
            "NAME".into(),
            "EXTENDS".into(),
            "SOURCE".into(),
            "FILE".into(),
        ]];
        rows.extend(bottles.iter().map(|e| {
            vec![
                e.name.clone(),
                if e.uses.is_empty() {
                    "-".into()
                } else {
                    e.uses.join(", ")
                },
                e.origin.to_string(),
                file_cell(ctx, e),
            ]
        }));
        stdout.push_str(&render::table(&rows, "  "));
    }
    Ok(Output::ok(stdout, stderr))
}

fn file_cell(ctx: &Context, e: &Entry) -> String {
    let mut cell = ctx.show_opt_path(e.path.as_ref());
    if e.errors > 0 {
        cell.push_str(&format!(
            " ({} error{}: run `claude-bottle check`)",
            e.errors,
            if e.errors == 1 { "" } else { "s" }
        ));
    }
    cell
}
