//! [`ManifestIndex`]: every manifest file read once, the trust boundary enforced, and
//! [`ManifestIndex::manifest`] folding one agent's bottle chain.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::builtin::{self, ClaudeAuth, DEFAULT_NAME};
use crate::error::{Diagnostic, ManifestError, Warning};
use crate::escape::escape_path;
use crate::file::{self, AgentFile, BottleFile, Source};
use crate::git::GitUser;
use crate::layout::Layout;
use crate::model::{
    Agent, AgentImage, Bottle, EffectiveRoute, Egress, EnvVar, GitEntry, Manifest, Origin,
    PermissionMode, RepositoryAgents, RouteSource,
};
use crate::route::{LogMode, Route};
use crate::yaml::MAX_INPUT_BYTES;

/// An agent or a bottle as listed: where it comes from and whether its file is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub name: String,
    /// Where it comes from.
    pub origin: Origin,
    /// The file, `None` for built-ins.
    pub path: Option<PathBuf>,
    /// For agents, the bottle it names; for bottles, the bottles it extends.
    pub uses: Vec<String>,
    /// Errors in the file itself (resolution errors such as a missing bottle are not counted).
    pub errors: usize,
}

/// What `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Manifest files read (built-ins not counted).
    pub files: usize,
    /// Agents visible (built-in included).
    pub agents: usize,
    /// Bottles visible (built-in included).
    pub bottles: usize,
    /// Every error of every file and every agent's and bottle's resolution, sorted by file
    /// and position, without duplicates.
    pub errors: Vec<Diagnostic>,
    /// Every warning.
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone)]
struct Slot<T> {
    origin: Origin,
    source: Option<Source>,
    parsed: Result<T, Vec<Diagnostic>>,
}

impl<T> Slot<T> {
    fn path(&self) -> Option<PathBuf> {
        self.source.as_ref().map(|s| s.path.clone())
    }
}

/// Every agent and bottle visible from a [`Layout`], read once.
///
/// Loading never fails: a broken file is recorded with its diagnostics and fails only when it
/// is selected ([`ManifestIndex::manifest`]); [`ManifestIndex::check`] reports every problem.
#[derive(Debug, Clone)]
pub struct ManifestIndex {
    layout: Layout,
    claude_auth: Option<ClaudeAuth>,
    agents: BTreeMap<String, Slot<AgentFile>>,
    bottles: BTreeMap<String, Slot<BottleFile>>,
    /// Repository agents named like a home or the built-in agent: never selectable, still
    /// checked.
    ignored_repo_agents: Vec<Slot<AgentFile>>,
    /// Problems not tied to one agent or bottle (unreadable folders, refused files with bad names).
    other_errors: Vec<Diagnostic>,
    warnings: Vec<Warning>,
    files: usize,
    ignored_repo_bottles: BTreeSet<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agent,
    Bottle,
}

