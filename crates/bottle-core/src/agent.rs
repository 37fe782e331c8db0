//! The agent contract: what every backend gives the agent the same way, whatever runs it.
//!
//! The agent runs as [`USER`] with its home at [`HOME`] and the working tree at [`WORKDIR`];
//! its only way out is the egress, reached as [`EGRESS_ALIAS`] on port [`EGRESS_PORT`] with the
//! bottle's own proxy credential (user [`PROXY_USER`], a token minted at launch), which the
//! proxy variables of its [environment](environment) carry; it trusts the per-bottle CA
//! at [`CA_FILE`] and, after provisioning, through the system bundle at [`CA_BUNDLE`]. Claude
//! Code gets its prompt with [`claude_argv`].
//!
//! The names of the fixed variables come from the manifest's table
//! ([`bottle_manifest::agent_env`]), which also refuses them in manifests: one list, read by
//! both. A backend places the agent; this module says what the agent finds when it wakes up.

use bottle_manifest::agent_env::{FIXED_ENV, FixedValue};
use serde::Serialize;

use crate::backend::Provisioned;
use crate::spec::BottleDef;

/// The user the agent runs as (uid and gid 1000 in the agent image, see
/// [`FileOwner::AGENT`](crate::backend::FileOwner::AGENT)).
pub const USER: &str = "node";
/// The agent's home.
pub const HOME: &str = "/home/node";
/// The agent's working directory: the `--cwd` tree lands here.
pub const WORKDIR: &str = "/home/node/workspace";
/// Where Claude Code keeps the conversations held in [`WORKDIR`] (one `<session>.jsonl`
/// each): its projects folder, `~/.claude/projects/`, then the working directory with every
/// `/` turned into `-` (measured for Claude Code 2.1.332). All that `claude --continue` and
/// `claude --resume <session>` need.
pub const CLAUDE_PROJECT_DIR: &str = "/home/node/.claude/projects/-home-node-workspace";
/// The per-bottle CA certificate on its own (trusted by Node through `NODE_EXTRA_CA_CERTS`).
pub const CA_FILE: &str = "/etc/claude-bottle/ca.pem";
/// The system CA bundle; the CA step adds the per-bottle CA to it.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where the CA step puts the per-bottle CA for the system's trust tool, so that a later
/// `update-ca-certificates` keeps it (the step itself appends to [`CA_BUNDLE`]).
pub const SYSTEM_CA_FILE: &str = "/usr/local/share/ca-certificates/claude-bottle.crt";
/// The agent's system prompt, when it has one.
pub const PROMPT_FILE: &str = "/home/node/.claude-bottle/prompt.md";
/// Claude Code's skills folder; each skill is a folder in it.
pub const SKILLS_DIR: &str = "/home/node/.claude/skills";

/// The egress's name on the bottle's internal network.
pub const EGRESS_ALIAS: &str = "egress";
/// The port the egress listens on.
pub const EGRESS_PORT: u16 = 9099;
/// The hosts that skip the proxy: loopback, and the git gate on the bottle's internal network
/// (git's smart HTTP to `http://git-gate:9419/`, which the egress would refuse). Nothing else
/// can be reached directly. Always set: without a gate the name does not resolve.
pub const NO_PROXY: &str = "localhost,127.0.0.1,git-gate";
/// The agent's system-wide git config, which points each declared upstream at the git gate.
pub const GITCONFIG_FILE: &str = "/etc/gitconfig";

/// Claude Code's flag for a prompt file.
pub const APPEND_SYSTEM_PROMPT_FILE: &str = "--append-system-prompt-file";
/// Claude Code's flag for remote control from claude.ai.
pub const REMOTE_CONTROL: &str = "--remote-control";

/// The user name of the bottle's proxy credential: the egress admits a client only with
/// `Proxy-Authorization: Basic base64(bottle:<token>)`, the token minted for the bottle at
/// launch.
pub const PROXY_USER: &str = "bottle";

/// The variable the egress reads the bottle's proxy token from (its config's
/// `proxy_auth.token_ref`); a route credential may not use this name.
pub const PROXY_TOKEN_VAR: &str = "BOTTLE_EGRESS_PROXY_TOKEN";

