//! Turning an agent transcript (or a session directory) into the session `git entire write` would store.
//!
//! Rules:
//! - Input is a regular file of at most [`claude::MAX_TRANSCRIPT_BYTES`] (checked before reading), or a session
//!   directory as `write` takes it. Anything else is refused naming the path.
//! - Claude Code transcripts (the default agent) are analysed: session id, first prompt, turn count, model, token
//!   usage (once per message id), `created_at` (first timestamp), files touched. A file that is not JSONL, holds
//!   NUL bytes or is too large is refused before anything is written.
//! - Other agents' files are stored as given; their session id comes from `--session-id` or the file name.
//! - The session id is validated with the upstream rules ([`validate::session_id`]) before it reaches a path or
//!   a commit message.
//! - Secrets are redacted ([`redact`]) from the transcript and the prompt before anything is stored; the content
//!   hash the stores compute covers the redacted bytes.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::AttachError;
use crate::model::checkpoint::SessionInput;
use crate::model::claude::{self, Analysis};
use crate::model::metadata::SessionMetadata;
use crate::model::{redact, validate};

/// The agent whose transcripts are analysed (upstream's default agent name).
pub const CLAUDE_CODE: &str = "claude-code";

/// What the caller asks to attach.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// A transcript file, or a session directory.
    pub path: &'a Path,
    /// `--session-id`; default: the transcript's own.
    pub session_id: Option<&'a str>,
    /// `--agent`; default [`CLAUDE_CODE`].
    pub agent: &'a str,
    /// The worktree, to make touched paths relative.
    pub repo_root: Option<&'a Path>,
    /// The writer's version, recorded as `cli_version`.
    pub cli_version: &'a str,
}

/// A session ready to be written, with what was learned from the transcript.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub session: SessionInput,
    /// Present for analysed (Claude Code) transcripts.
    pub analysis: Option<Analysis>,
}

impl Prepared {
    pub fn session_id(&self) -> &str {
        self.session.metadata.session_id()
    }
}

/// Read and prepare the session at `src.path`.
pub fn prepare(src: &Source) -> Result<Prepared, AttachError> {
    let meta = std::fs::metadata(src.path).map_err(|e| AttachError::Input {
        path: src.path.into(),
        reason: e.to_string(),
    })?;
    if meta.is_dir() {
        return from_dir(src);
    }
    if !meta.is_file() {
        return Err(input(src.path, "not a regular file"));
    }
    if meta.len() > claude::MAX_TRANSCRIPT_BYTES {
        return Err(input(
            src.path,
            &format!(
                "{} bytes is more than the {} bytes a transcript may have",
                meta.len(),
                claude::MAX_TRANSCRIPT_BYTES
            ),
        ));
    }
    let raw = std::fs::read(src.path).map_err(|e| input(src.path, &e.to_string()))?;
    if src.agent == CLAUDE_CODE {
        from_claude(src, &raw)
    } else {
        from_other(src, &raw)
    }
}

fn input(path: &Path, reason: &str) -> AttachError {
    AttachError::Input {
        path: PathBuf::from(path),
        reason: reason.to_string(),
    }
}

fn from_claude(src: &Source, raw: &[u8]) -> Result<Prepared, AttachError> {
    let analysis =
        claude::analyze(raw, src.repo_root).map_err(|e| input(src.path, &e.to_string()))?;
    let session_id = match src.session_id {
        Some(s) => s.to_string(),
        None => analysis
            .session_id
            .clone()
            .or_else(|| file_stem(src.path))
            .ok_or_else(|| {
                input(
                    src.path,
                    "no sessionId in the transcript; give --session-id",
                )
            })?,
    };
    validate::session_id(&session_id)?;
    let transcript = redact::redact_jsonl(raw);
    let prompt = analysis
        .first_prompt
        .as_deref()
        .map(|p| redact::redact_text(p).into_owned().into_bytes());
    let mut m = Map::new();
    m.insert("cli_version".into(), json!(src.cli_version));
    m.insert("session_id".into(), json!(session_id));
    m.insert("strategy".into(), json!("manual-commit"));
    if let Some(created) = &analysis.created_at {
        m.insert("created_at".into(), json!(created));
    }
    m.insert(
        "checkpoints_count".into(),
        json!(analysis.turn_count.max(1)),
    );
    m.insert("files_touched".into(), json!(analysis.files_touched));
    m.insert("agent".into(), json!("Claude Code"));
    m.insert(
        "model".into(),
        json!(analysis.model.clone().unwrap_or_default()),
    );
    m.insert(
        "token_usage".into(),
        serde_json::to_value(analysis.tokens).unwrap_or(Value::Null),
    );
    m.insert(
        "session_metrics".into(),
        json!({ "turn_count": analysis.turn_count }),
    );
    Ok(Prepared {
        session: SessionInput {
            metadata: SessionMetadata(m),
            transcript,
            prompt,
            context: None,
            compact: None,
            tasks: Vec::new(),
        },
        analysis: Some(analysis),
    })
}

fn from_other(src: &Source, raw: &[u8]) -> Result<Prepared, AttachError> {
    if raw.contains(&0) {
        return Err(input(src.path, "contains NUL bytes: not a text transcript"));
    }
    let session_id = src
        .session_id
        .map(str::to_string)
        .or_else(|| file_stem(src.path))
        .ok_or_else(|| input(src.path, "cannot tell the session id; give --session-id"))?;
    validate::session_id(&session_id)?;
    let text = String::from_utf8_lossy(raw);
    let transcript = match redact::redact_text(&text) {
        std::borrow::Cow::Borrowed(_) => raw.to_vec(),
        std::borrow::Cow::Owned(s) => s.into_bytes(),
    };
    let mut m = Map::new();
    m.insert("cli_version".into(), json!(src.cli_version));
    m.insert("session_id".into(), json!(session_id));
    m.insert("strategy".into(), json!("manual-commit"));
    m.insert("checkpoints_count".into(), json!(1));
    m.insert("agent".into(), json!(src.agent));
    m.insert("model".into(), json!(""));
    Ok(Prepared {
        session: SessionInput {
            metadata: SessionMetadata(m),
            transcript,
            prompt: None,
            context: None,
            compact: None,
            tasks: Vec::new(),
        },
        analysis: None,
    })
}

fn from_dir(src: &Source) -> Result<Prepared, AttachError> {
    let mut session = SessionInput::from_dir(src.path)?;
    if let Some(id) = src.session_id {
        session.metadata.0.insert("session_id".into(), json!(id));
    }
    validate::session_id(session.metadata.session_id())?;
    session.transcript = redact::redact_jsonl(&session.transcript);
    if let Some(p) = &session.prompt {
        let text = String::from_utf8_lossy(p);
        if let std::borrow::Cow::Owned(s) = redact::redact_text(&text) {
            session.prompt = Some(s.into_bytes());
        }
    }
    Ok(Prepared {
        session,
        analysis: None,
    })
}

/// The file name without `.jsonl` (Claude Code names transcripts `<session-id>.jsonl`).
fn file_stem(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    (!stem.is_empty()).then(|| stem.to_string())
}
