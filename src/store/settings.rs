//! Rollout settings: which store is primary, which ones are mirrors, and where checkpoints are pushed.
//!
//! Sources, later ones winning: `.entire/settings.json`, then `.entire/settings.local.json` merged key by key
//! (objects recursively; the upstream `checkpoints` block is replaced wholesale, as upstream does), then the
//! `ENTIRE_CHECKPOINTS_PRIMARY` / `ENTIRE_CHECKPOINTS_MIRRORS` environment override.
//!
//! The rollout comes from `strategy_options.checkpoint_store` (unset = legacy branch, `refs-v1-mirror`,
//! `refs-v1`) or, when that key is absent, from upstream's `checkpoints.primary.type` (`git-branch` |
//! `git-refs`; our extension `git-v2` names the v2 layout) plus `checkpoints.mirrors`. The v2 switches combine
//! with any of these: `strategy_options.checkpoints_v2: true` adds the v2 layout as a mirror,
//! `strategy_options.checkpoints_version: 2` (also accepted at the top level) makes it the primary.
//! One primary, any number of mirrors, never the primary twice.
//!
//! Contradictions (e.g. `checkpoints_version: 2` next to `checkpoint_store: "refs-v1"`, or
//! `checkpoints_v2: false` next to a selection that writes v2) are errors naming the file.
//!
//! Invariant: a malformed file or value is an error naming the file and the problem — never a silent fallback
//! that would write to the wrong store. A missing file is simply "no settings".

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Settings file, relative to the worktree root.
pub const SETTINGS_FILE: &str = ".entire/settings.json";
/// Local override file, relative to the worktree root.
pub const LOCAL_SETTINGS_FILE: &str = ".entire/settings.local.json";

/// Storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The legacy `entire/checkpoints/v1` branch.
    GitBranch,
    /// One ref per checkpoint.
    GitRefs,
    /// The v2 layout: `refs/entire/checkpoints/v2/main` plus `…/v2/full/*` generations.
    V2,
}

impl Backend {
    /// Every backend, in the order mirrors are written.
    pub const ALL: [Backend; 3] = [Backend::GitRefs, Backend::GitBranch, Backend::V2];

    /// Human-readable name for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::GitBranch => "legacy branch refs/heads/entire/checkpoints/v1",
            Backend::GitRefs => "checkpoint ref store",
            Backend::V2 => "v2 layout (refs/entire/checkpoints/v2/main and v2/full/*)",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Backend::GitRefs => 1,
            Backend::GitBranch => 2,
            Backend::V2 => 4,
        }
    }
}

/// A set of backends (the mirrors of a rollout); iterates in [`Backend::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backends(u8);

impl Backends {
    /// No backend.
    pub const NONE: Backends = Backends(0);

    /// The set holding just `b`.
    pub const fn of(b: Backend) -> Backends {
        Backends(match b {
            Backend::GitRefs => 1,
            Backend::GitBranch => 2,
            Backend::V2 => 4,
        })
    }

    pub fn contains(&self, b: Backend) -> bool {
        self.0 & b.bit() != 0
    }

    pub fn insert(&mut self, b: Backend) {
        self.0 |= b.bit();
    }

    pub fn remove(&mut self, b: Backend) {
        self.0 &= !b.bit();
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Backend> + '_ {
        Backend::ALL.into_iter().filter(|b| self.contains(*b))
    }
}

impl serde::Serialize for Backends {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One primary store plus any number of write-only mirrors (never the primary itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    pub primary: Backend,
    pub mirrors: Backends,
}

impl Rollout {
    /// Legacy branch only (no settings).
    pub const BRANCH: Rollout = Rollout {
        primary: Backend::GitBranch,
        mirrors: Backends::NONE,
    };
    /// `refs-v1-mirror`.
    pub const REFS_MIRROR: Rollout = Rollout {
        primary: Backend::GitRefs,
        mirrors: Backends::of(Backend::GitBranch),
    };
    /// `refs-v1`.
    pub const REFS: Rollout = Rollout {
        primary: Backend::GitRefs,
        mirrors: Backends::NONE,
    };
    /// `checkpoints_version: 2`: the v2 layout only.
    pub const V2: Rollout = Rollout {
        primary: Backend::V2,
        mirrors: Backends::NONE,
    };

