//! One session as the v2 layout stores it: the `/main` metadata field set, the compact transcript and its
//! start offset (reference §2.4, §2.11, §3.5).
//!
//! Invariants:
//! - Session metadata fields come out in upstream's struct order (known fields first, in [`V2_FIELDS`] order;
//!   fields we do not model follow in input order). The v1-only `transcript_lines_at_start` and
//!   `compact_transcript_start` are not carried over: v2 has one offset, `checkpoint_transcript_start`, counting
//!   lines of the **compact** transcript.
//! - The compact transcript is the producer's `transcript.jsonl` when given; otherwise it is derived from the raw
//!   transcript with the generic JSONL (Claude Code) rules. Upstream detects OpenCode, Gemini, pi, Codex, Copilot
//!   and Droid transcripts first and compacts them with their own rules, which we do not implement: sessions of
//!   those agents, and sessions naming no agent at all (as upstream), get no compact file; so does a transcript
//!   that compacts to nothing.
//!
//! Pure: no repository access.

use serde_json::{Map, Value};

use crate::model::checkpoint::{rfc3339, SessionInput, CLI_VERSION};
use crate::model::compact::{self, Fields};
use crate::model::id::CheckpointId;

/// Field order of upstream's `CommittedMetadata` as written on `/main`.
pub const V2_FIELDS: [&str; 24] = [
    "checkpoint_id",
    "session_id",
    "strategy",
    "created_at",
    "branch",
    "checkpoints_count",
    "files_touched",
    "agent",
    "model",
    "turn_id",
    "is_task",
    "tool_use_id",
    "transcript_identifier_at_start",
    "checkpoint_transcript_start",
    "token_usage",
    "session_metrics",
    "initial_attribution",
    "prompt_attributions",
    "summary",
    "cli_version",
    "kind",
    "review_skills",
    "review_prompt",
    "attach_reason",
];

/// v1 fields that v2 replaces.
const DROPPED: [&str; 2] = ["transcript_lines_at_start", "compact_transcript_start"];

/// Agents (name fragments, lower case) whose transcripts have their own formats upstream.
const OWN_FORMAT_AGENTS: [&str; 5] = ["gemini", "opencode", "codex", "copilot", "droid"];

/// True when the generic JSONL compaction applies to transcripts of `agent`.
pub fn compactable(agent: &str) -> bool {
    let a = agent.trim().to_ascii_lowercase();
    !a.is_empty() && a != "pi" && !OWN_FORMAT_AGENTS.iter().any(|f| a.contains(f))
}

/// The compact transcript of a session and the compact line where this checkpoint starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact {
    pub bytes: Option<Vec<u8>>,
    pub start: u64,
}

fn u64_field(m: &Map<String, Value>, key: &str) -> Option<u64> {
    m.get(key).and_then(Value::as_u64)
}

/// The compact transcript for `s`: given, or derived from the raw transcript when the agent allows.
pub fn compact_for(s: &SessionInput) -> Compact {
    let meta = &s.metadata.0;
    let raw_start = u64_field(meta, "checkpoint_transcript_start").unwrap_or(0);
    let agent = s.metadata.get_str("agent").unwrap_or("");
    let compactable = compactable(agent);
    let fields = Fields {
        agent,
        cli_version: CLI_VERSION,
        start_line: usize::try_from(raw_start).unwrap_or(usize::MAX),
    };
    if let Some(given) = s.compact.as_ref().filter(|c| !c.is_empty()) {
        let start = match u64_field(meta, "compact_transcript_start") {
            Some(n) => n,
            None if raw_start > 0 && compactable => {
                compact::compact_with_boundary(&s.transcript, &fields).1 as u64
            }
            None => 0,
        };
        return Compact {
            bytes: Some(given.clone()),
            start,
        };
    }
    if !compactable || s.transcript.is_empty() {
        return Compact {
            bytes: None,
            start: 0,
        };
    }
    let (bytes, boundary) = compact::compact_with_boundary(&s.transcript, &fields);
    Compact {
        bytes: (!bytes.is_empty()).then_some(bytes),
        start: boundary as u64,
    }
}

