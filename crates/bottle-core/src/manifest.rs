//! The one place bottle-core reads bottle-manifest's model: [`ManifestSource`] for the loaded
//! [`ManifestIndex`], and the conversion of a [`Manifest`] into an [`AgentSpec`].
//!
//! Everything else in bottle-core uses its own small input types (and the manifest's value
//! types `Route`, `RouteAuth`, `LogMode`, `GitEntry`, `GitUser` and `AgentImage`), so a change
//! in how manifests are loaded touches only this file.

use bottle_manifest::{EnvValue, Manifest, ManifestError, ManifestIndex};

use crate::error::BoxError;
use crate::secret::SecretString;
use crate::spec::{
    AgentSpec, BottleDef, ClaudeSettings, EgressSpec, EnvEntry, EnvSource, ManifestSource,
};

impl ManifestSource for ManifestIndex {
    fn agent_names(&self) -> Vec<String> {
        self.agents().into_iter().map(|entry| entry.name).collect()
    }

    fn agent(&self, name: &str) -> Result<Option<AgentSpec>, BoxError> {
        match self.manifest(name) {
            Ok(manifest) => Ok(Some(AgentSpec::from(&manifest))),
            Err(ManifestError::UnknownAgent { .. }) => Ok(None),
            Err(error) => Err(Box::new(error)),
        }
    }
}

impl From<&Manifest> for AgentSpec {
    fn from(manifest: &Manifest) -> Self {
        let bottle = &manifest.bottle;
        // The manifest's chain ends with the bottle itself; `extends` lists only its parents.
        let mut extends = bottle.chain.clone();
        if extends.last() == Some(&bottle.name) {
            extends.pop();
        }
        AgentSpec {
            name: manifest.agent.name.clone(),
            origin: manifest.agent.origin,
            file: manifest.agent.path.clone(),
            prompt: manifest.agent.prompt.clone(),
            skills: manifest.agent.skills.clone(),
            bottle: BottleDef {
                name: bottle.name.clone(),
                extends,
                env: bottle
                    .env
                    .iter()
                    .map(|var| EnvEntry {
                        name: var.name.clone(),
                        source: match &var.value {
                            EnvValue::Literal(literal) => {
                                EnvSource::Literal(SecretString::new(literal.expose()))
                            }
                            EnvValue::Host { var } => EnvSource::Host(var.clone()),
                            EnvValue::Prompt { message } => EnvSource::Prompt(message.clone()),
                        },
                    })
                    .collect(),
                placeholder_env: bottle
                    .claude_placeholder_env()
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .into_iter()
                    .collect(),
                git: bottle.git.clone(),
                git_user: bottle.git_user.clone(),
                egress: EgressSpec {
                    routes: bottle.egress.route_table(),
                    log: bottle.egress.log,
                    trust: bottle.egress.trust.clone(),
                    networks: bottle.egress.networks.clone(),
                },
                supervise: bottle.supervise,
                image: bottle.image.clone(),
            },
            claude: ClaudeSettings {
                permission_mode: manifest.agent.permission_mode,
                theme: None,
            },
        }
    }
}