    /// The same rollout with `b` added as a mirror (no-op when `b` is the primary).
    pub fn with_mirror(mut self, b: Backend) -> Rollout {
        if b != self.primary {
            self.mirrors.insert(b);
        }
        self
    }

    /// The mode's name: `v1`, `refs-v1-mirror`, `refs-v1` or `v2`, plus `+<mirror>` for mirrors the mode's name
    /// does not imply (e.g. `refs-v1-mirror+v2`).
    pub fn name(&self) -> String {
        let (base, implied) = match self.primary {
            Backend::GitRefs if self.mirrors.contains(Backend::GitBranch) => {
                ("refs-v1-mirror", Some(Backend::GitBranch))
            }
            Backend::GitRefs => ("refs-v1", None),
            Backend::GitBranch => ("v1", None),
            Backend::V2 => ("v2", None),
        };
        let mut name = base.to_string();
        for m in self.mirrors.iter().filter(|m| Some(*m) != implied) {
            name.push_str(match m {
                Backend::GitRefs => "+refs-mirror",
                Backend::GitBranch => "+v1-mirror",
                Backend::V2 => "+v2",
            });
        }
        name
    }

    /// True if `b` is written at all (primary or mirror).
    pub fn writes(&self, b: Backend) -> bool {
        self.primary == b || self.mirrors.contains(b)
    }

    /// True if the ref store is written at all.
    pub fn writes_refs(&self) -> bool {
        self.writes(Backend::GitRefs)
    }
}

/// Loaded settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rollout: Rollout,
    /// `strategy_options.checkpoint_remote`: a remote name or URL (string), or upstream's
    /// `{"provider": "github", "repo": "org/repo"}` object.
    pub checkpoint_remote: Option<Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rollout: Rollout::BRANCH,
            checkpoint_remote: None,
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("environment variable {var}: {problem}")]
    Env { var: &'static str, problem: String },
}

/// Largest settings file read (real ones are a few hundred bytes).
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Read one settings file: absent is `None`; a symlink (it may be committed, pointing at `/dev/zero`), a FIFO or
/// any other non-regular file, or one over [`MAX_SETTINGS_BYTES`], is an error naming the file.
fn read_file(path: &Path) -> Result<Option<Map<String, Value>>, SettingsError> {
    use std::io::Read;
    let read_err = |source| SettingsError::Read {
        path: path.into(),
        source,
    };
    let invalid = |problem: &str| SettingsError::Invalid {
        path: path.into(),
        problem: problem.into(),
    };
    let kind = match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if kind.is_symlink() {
        return Err(invalid(
            "is a symbolic link; settings must be a regular file",
        ));
    }
    if !kind.is_file() {
        return Err(invalid("is not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(read_err)?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(invalid("is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SETTINGS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(invalid("is larger than 1 MiB"));
    }
    parse_object(&bytes, path).map(Some)
}

/// The top-level JSON object of a settings file's bytes; `path` names the file in errors.
fn parse_object(bytes: &[u8], path: &Path) -> Result<Map<String, Value>, SettingsError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SettingsError::Invalid {
            path: path.into(),
            problem: "the top level must be a JSON object".into(),
        }),
        Err(source) => Err(SettingsError::Json {
            path: path.into(),
            source,
        }),
    }
}

