//! Logging via `tracing`: never to stdout (stdout belongs to git or to the command's output).
//!
//! `ENTIRE_LOG` selects what is logged, as a `tracing` filter (`debug`, `entire=trace`, …); with
//! `ENTIRE_LOG_FILE=<path>` logs are appended to that file instead of stderr. Without `ENTIRE_LOG`, the level
//! follows `-q`/`-v`: warnings by default, errors only with `-q`, info with `-v`, debug with `-vv`.

use std::sync::Once;

static INIT: Once = Once::new();

/// Install the subscriber once per process.
pub fn init(verbose: u8, quiet: bool) {
    INIT.call_once(|| {
        let default = match (quiet, verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter = std::env::var("ENTIRE_LOG").unwrap_or_else(|_| default.to_string());
        let filter = tracing_subscriber::EnvFilter::try_new(&filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .without_time()
            .with_ansi(false);
        let file = std::env::var_os("ENTIRE_LOG_FILE").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let _ = match file {
            Some(f) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
            None => builder.with_writer(std::io::stderr).try_init(),
        };
    });
}
