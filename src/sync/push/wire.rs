//! The one-connection push of own mode (ssh, git://): git's own `git send-pack --stateless-rpc` drives the
//! push over the connection that already produced the listing ([`super::connect`]).
//!
//! This is how git's `remote-http` pushes: send-pack gets the refspecs and the server's advertisement on
//! stdin, writes its request (commands, push certificate, pack from `git pack-objects` with thin packs and
//! progress) pkt-line-wrapped to stdout, reads the server's response (report-status / report-status-v2,
//! side-band with progress and hook messages) from stdin, and prints one `ok`/`error` line per ref
//! (`--helper-status`). So every client-side rule — fast-forward checks, `--force-with-lease`,
//! `--force-if-includes`, `--atomic`, push options, `--signed`, `--dry-run` — is git's own code; this module only
//! carries bytes: the request is unwrapped onto the connection, the response is passed back unchanged.
//!
//! Why this design (measured with `scripts/bench-transport --only net`, 2 shared vCPUs, loopback OpenSSH 9.2 with
//! key auth and a git daemon, git 2.47; medians of 9 pushes, of 3 for the big remote):
//!
//! | push | plain git | two connections (before) | one connection | + advertisement trimmed (this) |
//! |---|---|---|---|---|
//! | ssh, empty queue | 614 / 592 ms | 1272 ms (2.07×) | 616 ms (1.00×) | 554 ms (0.94×) |
//! | git://, empty queue | 77 / 73 ms | 131 ms (1.70×) | 46 ms (0.60×) | 49 ms (0.67×) |
//! | ssh, 1,000 queued + main into a 100,000-ref remote | 3813 / 5545 ms | 4288 ms (1.12×) | 4280 ms (1.12×) | 3702 ms (0.67×) |
//! | git://, the same | 2880 / 2921 ms | 2805 ms (0.97×) | 3020 ms (1.05×) | 1328 ms (0.45×) |
//!
//! (Two runs; the plain-git baseline of each is given as first / second. The last run shared the machine with
//! a test run, which inflated its ssh baseline.)
//!
//! The connection handshake is the cost (ssh: key exchange and authentication, ~0.3–0.6 s here, more over a
//! real network); with a big remote the 10 MB ref advertisement and the server's ref update dominate and
//! both paths are within noise of plain git (the machine is shared: ±10% between runs). The alternative
//! from the issue, OpenSSH connection sharing for a `git push` child, would help only OpenSSH, would change
//! the user's ssh settings, and leaves git:// at two connections; speaking receive-pack through send-pack
//! keeps git's whole client and costs one extra parse of the advertisement (~30 ms at 100,000 refs).
//!
//! At 100,000 remote refs, send-pack's share of the work is parsing the advertisement, matching the glob and
//! printing a `no match` line per untouched ref; so the remote's checkpoint refs that the push cannot reach
//! (every one not in this run's batch) are left out of the advertisement send-pack gets. Nothing else is:
//! the user's refs see exactly what the server announced.
//!
//! Invariants: the connection is used for ONE push; a later push of the same run (the `--atomic` split, the
//! retry of the user's refs alone) goes through [`GitPush`] on a fresh connection. send-pack's stderr is
//! forwarded minus its "Everything up-to-date" (the outer git speaks for the user's refs).
//!
//! Failure modes: a send-pack that printed no status yields [`TransportFailure`] with its last error line; a
//! server that hung up after the request shows as `expecting report` statuses, which
//! [`super::status`] treats as failures without a server verdict.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use crate::git::cmd as gitcmd;
use crate::model::refname::CHECKPOINT_PREFIX;

use super::child::{last_error_line, GitPush};
use super::connect::{pkt, read_pkt, Connection};
use super::status::{parse_helper_status, RefStatus, Rejection};
use super::{PushOptions, PushTransport, TransportFailure};

/// The numbers behind choosing this design (see the module docs).
pub const MEASURED: &str =
    "see scripts/bench-transport; recorded in the module docs of super::wire";

/// Pushes over a held connection once, then through `git push` children.
pub struct Wire {
    conn: Option<Connection>,
    fallback: GitPush,
    /// The checkpoint refs the push can reach; the others are left out of the advertisement send-pack sees.
    checkpoints: Option<std::collections::HashSet<String>>,
}

impl Wire {
    pub fn new(conn: Option<Connection>, url: &str) -> Self {
        Wire {
            conn,
            fallback: GitPush::new(url),
            checkpoints: None,
        }
    }
}

impl PushTransport for Wire {
    fn url(&self) -> Option<&str> {
        self.fallback.url()
    }