/// Merge `over` into `base` key by key (objects recursively, `checkpoints` wholesale).
fn merge(base: &mut Map<String, Value>, over: Map<String, Value>, top: bool) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) if !(top && k == "checkpoints") => {
                merge(b, o, false)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Load settings for the worktree at `workdir` (`None` for a bare repository: defaults).
pub fn load(workdir: Option<&Path>) -> Result<Settings, SettingsError> {
    let mut merged = Map::new();
    // The file whose value is in force, for error messages.
    let mut origin = PathBuf::from(SETTINGS_FILE);
    if let Some(root) = workdir {
        for name in [SETTINGS_FILE, LOCAL_SETTINGS_FILE] {
            let path = root.join(name);
            if let Some(m) = read_file(&path)? {
                origin = path;
                merge(&mut merged, m, true);
            }
        }
    }
    interpret(&merged, &origin, |k| std::env::var(k).ok())
}

/// Settings as committed: the bytes of a commit's `.entire/settings.json` (the local file is never committed),
/// for a clone whose worktree is not checked out yet. `origin` names the blob in errors.
pub fn from_committed(bytes: &[u8], origin: &Path) -> Result<Settings, SettingsError> {
    if bytes.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(SettingsError::Invalid {
            path: origin.into(),
            problem: "is larger than 1 MiB".into(),
        });
    }
    let merged = parse_object(bytes, origin)?;
    interpret(&merged, origin, |k| std::env::var(k).ok())
}

/// True when a settings file exists in the worktree at `workdir` (the committed or the local one).
pub fn present(workdir: &Path) -> bool {
    [SETTINGS_FILE, LOCAL_SETTINGS_FILE]
        .iter()
        .any(|name| std::fs::symlink_metadata(workdir.join(name)).is_ok())
}

/// Interpret merged settings (pure; `env` supplies environment variables).
pub fn interpret(
    merged: &Map<String, Value>,
    origin: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, SettingsError> {
    let invalid = |problem: String| SettingsError::Invalid {
        path: origin.to_path_buf(),
        problem,
    };
    let strategy = match merged.get("strategy_options") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(invalid("strategy_options must be an object".into())),
    };
    let store = match strategy.get("checkpoint_store") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "" | "v1" => Rollout::BRANCH,
            "refs-v1-mirror" => Rollout::REFS_MIRROR,
            "refs-v1" => Rollout::REFS,
            other => {
                return Err(invalid(format!(
                    "strategy_options.checkpoint_store: unknown mode {other:?} (expected \"refs-v1-mirror\" or \"refs-v1\", or leave it unset)"
                )))
            }
        }),
        Some(_) => return Err(invalid("strategy_options.checkpoint_store must be a string".into())),
    };
    let block = match merged.get("checkpoints") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_block(v).map_err(|p| invalid(format!("checkpoints: {p}")))?),
    };
    let env_rollout = parse_env(&env)?;
    let explicit = env_rollout
        .map(|r| (r, "ENTIRE_CHECKPOINTS_PRIMARY"))
        .or(store.map(|r| (r, "strategy_options.checkpoint_store")))
        .or(block.map(|r| (r, "checkpoints.primary")));
    let rollout = apply_v2(explicit, &strategy, merged).map_err(invalid)?;
    let checkpoint_remote = match strategy.get("checkpoint_remote") {
        None | Some(Value::Null) => None,
        Some(v @ Value::String(s)) if !s.is_empty() => Some(v.clone()),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            return Err(invalid(
                "strategy_options.checkpoint_remote must be a remote name, a URL, or {\"provider\", \"repo\"}".into(),
            ))
        }
    };
    Ok(Settings {
        rollout,
        checkpoint_remote,
    })
}

