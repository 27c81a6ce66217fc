//! `git entire-migrate` / `git entire migrate`: the legacy branch → per-checkpoint refs.
//!
//! Output: one `error: checkpoint <path>: <reason>` line per checkpoint that could not be migrated (stderr),
//! then `migrated N, skipped N, failed N` (stdout; omitted with `-q`), or a JSON document with `--json`.
//! A progress line is drawn on stderr only when it is a terminal and `-q` is not given.
//! Exit status: 0 when nothing failed, 1 when a checkpoint failed or the run could not start (lock held,
//! signing failed), 128 for unexpected I/O failures while writing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{CliError, Exit, Global};
use entire::git::repo::Repo;
use entire::migrate::{self, sign::SignRequest, Action, MigrateError, Options, Progress, Report};

/// Text shared by `git entire migrate --help` and the man page.
pub const ABOUT: &str =
    "Move checkpoints from the legacy entire/checkpoints/v1 branch to per-checkpoint refs";
/// Long description for `--help` and the man page.
pub const LONG_ABOUT: &str = "\
Reads refs/heads/entire/checkpoints/v1 (or, when there is no local branch, the remote-tracking copy of \
origin or another remote) and gives every checkpoint its own ref refs/entire/checkpoints/<shard>/<id>, \
pointing at a commit whose tree is the checkpoint's subtree. Only the root metadata.json changes: session \
paths become relative to the checkpoint, checkpoint_version is dropped, checkpoints_version is set to \
\"refs-1\", and cli_version is set to \"entire-rs-migrate\" when it was missing; every other field is kept.

Commits carry the author and committer dates of the legacy commit that last changed the checkpoint, the \
operator's git identity (or --author), and are signed when git's signing configuration says so. The same \
branch, identity and options always produce the same commit IDs.

Every migrated ref is queued for push (git push entire::<remote>, or git entire push). Reruns only do what \
is left: checkpoints whose ref already holds their content are skipped (and queued again if they are not \
queued), checkpoints that changed on the legacy branch get a new commit on top of their ref. An interrupted \
run can simply be run again. A checkpoint that cannot be migrated (missing or invalid metadata.json, an ID \
that does not match its path) is reported and skipped, and makes the exit status 1.

With --to v2 the checkpoints go into the v2 layout instead: refs/entire/checkpoints/v2/main gets one commit \
per batch of 100 checkpoints (oldest first), raw transcripts go into archives of exactly 100 checkpoints \
(refs/entire/checkpoints/v2/full/<13 digits>, recorded as pending publications) and the remainder into \
refs/entire/checkpoints/v2/full/current. Legacy transcript, hash, prompt and task blobs are reused as they \
are. All refs move in one transaction at the end, with the same dates, identity and signing rules as above, \
so an interrupted run leaves nothing half-written and a rerun finishes it; a rerun after success writes \
nothing. Checkpoints already complete in v2 are skipped, partial ones resumed; --force removes them from \
every v2 ref first and migrates them again.";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Redo every checkpoint from scratch (fresh orphan commits), even those already migrated.
    #[arg(long)]
    force: bool,
    /// Report what would happen without writing anything (no objects, refs, queue entries).
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Author of the migration commits, instead of the operator's git identity.
    #[arg(long, value_name = "NAME <EMAIL>", value_parser = parse_author)]
    author: Option<(String, String)>,
    /// Sign the commits with this key (as user.signingKey; the format follows gpg.format).
    #[arg(long, value_name = "KEY", conflicts_with = "no_sign")]
    signing_key: Option<String>,
    /// Do not sign, whatever commit.gpgSign says.
    #[arg(long)]
    no_sign: bool,
    /// Target layout: per-checkpoint refs (`refs`, the default) or the v2 layout (`v2`:
    /// refs/entire/checkpoints/v2/main and /full/*; reruns skip what is complete and resume what is not).
    #[arg(long, value_enum, default_value_t = Target::Refs, value_name = "LAYOUT")]
    to: Target,
}

/// Where `--to` migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    Refs,
    V2,
}

