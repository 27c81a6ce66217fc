//! Own mode (ssh, git://, file://, local paths): capabilities `connect`, `fetch`, `push`, `option`,
//! `object-format`.
//!
//! - `connect`: a push to a local repository with no checkpoint queued for it is connected straight to
//!   `git-receive-pack` (git then pushes exactly as for the plain URL); a `git clone` (not `--mirror`, protocol
//!   v2) straight to the remote's `git-upload-pack` (git learns an unborn HEAD's branch as with the plain URL;
//!   checkpoints are pulled along from the watched wants); everything else answers `fallback`.
//! - `list for-push`: in-process protocol-v2 `ls-refs` for `HEAD`, `refs/heads/`, `refs/tags/` (plus
//!   `entire.listPrefixes`), widened to every destination of git's push ([`crate::wanted`]: `refs/notes/…`,
//!   `--mirror`) so git reports `old..new` as with the plain URL; `refs/entire/` is never listed, so
//!   `--mirror`/`--prune` cannot delete checkpoints or staging refs.
//! - `list`: the same, widened to what git's request needs ([`crate::wanted`]: `refs/notes/…`, `refs/changes/*`,
//!   `clone --mirror`, `ls-remote`); `refs/entire/` is left out except for `ls-remote` (checkpoints arrive
//!   through the validated pull-along). An unborn `HEAD` is left out (clone of an empty repository or one with
//!   an unborn HEAD then works as with the plain URL), and a null ID is never fetched.
//! - `fetch`: ONE `git fetch` child by object ID (depth, filter and shallow options passed through), then the
//!   checkpoint pull-along, then the blank line. A failed fetch exits before the blank line, which is the only
//!   way git notices (it ignores the exit code after a fetch).
//! - `list for-push` over ssh and git://: the helper connects to the remote's `git-receive-pack` itself
//!   ([`entire::sync::push::connect`]), answers from its advertisement, and keeps the connection: the push batch
//!   then goes out over it through `git send-pack --stateless-rpc` ([`entire::sync::push::wire`]). ONE connection
//!   per push, as with plain git. Cases the connector leaves to git (proxies, protocol policies, other schemes)
//!   list with `ls-refs` and push through a `git push` child (two connections).
//! - `push`: the batch goes to [`entire::sync::push::run`]; statuses for the user's refs only.

use std::io::Write;
use std::process::Stdio;

use anyhow::{bail, Context};
use entire::git::cmd as gitcmd;
use entire::git::lsrefs::{self, RefValue};
use entire::git::repo::ObjectId;
use entire::sync::fetch;
use entire::sync::push::connect::{Connection, Dialed, Opened};
use entire::sync::push::wire::Wire;
use entire::sync::push::{self, GitPush};

use crate::protocol::{parse_command, Command};
use crate::session::Session;
use crate::wanted::{self, Request};

/// Serve git until it ends the session.
pub fn serve(mut s: Session) -> anyhow::Result<()> {
    // The receive-pack connection that answered `list for-push`, waiting for the push batch.
    let mut held: Option<Connection> = None;
    while let Some(line) = s.io.read_line()? {
        match parse_command(&line) {
            Command::Capabilities => {
                s.io.reply(&["connect", "fetch", "push", "option", "object-format", ""])?
            }
            Command::Connect { service } if service == "git-upload-pack" => match connect_clone(s)?
            {
                Some(back) => s = back,
                None => return Ok(()),
            },
            Command::Connect { service } => {
                if connect(&mut s, &service)? {
                    return Ok(());
                }
            }
            Command::Option { name, value } => {
                let reply = s.opts.apply(&name, &value).line();
                s.io.reply(&[reply])?;
            }
            Command::List { for_push: true } => {
                held = None;
                match open_for_push(&s)? {
                    Some(conn) => {
                        list_advertised(&mut s, &conn)?;
                        held = Some(conn);
                    }
                    None => list(&mut s, true)?,
                }
            }
            Command::List { for_push: false } => list(&mut s, false)?,
            Command::Fetch { oid, .. } => fetch_batch(&mut s, oid)?,
            Command::Push { spec } => push_batch(&mut s, spec, held.take())?,
            Command::End => return Ok(()),
            other => bail!("unsupported command from git: {other:?}"),
        }
    }
    Ok(())
}

