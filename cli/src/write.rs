//! `git entire write`: create or update a checkpoint (the producer API).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{open_repo, CliError, Global};
use entire::model::checkpoint::{SessionInput, TaskFile};
use entire::model::id::CheckpointId;
use entire::model::metadata::SessionMetadata;
use entire::model::validate;
use entire::store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint to create or update (12 lowercase hex or a ULID); a new ID is minted when omitted.
    #[arg(long)]
    id: Option<String>,
    /// JSON manifest naming the sessions: {"id"?: "…", "sessions": ["<dir>" | {"metadata": "<file>",
    /// "transcript": "<file>", "prompt"?: "<file>", "context"?: "<file>", "compact_transcript"?: "<file>",
    /// "tasks"?: [{"tool_use_id", "agent_id", "task": "<task.json file>", "transcript": "<agent transcript>"}]}]}.
    /// Relative paths are resolved against the manifest's directory.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Print a JSON report instead of the bare ID.
    #[arg(long)]
    json: bool,
    /// Session directories, each holding metadata.json and full.jsonl (optionally prompt.txt, context.md,
    /// transcript.jsonl, and a tasks/ tree of subagent files).
    #[arg(value_name = "SESSION-DIR")]
    sessions: Vec<PathBuf>,
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let (repo, settings) = open_repo()?;
    let mut sessions = Vec::new();
    let mut id = a.id.as_deref().map(CheckpointId::parse).transpose()?;
    if let Some(m) = &a.manifest {
        let (mid, ms) = read_manifest(m)?;
        if let (Some(given), Some(from_manifest)) = (&id, &mid) {
            if given != from_manifest {
                return Err(CliError::usage(format!(
                    "--id {given} disagrees with the manifest's id {from_manifest} ({})",
                    m.display()
                )));
            }
        }
        id = id.or(mid);
        sessions.extend(ms);
    }
    for dir in &a.sessions {
        sessions.push(SessionInput::from_dir(dir)?);
    }
    if sessions.is_empty() {
        return Err(CliError::usage(
            "nothing to write: give at least one session directory or --manifest",
        ));
    }
    let who = repo.committer();
    let report = store::write(&repo, settings.rollout, id, &sessions, &who)?;
    for w in &report.warnings {
        if !g.quiet {
            eprintln!("warning: {w}");
        }
    }
    if a.json {
        let out = json!({
            "id": report.id.as_str(),
            "ref": report.refs.as_ref().map(|r| r.ref_name.clone()),
            "commit": report.refs.as_ref().map(|r| r.commit.to_string()),
            "changed": report.refs.as_ref().map(|r| r.changed),
            "branch_commit": report.branch.map(|c| c.to_string()),
            "v2": report.v2.as_ref().map(|w| json!({
                "main": w.main.to_string(),
                "main_changed": w.main_changed,
                "full_ref": w.full.as_ref().map(|f| f.ref_name.clone()),
                "full_commit": w.full.as_ref().map(|f| f.commit.to_string()),
                "slots": w.slots,
                "rotated": w.rotated,
            })),
            "queued": report.refs.is_some() || report.v2.is_some(),
            "warnings": report.warnings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("JSON value serializes")
        );
    } else {
        println!("{}", report.id);
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<(Option<CheckpointId>, Vec<SessionInput>), CliError> {
    let bad = |msg: String| CliError::user(format!("manifest {}: {msg}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let id = match v.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(CheckpointId::parse(s).map_err(|e| bad(e.to_string()))?),
        Some(_) => return Err(bad("\"id\" must be a string".into())),
    };
    let Some(items) = v.get("sessions").and_then(Value::as_array) else {
        return Err(bad("expected an object with a \"sessions\" array".into()));
    };
    let mut sessions = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let session = match item {
            Value::String(dir) => SessionInput::from_dir(&base.join(dir))?,
            Value::Object(m) => {
                let file = |key: &str, required: bool| -> Result<Option<Vec<u8>>, CliError> {
                    match m.get(key).and_then(Value::as_str) {
                        Some(p) => {
                            let p = base.join(p);
                            std::fs::read(&p).map(Some).map_err(|e| {
                                bad(format!("sessions[{i}].{key}: {}: {e}", p.display()))
                            })
                        }
                        None if required => Err(bad(format!("sessions[{i}] lacks \"{key}\""))),
                        None => Ok(None),
                    }
                };
                let meta_bytes = file("metadata", true)?.expect("required file is present");
                SessionInput {
                    metadata: SessionMetadata::parse(
                        &meta_bytes,
                        &format!("manifest sessions[{i}].metadata"),
                    )?,
                    transcript: file("transcript", true)?.expect("required file is present"),
                    prompt: file("prompt", false)?,
                    context: file("context", false)?,
                    compact: file("compact_transcript", false)?,
                    tasks: manifest_tasks(m, base, i, &bad)?,
                }
            }
            _ => {
                return Err(bad(format!(
                    "sessions[{i}] must be a directory path or an object"
                )))
            }
        };
        sessions.push(session);
    }
    Ok((id, sessions))
}

/// The `tasks` of manifest session `i`: `[{"tool_use_id", "agent_id", "task": "<task.json file>",
/// "transcript": "<agent transcript file>"}]`, stored as `<tool-use-id>/task.json` and
/// `<tool-use-id>/agent-<agent-id>.jsonl`. IDs follow upstream's rules.
fn manifest_tasks(
    m: &serde_json::Map<String, Value>,
    base: &Path,
    i: usize,
    bad: &dyn Fn(String) -> CliError,
) -> Result<Vec<TaskFile>, CliError> {
    let Some(items) = m.get("tasks") else {
        return Ok(Vec::new());
    };
    let Some(items) = items.as_array() else {
        return Err(bad(format!("sessions[{i}].tasks must be an array")));
    };
    let mut out = Vec::new();
    for (j, t) in items.iter().enumerate() {
        let at = format!("sessions[{i}].tasks[{j}]");
        let field = |key: &str| -> Result<&str, CliError> {
            t.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{at} lacks \"{key}\"")))
        };
        let tool_use =
            validate::tool_use_id(field("tool_use_id")?).map_err(|e| bad(format!("{at}: {e}")))?;
        let read = |key: &str| -> Result<Vec<u8>, CliError> {
            let p = base.join(field(key)?);
            std::fs::read(&p).map_err(|e| bad(format!("{at}.{key}: {}: {e}", p.display())))
        };
        out.push(TaskFile::new(
            &format!("{tool_use}/task.json"),
            read("task")?,
        )?);
        if t.get("transcript").is_some() {
            let agent =
                validate::agent_id(field("agent_id")?).map_err(|e| bad(format!("{at}: {e}")))?;
            out.push(TaskFile::new(
                &format!("{tool_use}/agent-{agent}.jsonl"),
                read("transcript")?,
            )?);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
