//! `claude-bottle cleanup`: find what bottles that are no longer running left behind, show it,
//! ask once, remove it.

use std::io::Write;

use crate::backends;
use crate::cli::CleanupArgs;
use crate::commands::bottle::{Stage, core_error, host, no_terminal};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::ui::progress::Progress;
use crate::ui::tty::Tty;
use crate::ui::{Ui, preflight};

const QUESTION: &str = "remove all of it?";

pub(crate) async fn run(ctx: &Context, ui: &Ui, args: CleanupArgs) -> Result<u8, CliError> {
    let host = host(ctx);
    let registry = backends::registry(ctx);
    let backend = registry
        .select(args.backend.backend.as_deref(), &host)
        .map_err(|err| core_error(err, Stage::Engine))?;
    let plan = backend
        .prepare_cleanup()
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    let summary = plan.summary();
    let mut stdout = std::io::stdout().lock();

    if args.json {
        let text = serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)?;
        let _ = writeln!(stdout, "{text}");
        return Ok(Exit::Ok.code());
    }
    if plan.is_empty() {
        ui.say(&format!(
            "nothing to clean up on backend `{}`\n",
            summary.backend
        ));
        return Ok(Exit::Ok.code());
    }
    let _ = write!(stdout, "{}", preflight::cleanup(&summary));
    let _ = stdout.flush();
    drop(stdout);
    if args.dry_run {
        ui.say("dry run: nothing was removed\n");
        return Ok(Exit::Ok.code());
    }
    if !args.yes {
        let mut tty = Tty::open().ok_or_else(|| no_terminal(QUESTION, "removed"))?;
        if !tty.confirm(QUESTION)? {
            ui.say("nothing was removed\n");
            return Ok(Exit::Declined.code());
        }
    }
    let progress = Progress::new(ui);
    backend
        .cleanup(plan.as_ref(), &progress)
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    progress.finish();
    let n = summary.items.len();
    ui.say(&format!(
        "{} removed {n} resource{}\n",
        ui.paint.good("✓"),
        if n == 1 { "" } else { "s" }
    ));
    Ok(Exit::Ok.code())
}
