//! The `git entire` and `git entire-migrate` command lines: clap definitions, dispatch, exit codes.
//!
//! Each subcommand lives in its own file with an `Args` struct and a `run` function. Errors reach the user as
//! `error: …` on stderr with the exit codes of SPEC §6: 0 ok, 1 user error / not found, 2 usage,
//! 3 remote unreachable, 128 internal.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attach;
pub mod error;
mod fetch;
mod fsck;
mod install;
mod list;
pub mod logging;
pub mod man;
mod migrate;
mod push;
mod show;
mod status;
mod write;

pub use error::{CliError, Exit};

/// Global flags shared by every subcommand.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Global {
    /// Only print errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More output (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Per-checkpoint git refs for Entire checkpoints.
#[derive(Debug, Parser)]
#[command(
    name = "git-entire",
    bin_name = "git entire",
    version,
    about = "Per-checkpoint git refs for Entire: write, read, sync and inspect checkpoints",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `git entire` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update a checkpoint from session directories or a manifest; prints the checkpoint ID.
    Write(write::Args),
    /// Print a checkpoint's root metadata.json, or one file inside it.
    Show(show::Args),
    /// Show the rollout mode, store heads and the push queue.
    Status(status::Args),
    /// Check that every checkpoint ref's shard, ID, metadata and content hashes agree.
    Fsck(fsck::Args),
    #[command(about = migrate::ABOUT, long_about = migrate::LONG_ABOUT)]
    Migrate(migrate::Args),
    /// Write the man pages into a directory.
    #[command(name = "__man", hide = true)]
    Man(man::Args),
    /// List the checkpoints linked from code commits (Entire-Checkpoint trailers); fetches missing ones.
    List(list::Args),
    /// Fetch checkpoint refs by ID from the checkpoint remote.
    Fetch(fetch::Args),
    /// Push the queued checkpoint refs (flush the push queue).
    Push(push::Args),
    /// Route a remote's pushes through git-remote-entire (`remote.<name>.pushurl = entire::<url>`).
    Install(install::Args),
    /// Record an agent session that ran outside the hooks and link it to a commit (Entire-Checkpoint trailer).
    Attach(attach::Args),
}

/// Entry point of `git-entire`.
pub fn main_git_entire() -> ExitCode {
    error::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(e),
    };
    crate::logging::init(cli.global.verbose, cli.global.quiet);
    let result = match cli.command {
        Command::Write(a) => write::run(&cli.global, a),
        Command::Show(a) => show::run(&cli.global, a),
        Command::Status(a) => status::run(&cli.global, a),
        Command::Fsck(a) => fsck::run(&cli.global, a),
        Command::Migrate(a) => migrate::run(&cli.global, a),
        Command::Man(a) => man::run(a),
        Command::List(a) => list::run(&cli.global, a),
        Command::Fetch(a) => fetch::run(&cli.global, a),
        Command::Push(a) => push::run(&cli.global, a),
        Command::Install(a) => install::run(&cli.global, a),
        Command::Attach(a) => attach::run(&cli.global, a),
    };
    finish(result)
}

/// Open the repository around the current directory and load its settings.
pub fn open_repo() -> Result<(entire::git::repo::Repo, entire::store::settings::Settings), CliError>
{
    let repo = entire::git::repo::Repo::discover_cwd()?;
    let settings = entire::store::settings::load(repo.workdir().as_deref())?;
    Ok((repo, settings))
}

/// `git entire-migrate`: the same command as `git entire migrate`.
#[derive(Debug, Parser)]
#[command(name = "git-entire-migrate", bin_name = "git entire-migrate", version)]
#[command(about = migrate::ABOUT, long_about = migrate::LONG_ABOUT)]
pub struct MigrateCli {
    #[command(flatten)]
    pub global: Global,
    #[command(flatten)]
    pub args: migrate::Args,
}

/// Entry point of `git-entire-migrate`.
pub fn main_git_entire_migrate() -> ExitCode {
    error::install_panic_hook();
    let cli = match MigrateCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(e),
    };
    crate::logging::init(cli.global.verbose, cli.global.quiet);
    finish(migrate::run(&cli.global, cli.args))
}

/// Print clap's message and map to exit code 2 (0 for --help/--version).
pub fn usage_exit(e: clap::Error) -> ExitCode {
    let code = if e.use_stderr() { Exit::Usage as u8 } else { 0 };
    let _ = e.print();
    ExitCode::from(code)
}

/// Report an error on stderr and map it to its exit code.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.exit as u8)
        }
    }
}
