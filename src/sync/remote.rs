//! Remotes and URLs: what an `entire::` address means, which transport serves it, and which remote receives
//! checkpoints.
//!
//! Invariants:
//! - A resolved [`Endpoint`] never carries an `entire::` prefix: nested prefixes are stripped, and a remote
//!   name that keeps resolving to `entire::<name>` is refused ([`RemoteError::Loop`]) instead of recursing.
//! - Remote names are resolved with `git remote get-url [--push]`, so `insteadOf`/`pushInsteadOf` and
//!   `pushurl` behave exactly as in git. Plain URLs get the same rewrites through gix when a repository exists.
//! - The checkpoint remote is, in order: `strategy_options.checkpoint_remote` (see [`crate::store::settings`]), git
//!   config `entire.remote`, the remote being pushed to, `origin` ([`checkpoint_remote`]).
//!
//! Failure modes: [`RemoteError`] names the remote or file at fault. A malformed settings file is an error,
//! never a silent fallback.

use std::path::PathBuf;

use crate::git::cmd as gitcmd;
use crate::git::repo::Repo;

/// The helper prefix.
pub const HELPER_PREFIX: &str = "entire::";

/// Errors resolving remotes.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("remote {name:?} resolves to itself through entire:: URLs")]
    Loop { name: String },
    #[error("cannot resolve the URL of remote {name:?}")]
    GetUrl {
        name: String,
        #[source]
        source: gitcmd::GitCmdError,
    },
    #[error("no remote to use: {what}")]
    NoRemote { what: String },
    #[error(transparent)]
    Settings(#[from] crate::store::settings::SettingsError),
    #[error("strategy_options.checkpoint_remote: expected a remote name, a URL or {{\"provider\": \"github\", \"repo\": \"org/name\"}}, got {value}")]
    CheckpointRemote { value: String },
}

/// How the helper reaches a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Relay to git's own `git remote-<scheme>` (http, https, ftp, ftps).
    Relay { scheme: String },
    /// Own mode: in-process listing, `git fetch` / `git push` children (ssh, git, file, local paths).
    Own,
}

/// The transport serving `url`.
pub fn transport_of(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    for scheme in ["https", "http", "ftps", "ftp"] {
        if lower.starts_with(&format!("{scheme}://")) {
            return Transport::Relay {
                scheme: scheme.to_string(),
            };
        }
    }
    Transport::Own
}

/// Strip every leading `entire::`.
pub fn strip_helper_prefix(mut s: &str) -> &str {
    while let Some(rest) = s.strip_prefix(HELPER_PREFIX) {
        s = rest;
    }
    s
}

/// A remote as the transport code needs it: its name (when it is a configured remote) and both real URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The configured remote's name, if the address named one.
    pub name: Option<String>,
    pub fetch_url: String,
    pub push_url: String,
}

impl Endpoint {
    /// An endpoint for a plain URL.
    pub fn url(url: &str) -> Self {
        Endpoint {
            name: None,
            fetch_url: url.to_string(),
            push_url: url.to_string(),
        }
    }

    /// How to show this endpoint to users.
    pub fn display(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.push_url)
    }
}

/// True if `name` is a configured remote in `repo`.
pub fn is_remote_name(repo: &Repo, name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', ':', '\\'])
        && repo.config_string(&format!("remote.{name}.url")).is_some()
}

