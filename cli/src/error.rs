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

/// Library errors default to "user error" (they name the thing at fault) unless mapped otherwise.
impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::new(Exit::User, e)
    }
}
