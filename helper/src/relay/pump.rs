//! The byte pump of relay mode after `stateless-connect`, and the checkpoint pull-along that follows a
//! protocol-v2 fetch.

use std::io::{BufRead, Write};
use std::process::Child;
use std::time::{Duration, Instant};

use entire::git::repo::ObjectId;
use entire::sync::fetch;

use super::child::Relayed;
use crate::pktline::{copy_flushing, WantSniffer};
use crate::session::Session;

/// Longest we wait for git to finish indexing a relayed fetch before giving up on the pull-along.
const DISCONNECT_WAIT: Duration = Duration::from_secs(30 * 60);

/// Become a transparent byte pump until both sides are done, then pull along checkpoints for what a
/// protocol-v2 fetch asked for. git closes its end of our stdout once the pack is indexed and then waits for
/// us before it updates refs, so after [`wait_for_disconnect`] the walk "wanted, not reachable from local refs"
/// is exactly the commits this fetch brought.
pub fn pump(s: Session, child: Relayed, service: &str) -> anyhow::Result<()> {
    let Relayed {
        process, to, from, ..
    } = child;
    pump_streams(s, to, from, service, Some(process))
}

/// [`pump`] over any pair of streams: `to` (closed when git is done sending) and `from` the server, and the
/// process behind them (waited for), e.g. a direct `git-upload-pack` connection of own mode.
pub fn pump_streams(
    s: Session,
    mut to: impl Write + Send + 'static,
    mut from: impl BufRead,
    service: &str,
    process: Option<Child>,
) -> anyhow::Result<()> {
    let Session {
        io,
        repo,
        opts,
        endpoint,
        argv1,
        ..
    } = s;
    let mut input = io.input;
    // The git → server copy is never joined: when the server ends first (e.g. no repository there), git still
    // waits for an answer on our stdout and would never close its side. Everything the server received was
    // fed to the sniffer before it was written, so the wants are complete once the server has finished.
    let sniffer = std::sync::Arc::new(std::sync::Mutex::new(WantSniffer::default()));
    let sniffed = std::sync::Arc::clone(&sniffer);
    std::thread::spawn(move || {
        copy_flushing(&mut input, &mut to, |chunk| {
            if let Ok(mut s) = sniffed.lock() {
                s.feed(chunk);
            }
        });
    });
    let mut stdout = io.output;
    copy_flushing(&mut from, &mut stdout, |_| {});
    if let Some(mut process) = process {
        let _ = process.wait();
    }
    let wants = sniffer
        .lock()
        .map(|mut s| std::mem::take(&mut *s).wants())
        .unwrap_or_default();
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
        refused: Vec::new(),
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
