//! `git entire install [<remote>]`: route a remote's pushes (and, with `--fetch`, its fetches) through
//! `git-remote-entire`, and allow the `entire` helper in recursive submodule operations.
//!
//! Invariants: only the local repository config changes; installing twice changes nothing the second time;
//! `--undo` restores a plain remote (the original push URL, or none when it was the fetch URL) and drops
//! `protocol.entire.allow` once no remote uses `entire::` any more.

use super::{CliError, Exit, Global};
use entire::git::cmd as gitcmd;
use entire::git::repo::Repo;
use entire::sync::remote::{self, strip_helper_prefix, HELPER_PREFIX};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remote to set up (default: origin).
    remote: Option<String>,
    /// Also fetch through the helper (sets `remote.<name>.url`), so fetches pull checkpoints along.
    #[arg(long)]
    fetch: bool,
    /// Revert: plain URLs again.
    #[arg(long)]
    undo: bool,
}

fn config(repo: &Repo, args: &[&str]) -> Result<String, CliError> {
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(remote::repo_dir(repo))
        .arg("config")
        .args(args);
    gitcmd::run_ok(&mut cmd)
        .map(|s| s.trim().to_string())
        .map_err(|e| CliError::new(Exit::Internal, e))
}

fn get(repo: &Repo, key: &str) -> Option<String> {
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(remote::repo_dir(repo))
        .args(["config", "--get", key]);
    gitcmd::run_ok(&mut cmd).ok().map(|s| s.trim().to_string())
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let repo = Repo::discover_cwd()?;
    let name = a.remote.as_deref().unwrap_or("origin");
    let url_key = format!("remote.{name}.url");
    let push_key = format!("remote.{name}.pushurl");
    let Some(url) = get(&repo, &url_key) else {
        return Err(CliError::user(format!("no remote named {name:?}")).hint("see `git remote -v`"));
    };
    let pushurl = get(&repo, &push_key);
    let mut changes = Vec::new();
    if a.undo {
        if let Some(p) = pushurl.as_deref().filter(|p| p.starts_with(HELPER_PREFIX)) {
            let plain = strip_helper_prefix(p);
            if plain == strip_helper_prefix(&url) {
                config(&repo, &["--local", "--unset-all", &push_key])?;
                changes.push(format!("unset {push_key}"));
            } else {
                config(&repo, &["--local", &push_key, plain])?;
                changes.push(format!("{push_key} = {plain}"));
            }
        }
        if url.starts_with(HELPER_PREFIX) {
            let plain = strip_helper_prefix(&url);
            config(&repo, &["--local", &url_key, plain])?;
            changes.push(format!("{url_key} = {plain}"));
        }
        let still_used = config(
            &repo,
            &["--local", "--get-regexp", r"^remote\..*\.(push)?url$"],
        )
        .map(|all| all.lines().any(|l| l.contains(" entire::")))
        .unwrap_or(false);
        if !still_used && get(&repo, "protocol.entire.allow").is_some() {
            config(&repo, &["--local", "--unset-all", "protocol.entire.allow"])?;
            changes.push("unset protocol.entire.allow".into());
        }
    } else {
        let base = pushurl.as_deref().unwrap_or(&url);
        if !base.starts_with(HELPER_PREFIX) {
            let wrapped = format!("{HELPER_PREFIX}{base}");
            config(&repo, &["--local", &push_key, &wrapped])?;
            changes.push(format!("{push_key} = {wrapped}"));
        }
        if a.fetch && !url.starts_with(HELPER_PREFIX) {
            let wrapped = format!("{HELPER_PREFIX}{url}");
            config(&repo, &["--local", &url_key, &wrapped])?;
            changes.push(format!("{url_key} = {wrapped}"));
        }
        if get(&repo, "protocol.entire.allow").as_deref() != Some("always") {
            config(&repo, &["--local", "protocol.entire.allow", "always"])?;
            changes.push("protocol.entire.allow = always".into());
        }
    }
    if !g.quiet {
        if changes.is_empty() {
            eprintln!(
                "entire: {name} is already {}",
                if a.undo { "plain" } else { "set up" }
            );
        }
        for c in changes {
            println!("{c}");
        }
    }
    Ok(())
}
