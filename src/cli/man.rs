//! Man pages generated from the clap definitions (`git entire __man <dir>` regenerates `man/`).
//!
//! Invariant: the pages in `man/` are exactly [`render_man`] of the current definitions; a test fails when
//! they drift, so `git entire-migrate --help` (which git turns into `man git-entire-migrate`) never lies.

use std::path::PathBuf;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages into.
    dir: PathBuf,
}

/// The roff source of `cmd`'s man page.
pub fn render_man(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

/// Every page this crate ships: `(file name, command)`.
pub fn pages() -> Vec<(String, clap::Command)> {
    let migrate = <super::MigrateCli as clap::CommandFactory>::command();
    vec![("git-entire-migrate.1".to_string(), migrate)]
}

pub fn run(a: Args) -> Result<(), CliError> {
    std::fs::create_dir_all(&a.dir)?;
    for (name, cmd) in pages() {
        let path = a.dir.join(&name);
        std::fs::write(&path, render_man(cmd))?;
        println!("{}", path.display());
    }
    Ok(())
}
