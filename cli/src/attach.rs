//! `git entire attach`: record an agent session that ran outside the hooks and link it to a commit.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use serde_json::json;

use super::{open_repo, CliError, Exit, Global};
use entire::attach::{self, Answer, AttachError, Linked, Outcome, Request, Source, Target};
use entire::model::id::CheckpointId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An agent transcript (Claude Code JSONL, or another agent's file stored as given) or a session directory
    /// as `git entire write` takes it.
    #[arg(value_name = "TRANSCRIPT")]
    transcript: PathBuf,
    /// Session ID (default: the transcript's own `sessionId`, else the file name without `.jsonl`).
    #[arg(long)]
    session_id: Option<String>,
    /// The agent that wrote the transcript; only `claude-code` transcripts are analysed.
    #[arg(long, default_value = attach::session::CLAUDE_CODE)]
    agent: String,
    /// The commit to link (default HEAD).
    #[arg(long, value_name = "REV")]
    commit: Option<String>,
    /// Amend HEAD without asking.
    #[arg(short, long)]
    force: bool,
    /// Never rewrite history; print the trailer to add instead.
    #[arg(long)]
    no_amend: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let (repo, settings) = open_repo()?;
    let root = repo.workdir();
    let prepared = attach::session::prepare(&Source {
        path: &a.transcript,
        session_id: a.session_id.as_deref(),
        agent: &a.agent,
        repo_root: root.as_deref(),
        cli_version: env!("CARGO_PKG_VERSION"),
    })
    .map_err(attach_error)?;
    let req = Request {
        commit: a.commit.as_deref(),
        no_amend: a.no_amend,
    };
    let force = a.force;
    let mut confirm = |t: &Target, id: &CheckpointId| ask(t, id, force);
    let who = repo.committer();
    let out = attach::attach(&repo, settings.rollout, prepared, &req, &who, &mut confirm)
        .map_err(attach_error)?;
    if !g.quiet {
        for w in &out.warnings {
            eprintln!("warning: {w}");
        }
    }
    if a.json {
        print_json(&out);
    } else if !g.quiet {
        print_text(&out);
    }
    Ok(())
}

/// Ask before amending: `--force` says yes; without a terminal the answer is no (print the trailer instead).
fn ask(target: &Target, id: &CheckpointId, force: bool) -> Answer {
    if force {
        return Answer::Yes;
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Answer::No("no terminal to ask on; rerun with --force to amend".into());
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\nLast commit: {} {}\nAmend it with Entire-Checkpoint: {id}? [Y/n] ",
        target.short(),
        target.subject
    );
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return Answer::No("no answer".into());
    }
    match line.trim().to_ascii_lowercase().as_str() {
        "" | "y" | "yes" => Answer::Yes,
        _ => Answer::No("declined".into()),
    }
}

fn print_text(out: &Outcome) {
    let mut o = std::io::stdout().lock();
    if out.unchanged {
        let _ = writeln!(
            o,
            "Session {} is already attached to checkpoint {}; nothing written",
            out.session_id, out.id
        );
        return;
    }
    let _ = writeln!(o, "Attached session {}", out.session_id);
    if let Some(a) = &out.prepared.analysis {
        let mut parts = vec![format!("{} turn(s)", a.turn_count)];
        if let Some(m) = &a.model {
            parts.push(m.clone());
        }
        let tokens = a.tokens.input_tokens + a.tokens.output_tokens;
        if tokens > 0 {
            parts.push(format!("{tokens} tokens"));
        }
        let _ = writeln!(o, "  Captured: {}", parts.join(" · "));
    }
    if out.created {
        let _ = writeln!(o, "  Created checkpoint {}", out.id);
    } else {
        let _ = writeln!(o, "  Added to existing checkpoint {}", out.id);
    }
    match &out.linked {
        Linked::Existing => {}
        Linked::Amended { new, .. } => {
            let short = &new[..new.len().min(7)];
            let _ = writeln!(
                o,
                "Amended commit {short} with Entire-Checkpoint: {}",
                out.id
            );
        }
        Linked::Manual { reason } => {
            let _ = writeln!(
                o,
                "Not amended ({reason}). Copy to your commit message to attach:\n\n  Entire-Checkpoint: {}",
                out.id
            );
        }
    }
}

fn print_json(out: &Outcome) {
    let (amended, manual) = match &out.linked {
        Linked::Amended { old, new } => (Some(json!({"old": old, "new": new})), None),
        Linked::Manual { reason } => (None, Some(reason.clone())),
        Linked::Existing => (None, None),
    };
    let doc = json!({
        "session_id": out.session_id,
        "checkpoint_id": out.id.as_str(),
        "created": out.created,
        "unchanged": out.unchanged,
        "commit": out.target.commit,
        "amended": amended,
        "trailer_to_add": manual.as_ref().map(|_| format!("Entire-Checkpoint: {}", out.id)),
        "not_amended_because": manual,
        "warnings": out.warnings,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// Map attach failures: bad input and refusals are the user's (1), an unreachable remote 3, the rest internal.
fn attach_error(e: AttachError) -> CliError {
    match e {
        AttachError::Lazy(l) => super::fetch::lazy_error(l),
        AttachError::Missing { ref id, .. } => {
            let hint = format!(
                "fetch it first (`git entire fetch {id}`), or ask whoever made the commit to push their checkpoints"
            );
            CliError::new(Exit::User, e).hint(hint)
        }
        AttachError::Input { .. }
        | AttachError::InvalidId(_)
        | AttachError::NoCommits
        | AttachError::BadRevision(_)
        | AttachError::Checkpoint(_) => CliError::new(Exit::User, e),
        other => CliError::new(Exit::Internal, other),
    }
}
