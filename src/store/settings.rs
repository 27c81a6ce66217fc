//! Rollout settings: which store is primary, which one is a mirror, and where checkpoints are pushed.
//!
//! Sources, later ones winning: `.entire/settings.json`, then `.entire/settings.local.json` merged key by key
//! (objects recursively; the upstream `checkpoints` block is replaced wholesale, as upstream does), then the
//! `ENTIRE_CHECKPOINTS_PRIMARY` / `ENTIRE_CHECKPOINTS_MIRRORS` environment override.
//!
//! The rollout comes from `strategy_options.checkpoint_store` (unset = legacy branch, `refs-v1-mirror`,
//! `refs-v1`) or, when that key is absent, from upstream's `checkpoints.primary.type` (`git-branch` |
//! `git-refs`) plus `checkpoints.mirrors`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The legacy `entire/checkpoints/v1` branch.
    GitBranch,
    /// One ref per checkpoint.
    GitRefs,
}

impl Backend {
    /// Human-readable name for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::GitBranch => "legacy branch refs/heads/entire/checkpoints/v1",
            Backend::GitRefs => "checkpoint ref store",
        }
    }
}

/// Primary store plus optional write-only mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    pub primary: Backend,
    pub mirror: Option<Backend>,
}

impl Rollout {
    /// Legacy branch only (no settings).
    pub const BRANCH: Rollout = Rollout {
        primary: Backend::GitBranch,
        mirror: None,
    };
    /// `refs-v1-mirror`.
    pub const REFS_MIRROR: Rollout = Rollout {
        primary: Backend::GitRefs,
        mirror: Some(Backend::GitBranch),
    };
    /// `refs-v1`.
    pub const REFS: Rollout = Rollout {
        primary: Backend::GitRefs,
        mirror: None,
    };

    /// The mode's name as used in `checkpoint_store` (`v1` for the legacy branch).
    pub fn name(&self) -> &'static str {
        match (self.primary, self.mirror) {
            (Backend::GitRefs, Some(Backend::GitBranch)) => "refs-v1-mirror",
            (Backend::GitRefs, _) => "refs-v1",
            (Backend::GitBranch, Some(Backend::GitRefs)) => "v1+refs-mirror",
            (Backend::GitBranch, _) => "v1",
        }
    }

    /// True if the ref store is written at all.
    pub fn writes_refs(&self) -> bool {
        self.primary == Backend::GitRefs || self.mirror == Some(Backend::GitRefs)
    }
}

/// Loaded settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rollout: Rollout,
    /// `strategy_options.checkpoint_remote`: a remote name or URL (string), or upstream's
    /// `{"provider": "github", "repo": "org/repo"}` object.
    pub checkpoint_remote: Option<Value>,
    /// `strategy_options.checkpoints_v2`: also write the v2 layout as a mirror.
    pub checkpoints_v2: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rollout: Rollout::BRANCH,
            checkpoint_remote: None,
            checkpoints_v2: false,
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
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
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
    let rollout = env_rollout.or(store).or(block).unwrap_or(Rollout::BRANCH);
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
    let checkpoints_v2 = match strategy.get("checkpoints_v2") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid(
                "strategy_options.checkpoints_v2 must be true or false".into(),
            ))
        }
    };
    Ok(Settings {
        rollout,
        checkpoint_remote,
        checkpoints_v2,
    })
}

fn backend(name: &str) -> Result<Backend, String> {
    match name {
        "git-branch" => Ok(Backend::GitBranch),
        "git-refs" => Ok(Backend::GitRefs),
        other => Err(format!(
            "unknown store type {other:?} (expected \"git-branch\" or \"git-refs\")"
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
    let mut mirror = None;
    match m.get("mirrors") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let b = ty(item, "mirrors[]")?;
                if b == primary || mirror == Some(b) {
                    return Err(format!("store type {b:?} appears more than once"));
                }
                mirror = Some(b);
            }
        }
        Some(_) => return Err("mirrors must be an array".into()),
    }
    Ok(Rollout { primary, mirror })
}

