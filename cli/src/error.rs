//! The CLI's one error type: a message chain, optional hints, and the exit code it maps to.

use std::fmt;

/// Exit codes (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// User error or not found.
    User = 1,
    /// Bad usage.
    Usage = 2,
    /// The remote could not be reached.
    Unreachable = 3,
    /// A bug or an unexpected environment failure.
    Internal = 128,
}

/// An error on its way to the user.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub error: anyhow::Error,
    pub hints: Vec<String>,
}

impl CliError {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    pub fn user(msg: impl fmt::Display) -> Self {
        Self::new(Exit::User, anyhow::anyhow!("{msg}"))
    }

    pub fn usage(msg: impl fmt::Display) -> Self {
        Self::new(Exit::Usage, anyhow::anyhow!("{msg}"))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Print `error: …`, the cause chain and hints to stderr.
    pub fn report(&self) {
        eprintln!("{}", self.render());
    }

    /// The text [`CliError::report`] prints: `error: …`, each further cause once, then the hints.
    pub fn render(&self) -> String {
        let lines = entire::report::causes(self.error.as_ref());
        let mut msg = format!(
            "error: {}",
            lines.first().map(String::as_str).unwrap_or("unknown error")
        );
        for cause in lines.iter().skip(1) {
            msg.push_str(&format!("\n  caused by: {cause}"));
        }
        for h in &self.hints {
            msg.push_str(&format!("\nhint: {h}"));
        }
        msg
    }
}

/// Library errors map to their exit code by what failed ([`classify`]).
impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        let error = e.into();
        CliError::new(classify(&error), error)
    }
}

/// The one error-to-exit-code mapping: the first cause in the chain (outermost first) that decides wins.
/// Bad input and "not found" are [`Exit::User`]; I/O, object and lock failures and other infrastructure
/// problems are [`Exit::Internal`]; anything unrecognised stays a user error (library errors name the culprit).
pub fn classify(error: &anyhow::Error) -> Exit {
    error.chain().find_map(decide).unwrap_or(Exit::User)
}

fn decide(e: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    use entire::git::cmd::GitCmdError;
    use entire::git::packedrefs::PackedRefsError;
    use entire::git::repo::RepoError;
    use entire::migrate::{commit::CommitError, refs::RefsError, MigrateError};
    use entire::model::checkpoint::CheckpointError;
    use entire::store::queue::QueueError;
    use entire::store::settings::SettingsError;
    use entire::store::v2::V2Error;
    use entire::store::StoreError;
    use entire::sync::push::StageError;
    fn repo(r: &RepoError) -> Exit {
        match r {
            RepoError::NotARepo { .. }
            | RepoError::Unsupported { .. }
            | RepoError::Conflict { .. }
            | RepoError::Rejected { .. } => Exit::User,
            RepoError::Git { .. } | RepoError::Locked { .. } | RepoError::BadObject { .. } => {
                Exit::Internal
            }
        }
    }
    fn checkpoint(c: &CheckpointError) -> Option<Exit> {
        match c {
            CheckpointError::Repo(r) => Some(repo(r)),
            _ => Some(Exit::User),
        }
    }
    if let Some(r) = e.downcast_ref::<RepoError>() {
        return Some(repo(r));
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return match s {
            StoreError::Repo(r) => Some(repo(r)),
            StoreError::Checkpoint(c) => checkpoint(c),
            StoreError::TooManyConflicts { .. } | StoreError::Enqueue { .. } => {
                Some(Exit::Internal)
            }
            StoreError::V2(V2Error::SlotTaken { .. }) => Some(Exit::User),
            StoreError::V2(_) => Some(Exit::Internal),
        };
    }
    if let Some(c) = e.downcast_ref::<CheckpointError>() {
        return checkpoint(c);
    }
    if e.is::<SettingsError>() {
        return Some(Exit::User);
    }
    if let Some(q) = e.downcast_ref::<QueueError>() {
        return Some(match q {
            QueueError::NotCheckpointRef { .. } => Exit::User,
            QueueError::Io { .. } => Exit::Internal,
        });
    }
    if let Some(m) = e.downcast_ref::<MigrateError>() {
        return match m {
            MigrateError::Repo(r) => Some(repo(r)),
            MigrateError::Refs(RefsError::Repo(r)) => Some(repo(r)),
            MigrateError::Commit(CommitError::Repo(r)) => Some(repo(r)),
            MigrateError::Lock(_) | MigrateError::Commit(_) | MigrateError::Deleted(_) => None,
            _ => Some(Exit::Internal),
        };
    }
    if let Some(s) = e.downcast_ref::<StageError>() {
        return match s {
            StageError::Repo(r) => Some(repo(r)),
            _ => Some(Exit::Internal),
        };
    }
    if e.is::<PackedRefsError>() || e.is::<std::io::Error>() {
        return Some(Exit::Internal);
    }
    match e.downcast_ref::<GitCmdError>() {
        Some(GitCmdError::Spawn { .. }) => Some(Exit::Internal),
        _ => None,
    }
}

/// One `fatal:` line and exit 128 for a panic (a bug), instead of a backtrace and 101. A panic while printing
/// to a closed stdout (`git entire … | head -c1`) ends the command quietly, like git on SIGPIPE (141): every
/// command prints its result only after its writes finished, so nothing is left half done.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        if msg.contains("failed printing to stdout") {
            std::process::exit(141);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("fatal: internal error: {msg}{at}");
        std::process::exit(Exit::Internal as i32);
    }));
}