/// Combine the explicitly selected rollout (and where it came from) with the v2 switches:
/// `strategy_options.checkpoints_v2` (v2 as a mirror) and `checkpoints_version` (2 = v2 primary; read from
/// `strategy_options` or the top level). Contradictions are errors, never silently resolved.
fn apply_v2(
    explicit: Option<(Rollout, &str)>,
    strategy: &Map<String, Value>,
    merged: &Map<String, Value>,
) -> Result<Rollout, String> {
    let v2_flag = match strategy.get("checkpoints_v2") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("strategy_options.checkpoints_v2 must be true or false".into()),
    };
    let version = |v: Option<&Value>, key: &str| -> Result<Option<u64>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if matches!(n.as_u64(), Some(1 | 2)) => Ok(n.as_u64()),
            Some(other) => Err(format!("{key} must be 1 or 2, not {other}")),
        }
    };
    let nested = version(
        strategy.get("checkpoints_version"),
        "strategy_options.checkpoints_version",
    )?;
    let top = version(merged.get("checkpoints_version"), "checkpoints_version")?;
    if let (Some(a), Some(b)) = (nested, top) {
        if a != b {
            return Err(format!(
                "strategy_options.checkpoints_version ({a}) contradicts checkpoints_version ({b})"
            ));
        }
    }
    let mut rollout = explicit.map(|(r, _)| r).unwrap_or(Rollout::BRANCH);
    if nested.or(top) == Some(2) {
        if let Some((r, source)) = explicit.filter(|(r, _)| r.primary != Backend::V2) {
            return Err(format!(
                "checkpoints_version 2 makes the v2 layout the primary store, but {source} selects the {} as primary",
                r.primary.describe()
            ));
        }
        if v2_flag == Some(false) {
            return Err(
                "checkpoints_version 2 makes the v2 layout the primary store, but strategy_options.checkpoints_v2 is false"
                    .into(),
            );
        }
        rollout.primary = Backend::V2;
        rollout.mirrors.remove(Backend::V2);
    }
    match v2_flag {
        Some(true) => rollout = rollout.with_mirror(Backend::V2),
        Some(false) if rollout.writes(Backend::V2) => {
            return Err(format!(
                "strategy_options.checkpoints_v2 is false, but {} selects the v2 layout",
                explicit.map_or("the store selection", |(_, s)| s)
            ))
        }
        _ => {}
    }
    Ok(rollout)
}

fn backend(name: &str) -> Result<Backend, String> {
    match name {
        "git-branch" => Ok(Backend::GitBranch),
        "git-refs" => Ok(Backend::GitRefs),
        "git-v2" => Ok(Backend::V2),
        other => Err(format!(
            "unknown store type {other:?} (expected \"git-branch\", \"git-refs\" or \"git-v2\")"
        )),
    }
}

/// Upstream's `{"primary": {"type": …}, "mirrors": [{"type": …}]}` block.
fn parse_block(v: &Value) -> Result<Rollout, String> {
    let Value::Object(m) = v else {
        return Err("must be an object".into());
    };
    if let Some(k) = m.keys().find(|k| *k != "primary" && *k != "mirrors") {
        return Err(format!("unknown field {k:?}"));
    }
    let ty = |v: &Value, what: &str| -> Result<Backend, String> {
        let t = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or(format!("{what}.type must be a string"))?;
        backend(t)
    };
    let primary = match m.get("primary") {
        Some(p) => ty(p, "primary")?,
        None => return Err("primary is required".into()),
    };
    let mut mirrors = Backends::NONE;
    match m.get("mirrors") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let b = ty(item, "mirrors[]")?;
                if b == primary || mirrors.contains(b) {
                    return Err(format!("store type {b:?} appears more than once"));
                }
                mirrors.insert(b);
            }
        }
        Some(_) => return Err("mirrors must be an array".into()),
    }
    Ok(Rollout { primary, mirrors })
}

fn parse_env(env: &impl Fn(&str) -> Option<String>) -> Result<Option<Rollout>, SettingsError> {
    let Some(primary) = env("ENTIRE_CHECKPOINTS_PRIMARY").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let primary = backend(primary.trim()).map_err(|problem| SettingsError::Env {
        var: "ENTIRE_CHECKPOINTS_PRIMARY",
        problem,
    })?;
    let mut mirrors = Backends::NONE;
    for m in env("ENTIRE_CHECKPOINTS_MIRRORS")
        .unwrap_or_default()
        .split(',')
    {
        let m = m.trim();
        if m.is_empty() {
            continue;
        }
        let b = backend(m).map_err(|problem| SettingsError::Env {
            var: "ENTIRE_CHECKPOINTS_MIRRORS",
            problem,
        })?;
        if b != primary {
            mirrors.insert(b);
        }
    }
    Ok(Some(Rollout { primary, mirrors }))
}

#[cfg(test)]
mod tests;
