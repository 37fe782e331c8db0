//! Which refs a push may move: pure decisions over the updates a push asks for.
//!
//! Each update is checked against the entry's rules, in this order, and every refusal names its
//! rule and its ref:
//!
//! | rule | refuses |
//! |---|---|
//! | `allow-tags` | any change under `refs/tags/` unless `AllowTags` |
//! | `push-refs` | a ref no `PushRefs` pattern matches (default `refs/heads/*`) |
//! | `allow-delete` | a deletion unless `AllowDelete` |
//! | `allow-force` | a non-fast-forward update, or moving an existing tag, unless `AllowForce` |

use std::fmt;

use bottle_manifest::GitEntry;
use bottle_manifest::git::TAGS_PREFIX;

/// What an update does to its ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// The ref does not exist yet.
    Create,
    /// The new commit descends from the old one.
    FastForward,
    /// Anything else that replaces an existing value: history rewritten, or a tag moved.
    Force,
    /// The ref is removed.
    Delete,
}

/// One ref update of a push, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full ref name.
    pub refname: String,
    /// What it does.
    pub kind: UpdateKind,
}

/// A rule of the ref policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRule {
    /// `PushRefs`.
    PushRefs,
    /// `AllowTags`.
    AllowTags,
    /// `AllowDelete`.
    AllowDelete,
    /// `AllowForce`.
    AllowForce,
}

impl PolicyRule {
    /// The stable id shown in refusals: `push-refs`, `allow-tags`, `allow-delete`,
    /// `allow-force`.
    pub fn id(self) -> &'static str {
        match self {
            PolicyRule::PushRefs => "push-refs",
            PolicyRule::AllowTags => "allow-tags",
            PolicyRule::AllowDelete => "allow-delete",
            PolicyRule::AllowForce => "allow-force",
        }
    }
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A refused update: the ref, the rule, and a sentence saying why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The ref.
    pub refname: String,
    /// The rule that refuses it.
    pub rule: PolicyRule,
    /// Why, and how to push instead.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.refname, self.rule, self.message)
    }
}

