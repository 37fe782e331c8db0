//! Copying the working directory: the folders that must never be copied, and the credentials a
//! copied `.git` would carry, as data on the plan.

use std::path::Path;

use bottle_core::testing::FakeBackend;
use bottle_core::{BottleBackend, BottlePlan, Error, GitCredentialKind};

use crate::support::{self, Host};

async fn prepare_copying(
    host: &Host,
    cwd: &Path,
) -> bottle_core::Result<bottle_core::testing::FakePlan> {
    let mut spec = support::spec(host);
    spec.user_cwd = cwd.to_path_buf();
    spec.copy_cwd = true;
    FakeBackend::new().prepare(spec, &host.ctx).await
}

#[tokio::test]
async fn a_working_directory_that_holds_a_secret_store_is_never_copied() {
    let host = Host::new();
    let home = host.home().to_path_buf();
    let ssh = home.join(".ssh");
    let cases: Vec<(&str, &Path, &str)> = vec![
        ("the home itself", &home, "your home folder"),
        (
            "a folder holding the home",
            home.parent().unwrap(),
            "your home folder",
        ),
        ("~/.ssh", &ssh, "your SSH keys"),
        (
            "the claude-bottle home",
            &host.ctx.bottle_home,
            "the claude-bottle home",
        ),
        ("the filesystem root", Path::new("/"), "your home folder"),
    ];
    let mut shown = Vec::new();
    for (case, cwd, what) in cases {
        let err = prepare_copying(&host, cwd).await.expect_err(case);
        assert!(
            matches!(&err, Error::CwdHoldsSecrets { what: w, .. } if *w == what),
            "{case}: {err}"
        );
        let parent = format!("directory {} into", home.parent().unwrap().display());
        shown.push(err.to_string().replace(&parent, "directory [PARENT] into"));
    }
    support::redactions(&host).bind(|| insta::assert_snapshot!(shown.join("\n")));
}

#[tokio::test]
async fn symlinks_do_not_get_a_secret_store_copied() {
    let host = Host::new();
    let home = host.home().to_path_buf();
    let outside = tempfile::tempdir().unwrap();

    // A symlink to the home, as the working directory, is the home.
    let home_link = outside.path().join("home-link");
    std::os::unix::fs::symlink(&home, &home_link).unwrap();
    let err = prepare_copying(&host, &home_link).await.unwrap_err();
    assert!(
        matches!(&err, Error::CwdHoldsSecrets { what, .. } if *what == "your home folder"),
        "{err}"
    );

    // A `~/.claude` that links elsewhere: the folder it points to holds the login.
    let dotfiles = outside.path().join("dotfiles");
    std::fs::create_dir_all(dotfiles.join("claude/skills/web")).unwrap();
    std::fs::remove_dir_all(home.join(".claude")).unwrap();
    std::os::unix::fs::symlink(dotfiles.join("claude"), home.join(".claude")).unwrap();
    let err = prepare_copying(&host, &dotfiles).await.unwrap_err();
    assert!(
        matches!(&err, Error::CwdHoldsSecrets { what, .. } if *what == "your Claude Code login"),
        "{err}"
    );
}

#[tokio::test]
async fn a_project_folder_is_copied_and_the_home_is_fine_without_copying() {
    let host = Host::new();
    let project = host.home().join("src/app");
    std::fs::create_dir_all(&project).unwrap();
    let plan = prepare_copying(&host, &project)
        .await
        .expect("a project folder");
    assert!(plan.prepared.cwd_credentials.is_empty());

    let mut spec = support::spec(&host);
    spec.user_cwd = host.home().to_path_buf();
    assert!(
        FakeBackend::new().prepare(spec, &host.ctx).await.is_ok(),
        "nothing is copied without copy_cwd"
    );
}

#[tokio::test]
async fn credentials_in_the_copied_git_config_are_on_the_plan_by_place_never_by_value() {
    let host = Host::new();
    let project = host.home().join("src/app");
    std::fs::create_dir_all(project.join(".git/modules/lib")).unwrap();
    std::fs::write(
        project.join(".git/config"),
        "[core]\n\tbare = false\n[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic SECRET-HEADER\n\
         [remote \"origin\"]\n\turl = https://x-access-token:SECRET-TOKEN@github.com/me/app.git\n",
    )
    .unwrap();
    std::fs::write(
        project.join(".git/modules/lib/config"),
        "[remote \"origin\"]\n\turl = https://me:SECRET-PASSWORD@example.com/lib.git\n",
    )
    .unwrap();

    let plan = prepare_copying(&host, &project).await.expect("prepared");
    let found: Vec<(String, usize, &str, GitCredentialKind)> = plan
        .prepared
        .cwd_credentials
        .iter()
        .map(|c| (c.file.display().to_string(), c.line, c.key.as_str(), c.kind))
        .collect();
    assert_eq!(
        found,
        [
            (
                ".git/config".to_owned(),
                4,
                "http.https://github.com/.extraheader",
                GitCredentialKind::ExtraHeader
            ),
            (
                ".git/config".to_owned(),
                6,
                "remote.origin.url",
                GitCredentialKind::UrlCredentials
            ),
            (
                ".git/modules/lib/config".to_owned(),
                2,
                "remote.origin.url",
                GitCredentialKind::UrlCredentials
            ),
        ]
    );
    let summary = plan.summary();
    assert_eq!(summary.cwd_credentials, plan.prepared.cwd_credentials);
    let json = serde_json::to_string(&summary).unwrap();
    for secret in ["SECRET-HEADER", "SECRET-TOKEN", "SECRET-PASSWORD"] {
        assert!(!json.contains(secret), "{secret} in the plan");
    }

    // Without copying, nothing is read.
    let mut spec = support::spec(&host);
    spec.user_cwd = project;
    let plan = FakeBackend::new().prepare(spec, &host.ctx).await.unwrap();
    assert!(plan.prepared.cwd_credentials.is_empty());
}

#[tokio::test]
async fn a_symlinked_git_folder_is_not_read() {
    // A copy stores the link, not what it points to.
    let host = Host::new();
    let project = host.home().join("src/app");
    let elsewhere = host.home().join("elsewhere");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        elsewhere.join("config"),
        "[http]\n\textraheader = AUTHORIZATION: basic x\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, project.join(".git")).unwrap();
    let plan = prepare_copying(&host, &project).await.expect("prepared");
    assert!(plan.prepared.cwd_credentials.is_empty());
}