impl ManifestIndex {
    /// Read every manifest file under `layout`: bottles from the claude-bottle home only, agents
    /// from the home and then the working directory. A repository agent never replaces a home
    /// agent or the built-in `default`: it is ignored, with a [`Warning::RepoAgentIgnored`], so
    /// that a name the user knows always starts the user's own agent. `claude_auth` is the host
    /// credential the built-in `api.anthropic.com` route injects (see [`ClaudeAuth::detect`]).
    pub fn load(layout: &Layout, claude_auth: Option<ClaudeAuth>) -> Self {
        let mut index = ManifestIndex {
            layout: layout.clone(),
            claude_auth,
            agents: BTreeMap::new(),
            bottles: BTreeMap::new(),
            ignored_repo_agents: Vec::new(),
            other_errors: Vec::new(),
            warnings: Vec::new(),
            files: 0,
            ignored_repo_bottles: BTreeSet::new(),
        };
        index.bottles.insert(
            DEFAULT_NAME.to_owned(),
            Slot {
                origin: Origin::BuiltIn,
                source: None,
                parsed: Ok(BottleFile::default()),
            },
        );
        index.agents.insert(
            DEFAULT_NAME.to_owned(),
            Slot {
                origin: Origin::BuiltIn,
                source: None,
                parsed: Ok(AgentFile {
                    bottle: DEFAULT_NAME.to_owned(),
                    bottle_pos: crate::file::Pos::default(),
                    skills: Vec::new(),
                    prompt: builtin::DEFAULT_PROMPT.to_owned(),
                    permission_mode: PermissionMode::default(),
                }),
            },
        );

        let home_bottles = layout.bottles_dir();
        let home_agents = layout.home_agents_dir();
        index.scan(&home_bottles, Origin::Home, Kind::Bottle);
        index.scan(&home_agents, Origin::Home, Kind::Agent);

        let repo_agents = layout.repo_agents_dir();
        let repo_bottles = layout.repo_bottles_dir();
        // When the working directory is the user's home, the repository folders *are* the home
        // folders: read them once, as home.
        if !same_dir(&repo_bottles, &home_bottles) && repo_bottles.symlink_metadata().is_ok() {
            index.warnings.push(Warning::RepoBottlesIgnored {
                dir: repo_bottles.clone(),
            });
            if let Ok(entries) = fs::read_dir(&repo_bottles) {
                for entry in entries.flatten() {
                    if let Some(stem) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".md"))
                    {
                        index.ignored_repo_bottles.insert(stem.to_owned());
                    }
                }
            }
        }
        if !same_dir(&repo_agents, &home_agents) && repo_agents.symlink_metadata().is_ok() {
            index.scan_repo_agents(&repo_agents);
        }
        index
    }

    /// The layout this index was read from.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every visible agent, sorted by name.
    pub fn agents(&self) -> Vec<Entry> {
        self.agents
            .iter()
            .map(|(name, slot)| Entry {
                name: name.clone(),
                origin: slot.origin,
                path: slot.path(),
                uses: slot
                    .parsed
                    .as_ref()
                    .map(|a| vec![a.bottle.clone()])
                    .unwrap_or_default(),
                errors: slot.parsed.as_ref().err().map_or(0, Vec::len),
            })
            .collect()
    }

    /// Every visible bottle, sorted by name.
    pub fn bottles(&self) -> Vec<Entry> {
        self.bottles
            .iter()
            .map(|(name, slot)| Entry {
                name: name.clone(),
                origin: slot.origin,
                path: slot.path(),
                uses: slot
                    .parsed
                    .as_ref()
                    .map(|b| b.extends.iter().map(|(n, _)| n.clone()).collect())
                    .unwrap_or_default(),
                errors: slot.parsed.as_ref().err().map_or(0, Vec::len),
            })
            .collect()
    }

    /// Warnings found while loading, in the order found.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Every problem of every file, and of resolving every agent and bottle.
    pub fn check(&self) -> CheckReport {
        let mut errors: Vec<Diagnostic> = self.other_errors.clone();
        for slot in self.agents.values().chain(&self.ignored_repo_agents) {
            if let Err(d) = &slot.parsed {
                errors.extend(d.iter().cloned());
            }
        }
        for name in self.bottles.keys() {
            if let Err(d) = self.fold(name) {
                errors.extend(d);
            }
        }
        for (name, slot) in &self.agents {
            if let (Ok(agent), Some(source)) = (&slot.parsed, &slot.source)
                && let Err(d) = self.agent_bottle(name, slot.origin, agent, source)
            {
                errors.push(d);
            }
        }
        errors.sort_by(|a, b| {
            (&a.path, a.line, a.column, &a.message).cmp(&(&b.path, b.line, b.column, &b.message))
        });
        errors.dedup();
        CheckReport {
            files: self.files,
            agents: self.agents.len(),
            bottles: self.bottles.len(),
            errors,
            warnings: self.warnings.clone(),
        }
    }

    /// One agent with its effective bottle.
    ///
    /// # Errors
    ///
    /// [`ManifestError::UnknownAgent`] when no agent has that name, [`ManifestError::Invalid`]
    /// with every problem of the agent's file, its bottle and the bottles it extends.
    pub fn manifest(&self, agent: &str) -> Result<Manifest, ManifestError> {
        let slot = self
            .agents
            .get(agent)
            .ok_or_else(|| ManifestError::UnknownAgent {
                name: agent.to_owned(),
                known: self.agents.keys().cloned().collect(),
            })?;
        let invalid = |diagnostics| ManifestError::Invalid {
            agent: agent.to_owned(),
            diagnostics,
        };
        let file = slot.parsed.as_ref().map_err(|d| invalid(d.clone()))?;
        if let Some(source) = &slot.source {
            self.agent_bottle(agent, slot.origin, file, source)
                .map_err(|d| invalid(vec![d]))?;
        }
        let folded = self.fold(&file.bottle).map_err(invalid)?;
        let bottle_slot = &self.bottles[&file.bottle];

        let mut routes: Vec<EffectiveRoute> = builtin::claude_code_routes(self.claude_auth)
            .into_iter()
            .filter(|r| !folded.routes.iter().any(|(m, _)| m.host == r.host))
            .map(|route| EffectiveRoute {
                route,
                source: RouteSource::ClaudeCode,
            })
            .collect();
        routes.extend(
            folded
                .routes
                .into_iter()
                .map(|(route, from)| EffectiveRoute {
                    route,
                    source: RouteSource::Bottle(from),
                }),
        );

        Ok(Manifest {
            agent: Agent {
                name: agent.to_owned(),
                origin: slot.origin,
                path: slot.path(),
                bottle: file.bottle.clone(),
                skills: file.skills.clone(),
                prompt: file.prompt.clone(),
                permission_mode: file.permission_mode,
            },
            bottle: Bottle {
                name: file.bottle.clone(),
                origin: bottle_slot.origin,
                path: bottle_slot.path(),
                chain: folded.chain,
                env: folded.env.into_values().collect(),
                git: folded.git.into_values().collect(),
                git_user: folded.git_user,
                egress: Egress {
                    routes,
                    log: folded.log.unwrap_or_default(),
                    trust: folded.trust,
                    networks: folded.networks,
                },
                supervise: folded.supervise.unwrap_or(true),
                image: folded.image,
                repository_agents: bottle_slot
                    .parsed
                    .as_ref()
                    .map_or(RepositoryAgents::Deny, |b| b.repository_agents),
            },
        })
    }

    /// The agent's `bottle` must name a visible bottle, and a repository agent's a bottle that
    /// takes repository agents: the built-in one, or a home one with `repository_agents: allow`.
    fn agent_bottle(
        &self,
        name: &str,
        origin: Origin,
        agent: &AgentFile,
        source: &Source,
    ) -> Result<(), Diagnostic> {
        if let Some(bottle) = self.bottles.get(&agent.bottle) {
            // A broken bottle's own errors are reported for the bottle.
            let allowed = origin != Origin::Repo
                || bottle.origin == Origin::BuiltIn
                || !matches!(&bottle.parsed, Ok(b) if b.repository_agents == RepositoryAgents::Deny);
            if allowed {
                return Ok(());
            }
            let bottle_file = bottle.path().unwrap_or_default();
            return Err(source.diag(
                agent.bottle_pos,
                format!(
                    "repository agent `{name}` cannot use bottle `{}`, which does not allow \
                     repository agents",
                    agent.bottle
                ),
                Some(format!(
                    "once you have read the agent, copy it into {}/ to make it yours; or add \
                     `repository_agents: allow` to {} to let every repository's agents use what \
                     that bottle grants",
                    escape_path(&self.layout.home_agents_dir()),
                    escape_path(&bottle_file)
                )),
            ));
        }
        let hint = if self.ignored_repo_bottles.contains(&agent.bottle) {
            format!(
                "a bottle `{}` exists under {}, but bottles are read only from {}; move it there if you trust it",
                agent.bottle,
                escape_path(&self.layout.repo_bottles_dir()),
                escape_path(&self.layout.bottles_dir())
            )
        } else {
            let known: Vec<&str> = self.bottles.keys().map(String::as_str).collect();
            match crate::yaml::did_you_mean(&agent.bottle, known.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? (known bottles: {})",
                    known.join(", ")
                ),
                None => format!(
                    "create {}/{}.md, or use one of: {}",
                    escape_path(&self.layout.bottles_dir()),
                    agent.bottle,
                    known.join(", ")
                ),
            }
        };
        Err(source.diag(
            agent.bottle_pos,
            format!(
                "agent `{name}` uses bottle `{}`, which does not exist",
                agent.bottle
            ),
            Some(hint),
        ))
    }

    /// Fold `name`'s `extends` chain (the bottle must exist).
    fn fold(&self, name: &str) -> Result<Folded, Vec<Diagnostic>> {
        let mut stack = vec![name.to_owned()];
        let mut diags = Vec::new();
        let folded = self.fold_inner(name, &mut stack, &mut diags);
        match folded {
            Some(f) if diags.is_empty() => Ok(f),
            _ => Err(diags),
        }
    }

    fn fold_inner(
        &self,
        name: &str,
        stack: &mut Vec<String>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Folded> {
        let slot = &self.bottles[name];
        let file = match &slot.parsed {
            Ok(f) => f,
            Err(d) => {
                diags.extend(d.iter().cloned());
                return None;
            }
        };
        let mut acc = Folded::default();
        let mut ok = true;
        for (parent, pos) in &file.extends {
            let Some(source) = &slot.source else { continue };
            if parent == name {
                diags.push(source.diag(
                    *pos,
                    format!("bottle `{name}` extends itself"),
                    Some("remove it from `extends`".to_owned()),
                ));
                ok = false;
            } else if stack.contains(parent) {
                let mut chain = stack.clone();
                chain.push(parent.clone());
                diags.push(source.diag(
                    *pos,
                    format!("`extends` makes a cycle: {}", chain.join(" → ")),
                    Some("a bottle cannot extend a bottle that extends it".to_owned()),
                ));
                ok = false;
            } else if !self.bottles.contains_key(parent) {
                let known: Vec<&str> = self.bottles.keys().map(String::as_str).collect();
                let hint = match crate::yaml::did_you_mean(parent, known.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("known bottles: {}", known.join(", ")),
                };
                diags.push(source.diag(
                    *pos,
                    format!("bottle `{name}` extends `{parent}`, which does not exist"),
                    Some(hint),
                ));
                ok = false;
            } else {
                stack.push(parent.clone());
                match self.fold_inner(parent, stack, diags) {
                    Some(p) => acc.absorb(p),
                    None => ok = false,
                }
                stack.pop();
            }
        }
        if !ok {
            return None;
        }
        acc.absorb(Folded::own(name, file));
        Some(acc)
    }

    fn scan(&mut self, dir: &Path, origin: Origin, kind: Kind) {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.other_errors.push(Diagnostic::file(
                    dir,
                    format!("cannot read the folder: {e}"),
                    Some("check its permissions".to_owned()),
                ));
                return;
            }
        };
        let root = match fs::canonicalize(dir) {
            Ok(r) => r,
            Err(e) => {
                self.other_errors.push(Diagnostic::file(
                    dir,
                    format!("cannot resolve the folder: {e}"),
                    None,
                ));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".md"))
                .filter(|n| file::is_valid_name(n))
            else {
                self.warnings.push(Warning::NotAManifest { path });
                continue;
            };
            let name = name.to_owned();
            self.files += 1;
            let source = read_file(&path, &root);
            let (source, parsed) = match source {
                Ok(source) => {
                    let parsed = match kind {
                        Kind::Agent => Parsed::Agent(file::parse_agent(&source)),
                        Kind::Bottle => Parsed::Bottle(file::parse_bottle(&source, &self.layout)),
                    };
                    (source, parsed)
                }
                Err(d) => (
                    Source {
                        path: path.clone(),
                        text: String::new(),
                    },
                    match kind {
                        Kind::Agent => Parsed::Agent(Err(vec![d])),
                        Kind::Bottle => Parsed::Bottle(Err(vec![d])),
                    },
                ),
            };
            match parsed {
                Parsed::Agent(parsed) => {
                    let slot = Slot {
                        origin,
                        source: Some(source),
                        parsed,
                    };
                    self.add_agent(name, slot);
                }
                Parsed::Bottle(parsed) => {
                    self.bottles.insert(
                        name,
                        Slot {
                            origin,
                            source: Some(source),
                            parsed,
                        },
                    );
                }
            }
        }
    }

    fn add_agent(&mut self, name: String, slot: Slot<AgentFile>) {
        if slot.origin == Origin::Repo
            && let Some(kept) = self.agents.get(&name)
        {
            self.warnings.push(Warning::RepoAgentIgnored {
                name,
                path: slot.path().unwrap_or_default(),
                kept: kept.path(),
            });
            self.ignored_repo_agents.push(slot);
            return;
        }
        self.agents.insert(name, slot);
    }

    /// Repository agents, refusing an `agents` folder that is a symlink out of the repository.
    fn scan_repo_agents(&mut self, dir: &Path) {
        let inside = match (fs::canonicalize(dir), fs::canonicalize(self.layout.cwd())) {
            (Ok(d), Ok(cwd)) => d.starts_with(&cwd),
            _ => false,
        };
        if !inside && dir.is_dir() {
            self.other_errors.push(Diagnostic::file(
                dir,
                "refused: the folder resolves outside the working directory",
                Some("a repository's .claude-bottle/agents must be a real folder inside it, not a symlink out of it".to_owned()),
            ));
            return;
        }
        self.scan(dir, Origin::Repo, Kind::Agent);
    }
}

