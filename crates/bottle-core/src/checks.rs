//! The checks every backend's `prepare` runs before its own resolution. Pure functions of the
//! spec and the [`HostContext`]: they read the host filesystem and create nothing.

use crate::capability::Capabilities;
use crate::cwd;
use crate::error::{Error, Result};
use crate::host::HostContext;
use crate::identity::Identity;
use crate::plan::{PreparedSpec, SkillSource};
use crate::spec::{BottleSpec, EnvSource};
use crate::state::StateStore;

/// Runs the common checks, in this order, failing on the first problem:
///
/// 1. the agent exists (and its manifest files are valid);
/// 2. with `copy_cwd`, the working directory is not, and does not hold, the home folder,
///    `$CLAUDE_BOTTLE_HOME`, `~/.ssh` or `~/.claude` (the agent reads all it is given);
/// 3. each skill is a plain name and a folder under `host.skills_dir`;
/// 4. each git entry's `IdentityFile` (after `~` expansion) is a file;
/// 5. each egress `trust` certificate, bottle-wide or of a route (after `~` expansion), is a
///    file;
/// 6. each `${VAR}` env entry names a set host variable;
/// 7. each egress route's `token_ref` names a set host variable.
///
/// Then, with `copy_cwd`, finds the credentials the tree's git config would carry in
/// ([`cwd::git_credentials`]), mints the identity (or takes the resumed one) and returns the
/// [`PreparedSpec`].
pub fn check(backend: &str, spec: &BottleSpec, host: &HostContext) -> Result<PreparedSpec> {
    let mut agent = spec
        .manifest
        .agent(&spec.agent_name)
        .map_err(|source| Error::Manifest {
            agent: spec.agent_name.clone(),
            source,
        })?
        .ok_or_else(|| Error::UnknownAgent {
            name: spec.agent_name.clone(),
            known: spec.manifest.agent_names(),
        })?;

    if spec.copy_cwd {
        cwd::refuse_secret_stores(&spec.user_cwd, host)?;
    }

    let mut skills = Vec::with_capacity(agent.skills.len());
    for skill in &agent.skills {
        let host_dir = host
            .skill_dir(skill)
            .ok_or_else(|| Error::InvalidSkillName {
                agent: agent.name.clone(),
                skill: skill.clone(),
            })?;
        if !host_dir.is_dir() {
            return Err(Error::SkillNotFound {
                agent: agent.name.clone(),
                skill: skill.clone(),
                path: host_dir,
            });
        }
        skills.push(SkillSource {
            name: skill.clone(),
            host_dir,
        });
    }

    for entry in &mut agent.bottle.git {
        let path = host.expand_tilde(&entry.identity_file);
        if !path.is_file() {
            return Err(Error::GitIdentityFileMissing {
                entry: entry.name.clone(),
                path,
            });
        }
        entry.identity_file = path;
    }

    let egress = &mut agent.bottle.egress;
    let route_trust = egress.routes.iter_mut().flat_map(|r| r.trust.iter_mut());
    for path in egress.trust.iter_mut().chain(route_trust) {
        let expanded = host.expand_tilde(path);
        if !expanded.is_file() {
            return Err(Error::TrustFileMissing { path: expanded });
        }
        *path = expanded;
    }

    for entry in &agent.bottle.env {
        if let EnvSource::Host(var) = &entry.source
            && host.var(var).is_none()
        {
            return Err(Error::HostEnvMissing {
                name: entry.name.clone(),
                var: var.clone(),
            });
        }
    }

    for route in &agent.bottle.egress.routes {
        if let Some(auth) = &route.auth
            && auth.token_ref() == crate::agent::PROXY_TOKEN_VAR
        {
            return Err(Error::TokenRefReserved {
                host: route.host.to_string(),
                token_ref: auth.token_ref().to_owned(),
            });
        }
        if let Some(auth) = &route.auth
            && host.var(auth.token_ref()).is_none()
        {
            return Err(Error::TokenRefMissing {
                host: route.host.to_string(),
                token_ref: auth.token_ref().to_owned(),
            });
        }
    }

    if agent.claude.theme.is_none() {
        agent.claude.theme = host.claude_theme();
    }

    let (identity, resuming) = match &spec.identity {
        Some(identity) => (identity.clone(), true),
        None => (fresh_identity(&agent.name, host)?, false),
    };

    Ok(PreparedSpec {
        backend: backend.to_owned(),
        identity,
        resuming,
        agent,
        skills,
        copy_cwd: spec.copy_cwd,
        user_cwd: spec.user_cwd.clone(),
        cwd_credentials: if spec.copy_cwd {
            cwd::git_credentials(&spec.user_cwd)
        } else {
            Vec::new()
        },
        remote_control: spec.remote_control,
        allow_unimplemented: spec.allow_unimplemented,
        capabilities: Capabilities::none(),
    })
}

/// A new identity that names no kept state, so a fresh bottle can never overwrite the state of
/// one waiting to be resumed (a collision is one in 60 million, but costs a bottle).
fn fresh_identity(agent: &str, host: &HostContext) -> Result<Identity> {
    let store = StateStore::new(&host.bottle_home);
    loop {
        let identity = Identity::generate(agent)?;
        if !store.exists(&identity) {
            return Ok(identity);
        }
    }
}
