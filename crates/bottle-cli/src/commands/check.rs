//! `claude-bottle check`: every manifest file, every error.

use std::collections::BTreeSet;

use crate::cli::CheckArgs;
use crate::commands::Output;
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::render;

pub(crate) fn run(ctx: &Context, _args: &CheckArgs) -> Result<Output, CliError> {
    let report = ctx.load().check();
    let stderr = render::warnings(ctx, &report.warnings);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let scope = format!(
        "{}, {}, {} checked",
        plural(report.agents, "agent"),
        plural(report.bottles, "bottle"),
        plural(report.files, "file")
    );
    if report.errors.is_empty() {
        return Ok(Output::ok(format!("ok: {scope}, no errors\n"), stderr));
    }
    let files: BTreeSet<_> = report.errors.iter().map(|d| &d.path).collect();
    let mut stdout = String::new();
    for d in &report.errors {
        stdout.push_str(&render::relativize(ctx, &d.to_string()));
        stdout.push_str("\n\n");
    }
    stdout.push_str(&format!(
        "failed: {} in {} ({scope})\n",
        plural(report.errors.len(), "error"),
        plural(files.len(), "file")
    ));
    Ok(Output {
        stdout,
        stderr,
        exit: Exit::Manifest,
    })
}