/// Parse `Name <email>`.
fn parse_author(s: &str) -> Result<(String, String), String> {
    let bad = || format!("expected \"Name <email>\", got {s:?}");
    let (name, rest) = s.split_once('<').ok_or_else(bad)?;
    let email = rest.strip_suffix('>').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() || email.is_empty() || email.contains(['<', '>']) || s.contains('\n') {
        return Err(bad());
    }
    Ok((name.to_string(), email.to_string()))
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let repo = Repo::discover_cwd()?;
    let opts = Options {
        force: a.force,
        dry_run: a.dry_run,
        author: a.author.clone(),
        sign: match (&a.signing_key, a.no_sign) {
            (_, true) => SignRequest::Off,
            (Some(k), false) => SignRequest::Key(k.clone()),
            (None, false) => SignRequest::Config,
        },
    };
    let mut bar = TermProgress::new(!g.quiet && std::io::stderr().is_terminal());
    let report = match a.to {
        Target::Refs => migrate::run(&repo, &opts, &mut bar),
        Target::V2 => migrate::v2::run(&repo, &opts, &mut bar),
    };
    bar.clear();
    let report = report.map_err(cli_error)?;
    for o in report
        .outcomes
        .iter()
        .filter(|o| o.action == Action::Failed)
    {
        eprintln!(
            "error: checkpoint {}: {}",
            o.path,
            o.reason.as_deref().unwrap_or("failed")
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&report)).expect("JSON value serializes")
        );
    } else if !g.quiet {
        print_summary(&report);
    }
    match report.count(Action::Failed) {
        0 => Ok(()),
        n => Err(CliError::user(format!(
            "{n} checkpoint(s) could not be migrated"
        ))),
    }
}

fn cli_error(e: MigrateError) -> CliError {
    let exit = match &e {
        MigrateError::Pack(_) | MigrateError::Refs(_) | MigrateError::Repo(_) => Exit::Internal,
        _ => Exit::User,
    };
    let hint = match &e {
        MigrateError::Commit(_) => Some("use --no-sign to migrate without signatures"),
        _ => None,
    };
    let err = CliError::new(exit, e);
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

fn print_summary(report: &Report) {
    if report.source.is_none() {
        eprintln!(
            "nothing to migrate: no {} branch (local or remote-tracking)",
            entire::model::refname::LEGACY_BRANCH
        );
    }
    let dry = if report.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!(
        "migrated {}, skipped {}, failed {}{dry}",
        report.migrated(),
        report.count(Action::Skipped),
        report.count(Action::Failed)
    );
}

fn to_json(report: &Report) -> serde_json::Value {
    json!({
        "source": report.source.as_ref().map(|s| json!({"ref": s.ref_name, "tip": s.tip.to_string()})),
        "dry_run": report.dry_run,
        "signed": report.signed,
        "migrated": report.migrated(),
        "created": report.count(Action::Created),
        "updated": report.count(Action::Updated),
        "skipped": report.count(Action::Skipped),
        "failed": report.count(Action::Failed),
        "objects_written": report.objects_written,
        "queued": report.queued,
        "checkpoints": report.outcomes,
    })
}

/// A one-line progress display on stderr: silent for the first 250 ms, redrawn at most 10 times a second.
struct TermProgress {
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
    phase: &'static str,
    total: Option<usize>,
    done: usize,
}

impl TermProgress {
    fn new(enabled: bool) -> Self {
        TermProgress {
            enabled,
            start: Instant::now(),
            last: None,
            phase: "",
            total: None,
            done: 0,
        }
    }

    fn draw(&mut self) {
        if !self.enabled || self.start.elapsed() < Duration::from_millis(250) {
            return;
        }
        if self
            .last
            .is_some_and(|l| l.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let line = match self.total {
            Some(t) if t > 0 => format!(
                "{}: {}/{} ({}%)",
                self.phase,
                self.done,
                t,
                self.done * 100 / t
            ),
            _ => format!("{}: {}", self.phase, self.done),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }

    fn clear(&mut self) {
        if self.last.is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

impl Progress for TermProgress {
    fn phase(&mut self, name: &'static str, total: Option<usize>) {
        self.phase = name;
        self.total = total;
        self.done = 0;
        self.last = None;
        self.draw();
    }

    fn advance(&mut self, done: usize) {
        self.done = done;
        self.draw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "Entire Checkpoint Migration <checkpoints@entire.io>",
                Some(("Entire Checkpoint Migration", "checkpoints@entire.io")),
            ),
            ("  A <a@b>", Some(("A", "a@b"))),
            ("no email", None),
            ("<only@email>", None),
            ("Name <>", None),
            ("Name <a@b> trailing", None),
            ("Name <a<b>", None),
        ];
        for (input, want) in cases {
            let got = parse_author(input).ok();
            let want = want.map(|(n, e)| (n.to_string(), e.to_string()));
            assert_eq!(got, want, "{input}");
        }
    }
}