    fn push(
        &mut self,
        specs: &[String],
        options: &PushOptions,
    ) -> Result<BTreeMap<String, RefStatus>, TransportFailure> {
        let Some(conn) = self.conn.take() else {
            return self.fallback.push(specs, options);
        };
        let advertisement = match &self.checkpoints {
            Some(keep) => conn.advertisement_without(&|name| {
                name.starts_with(CHECKPOINT_PREFIX) && !keep.contains(name)
            }),
            None => conn.advertisement.clone(),
        };
        let mut statuses = send_pack(conn, advertisement, specs, options)?;
        // send-pack prints no line for the refs an atomic push gave up on; git calls them so.
        if options.atomic && statuses.values().any(|s| !s.landed()) {
            for dst in specs
                .iter()
                .filter_map(|s| s.split_once(':').map(|(_, d)| d))
            {
                statuses.entry(dst.to_string()).or_insert_with(|| {
                    RefStatus::Rejected(Rejection::Failed("atomic push failed".into()))
                });
            }
        }
        Ok(statuses)
    }

    fn checkpoint_destinations(&mut self, names: &[&str]) {
        self.checkpoints = Some(names.iter().map(|n| n.to_string()).collect());
    }
}

fn command(url: &str, o: &PushOptions) -> std::process::Command {
    let mut cmd = gitcmd::git();
    cmd.args([
        "send-pack",
        "--stateless-rpc",
        "--helper-status",
        "--stdin",
        "--thin",
    ]);
    if o.progress {
        cmd.arg("--progress");
    }
    match o.verbosity {
        0 => {
            cmd.arg("--quiet");
        }
        1 => {}
        _ => {
            cmd.arg("--verbose");
        }
    }
    cmd.args(o.shared_flags());
    cmd.arg(url);
    cmd
}

fn dropped_stderr_line(line: &str) -> bool {
    line == "Everything up-to-date"
}

/// Run one `git send-pack --stateless-rpc` over `conn`.
fn send_pack(
    mut conn: Connection,
    advertisement: Vec<u8>,
    specs: &[String],
    o: &PushOptions,
) -> Result<BTreeMap<String, RefStatus>, TransportFailure> {
    let fail = |m: String| TransportFailure { message: m };
    let mut cmd = command(&conn.url, o);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!(target: "entire::push", "running git {}", gitcmd::describe(&cmd));
    let mut child = gitcmd::spawn(&mut cmd).map_err(|e| fail(e.to_string()))?;
    let (Some(mut to_sp), Some(from_sp), Some(err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(fail("git send-pack started without pipes".into()));
    };
    let forward = std::thread::spawn(move || gitcmd::forward_stderr(err, dropped_stderr_line));
    let mut preamble: Vec<u8> = specs
        .iter()
        .flat_map(|s| pkt(format!("{s}\n").as_bytes()))
        .collect();
    preamble.extend_from_slice(b"0000");
    let (mut from_server, to_server) = conn.split();
    // Server → send-pack: the refspecs and the advertisement first, then whatever the server answers.
    let pump = std::thread::spawn(move || {
        if to_sp
            .write_all(&preamble)
            .and_then(|_| to_sp.write_all(&advertisement))
            .and_then(|_| to_sp.flush())
            .is_err()
        {
            return;
        }
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from_server.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to_sp
                        .write_all(&buf[..n])
                        .and_then(|_| to_sp.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let mut from_sp = BufReader::with_capacity(1 << 16, from_sp);
    let started = std::time::Instant::now();
    let sent = relay_request(&mut from_sp, to_server);
    tracing::debug!(target: "entire::push", ms = started.elapsed().as_millis() as u64, "request relayed");
    let mut rest = Vec::new();
    let _ = from_sp.read_to_end(&mut rest);
    let _ = pump.join();
    let status = child.wait();
    conn.finish(false);
    let stderr = forward.join().unwrap_or_default();
    tracing::debug!(target: "entire::push", ms = started.elapsed().as_millis() as u64, "response relayed");
    let text = String::from_utf8_lossy(&rest);
    let statuses = parse_helper_status(text.trim_start_matches("0000"));
    if let Err(e) = &sent {
        tracing::debug!(target: "entire::push", "request not fully sent: {e}");
    }
    if statuses.is_empty() {
        let stderr = String::from_utf8_lossy(&stderr);
        let why = match (&sent, status) {
            (Err(e), _) => format!("{}: {e}", last_error_line(&stderr)),
            _ => last_error_line(&stderr),
        };
        return Err(fail(why));
    }
    Ok(statuses)
}

/// Copy send-pack's request onto the connection, unwrapping its pkt-lines, up to the flush that ends it; an
/// empty request (nothing to update, dry run) becomes the flush that tells the server so. Closes the write side.
fn relay_request(
    from_sp: &mut BufReader<impl Read>,
    to_server: Option<Box<dyn Write + Send>>,
) -> std::io::Result<()> {
    let Some(mut to_server) = to_server else {
        return Err(std::io::Error::other("connection already closed"));
    };
    let starts_request = match from_sp.fill_buf() {
        Ok(buf) => buf.len() >= 4 && buf[..4].iter().all(u8::is_ascii_hexdigit),
        Err(_) => false,
    };
    let mut sent = 0usize;
    if starts_request {
        while let Some(payload) = read_pkt(from_sp)? {
            to_server.write_all(&payload)?;
            sent += payload.len();
        }
    }
    if sent == 0 {
        to_server.write_all(b"0000")?;
    }
    to_server.flush()
}