fn parse_env(env: &impl Fn(&str) -> Option<String>) -> Result<Option<Rollout>, SettingsError> {
    let Some(primary) = env("ENTIRE_CHECKPOINTS_PRIMARY").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let primary = backend(primary.trim()).map_err(|problem| SettingsError::Env {
        var: "ENTIRE_CHECKPOINTS_PRIMARY",
        problem,
    })?;
    let mut mirror = None;
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
            mirror = Some(b);
        }
    }
    Ok(Some(Rollout { primary, mirror }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Result<Rollout, String> {
        let Value::Object(m) = v else {
            panic!("object expected")
        };
        interpret(&m, Path::new("s.json"), |_| None)
            .map(|s| s.rollout)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rollout_table() {
        let ok = [
            (json!({}), Rollout::BRANCH),
            (json!({"strategy_options": {}}), Rollout::BRANCH),
            (
                json!({"strategy_options": {"checkpoint_store": "refs-v1-mirror"}}),
                Rollout::REFS_MIRROR,
            ),
            (
                json!({"strategy_options": {"checkpoint_store": "refs-v1"}}),
                Rollout::REFS,
            ),
            (
                json!({"checkpoints": {"primary": {"type": "git-refs"}}}),
                Rollout::REFS,
            ),
            (
                json!({"checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-branch"}]}}),
                Rollout::REFS_MIRROR,
            ),
            (
                json!({"checkpoints": {"primary": {"type": "git-branch"}}}),
                Rollout::BRANCH,
            ),
            (
                json!({"strategy_options": {"checkpoint_store": "refs-v1"}, "checkpoints": {"primary": {"type": "git-branch"}}}),
                Rollout::REFS,
            ),
        ];
        for (v, want) in ok {
            assert_eq!(run(v.clone()), Ok(want), "{v}");
        }
        let bad = [
            (
                json!({"strategy_options": {"checkpoint_store": "refs-v2"}}),
                "unknown mode \"refs-v2\"",
            ),
            (
                json!({"strategy_options": {"checkpoint_store": 1}}),
                "must be a string",
            ),
            (
                json!({"strategy_options": []}),
                "strategy_options must be an object",
            ),
            (
                json!({"checkpoints": {"primary": {"type": "s3"}}}),
                "unknown store type",
            ),
            (
                json!({"checkpoints": {"primary": {"type": "git-refs"}, "extra": 1}}),
                "unknown field",
            ),
            (json!({"checkpoints": {}}), "primary is required"),
            (
                json!({"checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-refs"}]}}),
                "more than once",
            ),
        ];
        for (v, want) in bad {
            let err = run(v.clone()).expect_err("must fail");
            assert!(
                err.contains(want) && err.starts_with("s.json"),
                "{v}: {err}"
            );
        }
    }

    #[test]
    fn local_file_overrides_key_by_key() {
        let mut base = json!({"strategy_options": {"checkpoint_store": "refs-v1-mirror", "push_sessions": true},
                              "checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-branch"}]}});
        let over = json!({"strategy_options": {"checkpoint_store": "refs-v1"}, "checkpoints": {"primary": {"type": "git-branch"}}});
        let (Value::Object(b), Value::Object(o)) = (&mut base, over) else {
            panic!("objects")
        };
        merge(b, o, true);
        assert_eq!(
            base,
            json!({"strategy_options": {"checkpoint_store": "refs-v1", "push_sessions": true},
                   "checkpoints": {"primary": {"type": "git-branch"}}})
        );
    }

    #[test]
    fn env_override() {
        let m = Map::new();
        let env = |k: &str| match k {
            "ENTIRE_CHECKPOINTS_PRIMARY" => Some("git-refs".to_string()),
            "ENTIRE_CHECKPOINTS_MIRRORS" => Some("git-branch".to_string()),
            _ => None,
        };
        assert_eq!(
            interpret(&m, Path::new("x"), env).expect("valid").rollout,
            Rollout::REFS_MIRROR
        );
        let bad = |k: &str| (k == "ENTIRE_CHECKPOINTS_PRIMARY").then(|| "nope".to_string());
        assert!(interpret(&m, Path::new("x"), bad).is_err());
    }
}