enum Parsed {
    Agent(Result<AgentFile, Vec<Diagnostic>>),
    Bottle(Result<BottleFile, Vec<Diagnostic>>),
}

/// Whether two paths are the same existing folder (after symlinks).
fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// Read a manifest file, refusing what must not be read: symlinks out of its folder,
/// non-regular files (a FIFO would block us), files over 1 MiB, non-UTF-8 text, NULs.
fn read_file(path: &Path, root: &Path) -> Result<Source, Diagnostic> {
    let canonical = fs::canonicalize(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read the file: {e}"), None))?;
    if !canonical.starts_with(root) {
        return Err(Diagnostic::file(
            path,
            "refused: the file is a symlink to a place outside its folder",
            Some(format!(
                "copy the file into {} instead of linking to it",
                escape_path(root)
            )),
        ));
    }
    let meta = fs::metadata(&canonical)
        .map_err(|e| Diagnostic::file(path, format!("cannot read the file: {e}"), None))?;
    if !meta.is_file() {
        return Err(Diagnostic::file(path, "refused: not a regular file", None));
    }
    let too_large = || {
        Diagnostic::file(
            path,
            format!("the file is larger than the limit of {MAX_INPUT_BYTES} bytes"),
            Some("manifests are small text files; check that this is the right file".to_owned()),
        )
    };
    if meta.len() > MAX_INPUT_BYTES as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    fs::File::open(&canonical)
        .and_then(|f| f.take(MAX_INPUT_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Diagnostic::file(path, format!("cannot read the file: {e}"), None))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    let text = file::decode(path, bytes)?;
    Ok(Source {
        path: path.to_owned(),
        text,
    })
}

/// A bottle chain folded so far.
#[derive(Debug, Default)]
struct Folded {
    chain: Vec<String>,
    env: BTreeMap<String, EnvVar>,
    git: BTreeMap<String, GitEntry>,
    git_user: GitUser,
    routes: Vec<(Route, String)>,
    log: Option<LogMode>,
    trust: Vec<PathBuf>,
    networks: Vec<String>,
    supervise: Option<bool>,
    image: AgentImage,
}

impl Folded {
    fn own(name: &str, file: &BottleFile) -> Self {
        Folded {
            chain: vec![name.to_owned()],
            env: file
                .env
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect(),
            git: file
                .git
                .iter()
                .map(|g| (g.name.clone(), g.clone()))
                .collect(),
            git_user: file.git_user.clone(),
            routes: file
                .routes
                .iter()
                .map(|r| (r.clone(), name.to_owned()))
                .collect(),
            log: file.log,
            trust: file.trust.clone(),
            networks: file.networks.clone(),
            supervise: file.supervise,
            image: file.image.clone(),
        }
    }

    /// Fold `later` over `self`: env and git by key (later wins), routes concatenated with the
    /// later route replacing an earlier one for the same host, lists unioned, scalars last-wins.
    fn absorb(&mut self, later: Folded) {
        for name in later.chain {
            if !self.chain.contains(&name) {
                self.chain.push(name);
            }
        }
        self.env.extend(later.env);
        self.git.extend(later.git);
        self.git_user.name = later.git_user.name.or(self.git_user.name.take());
        self.git_user.email = later.git_user.email.or(self.git_user.email.take());
        for (route, from) in later.routes {
            self.routes.retain(|(r, _)| r.host != route.host);
            self.routes.push((route, from));
        }
        self.log = later.log.or(self.log);
        for t in later.trust {
            if !self.trust.contains(&t) {
                self.trust.push(t);
            }
        }
        for n in later.networks {
            if !self.networks.contains(&n) {
                self.networks.push(n);
            }
        }
        self.supervise = later.supervise.or(self.supervise);
        self.image.base = later.image.base.or(self.image.base.take());
        self.image.dockerfile = later.image.dockerfile.or(self.image.dockerfile.take());
        self.image.claude_code_version = later
            .image
            .claude_code_version
            .or(self.image.claude_code_version.take());
    }
}