/// The egress's address as the agent reaches it, without the credential: `http://egress:9099`
/// (for people; the agent's variables carry [`proxy_url_with`]).
pub fn proxy_url() -> String {
    format!("http://{EGRESS_ALIAS}:{EGRESS_PORT}")
}

/// The proxy URL the agent's variables hold: `http://bottle:<token>@egress:9099`. The token
/// must be URL-safe as it is (the launch mints hex); the result is a secret of the agent's own.
pub fn proxy_url_with(token: &str) -> String {
    format!("http://{PROXY_USER}:{token}@{EGRESS_ALIAS}:{EGRESS_PORT}")
}

/// What a secret made at launch, for one bottle, is. Never in a plan: a backend asks the
/// launch's material (`bottle_recipe::LaunchMaterial::secret`) for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchSecret {
    /// The bottle's proxy token, for the egress that checks it.
    ProxyToken,
    /// The agent's proxy URL with that token in it ([`proxy_url_with`]).
    ProxyUrl,
}

/// What a fixed variable holds in a session with or without `--remote-control`: a value of
/// this contract, the proxy URL (it holds the bottle's proxy credential, so it is a
/// [`LaunchSecret::ProxyUrl`] made at launch), or `None` when the session leaves it unset:
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` with `--remote-control`, which needs the feature
/// flags that variable turns off (Claude Code reads any value, `0` too, as set).
pub fn fixed_value(value: FixedValue, remote_control: bool) -> Option<AgentEnvValue> {
    Some(AgentEnvValue::Fixed(match value {
        FixedValue::ProxyUrl => return Some(AgentEnvValue::Launch(LaunchSecret::ProxyUrl)),
        FixedValue::NoProxy => NO_PROXY.to_owned(),
        FixedValue::Enabled => "1".to_owned(),
        FixedValue::OnUnlessRemoteControl if remote_control => return None,
        FixedValue::OnUnlessRemoteControl => "1".to_owned(),
        FixedValue::CaFile => CA_FILE.to_owned(),
        FixedValue::CaBundle => CA_BUNDLE.to_owned(),
        FixedValue::Home => HOME.to_owned(),
    }))
}

/// Where an agent variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "value")]
pub enum AgentEnvValue {
    /// A fixed, non-secret value of this contract (CA paths, `NO_PROXY`).
    Fixed(String),
    /// A secret made at launch for this bottle (the proxy URL with its credential); never in a
    /// plan.
    Launch(LaunchSecret),
    /// The bottle's env entry (or placeholder) of that name, from
    /// [`Secrets`](crate::Secrets) at launch; never in a plan.
    Manifest,
}

/// One variable of the agent's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentEnv {
    /// Its name.
    pub name: String,
    /// Where its value comes from.
    #[serde(flatten)]
    pub value: AgentEnvValue,
}

/// The agent's whole environment for `bottle`: the fixed variables first, then each manifest
/// entry and placeholder by name, once. A name the contract fixes is never taken from the
/// manifest, whatever the manifest says (even one this session leaves unset): the manifest
/// refuses them, and this is the second wall (a bottle built in code does not pass the
/// manifest's checks).
pub fn environment(bottle: &BottleDef, remote_control: bool) -> Vec<AgentEnv> {
    let mut env: Vec<AgentEnv> = FIXED_ENV
        .iter()
        .filter_map(|(name, value)| {
            Some(AgentEnv {
                name: (*name).to_owned(),
                value: fixed_value(*value, remote_control)?,
            })
        })
        .collect();
    let from_manifest = bottle
        .env
        .iter()
        .map(|e| e.name.as_str())
        .chain(bottle.placeholder_env.iter().map(|(n, _)| n.as_str()));
    for name in from_manifest {
        if env.iter().any(|e| e.name == name) || FIXED_ENV.iter().any(|(fixed, _)| *fixed == name) {
            continue;
        }
        env.push(AgentEnv {
            name: name.to_owned(),
            value: AgentEnvValue::Manifest,
        });
    }
    env
}

/// Resource limits of one container of a bottle (the agent or a sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Memory in bytes (swap is held to the same figure).
    pub memory_bytes: i64,
    /// Maximum number of processes.
    pub pids: i64,
    /// CPU time, in thousandths of a CPU (`2000`: two CPUs' worth). A backend lowers it to
    /// what its machine has.
    pub millicpus: i64,
}

/// The agent's default limits: a coding agent runs compilers and test suites, so generous,
/// but bounded — two CPUs, so one bottle cannot starve the machine.
pub const DEFAULT_LIMITS: Limits = Limits {
    memory_bytes: 8 << 30,
    pids: 4096,
    millicpus: 2000,
};

/// Claude Code's argv: the prompt file and remote-control flags, then the user's `args`.
pub fn claude_argv(
    provisioned: &Provisioned,
    remote_control: bool,
    args: &[String],
) -> Vec<String> {
    let mut argv = Vec::with_capacity(args.len() + 3);
    if let Some(path) = &provisioned.prompt_path {
        argv.push(APPEND_SYSTEM_PROMPT_FILE.to_owned());
        argv.push(path.clone());
    }
    if remote_control {
        argv.push(REMOTE_CONTROL.to_owned());
    }
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{EnvEntry, EnvSource};

    #[test]
    fn the_project_folder_is_the_workdirs_slug() {
        let slug = WORKDIR.replace('/', "-");
        assert_eq!(
            CLAUDE_PROJECT_DIR,
            format!("{HOME}/.claude/projects/{slug}")
        );
    }

    #[test]
    fn the_git_gate_skips_the_proxy() {
        // git reaches the gate directly on the internal network; through the egress it would
        // be refused.
        let hosts: Vec<&str> = NO_PROXY.split(',').collect();
        assert!(
            hosts.contains(&bottle_manifest::gitconfig::GATE_HOST),
            "{NO_PROXY}"
        );
    }

    #[test]
    fn the_manifest_cannot_override_a_fixed_variable_and_each_name_comes_once() {
        let mut bottle = BottleDef::new("b");
        bottle.env = vec![
            EnvEntry::new("HTTPS_PROXY", EnvSource::Host("X".into())),
            EnvEntry::new("GH_HOST", EnvSource::Host("Y".into())),
        ];
        bottle.placeholder_env = vec![("GH_HOST".into(), "p".into()), ("T".into(), "p".into())];
        let env = environment(&bottle, false);
        let https: Vec<_> = env.iter().filter(|e| e.name == "HTTPS_PROXY").collect();
        assert_eq!(https.len(), 1);
        assert_eq!(
            https[0].value,
            AgentEnvValue::Launch(LaunchSecret::ProxyUrl)
        );
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(&names[names.len() - 2..], ["GH_HOST", "T"]);
    }

    #[test]
    fn every_proxy_variable_carries_the_launch_credential_and_nothing_else_is_secret() {
        let env = environment(&BottleDef::new("b"), false);
        for e in &env {
            let is_proxy = e.name.eq_ignore_ascii_case("http_proxy")
                || e.name.eq_ignore_ascii_case("https_proxy");
            assert_eq!(
                e.value == AgentEnvValue::Launch(LaunchSecret::ProxyUrl),
                is_proxy,
                "{e:?}"
            );
        }
        assert_eq!(proxy_url_with("abc123"), "http://bottle:abc123@egress:9099");
    }

    #[test]
    fn claude_code_traffic_switches_are_set_and_remote_control_keeps_feature_flags() {
        let mut bottle = BottleDef::new("b");
        bottle.env = vec![EnvEntry::new(
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            EnvSource::Host("X".into()),
        )];
        let fixed = |rc| -> Vec<(String, AgentEnvValue)> {
            environment(&bottle, rc)
                .into_iter()
                .filter(|e| e.name.contains("DISABLE"))
                .map(|e| (e.name, e.value))
                .collect()
        };
        let one = |n: &str| (n.to_owned(), AgentEnvValue::Fixed("1".into()));
        assert_eq!(
            fixed(false),
            [
                one("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
                one("DISABLE_AUTOUPDATER"),
                one("CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL"),
            ]
        );
        assert_eq!(
            fixed(true),
            [
                one("DISABLE_AUTOUPDATER"),
                one("CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL"),
            ],
            "remote control needs feature flags; the manifest still cannot set the variable"
        );
    }
}
