//! `git-remote-entire`: the git remote helper for `entire::<address>` URLs.
//!
//! git runs it as `git-remote-entire <remote> <address>` and talks the remote-helper protocol on stdin/stdout.
//! Pushes carry the queued checkpoint refs along (one push, one glob refspec); fetches behave like the plain
//! address and pull referenced checkpoints along. See `protocol` (the wire format), `own` (ssh, git://, file://)
//! and `relay` (http(s) through git's own `git remote-http(s)`).
//!
//! Invariants: stdout carries nothing but protocol; the helper never panics on bad input (a panic hook turns
//! bugs into `fatal:` on stderr and exit 128); exit code 0 unless the protocol itself broke.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod own;
mod pktline;
mod protocol;
mod relay;
mod session;

fn main() -> std::process::ExitCode {
    session::main()
}
