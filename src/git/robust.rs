//! Process-level robustness shared by the git layer: lock files removed on termination signals, object writes
//! that survive a concurrent `git gc`, and hook detection.
//!
//! Invariants: the signal cleanup only runs async-signal-safe code (gix-tempfile's registry cleanup, then the
//! signal's default action), so a polite kill still terminates the process, without leaving a lock behind.

use std::path::Path;

/// Lock files (gix-tempfile) are removed when SIGINT, SIGTERM, SIGQUIT or SIGHUP arrive, then the signal's
/// default action runs, so a polite kill leaves no `<ref>.lock` or `packed-refs.lock` behind. Idempotent.
pub(crate) fn install_signal_cleanup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gix::tempfile::signal::setup(Default::default());
        #[cfg(unix)]
        // SAFETY: the action only calls async-signal-safe code: gix-tempfile's signal-safe cleanup and
        // signal-hook's emulation of the default action.
        let _ = unsafe {
            signal_hook::low_level::register(signal_hook::consts::SIGHUP, || {
                gix::tempfile::registry::cleanup_tempfiles_signal_safe();
                let _ =
                    signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGHUP);
            })
        };
    });
}

/// Run an object write, retrying a few times when it failed because a directory vanished under it (a
/// concurrent `git prune-packed` removes empty `objects/xx/` directories between their creation and the
/// rename into them; git's own object writer retries the same way).
pub(crate) fn retry_vanished_dir<T, E: std::error::Error + 'static>(
    mut write: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut attempt = 0;
    loop {
        match write() {
            Err(e) if attempt < 8 && is_not_found(&e) => attempt += 1,
            other => return other,
        }
    }
}

fn is_not_found(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::NotFound {
                return true;
            }
        }
        cur = err.source();
    }
    e.to_string().contains("No such file or directory") || format!("{e:?}").contains("NotFound")
}

#[cfg(unix)]
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
pub(crate) fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Termination signals (INT, TERM, QUIT, HUP) are held back while this guard lives and delivered when it drops.
/// Wrapped around the short stretch in which lock files exist (create, check, write, rename), so a polite kill
/// always finds the locks released: the gix-tempfile registry's signal cleanup is best effort (it skips a lock
/// whose registry slot is being touched at that instant), this is not.
pub(crate) struct DeferSignals {
    #[cfg(unix)]
    old: libc::sigset_t,
}

impl DeferSignals {
    pub(crate) fn new() -> Self {
        #[cfg(unix)]
        // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only reads `set` and
        // writes `old`, both valid for the call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            DeferSignals { old }
        }
        #[cfg(not(unix))]
        DeferSignals {}
    }
}

impl Drop for DeferSignals {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the mask saved by `new` on this thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}
