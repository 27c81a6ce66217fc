//! Relay mode (http, https, ftp, ftps): git's own `git remote-<scheme>` does the network work.
//!
//! Every command and reply is forwarded unchanged, with three interceptions:
//! - `option` lines are remembered (dry-run, atomic, verbosity, …) on their way through;
//! - `list for-push` replies lose the `refs/entire/*` lines the local repository has no ref for (and every
//!   staging ref), so git never prunes checkpoint refs ([`crate::session::listed_for_push`]);
//! - the `push` batch goes to [`entire::sync::push::run`], which sends the user's lines plus ONE glob line for the
//!   staged checkpoints to the child and reports statuses for the user's refs only.
//!
//! After `stateless-connect` (protocol v2) the relay becomes a transparent byte pump both ways; what the line
//! reader had already buffered is passed on first. The git → server direction is watched (never changed) for
//! `want` lines, and the checkpoint pull-along runs for those commits while git waits for us to exit.

mod child;
pub mod pump;

use std::collections::BTreeMap;

use anyhow::bail;
use entire::git::repo::ObjectId;
use entire::sync::fetch;
use entire::sync::push::{self, PushOptions, PushTransport, RefStatus, TransportFailure};

use crate::protocol::{parse_command, Command as Cmd};
use crate::session::Session;
use child::Relayed;

/// Serve git by relaying to `git remote-<scheme>`.
pub fn serve(mut s: Session, scheme: &str) -> anyhow::Result<()> {
    let name = if s.argv1.starts_with(entire::sync::remote::HELPER_PREFIX) {
        s.endpoint.fetch_url.clone()
    } else {
        s.argv1.clone()
    };
    let mut child = Relayed::spawn(scheme, &name, &s.endpoint.fetch_url)?;
    while let Some(line) = s.io.read_line()? {
        let command = parse_command(&line);
        match command {
            Cmd::Option {
                ref name,
                ref value,
            } => {
                let _ = s.opts.apply(name, value);
                let reply = child.option(&line)?;
                s.io.reply(&[reply])?;
            }
            Cmd::List { for_push } => {
                if for_push && s.endpoint.push_url != child.url() {
                    // `entire::<remote>` whose push URL differs from its fetch URL.
                    let same = entire::sync::remote::transport_of(&s.endpoint.push_url)
                        == entire::sync::remote::Transport::Relay {
                            scheme: scheme.to_string(),
                        };
                    if !same {
                        bail!(
                            "the push URL {} needs another transport than {}; set remote.<name>.pushurl = entire::<push URL> instead",
                            s.endpoint.push_url,
                            s.endpoint.fetch_url
                        );
                    }
                    child.retarget(&s.endpoint.push_url)?;
                }
                child.send(&line)?;
                let mut lines: Vec<String> = child
                    .recv_block()?
                    .into_iter()
                    .filter(|l| {
                        !for_push
                            || crate::session::listed_for_push(s.repo.as_ref(), listed_name(l))
                    })
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
                    return pump::pump(s, child, &service);
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

/// Push through the relayed child: the helper protocol's own `push` batch. The first push uses the child git
/// already talked to; any later one (atomic split, hook retry) a fresh child with the same options.
struct RelayPush<'c> {
    child: &'c mut Relayed,
    atomic: bool,
    pushes: usize,
    url: String,
}

impl PushTransport for RelayPush<'_> {
    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn push(
        &mut self,
        specs: &[String],
        options: &PushOptions,
    ) -> Result<BTreeMap<String, RefStatus>, TransportFailure> {
        let fail = |e: &dyn std::fmt::Display| TransportFailure {
            message: format!("relayed push failed: {e}"),
        };
        if self.pushes > 0 {
            self.child.respawn().map_err(|e| fail(&e))?;
        }
        self.pushes += 1;
        if options.atomic != self.atomic {
            let line = format!("option atomic {}", options.atomic);
            self.child.option(&line).map_err(|e| fail(&e))?;
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
    let specs = s.read_push_batch(first, |s, line, name, value| {
        let _ = s.opts.apply(name, value);
        child.option(line)
    })?;
    let with_checkpoints = s.checkpoints_here();
    let options = s.opts.push_options();
    let mut transport = RelayPush {
        child,
        atomic: options.atomic,
        pushes: 0,
        url: s.endpoint.push_url.clone(),
    };
    let remote = s.remote_name();
    let outcome = push::run(
        s.repo.as_ref(),
        remote.as_deref(),
        &mut transport,
        &specs,
        &options,
        with_checkpoints,
    );
    s.finish_push(&outcome)
}
