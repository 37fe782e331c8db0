//! Resume state under `$CLAUDE_BOTTLE_HOME/state/<identity>/`.

use bottle_core::{BottleState, Error, Identity, StateStore};

fn state(identity: &Identity) -> BottleState {
    BottleState {
        identity: identity.clone(),
        agent: identity.agent().to_owned(),
        cwd: "/work/project".into(),
        copy_cwd: true,
        backend: "docker".to_owned(),
        started: time::OffsetDateTime::from_unix_timestamp(1_795_730_400).unwrap(),
        image: Some("claude-bottle:latest".to_owned()),
        remote_control: false,
    }
}

#[test]
fn write_load_list_remove() {
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::new(home.path());
    let a = Identity::from_parts("researcher", "aaaaa").unwrap();
    let b = Identity::from_parts("writer", "bbbbb").unwrap();

    let dir = store.write(&state(&b)).unwrap();
    assert_eq!(dir, home.path().join("state/writer-bbbbb"));
    store.write(&state(&a)).unwrap();
    assert_eq!(store.load(&a).unwrap(), state(&a));
    assert_eq!(store.list().unwrap(), vec![state(&a), state(&b)]);

    let file = std::fs::read_to_string(dir.join(bottle_core::state::STATE_FILE)).unwrap();
    insta::assert_snapshot!(file);

    store.remove(&a).unwrap();
    assert!(!store.exists(&a));
    store.remove(&a).unwrap(); // removing twice is fine
    assert_eq!(store.list().unwrap(), vec![state(&b)]);
}

#[cfg(unix)]
#[test]
fn state_folders_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::new(home.path());
    let id = Identity::from_parts("researcher", "aaaaa").unwrap();
    let dir = store.write(&state(&id)).unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn missing_state_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::new(home.path());
    let id = Identity::from_parts("researcher", "zzzzz").unwrap();
    let err = store.load(&id).unwrap_err();
    assert!(matches!(err, Error::StateNotFound { .. }));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&home.path().display().to_string(), "[HOME]");
    settings.bind(|| insta::assert_snapshot!(err.to_string()));
}

#[test]
fn corrupt_state_names_the_file() {
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::new(home.path());
    let id = Identity::from_parts("researcher", "ccccc").unwrap();
    let dir = store.write(&state(&id)).unwrap();
    std::fs::write(dir.join(bottle_core::state::STATE_FILE), "{not json").unwrap();
    let err = store.load(&id).unwrap_err();
    assert!(matches!(&err, Error::StateFormat { path, .. } if path.starts_with(&dir)));
}

#[test]
fn listing_ignores_folders_that_are_not_identities() {
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::new(home.path());
    std::fs::create_dir_all(home.path().join("state/notes")).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(
        StateStore::new(home.path().join("absent"))
            .list()
            .unwrap()
            .is_empty()
    );
}
