//! The bottle recipe of claude-bottle: what every backend runs beside the agent, the same way.
//!
//! bottle-core holds the part of the recipe that needs no TLS (the agent's environment, paths
//! and provisioning, the [`SidecarSpec`] vocabulary); this crate holds the part that does: the
//! sidecars themselves, built from a prepared bottle, with the egress's config and the
//! per-bottle CA. A backend asks [`sidecars`] what to run, runs each spec its own way, and at
//! launch asks [`LaunchMaterial`] for each sidecar's files and the CA the agent must trust. It
//! never builds an egress config or mints a CA itself, so a second backend copies nothing.
//!
//! ```
//! use bottle_core::{AgentSpec, BottleDef, FileContents, FileOwner, Identity, PreparedSpec,
//!                   Readiness, Role};
//! use bottle_recipe::{LaunchMaterial, sidecars};
//!
//! # fn main() -> Result<(), bottle_recipe::RecipeError> {
//! let prepared = PreparedSpec::new(
//!     "example",
//!     Identity::parse("researcher-m3hxd").unwrap(),
//!     AgentSpec::new("researcher", BottleDef::new("default")),
//!     "/tmp",
//! );
//! let specs = sidecars(&prepared);
//! assert_eq!(specs[0].role, Role::Egress);
//! assert!(matches!(specs[0].readiness, Readiness::Exec(_)));
//!
//! // At launch: mint the CA and the proxy token, then make the egress's files for the
//! // bottle's network.
//! let material = LaunchMaterial::mint(&prepared, &bottle_core::Secrets::empty())?;
//! let url = material.secret(bottle_core::LaunchSecret::ProxyUrl).expose();
//! assert!(url.starts_with("http://bottle:") && url.ends_with("@egress:9099"));
//! let network = "10.0.0.0/16".parse().unwrap();
//! let files = material.files(&prepared, Role::Egress, FileOwner { uid: 65532, gid: 65532 }, &[network])?;
//! let key = files.iter().find(|f| f.path.ends_with("ca.key")).unwrap();
//! assert_eq!(key.mode, 0o400);
//! assert!(matches!(&key.contents, FileContents::File(_)));
//! assert!(material.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok(())
//! # }
//! ```
//!
//! # Adding a sidecar
//!
//! A new sidecar (the supervise server next; the git gate, [`git_gate`], is the latest) is a
//! [`Role`] in bottle-core, a module
//! here with its spec and its files, one line in [`sidecars`] (when the bottle needs it) and
//! one arm in [`LaunchMaterial::files`], and its image in each backend's settings.

pub mod egress;
mod error;
pub mod git_gate;

use std::fmt;

use bottle_core::{
    BottleFile, FileOwner, LaunchSecret, PreparedSpec, Role, SecretString, Secrets, SidecarSpec,
};
use bottle_egress::{CertificateAuthority, Cidr};
use rand::TryRngCore;

pub use error::{RecipeError, Result};

/// The sidecars of `prepared`'s bottle, in start order: each is ready before the next starts,
/// and all before the agent. The egress always; the git gate when the bottle has git entries.
pub fn sidecars(prepared: &PreparedSpec) -> Vec<SidecarSpec> {
    std::iter::once(egress::sidecar(prepared))
        .chain(git_gate::sidecar(prepared))
        .collect()
}

/// What a launch makes once for its bottle — the per-bottle CA and the proxy token, in memory,
/// and which of the bottle's secrets the git gate can scan for — and the sidecars' files from
/// it. Its `Debug` shows nothing of the key or the token.
pub struct LaunchMaterial {
    ca: CertificateAuthority,
    proxy_token: SecretString,
    proxy_url: SecretString,
    /// The scannable known secrets, by variable name ([`git_gate::scannable`]): the git gate
    /// scans pushes for them, the egress's DLP requests.
    known_secrets: Vec<String>,
}

impl LaunchMaterial {
    /// Mints the bottle's CA ([`egress::mint_ca`]) and its proxy token (32 bytes from the
    /// operating system's random source, as hex), and notes which of `secrets` the git gate
    /// scans pushes for (names only; the values reach the gate through its environment).
    pub fn mint(prepared: &PreparedSpec, secrets: &Secrets) -> Result<Self> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| RecipeError::Random(e.to_string()))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(LaunchMaterial {
            ca: egress::mint_ca(prepared)?,
            proxy_url: SecretString::new(bottle_core::agent::proxy_url_with(&token)),
            proxy_token: SecretString::new(token),
            known_secrets: git_gate::scannable(prepared, secrets),
        })
    }

    /// The value of a secret made at this launch: the egress's proxy token, or the agent's
    /// proxy URL that carries it. For handing to the container that needs it, and nothing else.
    pub fn secret(&self, secret: LaunchSecret) -> &SecretString {
        match secret {
            LaunchSecret::ProxyToken => &self.proxy_token,
            LaunchSecret::ProxyUrl => &self.proxy_url,
        }
    }

    /// The CA certificate the agent must trust (for [`Bottle::ca_pem`](bottle_core::Bottle)).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The files of the sidecar `role`, owned by `owner` (the user its image runs as), for a
    /// bottle whose own networks are `bottle_networks` (known only once the backend made
    /// them). Exactly the paths its [`SidecarSpec::files`] lists; none for a sidecar without
    /// files.
    pub fn files(
        &self,
        prepared: &PreparedSpec,
        role: Role,
        owner: FileOwner,
        bottle_networks: &[Cidr],
    ) -> Result<Vec<BottleFile>> {
        match role {
            Role::Egress => egress::files(
                prepared,
                &self.ca,
                owner,
                bottle_networks,
                &self.known_secrets,
            ),
            Role::GitGate => git_gate::files(prepared, owner, bottle_networks, &self.known_secrets),
            Role::Agent | Role::Supervise | Role::Network | Role::Probe => Ok(Vec::new()),
        }
    }
}

impl fmt::Debug for LaunchMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchMaterial").finish_non_exhaustive()
    }
}
