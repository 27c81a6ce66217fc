//! Real Claude Code transcripts from the `entire/checkpoints/v1` sample bundle,
//! each with the `metadata.json` and `prompt.txt` upstream Entire recorded for
//! it (`tests/fixtures/claude/<checkpoint-id>-<session>/`).
//!
//! How our analysis compares with upstream's recorded metadata:
//!
//! - `session_id`: agrees. `9b3838281539-0` records the bare id; the older
//!   `2014bbff865d-0` records `YYYY-MM-DD-<id>` (Entire's session-id format of
//!   January 2026), whose tail is the transcript's `sessionId`. Across the
//!   bundle's 57 real Claude sessions all 57 agree this way (one of them is a
//!   resumed session whose first lines carry the previous session's id).
//! - `token_usage`: identical for both fixtures, all five fields. Upstream
//!   computes it from the checkpoint's start line; for `9b3838281539-0`
//!   (`transcript_lines_at_start: 24`) it still equals the whole-file sum, so
//!   that writer evidently summed the whole file. Across the bundle, of 45 real
//!   sessions with `token_usage` our whole-file sums match 34; 3 differ because
//!   upstream counted only the window after `checkpoint_transcript_start`
//!   (e.g. 5 of 92 API calls) and 8 were recorded as all zeros by one writer.
//!   Attach records a whole session, so the whole-file sum is what it stores.
//! - `files_touched`: identical for both fixtures once paths are made
//!   relative to the session's `cwd` (26 of 57 across the bundle). Differences come from
//!   upstream's per-checkpoint scoping (files of the commit, a window, edits
//!   made by subagents whose transcripts live in other files) and from
//!   upstream dropping paths outside the repository (`~/.claude/plans/*.md`),
//!   which this analysis keeps as absolute paths.
//! - Prompts: `first_prompt` and `turn_count` agree with `prompt.txt` here.
//!   (Elsewhere `prompt.txt`, written by hooks, also holds slash commands and
//!   interrupted turns, which are not counted as turns.)

use std::fs;
use std::path::{Path, PathBuf};

use entire::model::claude::{analyze, TokenUsage};
use entire::model::redact::redact_jsonl;
use serde_json::Value;

struct Fixture {
    transcript: Vec<u8>,
    metadata: Value,
    prompts: Vec<String>,
}

fn load(name: &str) -> Fixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude")
        .join(name);
    let read = |file: &str| fs::read(dir.join(file)).expect("fixture file is present");
    let prompt_txt = String::from_utf8(read("prompt.txt")).expect("prompt.txt is UTF-8");
    Fixture {
        transcript: read("full.jsonl"),
        metadata: serde_json::from_slice(&read("metadata.json")).expect("metadata.json parses"),
        prompts: prompt_txt.split("\n\n---\n\n").map(str::to_owned).collect(),
    }
}

/// The repository root the session ran in: the first `cwd` in the transcript.
fn session_cwd(transcript: &[u8]) -> PathBuf {
    transcript
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .find_map(|v| v.get("cwd").and_then(Value::as_str).map(PathBuf::from))
        .expect("transcript records a cwd")
}

fn recorded_files(metadata: &Value) -> Vec<String> {
    serde_json::from_value(metadata["files_touched"].clone()).expect("files_touched is a list")
}

fn recorded_tokens(metadata: &Value) -> TokenUsage {
    serde_json::from_value(metadata["token_usage"].clone()).expect("token_usage parses")
}

#[test]
fn geese_session_matches_upstream_metadata() {
    let fx = load("9b3838281539-0");
    let root = session_cwd(&fx.transcript);
    let a = analyze(&fx.transcript, Some(&root)).expect("real transcript analyses");

    assert_eq!(a.session_id.as_deref(), fx.metadata["session_id"].as_str());
    assert_eq!(a.tokens, recorded_tokens(&fx.metadata));
    assert_eq!(a.files_touched, recorded_files(&fx.metadata));
    assert_eq!(a.first_prompt.as_deref(), Some(fx.prompts[0].as_str()));
    assert_eq!(a.turn_count as usize, fx.prompts.len());
    assert_eq!(a.model.as_deref(), Some("claude-opus-4-6"));
    assert_eq!(a.created_at.as_deref(), Some("2026-02-06T06:42:15.125Z"));
}

#[test]
fn path_safe_regex_session_matches_upstream_metadata() {
    let fx = load("2014bbff865d-0");
    let root = session_cwd(&fx.transcript);
    let a = analyze(&fx.transcript, Some(&root)).expect("real transcript analyses");

    let recorded_id = fx.metadata["session_id"].as_str().expect("session_id");
    let id = a.session_id.expect("session id found");
    assert_eq!(
        recorded_id,
        format!("2026-01-25-{id}"),
        "date-prefixed legacy id"
    );
    assert_eq!(a.tokens, recorded_tokens(&fx.metadata));
    assert_eq!(a.files_touched, recorded_files(&fx.metadata));
    assert_eq!(a.first_prompt.as_deref(), Some(fx.prompts[0].as_str()));
    assert_eq!(a.turn_count as usize, fx.prompts.len());
    assert_eq!(a.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
}

#[test]
fn real_transcripts_pass_redaction_unchanged() {
    for name in ["9b3838281539-0", "2014bbff865d-0"] {
        let fx = load(name);
        assert!(
            redact_jsonl(&fx.transcript) == fx.transcript,
            "{name} changed"
        );
    }
}
