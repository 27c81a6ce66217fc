//! `git entire status`.
use super::{CliError, Global};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_g: &Global, _a: Args) -> Result<(), CliError> {
    Err(CliError::user("not implemented yet"))
}