/// A remote's URL as `git remote get-url [--push]` prints it: read in-process through gix (with the same
/// `insteadOf`/`pushInsteadOf` rules), falling back to the git command when gix cannot parse the remote.
fn get_url(repo: &Repo, name: &str, push: bool) -> Result<String, RemoteError> {
    if let Some(url) = get_url_in_process(repo, name, push) {
        return Ok(url);
    }
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(repo_dir(repo))
        .args(["remote", "get-url"]);
    if push {
        cmd.arg("--push");
    }
    cmd.arg(name);
    let out = gitcmd::run_ok(&mut cmd).map_err(|source| RemoteError::GetUrl {
        name: name.to_string(),
        source,
    })?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

fn get_url_in_process(repo: &Repo, name: &str, push: bool) -> Option<String> {
    let g = repo.gix();
    let direction = if push {
        gix::remote::Direction::Push
    } else {
        gix::remote::Direction::Fetch
    };
    let rewritten = g.try_find_remote(name)?.ok()?.url(direction)?.to_bstring();
    let plain = g
        .try_find_remote_without_url_rewrite(name)?
        .ok()?
        .url(direction)?
        .to_bstring();
    if rewritten != plain {
        return Some(rewritten.to_string());
    }
    // No rewrite: the configured text itself (the first value, as git uses), not gix's normalised form.
    let config = g.config_snapshot();
    let first = |key: String| {
        config
            .plumbing()
            .strings(key.as_str())
            .and_then(|v| v.first().map(|s| s.to_string()))
    };
    if push {
        first(format!("remote.{name}.pushurl")).or_else(|| first(format!("remote.{name}.url")))
    } else {
        first(format!("remote.{name}.url"))
    }
}

/// Directory to run `git -C` in for `repo` (the worktree, or the git dir of a bare repository).
pub fn repo_dir(repo: &Repo) -> PathBuf {
    repo.workdir().unwrap_or_else(|| repo.git_dir())
}

/// Resolve a remote name or URL (possibly `entire::`-prefixed) to an endpoint.
pub fn resolve(repo: Option<&Repo>, addr: &str) -> Result<Endpoint, RemoteError> {
    let mut addr = strip_helper_prefix(addr).to_string();
    let Some(repo) = repo else {
        return Ok(Endpoint::url(&addr));
    };
    let mut seen = Vec::new();
    let mut name = None;
    while is_remote_name(repo, &addr) {
        if seen.contains(&addr) {
            return Err(RemoteError::Loop { name: addr });
        }
        seen.push(addr.clone());
        let fetch = get_url(repo, &addr, false)?;
        let push = get_url(repo, &addr, true)?;
        let (fetch, push) = (strip_helper_prefix(&fetch), strip_helper_prefix(&push));
        if is_remote_name(repo, fetch) {
            // `remote.a.url = entire::b`: follow `b`, keeping the first name for messages and config.
            name.get_or_insert(addr.clone());
            addr = fetch.to_string();
            continue;
        }
        return Ok(Endpoint {
            name: name.or(Some(addr)),
            fetch_url: fetch.to_string(),
            push_url: push.to_string(),
        });
    }
    Ok(Endpoint {
        name,
        fetch_url: rewrite(repo, &addr, gix::remote::Direction::Fetch),
        push_url: rewrite(repo, &addr, gix::remote::Direction::Push),
    })
}

/// Apply `url.<base>.insteadOf` / `pushInsteadOf` to a plain URL; the text is kept verbatim when no rule matched.
fn rewrite(repo: &Repo, url: &str, direction: gix::remote::Direction) -> String {
    let as_is = repo
        .gix()
        .remote_at_without_url_rewrite(url)
        .ok()
        .and_then(|r| r.url(direction).map(|u| u.to_bstring()));
    let rewritten = repo
        .gix()
        .remote_at(url)
        .ok()
        .and_then(|r| r.url(direction).map(|u| u.to_bstring()));
    match (as_is, rewritten) {
        (Some(a), Some(b)) if a != b => strip_helper_prefix(&b.to_string()).to_string(),
        _ => url.to_string(),
    }
}

/// Resolve the two arguments git passes to `git-remote-entire`.
///
/// `argv1` is the remote name, or the whole `entire::<address>` for a URL given on the command line;
/// `argv2` is the address without the `entire::` prefix (absent for `remote.<name>.vcs = entire`).
pub fn resolve_helper_args(
    repo: Option<&Repo>,
    argv1: &str,
    argv2: Option<&str>,
) -> Result<Endpoint, RemoteError> {
    let from_command_line = argv1.starts_with(HELPER_PREFIX);
    let addr = match argv2 {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => strip_helper_prefix(argv1).to_string(),
    };
    let mut endpoint = resolve(repo, &addr)?;
    if endpoint.name.is_none() && !from_command_line {
        if let Some(repo) = repo {
            if is_remote_name(repo, argv1) {
                endpoint.name = Some(argv1.to_string());
            }
        }
    }
    Ok(endpoint)
}

/// The checkpoint remote configured for `repo`, if any: settings first, then `entire.remote`.
pub fn configured_checkpoint_remote(repo: &Repo) -> Result<Option<String>, RemoteError> {
    let settings = crate::store::settings::load(repo.workdir().as_deref())?;
    if let Some(value) = &settings.checkpoint_remote {
        return Ok(Some(settings_remote(repo, value)?));
    }
    Ok(crate::git::config::get(repo, "entire.remote").filter(|s| !s.is_empty()))
}

/// The remote checkpoints go to when no remote is being pushed: configured, else `origin`.
pub fn checkpoint_remote(repo: &Repo, explicit: Option<&str>) -> Result<Endpoint, RemoteError> {
    if let Some(name) = explicit {
        return resolve(Some(repo), name);
    }
    if let Some(name) = configured_checkpoint_remote(repo)? {
        return resolve(Some(repo), &name);
    }
    if is_remote_name(repo, "origin") {
        return resolve(Some(repo), "origin");
    }
    Err(RemoteError::NoRemote {
        what:
            "no checkpoint remote is configured (entire.remote) and there is no remote named origin"
                .into(),
    })
}

/// Whether checkpoints belong in a push to `pushed`: true unless a checkpoint remote is configured and it is
/// a different remote.
pub fn checkpoints_go_to(repo: &Repo, pushed: &Endpoint) -> Result<bool, RemoteError> {
    let Some(configured) = configured_checkpoint_remote(repo)? else {
        return Ok(true);
    };
    if pushed.name.as_deref() == Some(configured.as_str()) {
        return Ok(true);
    }
    let target = resolve(Some(repo), &configured)?;
    Ok(target.push_url == pushed.push_url)
}

/// Interpret `strategy_options.checkpoint_remote`: a remote name or URL, or upstream's
/// `{"provider": "github", "repo": "org/name"}` (URL style follows origin's: ssh or https).
fn settings_remote(repo: &Repo, value: &serde_json::Value) -> Result<String, RemoteError> {
    let bad = || RemoteError::CheckpointRemote {
        value: value.to_string(),
    };
    match value {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Object(o) => {
            let provider = o.get("provider").and_then(|v| v.as_str()).unwrap_or("");
            let name = o.get("repo").and_then(|v| v.as_str()).unwrap_or("");
            let valid_name = name.split('/').count() == 2
                && !name.contains("..")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            if provider != "github" || !valid_name {
                return Err(bad());
            }
            let origin = repo.config_string("remote.origin.url").unwrap_or_default();
            let origin = strip_helper_prefix(&origin);
            Ok(
                if origin.starts_with("git@") || origin.starts_with("ssh://") {
                    format!("git@github.com:{name}.git")
                } else {
                    format!("https://github.com/{name}.git")
                },
            )
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_table() {
        let relay = |s: &str| Transport::Relay { scheme: s.into() };
        let cases = [
            ("https://h/r.git", relay("https")),
            ("HTTP://h/r.git", relay("http")),
            ("ftp://h/r", relay("ftp")),
            ("ssh://h/r", Transport::Own),
            ("git@h:r.git", Transport::Own),
            ("git://h/r", Transport::Own),
            ("file:///tmp/r", Transport::Own),
            ("/tmp/r", Transport::Own),
            ("../r", Transport::Own),
        ];
        for (url, want) in cases {
            assert_eq!(transport_of(url), want, "{url}");
        }
    }

    #[test]
    fn strip_table() {
        let cases = [
            ("entire::origin", "origin"),
            ("entire::entire::https://h/r", "https://h/r"),
            ("https://h/r", "https://h/r"),
            ("entire:x", "entire:x"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_helper_prefix(input), want);
        }
    }
}