/// The refusals of `updates` under `entry`'s policy: empty when the push may go on. At most
/// one refusal per update (the first rule that refuses it).
pub fn check(entry: &GitEntry, updates: &[RefUpdate]) -> Vec<Refusal> {
    let patterns = entry.effective_push_refs();
    updates
        .iter()
        .filter_map(|u| {
            let refuse = |rule: PolicyRule, message: String| Refusal {
                refname: u.refname.clone(),
                rule,
                message,
            };
            let is_tag = u.refname.starts_with(TAGS_PREFIX);
            // Tags first: "tags are off" says more than "outside refs/heads/*".
            if is_tag && !entry.allow_tags {
                return Some(refuse(
                    PolicyRule::AllowTags,
                    "tags may not be pushed (`AllowTags` is off)".to_owned(),
                ));
            }
            if !patterns.iter().any(|p| p.matches(&u.refname)) {
                let message = if patterns.is_empty() {
                    format!(
                        "entry `{}` is fetch-only (`PushRefs: []`); nothing may be pushed to it",
                        entry.name
                    )
                } else {
                    let listed = patterns
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let example = patterns
                        .iter()
                        .find(|p| !p.only_tags())
                        .map(|p| p.as_str().replacen('*', "<name>", 1))
                        .map(|target| format!("; push there instead, e.g. `git push origin HEAD:{target}`"))
                        .unwrap_or_default();
                    format!("the ref is outside `PushRefs` ({listed}){example}")
                };
                return Some(refuse(PolicyRule::PushRefs, message));
            }
            match u.kind {
                UpdateKind::Delete if !entry.allow_delete => Some(refuse(
                    PolicyRule::AllowDelete,
                    "refs may not be deleted (`AllowDelete` is off)".to_owned(),
                )),
                UpdateKind::Force if !entry.allow_force => Some(refuse(
                    PolicyRule::AllowForce,
                    if is_tag {
                        "an existing tag may not be moved (`AllowForce` is off); push a new tag".to_owned()
                    } else {
                        "this is not a fast-forward of the upstream's branch, and force pushes are off (`AllowForce`); fetch, rebase onto it, and push again".to_owned()
                    },
                )),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extra: &str) -> GitEntry {
        bottle_manifest::yaml::parse(&format!(
            "Name: app\nUpstream: ssh://git@h/r.git\nIdentityFile: /k\nKnownHostKey: ssh-ed25519 AAAA\n{extra}"
        ))
        .unwrap()
    }

    fn update(refname: &str, kind: UpdateKind) -> RefUpdate {
        RefUpdate {
            refname: refname.to_owned(),
            kind,
        }
    }

    fn rules(entry: &GitEntry, updates: &[RefUpdate]) -> Vec<(String, &'static str)> {
        check(entry, updates)
            .into_iter()
            .map(|r| (r.refname, r.rule.id()))
            .collect()
    }

    #[test]
    fn the_default_lets_branches_move_forward_only() {
        let e = entry("");
        assert!(
            check(
                &e,
                &[
                    update("refs/heads/main", UpdateKind::FastForward),
                    update("refs/heads/new", UpdateKind::Create)
                ]
            )
            .is_empty()
        );
        assert_eq!(
            rules(
                &e,
                &[
                    update("refs/heads/main", UpdateKind::Force),
                    update("refs/heads/old", UpdateKind::Delete),
                    update("refs/tags/v1", UpdateKind::Create),
                    update("refs/notes/commits", UpdateKind::Create),
                ]
            ),
            [
                ("refs/heads/main".to_owned(), "allow-force"),
                ("refs/heads/old".to_owned(), "allow-delete"),
                ("refs/tags/v1".to_owned(), "allow-tags"),
                ("refs/notes/commits".to_owned(), "push-refs"),
            ]
        );
    }

    #[test]
    fn push_refs_restrict_and_the_flags_open() {
        let e = entry(
            "PushRefs: [refs/heads/agent/*, refs/tags/*]\nAllowTags: true\nAllowForce: true\nAllowDelete: true\n",
        );
        assert!(
            check(
                &e,
                &[
                    update("refs/heads/agent/a/b", UpdateKind::Force),
                    update("refs/heads/agent/x", UpdateKind::Delete),
                    update("refs/tags/v2", UpdateKind::Create),
                    update("refs/tags/v1", UpdateKind::Force),
                ]
            )
            .is_empty()
        );
        let refused = check(&e, &[update("refs/heads/main", UpdateKind::FastForward)]);
        assert_eq!(refused.len(), 1);
        insta::assert_snapshot!(refused[0].to_string(), @"refs/heads/main: [push-refs] the ref is outside `PushRefs` (refs/heads/agent/*, refs/tags/*); push there instead, e.g. `git push origin HEAD:refs/heads/agent/<name>`");
    }

    #[test]
    fn tags_need_allow_tags_and_moving_one_needs_allow_force() {
        let e = entry("AllowTags: true\n");
        assert!(check(&e, &[update("refs/tags/v1", UpdateKind::Create)]).is_empty());
        assert_eq!(
            rules(&e, &[update("refs/tags/v1", UpdateKind::Force)]),
            [("refs/tags/v1".to_owned(), "allow-force")]
        );
        let e = entry("PushRefs: ['refs/*']\n");
        assert_eq!(
            rules(&e, &[update("refs/tags/v1", UpdateKind::Create)]),
            [("refs/tags/v1".to_owned(), "allow-tags")]
        );
    }

    #[test]
    fn a_fetch_only_entry_refuses_every_push() {
        let e = entry("PushRefs: []\n");
        let refused = check(&e, &[update("refs/heads/main", UpdateKind::FastForward)]);
        insta::assert_snapshot!(refused[0].to_string(), @"refs/heads/main: [push-refs] entry `app` is fetch-only (`PushRefs: []`); nothing may be pushed to it");
    }
}
