//! Relay mode (http, https, ftp, ftps): git's own `git remote-<scheme>` does the network work.
//!
//! Every command and reply is forwarded unchanged, with three interceptions:
//! - `option` lines are remembered (dry-run, atomic, verbosity, …) on their way through;
//! - `list for-push` replies lose `refs/entire/*` lines, so git never matches or prunes checkpoint refs;
//! - the `push` batch goes to [`entire::push::run`], which sends the user's lines plus ONE glob line for the
//!   staged checkpoints to the child and reports statuses for the user's refs only.
//!
//! After `stateless-connect` (protocol v2) the relay becomes a transparent byte pump both ways; what the line
//! reader had already buffered is passed on first. The git → server direction is watched (never changed) for
//! `want` lines, and the checkpoint pull-along runs for those commits while git waits for us to exit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use entire::fetch;
use entire::gitcmd::{self, DEPTH_ENV};
use entire::push::{self, PushOptions, PushSpec, PushTransport, RefStatus, TransportFailure};
use entire::repo::ObjectId;

use crate::pktline::WantSniffer;
use crate::protocol::{parse_command, Command as Cmd};
use crate::session::Session;

/// Longest we wait for git to finish indexing a relayed fetch before giving up on the pull-along.
const DISCONNECT_WAIT: Duration = Duration::from_secs(30 * 60);

struct Relayed {
    process: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Relayed {
    fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.to.write_all(line.as_bytes())?;
        self.to.write_all(b"\n")?;
        self.to.flush()
    }

    /// One reply line (without newline); `None` when the child closed its output.
    fn recv(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.from.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Reply lines up to (not including) the blank line.
    fn recv_block(&mut self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            match self.recv()? {
                None => bail!("git remote helper for the relayed URL exited unexpectedly"),
                Some(l) if l.is_empty() => return Ok(out),
                Some(l) => out.push(l),
            }
        }
    }
}

fn exec_path() -> PathBuf {
    if let Some(p) = std::env::var_os("GIT_EXEC_PATH") {
        return PathBuf::from(p);
    }
    let mut cmd = gitcmd::git();
    cmd.arg("--exec-path");
    match gitcmd::run_ok(&mut cmd) {
        Ok(out) => PathBuf::from(out.trim()),
        Err(_) => PathBuf::from("/usr/lib/git-core"),
    }
}

fn spawn(s: &Session, scheme: &str) -> anyhow::Result<Relayed> {
    let program = exec_path().join(format!("git-remote-{scheme}"));
    let name = if s.argv1.starts_with(entire::remote::HELPER_PREFIX) {
        s.endpoint.fetch_url.clone()
    } else {
        s.argv1.clone()
    };
    let mut process = Command::new(&program)
        .arg(name)
        .arg(&s.endpoint.fetch_url)
        .env(DEPTH_ENV, (gitcmd::depth() + 1).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let (Some(to), Some(from)) = (process.stdin.take(), process.stdout.take()) else {
        bail!("{} started without pipes", program.display());
    };
    Ok(Relayed {
        process,
        to,
        from: BufReader::new(from),
    })
}

/// Serve git by relaying to `git remote-<scheme>`.
pub fn serve(mut s: Session, scheme: &str) -> anyhow::Result<()> {
    let mut child = spawn(&s, scheme)?;
    while let Some(line) = s.io.read_line()? {
        let command = parse_command(&line);
        match command {
            Cmd::Option {
                ref name,
                ref value,
            } => {
                let _ = s.opts.apply(name, value);
                child.send(&line)?;
                let reply = child
                    .recv()?
                    .unwrap_or_else(|| "error helper exited".into());
                s.io.reply(&[reply])?;
            }
            Cmd::List { for_push } => {
                child.send(&line)?;
                let mut lines: Vec<String> = child
                    .recv_block()?
                    .into_iter()
                    .filter(|l| !(for_push && listed_name(l).starts_with("refs/entire/")))
                    .collect();
                lines.push(String::new());
                s.io.reply(&lines)?;
            }
            Cmd::Fetch { .. } => fetch_batch(&mut s, &mut child, line)?,
            Cmd::Push { spec } => push_batch(&mut s, &mut child, spec)?,
            Cmd::StatelessConnect { ref service } | Cmd::Connect { ref service } => {
                let service = service.clone();
                child.send(&line)?;
                let reply = child.recv()?.unwrap_or_else(|| "fallback".into());
                s.io.reply(&[reply.as_str()])?;
                if reply.is_empty() {
                    return pump(s, child, &service);
                }
            }
            Cmd::End => {
                let _ = child.send("");
                break;
            }
            Cmd::Capabilities | Cmd::Unknown(_) => {
                child.send(&line)?;
                let mut lines = child.recv_block()?;
                lines.push(String::new());
                s.io.reply(&lines)?;
            }
        }
    }
    drop(child.to);
    let _ = child.process.wait();
    Ok(())
}

/// The ref name of a `list` reply line (`<value> <name> [attrs]`).
fn listed_name(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

fn fetch_batch(s: &mut Session, child: &mut Relayed, first: String) -> anyhow::Result<()> {
    let mut oids = Vec::new();
    let mut line = first;
    loop {
        match parse_command(&line) {
            Cmd::Fetch { oid, .. } => oids.push(oid),
            Cmd::End => {
                child.send("")?;
                break;
            }
            other => bail!("unexpected {other:?} inside a fetch batch"),
        }
        child.send(&line)?;
        line = match s.io.read_line()? {
            Some(l) => l,
            None => bail!("git ended the session inside a fetch batch"),
        };
    }
    let reply = child.recv_block()?;
    let fetched: Vec<ObjectId> = oids
        .iter()
        .filter_map(|o| ObjectId::from_hex(o.as_bytes()).ok())
        .collect();
    s.pull_along(&fetch::walk_new_commits(&fetched));
    let mut lines = reply;
    lines.push(String::new());
    s.io.reply(&lines)?;
    Ok(())
}

/// Push through the relayed child: the helper protocol's own `push` batch.
struct RelayPush<'c> {
    child: &'c mut Relayed,
    atomic: bool,
}

impl PushTransport for RelayPush<'_> {
    fn push(
        &mut self,
        specs: &[String],
        options: &PushOptions,
    ) -> Result<BTreeMap<String, RefStatus>, TransportFailure> {
        let fail = |e: &dyn std::fmt::Display| TransportFailure {
            message: format!("relayed push failed: {e}"),
        };
        if options.atomic != self.atomic {
            let line = format!("option atomic {}", options.atomic);
            self.child.send(&line).map_err(|e| fail(&e))?;
            let _ = self.child.recv().map_err(|e| fail(&e))?;
            self.atomic = options.atomic;
        }
        for spec in specs {
            self.child
                .send(&format!("push {spec}"))
                .map_err(|e| fail(&e))?;
        }
        self.child.send("").map_err(|e| fail(&e))?;
        let block = self.child.recv_block().map_err(|e| fail(&e))?;
        Ok(block
            .iter()
            .filter_map(|l| RefStatus::parse_helper_line(l))
            .collect())
    }
}