/// git tries `connect` first. A push with nothing queued for this remote to a local repository is served by
/// a direct pipe to `git-receive-pack` (git runs its own send-pack; no listing, no inner `git push`); anything
/// else gets `fallback`, and git continues with `list`/`fetch`/`push`. Returns true when the session is over.
fn connect(s: &mut Session, service: &str) -> anyhow::Result<bool> {
    let direct = service == "git-receive-pack" && !s.checkpoints_pending();
    let path = entire::git::lsrefs::local_path(&s.endpoint.push_url);
    let (true, Some(path)) = (direct, path) else {
        s.io.reply(&["fallback"])?;
        return Ok(false);
    };
    let mut child = std::process::Command::new("git-receive-pack")
        .arg(&path)
        .env(gitcmd::DEPTH_ENV, (gitcmd::depth() + 1).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run git-receive-pack")?;
    let (Some(mut to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("git-receive-pack started without pipes");
    };
    s.io.reply(&[""])?;
    let mut input = std::mem::replace(&mut s.io, crate::protocol::Io::new()).input;
    std::thread::spawn(move || {
        crate::pktline::copy_flushing(&mut input, &mut to, |_| {});
    });
    // Server → git: the advertisement without the remote's own checkpoint refs, then everything else as is.
    let mut from = std::io::BufReader::new(from);
    let repo = s.repo.as_ref();
    let keep = |name: &str| crate::session::listed_for_push(repo, name);
    let mut filter = crate::pktline::AdvertFilter::keeping(&keep);
    loop {
        let n = match std::io::BufRead::fill_buf(&mut from) {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let out = filter.feed(buf);
                let sent =
                    s.io.output
                        .write_all(&out)
                        .and_then(|_| s.io.output.flush());
                if sent.is_err() {
                    break;
                }
                buf.len()
            }
        };
        std::io::BufRead::consume(&mut from, n);
    }
    let _ = child.wait();
    Ok(true)
}

/// What git's push will need listed: the command line that started us (its destinations; everything for
/// `--mirror`) plus the remote's configured push refspecs and `remote.<name>.mirror`. Without it, a push of
/// `refs/notes/commits` would see no old value and report `[new reference]` instead of `old..new`.
fn push_request(s: &Session) -> Request {
    let mut req = configured_request(s, "push", Request::add_push_refspec);
    req.ls_remote = false;
    req
}

/// The command line that started us ([`wanted::from_git_argv`]), widened by the remote's configuration:
/// `remote.<name>.mirror` (everything), its `remote.<name>.<key>` refspecs (`push` or `fetch`, each given to
/// `add`) and `entire.listPrefixes`.
fn configured_request(s: &Session, key: &str, add: fn(&mut Request, &str)) -> Request {
    let mut req = wanted::parent_git_argv()
        .and_then(|argv| wanted::from_git_argv(&argv))
        .unwrap_or_default();
    if let Some(repo) = &s.repo {
        let section = format!("remote.{}", s.argv1);
        if repo
            .config_string(&format!("{section}.mirror"))
            .is_some_and(|v| v == "true")
        {
            req.all = true;
        }
        if let Some(specs) = repo
            .gix()
            .config_snapshot()
            .plumbing()
            .strings(format!("{section}.{key}").as_str())
        {
            for spec in specs {
                add(&mut req, &spec.to_string());
            }
        }
    }
    req.extra.extend(configured_prefixes(s));
    req
}

/// `entire.listPrefixes`: extra prefixes always listed (never inside `refs/entire/`).
fn configured_prefixes(s: &Session) -> Vec<String> {
    s.repo
        .as_ref()
        .and_then(|r| entire::git::config::get(r, "entire.listPrefixes"))
        .map(|extra| {
            extra
                .split([',', ' '])
                .filter(|p| !p.is_empty() && !p.starts_with("refs/entire/"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A `git clone` (not `--mirror`) over protocol v2 is connected straight to the remote's `git-upload-pack`,
/// exactly like the plain URL: git then learns an unborn HEAD's branch from `ls-refs` (`unborn`), which the
/// helper's `list` cannot express, and the clone lists only `HEAD`, `refs/heads/`, `refs/tags/` (never
/// checkpoints). The wanted commits are watched on the way and their checkpoints pulled along once git has the
/// pack. Anything else (fetch, `clone --mirror`, protocol v0/v1, a policy or proxy git must apply itself)
/// answers `fallback` and hands the session back; `None` when the session is over.
fn connect_clone(mut s: Session) -> anyhow::Result<Option<Session>> {
    let cloning = wanted::parent_git_argv().is_some_and(|argv| {
        wanted::subcommand_name(&argv) == Some("clone") && !argv.iter().any(|a| a == "--mirror")
    });
    let v2 = s
        .repo
        .as_ref()
        .and_then(|r| entire::git::config::get(r, "protocol.version"))
        .is_none_or(|v| v.trim() == "2");
    let url = s.endpoint.fetch_url.clone();
    let streams = match (cloning && v2, lsrefs::local_path(&url)) {
        (false, _) => None,
        (true, Some(path)) => Some(local_upload_pack(&path)?),
        (true, None) => {
            match entire::sync::push::connect::dial(s.repo.as_ref(), &url, "git-upload-pack", 2)? {
                Dialed::Connected {
                    reader,
                    writer,
                    child,
                } => Some((reader, writer, child)),
                Dialed::Unsupported(why) => {
                    tracing::debug!(target: "entire::helper", "clone through list/fetch: {why}");
                    None
                }
            }
        }
    };
    let Some((reader, writer, child)) = streams else {
        s.io.reply(&["fallback"])?;
        return Ok(Some(s));
    };
    s.io.reply(&[""])?;
    crate::relay::pump::pump_streams(
        s,
        writer,
        std::io::BufReader::new(reader),
        "git-upload-pack",
        child,
    )?;
    Ok(None)
}

/// `git-upload-pack <path>` speaking protocol v2, as git runs it for a local clone.
fn local_upload_pack(
    path: &std::path::Path,
) -> anyhow::Result<(
    Box<dyn std::io::Read + Send>,
    entire::sync::push::connect::ServerWriter,
    Option<std::process::Child>,
)> {
    let mut child = std::process::Command::new("git-upload-pack")
        .arg(path)
        .env("GIT_PROTOCOL", "version=2")
        .env(gitcmd::DEPTH_ENV, (gitcmd::depth() + 1).to_string())
        .env_remove("GIT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run git-upload-pack")?;
    let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        bail!("git-upload-pack started without pipes");
    };
    Ok((Box::new(from), Box::new(to), Some(child)))
}

/// What git's fetch will ask for: the command line that started us plus the remote's configured refspecs.
fn fetch_request(s: &Session) -> Request {
    configured_request(s, "fetch", Request::add_refspec)
}

/// The receive-pack connection for a push to this endpoint, or `None` when the push is left to a `git push`
/// child (the reason is logged).
fn open_for_push(s: &Session) -> anyhow::Result<Option<Connection>> {
    let url = &s.endpoint.push_url;
    let started = std::time::Instant::now();
    match Connection::open(s.repo.as_ref(), url)? {
        Opened::Connected(c) => {
            tracing::debug!(target: "entire::helper", ms = started.elapsed().as_millis() as u64, refs = c.refs.len(), "connected and listed");
            Ok(Some(*c))
        }
        Opened::Unsupported(why) => {
            tracing::debug!(target: "entire::helper", "two-connection push to {url}: {why}");
            Ok(None)
        }
    }
}

/// Answer `list for-push` from a receive-pack advertisement, with the same prefixes as [`list`].
fn list_advertised(s: &mut Session, conn: &Connection) -> anyhow::Result<()> {
    let prefixes = push_request(s).prefixes();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let mut lines = Vec::new();
    if s.opts.object_format {
        lines.push(format!(":object-format {}", conn.object_format()));
    }
    for r in &conn.refs {
        if lsrefs::matches(&prefixes, &r.name)
            && crate::session::listed_for_push(s.repo.as_ref(), &r.name)
        {
            lines.push(format!("{} {}", r.oid, r.name));
        }
    }
    lines.push(String::new());
    s.io.reply(&lines)?;
    Ok(())
}

fn list(s: &mut Session, for_push: bool) -> anyhow::Result<()> {
    let url = if for_push {
        &s.endpoint.push_url
    } else {
        &s.endpoint.fetch_url
    };
    let request = match for_push {
        true => push_request(s),
        false => fetch_request(s),
    };
    let prefixes = request.prefixes();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let listing = lsrefs::ls_refs(s.repo.as_ref(), url, &prefixes)?;
    let ls_remote = request.ls_remote;
    let mut lines = Vec::new();
    if s.opts.object_format {
        lines.push(format!(
            ":object-format {}",
            listing.object_format.as_deref().unwrap_or("sha1")
        ));
    }
    for r in &listing.refs {
        // Checkpoint refs come along through the pull-along policy, validated; never through git's fetch.
        let hidden = match for_push {
            true => !crate::session::listed_for_push(s.repo.as_ref(), &r.name),
            false => !ls_remote && r.name.starts_with("refs/entire/"),
        };
        if hidden {
            continue;
        }
        match &r.value {
            // An unborn HEAD is left out: the helper's `list` cannot say "unborn" (a symbolic ref without a
            // value makes clone ask for the null ID and leave no HEAD at all).
            RefValue::Symbolic { id: None, .. } => {}
            RefValue::Symbolic { target, .. } => lines.push(format!("@{target} {}", r.name)),
            RefValue::Object { id, peeled } => {
                lines.push(format!("{id} {}", r.name));
                if let (Some(p), false) = (peeled, for_push) {
                    lines.push(format!("{p} {}^{{}}", r.name));
                }
            }
        }
    }
    lines.push(String::new());
    s.io.reply(&lines)?;
    Ok(())
}

fn fetch_batch(s: &mut Session, first: String) -> anyhow::Result<()> {
    let mut oids = vec![first];
    loop {
        let Some(line) = s.io.read_line()? else {
            bail!("git ended the session inside a fetch batch");
        };
        match parse_command(&line) {
            Command::Fetch { oid, .. } => {
                if !oids.contains(&oid) {
                    oids.push(oid);
                }
            }
            Command::Option { name, value } => {
                let reply = s.opts.apply(&name, &value).line();
                s.io.reply(&[reply])?;
            }
            Command::End => break,
            other => bail!("unexpected {other:?} inside a fetch batch"),
        }
    }
    // An unborn HEAD is listed as a symbolic ref without a value; git then asks for the null ID. There is
    // nothing to fetch for it (plain git's protocol v2 never asks).
    oids.retain(|o| !o.bytes().all(|b| b == b'0'));
    if !oids.is_empty() {
        run_fetch(s, &oids)?;
    }
    let fetched: Vec<ObjectId> = oids
        .iter()
        .filter_map(|o| ObjectId::from_hex(o.as_bytes()).ok())
        .collect();
    s.pull_along(&fetch::walk_new_commits(&fetched));
    s.io.reply(&[""])?;
    Ok(())
}

fn run_fetch(s: &Session, oids: &[String]) -> anyhow::Result<()> {
    let mut cmd = gitcmd::git();
    cmd.args([
        "fetch",
        "--no-write-fetch-head",
        "--no-tags",
        "--no-auto-maintenance",
        "--recurse-submodules=no",
        "--stdin",
    ]);
    cmd.args(s.opts.fetch_flags());
    if !s.opts.progress {
        cmd.arg("--no-progress");
    }
    cmd.arg(&s.endpoint.fetch_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    tracing::debug!(target: "entire::helper", "running git {}", gitcmd::describe(&cmd));
    let mut child = gitcmd::spawn(&mut cmd)?;
    if let Some(mut input) = child.stdin.take() {
        let text = oids.join("\n") + "\n";
        input
            .write_all(text.as_bytes())
            .context("writing object IDs to git fetch")?;
    }
    let status = child.wait().context("waiting for git fetch")?;
    if s.opts.filter.is_some() {
        forget_url_promisor(s);
    }
    if !status.success() {
        bail!("fetching from {} failed", s.endpoint.fetch_url);
    }
    Ok(())
}

/// `git fetch <url> --filter=…` records the URL as a promisor remote (`remote.<url>.promisor`); git has
/// already made the real remote the promisor, so drop the section the inner fetch added.
fn forget_url_promisor(s: &Session) {
    let Some(repo) = &s.repo else {
        return;
    };
    let section = format!("remote.{}", s.endpoint.fetch_url);
    if repo.config_string(&format!("{section}.url")).is_some() {
        return;
    }
    let mut cmd = gitcmd::git();
    cmd.args(["config", "--local", "--remove-section", &section]);
    if let Err(e) = gitcmd::run_ok(&mut cmd) {
        tracing::debug!(target: "entire::helper", "no promisor section to drop: {e}");
    }
}

fn push_batch(s: &mut Session, first: String, held: Option<Connection>) -> anyhow::Result<()> {
    let specs = s.read_push_batch(first, |s, _line, name, value| {
        Ok(s.opts.apply(name, value).line())
    })?;
    let with_checkpoints = s.checkpoints_here();
    let mut one = held.map(|c| Wire::new(Some(c), &s.endpoint.push_url));
    let mut two = GitPush::new(&s.endpoint.push_url);
    let transport: &mut dyn push::PushTransport = match one.as_mut() {
        Some(w) => w,
        None => &mut two,
    };
    let remote = s.remote_name();
    let outcome = push::run(
        s.repo.as_ref(),
        remote.as_deref(),
        transport,
        &specs,
        &s.opts.push_options(),
        with_checkpoints,
    );
    s.finish_push(&outcome)
}
