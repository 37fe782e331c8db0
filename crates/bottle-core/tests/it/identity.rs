//! Identities: `<agent>-<5 random base36 chars>`.

use std::collections::BTreeSet;

use bottle_core::{Error, Identity};

fn is_base36(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase()
}

#[test]
fn generated_identities_have_the_documented_shape() {
    let id = Identity::generate("researcher").unwrap();
    let (agent, suffix) = id.as_str().rsplit_once('-').unwrap();
    assert_eq!(agent, "researcher");
    assert_eq!(id.agent(), "researcher");
    assert_eq!(suffix.len(), 5);
    assert_eq!(id.suffix(), suffix);
    assert!(suffix.chars().all(is_base36), "{id}");
    assert_eq!(Identity::parse(id.as_str()).unwrap(), id);
}

#[test]
fn suffixes_are_random_and_use_the_whole_alphabet() {
    let ids: Vec<Identity> = (0..2000)
        .map(|_| Identity::generate("a-b").unwrap())
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().map(Identity::suffix).collect();
    assert!(distinct.len() > 1990, "only {} distinct", distinct.len());
    let alphabet: BTreeSet<char> = ids.iter().flat_map(|id| id.suffix().chars()).collect();
    assert_eq!(alphabet.len(), 36);
    assert!(ids.iter().all(|id| id.agent() == "a-b"));
}

#[test]
fn parse_rejects_what_is_not_an_identity() {
    for bad in [
        "",
        "researcher",
        "researcher-",
        "researcher-abcd",
        "researcher-abcdef",
        "researcher-ABCDE",
        "Researcher-abcde",
        "-abcde",
        "9lives-abcde",
        "re/searcher-abcde",
        "researcher-ab_de",
    ] {
        assert!(
            matches!(Identity::parse(bad), Err(Error::InvalidIdentity { .. })),
            "{bad:?} was accepted"
        );
    }
    insta::assert_snapshot!(Identity::parse("bob").unwrap_err().to_string());
}

#[test]
fn agent_names_that_cannot_name_a_bottle_are_refused() {
    let err = Identity::generate("My Agent").unwrap_err();
    assert!(matches!(err, Error::InvalidAgentName { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn identities_round_trip_through_serde_as_strings() {
    let id = Identity::from_parts("researcher", "m3hxd").unwrap();
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"researcher-m3hxd\"");
    assert_eq!(serde_json::from_str::<Identity>(&json).unwrap(), id);
    assert!(serde_json::from_str::<Identity>("\"nope\"").is_err());
}