/// The `/main` session metadata for `s` in checkpoint `id`. `previous` is the slot's metadata before this
/// write (its `created_at` is kept so an identical rewrite changes nothing); `now` is a UNIX time.
pub fn metadata(
    id: &CheckpointId,
    s: &SessionInput,
    compact_start: u64,
    previous: Option<&Map<String, Value>>,
    now: i64,
) -> Map<String, Value> {
    let mut input = s.metadata.0.clone();
    for k in DROPPED {
        input.remove(k);
    }
    input.insert("checkpoint_id".into(), Value::String(id.to_string()));
    if !input.contains_key("created_at") {
        let created = previous
            .and_then(|p| p.get("created_at").cloned())
            .unwrap_or_else(|| Value::String(rfc3339(now)));
        input.insert("created_at".into(), created);
    }
    input.insert("checkpoint_transcript_start".into(), compact_start.into());
    input.insert("cli_version".into(), CLI_VERSION.into());
    let mut out = Map::new();
    for k in V2_FIELDS {
        if let Some(v) = input.remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    out.extend(input);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metadata::SessionMetadata;
    use serde_json::json;

    fn input(meta: Value, raw: &str, compact: Option<&str>) -> SessionInput {
        let Value::Object(m) = meta else {
            panic!("object")
        };
        SessionInput {
            metadata: SessionMetadata(m),
            transcript: raw.as_bytes().to_vec(),
            prompt: None,
            context: None,
            compact: compact.map(|c| c.as_bytes().to_vec()),
            tasks: Vec::new(),
        }
    }

    const RAW: &str = concat!(
        r#"{"type":"user","message":{"content":"first"}}"#,
        "\n",
        r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"one"}]}}"#,
        "\n",
        r#"{"type":"user","message":{"content":"second"}}"#,
        "\n",
        r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"two"}]}}"#,
        "\n"
    );

    #[test]
    fn field_order_and_dropped_fields() {
        let id = CheckpointId::parse("a3b2c4d5e6f7").expect("id");
        let s = input(
            json!({"zzz": 1, "agent": "Gemini CLI", "session_id": "s", "transcript_lines_at_start": 4,
                   "compact_transcript_start": 2, "strategy": "manual-commit"}),
            RAW,
            None,
        );
        let m = metadata(&id, &s, 0, None, 0);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "checkpoint_id",
                "session_id",
                "strategy",
                "created_at",
                "agent",
                "checkpoint_transcript_start",
                "cli_version",
                "zzz"
            ]
        );
        assert_eq!(m["created_at"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn compactable_agents_table() {
        for (agent, want) in [
            ("Claude Code", true),
            ("claude-code", true),
            ("Agent", true),
            ("Cursor", true),
            ("", false),
            ("  ", false),
            ("Gemini CLI", false),
            ("OpenCode", false),
            ("Codex", false),
            ("GitHub Copilot CLI", false),
            ("Factory AI Droid", false),
            ("pi", false),
        ] {
            assert_eq!(compactable(agent), want, "{agent:?}");
        }
    }

    #[test]
    fn compact_table() {
        // (metadata, compact given, want lines, want start)
        let cases = [
            (
                json!({"session_id": "s", "agent": "Claude Code"}),
                None,
                4,
                0,
            ),
            (
                json!({"session_id": "s", "agent": "Claude Code", "checkpoint_transcript_start": 2}),
                None,
                4,
                2,
            ),
            (
                json!({"session_id": "s", "agent": "Gemini CLI"}),
                None,
                0,
                0,
            ),
            (json!({"session_id": "s"}), None, 0, 0),
            (
                json!({"session_id": "s", "agent": "Gemini CLI", "compact_transcript_start": 1}),
                Some("{\"v\":1}\n{\"v\":1}\n"),
                2,
                1,
            ),
            (
                json!({"session_id": "s", "agent": "Claude Code", "checkpoint_transcript_start": 2}),
                Some("{\"v\":1}\n"),
                1,
                2,
            ),
        ];
        for (meta, given, lines, start) in cases {
            let c = compact_for(&input(meta.clone(), RAW, given));
            let got = c
                .bytes
                .as_ref()
                .map_or(0, |b| b.iter().filter(|&&x| x == b'\n').count());
            assert_eq!((got, c.start), (lines, start), "{meta}");
        }
    }
}
