use super::*;
use serde_json::json;

fn jsonl(lines: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn run(lines: &[Value]) -> Analysis {
    analyze(&jsonl(lines), None).expect("valid transcript")
}

fn user(content: Value) -> Value {
    json!({"type": "user", "sessionId": "s1", "timestamp": "2026-02-06T06:42:23.943Z",
           "message": {"role": "user", "content": content}})
}

fn assistant(id: &str, usage: [u64; 4], content: Value) -> Value {
    json!({"type": "assistant", "sessionId": "s1", "timestamp": "2026-02-06T06:42:27.913Z",
           "message": {"id": id, "model": "claude-opus-4-6", "role": "assistant", "content": content,
                       "usage": {"input_tokens": usage[0], "cache_creation_input_tokens": usage[1],
                                 "cache_read_input_tokens": usage[2], "output_tokens": usage[3]}}})
}

fn tool_use(name: &str, input: Value) -> Value {
    json!([{"type": "tool_use", "id": "toolu_01", "name": name, "input": input}])
}

#[test]
fn session_id_is_the_last_one_and_created_at_the_first_timestamp() {
    let a = run(&[
        json!({"type": "file-history-snapshot", "messageId": "m"}),
        json!({"type": "progress", "sessionId": "old", "timestamp": "2026-01-19T03:24:29.405Z"}),
        json!({"type": "user", "sessionId": "new", "timestamp": "2026-01-19T03:25:00Z"}),
        json!({"type": "progress", "sessionId": ""}),
    ]);
    assert_eq!(a.session_id.as_deref(), Some("new"));
    assert_eq!(a.created_at.as_deref(), Some("2026-01-19T03:24:29.405Z"));
}

/// (case, line, counts as a turn, prompt text).
fn prompt_cases() -> Vec<(&'static str, Value, bool, &'static str)> {
    let text = |t: &str| json!({"type": "text", "text": t});
    vec![
        ("string content", user(json!("hello")), true, "hello"),
        (
            "text blocks joined",
            user(json!([text("a"), text("b")])),
            true,
            "a\n\nb",
        ),
        (
            "tool_result only",
            user(json!([{"type": "tool_result", "tool_use_id": "t", "content": "ok"}])),
            false,
            "",
        ),
        (
            "isMeta",
            json!({"type": "user", "isMeta": true, "message": {"content": "Base directory for this skill: /x"}}),
            false,
            "",
        ),
        (
            "compact summary",
            json!({"type": "user", "isCompactSummary": true, "message": {"content": "This session is being continued"}}),
            false,
            "",
        ),
        (
            "sidechain",
            json!({"type": "user", "isSidechain": true, "message": {"content": "subagent task"}}),
            false,
            "",
        ),
        (
            "slash command wrapper",
            user(json!(
                "<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>"
            )),
            false,
            "",
        ),
        (
            "command stdout",
            user(json!("<local-command-stdout>Bye!</local-command-stdout>")),
            false,
            "",
        ),
        (
            "interrupted",
            user(json!([text("[Request interrupted by user for tool use]")])),
            false,
            "",
        ),
        (
            "ide tags stripped",
            user(json!(
                "<ide_opened_file>The user opened x.rs</ide_opened_file> fix the bug "
            )),
            true,
            "fix the bug",
        ),
        (
            "system reminder stripped",
            user(json!([
                text("<system-reminder>\nnote\n</system-reminder>"),
                text("real question")
            ])),
            true,
            "real question",
        ),
        ("whitespace only", user(json!("  \n ")), false, ""),
        (
            "assistant is not a prompt",
            assistant("m", [0; 4], json!([text("hi")])),
            false,
            "",
        ),
    ]
}

#[test]
fn prompt_rules() {
    for (case, line, counted, prompt) in prompt_cases() {
        let a = run(&[line]);
        assert_eq!(a.turn_count, u32::from(counted), "{case}");
        assert_eq!(a.first_prompt.as_deref().unwrap_or(""), prompt, "{case}");
    }
}

#[test]
fn turns_count_real_prompts_and_first_prompt_is_the_first_of_them() {
    let a = run(&[
        user(json!("<environment_context>cwd=/x</environment_context>")),
        user(json!("write a file about geese in docs")),
        user(json!([{"type": "tool_result", "tool_use_id": "t", "content": "done"}])),
        user(json!("delete that file")),
    ]);
    assert_eq!(a.turn_count, 2);
    assert_eq!(
        a.first_prompt.as_deref(),
        Some("write a file about geese in docs")
    );
}

#[test]
fn injected_prompt_is_the_fallback_title() {
    let a = run(&[user(json!("# AGENTS.md instructions for /repo\n..."))]);
    assert_eq!(a.turn_count, 0);
    assert_eq!(
        a.first_prompt.as_deref(),
        Some("# AGENTS.md instructions for /repo\n...")
    );
}

#[test]
fn model_is_the_first_real_one() {
    let synthetic =
        json!({"type": "assistant", "message": {"id": "x", "model": "<synthetic>", "content": []}});
    let mut later = assistant("m2", [0; 4], json!([]));
    later["message"]["model"] = json!("claude-sonnet-4-5-20250929");
    let a = run(&[synthetic, assistant("m1", [0; 4], json!([])), later]);
    assert_eq!(a.model.as_deref(), Some("claude-opus-4-6"));
}

#[test]
fn tokens_are_summed_once_per_message_id_last_line_wins() {
    let a = run(&[
        assistant(
            "msg_a",
            [3, 100, 10, 2],
            json!([{"type": "thinking", "thinking": ""}]),
        ),
        assistant(
            "msg_a",
            [3, 100, 10, 2],
            json!([{"type": "text", "text": "x"}]),
        ),
        assistant(
            "msg_a",
            [3, 100, 10, 40],
            json!([{"type": "tool_use", "name": "Bash", "input": {}}]),
        ),
        assistant("msg_b", [1, 5, 110, 7], json!([])),
        json!({"type": "assistant", "message": {"model": "m", "usage": {"input_tokens": 1000}}}),
        json!({"type": "user", "message": {"id": "msg_c", "usage": {"input_tokens": 1000}}}),
    ]);
    assert_eq!(
        a.tokens,
        TokenUsage {
            input_tokens: 4,
            cache_creation_tokens: 105,
            cache_read_tokens: 120,
            output_tokens: 47,
            api_call_count: 2,
        }
    );
}

#[test]
fn token_usage_serializes_with_upstream_field_names() {
    let value = serde_json::to_value(TokenUsage {
        input_tokens: 1,
        cache_creation_tokens: 2,
        cache_read_tokens: 3,
        output_tokens: 4,
        api_call_count: 5,
    })
    .expect("serialize");
    assert_eq!(
        value.to_string(),
        r#"{"input_tokens":1,"cache_creation_tokens":2,"cache_read_tokens":3,"output_tokens":4,"api_call_count":5}"#
    );
}

#[test]
fn files_touched_rules() {
    let lines = [
        assistant(
            "m1",
            [0; 4],
            tool_use(
                "Write",
                json!({"file_path": "/repo/docs/geese.md", "content": "x"}),
            ),
        ),
        assistant(
            "m2",
            [0; 4],
            tool_use("Edit", json!({"file_path": "/repo/src/a.rs"})),
        ),
        assistant(
            "m3",
            [0; 4],
            tool_use("Read", json!({"file_path": "/repo/src/read_only.rs"})),
        ),
        assistant(
            "m4",
            [0; 4],
            tool_use(
                "MultiEdit",
                json!({"file_path": "/repo/docs/geese.md", "edits": []}),
            ),
        ),
        assistant(
            "m5",
            [0; 4],
            tool_use("NotebookEdit", json!({"notebook_path": "/repo/nb.ipynb"})),
        ),
        assistant(
            "m6",
            [0; 4],
            tool_use("Write", json!({"file_path": "/home/u/.claude/plans/p.md"})),
        ),
        assistant(
            "m7",
            [0; 4],
            tool_use("Edit", json!({"file_path": "src/a.rs"})),
        ),
        assistant(
            "m8",
            [0; 4],
            tool_use("Edit", json!({"file_path": "/repository/x"})),
        ),
        assistant(
            "m9",
            [0; 4],
            tool_use("mcp__acp__Write", json!({"file_path": "/repo/z.txt"})),
        ),
        assistant("m10", [0; 4], tool_use("Edit", json!({"file_path": ""}))),
        user(
            json!([{"type": "tool_use", "name": "Write", "input": {"file_path": "/repo/user.txt"}}]),
        ),
    ];
    let a = analyze(&jsonl(&lines), Some(Path::new("/repo"))).expect("valid");
    assert_eq!(
        a.files_touched,
        [
            "docs/geese.md",
            "src/a.rs",
            "nb.ipynb",
            "/home/u/.claude/plans/p.md",
            "/repository/x",
            "z.txt"
        ]
    );
    let no_root = run(&lines);
    assert_eq!(no_root.files_touched[0], "/repo/docs/geese.md");
    assert_eq!(
        no_root.files_touched.len(),
        7,
        "src/a.rs and /repo/src/a.rs differ without a root"
    );
}

#[test]
fn malformed_lines_are_skipped_when_others_parse() {
    let mut raw = jsonl(&[user(json!("hello"))]);
    raw.extend_from_slice(b"[1,2]\n\"str\"\n{\"type\":\"user\",\"message\":{\"content\":\"partial");
    let a = analyze(&raw, None).expect("valid");
    assert_eq!(a.turn_count, 1);
    assert_eq!(a.session_id.as_deref(), Some("s1"));
}

#[test]
fn crlf_lines_and_odd_field_types_are_tolerated() {
    let raw = b"{\"type\":\"user\",\"sessionId\":7,\"timestamp\":null,\"message\":{\"content\":\"hi\"}}\r\n\
                {\"type\":\"assistant\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":-1,\"output_tokens\":\"2\"},\"content\":\"x\"}}\r\n";
    let a = analyze(raw, None).expect("valid");
    assert_eq!(a.session_id, None);
    assert_eq!(a.created_at, None);
    assert_eq!(a.turn_count, 1);
    assert_eq!(a.tokens.api_call_count, 1);
    assert_eq!(a.tokens.input_tokens + a.tokens.output_tokens, 0);
}

#[test]
fn errors_name_the_culprit() {
    let cases: Vec<(Vec<u8>, Error, &str)> = vec![
        (
            b"{}\n{\"a\":\0}".to_vec(),
            Error::NulByte { offset: 8 },
            "transcript has a NUL byte at offset 8",
        ),
        (b"".to_vec(), Error::Empty, "transcript is empty"),
        (b"\n  \r\n".to_vec(), Error::Empty, "transcript is empty"),
        (
            b"\n\n# Notes\n[1]\n".to_vec(),
            Error::NotJsonl { line: 3 },
            "transcript is not JSONL: line 3 is not a JSON object",
        ),
        (
            b"{\n  \"sessionId\": \"x\"\n}\n".to_vec(),
            Error::NotJsonl { line: 1 },
            "transcript is not JSONL: line 1 is not a JSON object",
        ),
    ];
    for (raw, want, message) in cases {
        let err = analyze(&raw, None).expect_err("must fail");
        assert_eq!(err, want);
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let raw = vec![b' '; usize::try_from(MAX_TRANSCRIPT_BYTES).expect("fits") + 1];
    let err = analyze(&raw, None).expect_err("too large");
    assert_eq!(
        err.to_string(),
        "transcript is 67108865 bytes, over the 67108864-byte limit"
    );
}

#[test]
fn strip_blocks_matches_upstream_regex_semantics() {
    assert_eq!(
        strip_context_tags("<ide_selection a=1>x</ide_selection>y"),
        "y"
    );
    assert_eq!(
        strip_context_tags("a <ide_x>unterminated"),
        "a <ide_x>unterminated"
    );
    assert_eq!(
        strip_context_tags(
            "<system-reminder>1</system-reminder>mid<system-reminder>2</system-reminder>end"
        ),
        "midend"
    );
    assert_eq!(
        strip_context_tags("<command-name>/x</command-name>  keep  "),
        "keep"
    );
}
