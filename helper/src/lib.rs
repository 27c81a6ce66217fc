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

use std::process::ExitCode;

use entire::sync::remote::{self, Transport};
use session::Start;

mod own;
mod pktline;
mod protocol;
mod relay;
mod session;
mod wanted;

/// Entry point of `git-remote-entire` (the binary in `entire-cli` sets up logging, then calls this with the
/// long help text); exit 0 unless the protocol itself broke, 128 on an internal error or panic.
pub fn main(help: &dyn Fn() -> String) -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("fatal: git-remote-entire: internal error: {info}");
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&args, help)));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!(
                "fatal: git-remote-entire: {}",
                entire::report::causes(e.as_ref()).join(": ")
            );
            ExitCode::from(128)
        }
        Err(_) => ExitCode::from(128),
    }
}

fn serve(args: &[String], help: &dyn Fn() -> String) -> anyhow::Result<()> {
    let Start::Serve(session) = session::start(args, help)? else {
        return Ok(());
    };
    match remote::transport_of(&session.endpoint.fetch_url) {
        Transport::Relay { scheme } => relay::serve(*session, &scheme),
        Transport::Own => own::serve(*session),
    }
}