fn push_batch(s: &mut Session, child: &mut Relayed, first: String) -> anyhow::Result<()> {
    let mut raw = vec![first];
    loop {
        let Some(line) = s.io.read_line()? else {
            bail!("git ended the session inside a push batch");
        };
        match parse_command(&line) {
            Cmd::Push { spec } => raw.push(spec),
            Cmd::Option { name, value } => {
                let _ = s.opts.apply(&name, &value);
                child.send(&line)?;
                let reply = child
                    .recv()?
                    .unwrap_or_else(|| "error helper exited".into());
                s.io.reply(&[reply])?;
            }
            Cmd::End => break,
            other => bail!("unexpected {other:?} inside a push batch"),
        }
    }
    let mut specs = Vec::new();
    for r in &raw {
        match PushSpec::parse(r) {
            Some(spec) => specs.push(spec),
            None => bail!("malformed push line from git: push {r}"),
        }
    }
    let with_checkpoints = s.checkpoints_here();
    let options = s.opts.push_options();
    let mut transport = RelayPush {
        child,
        atomic: options.atomic,
    };
    let outcome = push::run(
        s.repo.as_ref(),
        &mut transport,
        &specs,
        &options,
        with_checkpoints,
    );
    s.report_push(&outcome);
    let mut lines: Vec<String> = outcome
        .user
        .iter()
        .map(|(dst, st)| st.helper_line(dst))
        .collect();
    lines.push(String::new());
    s.io.reply(&lines)?;
    Ok(())
}

/// Copy everything from `from` to `to`, flushing after each chunk, until `from` ends; every chunk is also
/// shown to `observe`.
fn copy_flushing(from: &mut impl BufRead, to: &mut impl Write, mut observe: impl FnMut(&[u8])) {
    loop {
        let n = match from.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => {
                observe(buf);
                if to.write_all(buf).and_then(|_| to.flush()).is_err() {
                    return;
                }
                buf.len()
            }
        };
        from.consume(n);
    }
}

/// Become a transparent byte pump until both sides are done, then pull along checkpoints for what a
/// protocol-v2 fetch asked for. git closes its end of our stdout once the pack is indexed and then waits for
/// us before it updates refs, so after [`wait_for_disconnect`] the walk "wanted, not reachable from local refs"
/// is exactly the commits this fetch brought.
fn pump(s: Session, child: Relayed, service: &str) -> anyhow::Result<()> {
    let Session {
        io,
        repo,
        opts,
        endpoint,
        argv1,
    } = s;
    let Relayed {
        mut process,
        mut to,
        mut from,
    } = child;
    let mut input = io.input;
    let upstream = std::thread::spawn(move || {
        let mut sniffer = WantSniffer::default();
        copy_flushing(&mut input, &mut to, |chunk| sniffer.feed(chunk));
        drop(to);
        sniffer.wants()
    });
    let mut stdout = io.output;
    copy_flushing(&mut from, &mut stdout, |_| {});
    let _ = process.wait();
    let wants = upstream.join().unwrap_or_default();
    if repo.is_none() || service != "git-upload-pack" || wants.is_empty() {
        return Ok(());
    }
    let fetched: Vec<ObjectId> = wants
        .iter()
        .filter_map(|o| ObjectId::from_hex(o.as_bytes()).ok())
        .collect();
    if !wait_for_disconnect(DISCONNECT_WAIT) {
        tracing::info!(target: "entire::helper", "git did not finish the fetch in time; no checkpoint pull-along");
        return Ok(());
    }
    let session = Session {
        io: crate::protocol::Io::new(),
        opts,
        endpoint,
        repo,
        argv1,
    };
    session.pull_along(&fetch::walk_new_commits(&fetched));
    Ok(())
}

/// Wait until git closed the reading end of our stdout, which it does once the fetched pack is indexed, right
/// before it waits for us to exit. False if stdout is not a pipe or `limit` passed.
fn wait_for_disconnect(limit: Duration) -> bool {
    // SAFETY: `fstat` and `poll` on fd 1 with zero-initialised, stack-owned structures that outlive the calls.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(1, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFIFO {
            return false;
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut pfd = libc::pollfd {
                fd: 1,
                events: 0,
                revents: 0,
            };
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            let r = libc::poll(&mut pfd, 1, ms);
            if r > 0 && (pfd.revents & (libc::POLLERR | libc::POLLHUP)) != 0 {
                return true;
            }
            if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return false;
            }
        }
    }
}
