//! `claude-bottle list active`: the bottles a backend is running now, and the kept ones that
//! `resume` can continue.

use std::io::Write;

use bottle_core::{ActiveBottle, ActiveState, BottleState, StateStore, resume};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::backends;
use crate::cli::ListArgs;
use crate::commands::bottle::{Stage, core_error, host};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::render;
use crate::ui::Ui;

/// A start time for the table: UTC, to the second.
fn when(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

#[derive(Debug, Serialize)]
struct ActiveJson<'a> {
    backend: &'a str,
    active: &'a [ActiveBottle],
    /// Kept state of bottles not running: `claude-bottle resume <identity>`.
    resumable: Vec<Resumable<'a>>,
}

/// A kept bottle, with the size of what it saved (its workspace and conversation).
#[derive(Debug, Serialize)]
struct Resumable<'a> {
    #[serde(flatten)]
    state: &'a BottleState,
    saved_bytes: u64,
}

pub(crate) async fn run(ctx: &Context, ui: &Ui, args: &ListArgs) -> Result<u8, CliError> {
    let host = host(ctx);
    let registry = backends::registry(ctx);
    let backend = registry
        .select(args.backend.as_deref(), &host)
        .map_err(|err| core_error(err, Stage::Engine))?;
    let mut active = backend
        .list_active()
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    active.sort_by(|a, b| a.identity.cmp(&b.identity));
    let store = StateStore::new(&host.bottle_home);
    let kept = store.list().map_err(|err| core_error(err, Stage::Engine))?;
    let resumable: Vec<Resumable<'_>> = kept
        .iter()
        .filter(|s| !active.iter().any(|a| a.identity == s.identity))
        .map(|state| Resumable {
            state,
            saved_bytes: store.saved_bytes(&state.identity),
        })
        .collect();

    let mut out = String::new();
    if args.json {
        let json = ActiveJson {
            backend: backend.name(),
            active: &active,
            resumable,
        };
        out = serde_json::to_string_pretty(&json).map_err(anyhow::Error::from)? + "\n";
    } else {
        out.push_str("ACTIVE\n");
        if active.is_empty() {
            out.push_str(&format!("  no bottles on backend `{}`\n", backend.name()));
        } else {
            let mut rows = vec![
                ["IDENTITY", "AGENT", "STATE", "STARTED", "BACKEND"]
                    .map(String::from)
                    .to_vec(),
            ];
            rows.extend(active.iter().map(|b| {
                vec![
                    b.identity.to_string(),
                    b.agent.clone(),
                    match &b.state {
                        ActiveState::Running => "running".to_owned(),
                        ActiveState::Stopped => "stopped".to_owned(),
                        ActiveState::Other(other) => other.clone(),
                    },
                    b.started.map_or_else(|| "-".to_owned(), when),
                    b.backend.clone(),
                ]
            }));
            out.push_str(&render::table(&rows, "  "));
        }
        if !resumable.is_empty() {
            out.push_str("\nRESUMABLE (claude-bottle resume IDENTITY)\n");
            let mut rows = vec![
                ["IDENTITY", "AGENT", "STARTED", "BACKEND", "SAVED", "CWD"]
                    .map(String::from)
                    .to_vec(),
            ];
            rows.extend(resumable.iter().map(|r| {
                let s = r.state;
                vec![
                    s.identity.to_string(),
                    s.agent.clone(),
                    when(s.started),
                    s.backend.clone(),
                    if r.saved_bytes == 0 {
                        "-".to_owned()
                    } else {
                        resume::human_bytes(r.saved_bytes)
                    },
                    ctx.show_path(&s.cwd),
                ]
            }));
            out.push_str(&render::table(&rows, "  "));
        }
    }
    let _ = ui;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(Exit::Ok.code())
}
