//! `claude-bottle resume <IDENTITY>`: start a kept bottle again, from its state (agent,
//! working directory, backend, flags), under the same identity.

use std::sync::Arc;

use bottle_core::{BottleSpec, Identity, ManifestSource, StateStore, resume};
use bottle_manifest::{Layout, ManifestIndex};

use crate::backends;
use crate::cli::ResumeArgs;
use crate::commands::bottle::{Stage, core_error, host, show_warnings};
use crate::commands::start::{Run, asking_terminal, claude_login, launch, session};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::ui::Ui;

pub(crate) async fn run(ctx: &Context, ui: &Ui, args: ResumeArgs) -> Result<u8, CliError> {
    let identity = Identity::parse(&args.identity).map_err(|err| core_error(err, Stage::Engine))?;
    let confirm_on = (!args.yes).then(asking_terminal).transpose()?;
    let host = host(ctx);
    let store = StateStore::new(&host.bottle_home);
    let state = store.load(&identity).map_err(|err| {
        core_error(err, Stage::Engine)
            .with_hint("`claude-bottle list active` shows the bottles that can be resumed")
    })?;

    // The agent as seen from the directory the bottle was started in: a repository agent
    // lives there, not in whatever directory `resume` runs from.
    let layout = Layout::new(
        ctx.layout.home(),
        ctx.layout.user_home().map(ToOwned::to_owned),
        &state.cwd,
    );
    let index = ManifestIndex::load(&layout, ctx.claude_auth);
    show_warnings(ctx, ui, index.warnings());
    let manifest: Arc<dyn ManifestSource> = Arc::new(index);

    let registry = backends::registry(ctx);
    let backend = registry
        .create(&state.backend, "the bottle's resume state")
        .map_err(|err| core_error(err, Stage::Engine))?;
    let running = backend
        .list_active()
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    if running.iter().any(|b| b.identity == identity) {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "bottle `{identity}` still has resources on backend `{}`",
                state.backend
            ),
        )
        .with_hint("if it is not in use, `claude-bottle cleanup` removes them; then resume"));
    }

    let mut spec = BottleSpec::new(manifest, state.agent.clone(), state.cwd.clone());
    spec.identity = Some(identity.clone());
    spec.copy_cwd = state.copy_cwd;
    spec.remote_control = state.remote_control;
    spec.allow_unimplemented = args.unimplemented.allow_unimplemented;
    let plan = backend
        .prepare(spec, &host)
        .await
        .map_err(|err| core_error(err, Stage::Engine))?;
    // Claude Code continues the conversation the bottle saved, unless --fresh or the user's
    // own arguments choose one.
    let saved = store
        .saved(&identity)
        .map_err(|err| core_error(err, Stage::Engine))?;
    let claude_args = resume::continue_args(saved.as_ref(), args.fresh, args.claude_args);
    let session = session(args.exec, claude_args);
    let login = claude_login(ctx, &plan.summary(), &session, args.login_in_bottle)?;
    launch(
        ctx,
        ui,
        backend.as_ref(),
        plan.as_ref(),
        &host,
        Run { session, login },
        confirm_on,
    )
    .await
}
