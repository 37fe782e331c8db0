//! bottle-recipe's tests: the sidecars of a bottle with every kind of egress grant, the files a
//! launch makes for them, and the dependency graph.

mod git_gate;
mod tidy;

use std::path::PathBuf;

use bottle_core::{
    AgentSpec, BottleDef, FileContents, FileOwner, Identity, PreparedSpec, Role, Secrets,
    SidecarEnvValue,
};
use bottle_egress::Cidr;
use bottle_manifest::{AuthScheme, LogMode, Route, RouteAuth};
use bottle_recipe::{LaunchMaterial, RecipeError, egress, sidecars};

const EGRESS_USER: FileOwner = FileOwner {
    uid: 65532,
    gid: 65532,
};

/// Routes with both kinds of credential (one shared by two routes), a trust root and a joined
/// network.
pub(crate) fn prepared(trust: Vec<PathBuf>) -> PreparedSpec {
    let mut bottle = BottleDef::new("work");
    let mut anthropic = Route::host("api.anthropic.com");
    anthropic.auth = Some(RouteAuth::Scheme {
        scheme: AuthScheme::Bearer,
        token_ref: "CLAUDE_CODE_OAUTH_TOKEN".parse().unwrap(),
    });
    let mut github = Route::host("api.github.com");
    github.auth = Some(RouteAuth::Header {
        header: "x-api-key".parse().unwrap(),
        token_ref: "GH_PAT".parse().unwrap(),
    });
    let mut uploads = Route::host("uploads.github.com");
    uploads.auth = github.auth.clone();
    bottle.egress.routes = vec![anthropic, github, uploads, Route::host("pypi.org")];
    bottle.egress.trust = trust;
    bottle.egress.networks = vec!["corp-services".to_owned()];
    bottle.egress.log = LogMode::Full;
    PreparedSpec::new(
        "test",
        Identity::parse("researcher-m3hxd").unwrap(),
        AgentSpec::new("researcher", bottle),
        "/home/user/project",
    )
}

pub(crate) fn network() -> Cidr {
    "10.0.0.0/16".parse().unwrap()
}

#[test]
fn the_sidecars_of_a_bottle() {
    let specs = sidecars(&prepared(vec!["/home/user/corp-ca.pem".into()]));
    insta::assert_yaml_snapshot!(specs);
}

#[test]
fn credentials_go_to_the_egress_by_name_once_each() {
    let specs = sidecars(&prepared(Vec::new()));
    let credentials: Vec<&str> = specs[0]
        .env
        .iter()
        .filter(|e| e.value == SidecarEnvValue::Credential)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(credentials, ["CLAUDE_CODE_OAUTH_TOKEN", "GH_PAT"]);
}

#[test]
fn a_launch_makes_exactly_the_files_the_spec_lists() {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("corp-ca.pem");
    std::fs::write(&trust, "-----BEGIN CERTIFICATE-----\ncorp\n").unwrap();
    let prepared = prepared(vec![trust]);
    let material = LaunchMaterial::mint(&prepared, &Secrets::empty()).unwrap();
    let files = material
        .files(&prepared, Role::Egress, EGRESS_USER, &[network()])
        .unwrap();
    let mut made: Vec<&str> = files
        .iter()
        .filter(|f| matches!(f.contents, FileContents::File(_)))
        .map(|f| f.path.as_str())
        .collect();
    made.sort_unstable();
    let specs = sidecars(&prepared);
    let listed: Vec<&str> = specs[0].files.keys().map(String::as_str).collect();
    assert_eq!(made, listed);
    // Everything belongs to the egress's user; only it can read the key.
    assert!(files.iter().all(|f| f.owner == EGRESS_USER));
    let key = files.iter().find(|f| f.path == egress::CA_KEY).unwrap();
    assert_eq!(key.mode, 0o400);
    assert!(
        !format!("{files:?}").contains("PRIVATE KEY"),
        "Debug shows no contents"
    );
    // The CA the agent trusts is the one whose key the egress holds.
    let cert = files.iter().find(|f| f.path == egress::CA_CERT).unwrap();
    assert_eq!(
        cert.contents,
        FileContents::File(material.ca_pem().as_bytes().to_vec())
    );
    assert!(
        material
            .files(&prepared, Role::Agent, EGRESS_USER, &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_config_serves_the_bottle_and_loopback_and_names_credentials_only_by_variable() {
    let prepared = prepared(Vec::new());
    let config = egress::config(&prepared, &[network()], &[]);
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        json["clients"],
        serde_json::json!(["10.0.0.0/16", "127.0.0.0/8", "::1/128"])
    );
    assert_eq!(json["listen"], "0.0.0.0:9099");
    assert_eq!(json["log"], "full");
    let text = json.to_string();
    assert!(text.contains("GH_PAT"), "names the token_ref: {text}");
    // And it is a config the egress itself accepts.
    let parsed = bottle_egress::EgressConfig::from_yaml(&text, None).unwrap();
    assert_eq!(parsed.routes.len(), 4);
}

#[test]
fn a_missing_trust_root_is_an_error_that_names_it() {
    let prepared = prepared(vec!["/nonexistent/corp-ca.pem".into()]);
    let material = LaunchMaterial::mint(&prepared, &Secrets::empty()).unwrap();
    let err = material
        .files(&prepared, Role::Egress, EGRESS_USER, &[network()])
        .unwrap_err();
    assert!(matches!(err, RecipeError::HostFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/corp-ca.pem"),
        "{err}"
    );
}
