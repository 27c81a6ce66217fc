use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const F: Fields = Fields {
    agent: "claude-code",
    cli_version: "0.5.1",
    start_line: 0,
};
const U: &str = r#"{"v":1,"agent":"claude-code","cli_version":"0.5.1","type":"user""#;
const A: &str = r#"{"v":1,"agent":"claude-code","cli_version":"0.5.1","type":"assistant""#;

fn run(input: &str) -> String {
    String::from_utf8(compact(input.as_bytes(), &F)).expect("utf-8 output")
}

/// Expected output: `head` + `rest` per line, each ending in `\n`.
fn lines(lines: &[(&str, &str)]) -> String {
    lines
        .iter()
        .map(|(head, rest)| format!("{head}{rest}\n"))
        .collect()
}

fn check_table(cases: &[(&str, &str, String)]) {
    for (name, input, want) in cases {
        assert_eq!(run(input), *want, "case {name}");
    }
}

const ASSIST_TOOL: &str = r#"{"type":"assistant","timestamp":"t1","message":{"id":"m1","content":[{"type":"text","text":"run"},{"type":"tool_use","id":"tu1","name":"Bash","input":{"command":"ls"},"caller":{"x":1}}],"usage":{"input_tokens":3,"output_tokens":4}}}"#;
const TOOL_OUT: &str = r#""content":[{"text":"run","type":"text"},{"id":"tu1","input":{"command":"ls"},"name":"Bash","#;

fn tool_case(user_line: &str) -> String {
    run(&format!("{ASSIST_TOOL}\n{user_line}\n"))
}

fn result_of(user_line: &str) -> String {
    let out = tool_case(user_line);
    let start = out
        .find(r#""result":"#)
        .map(|p| p + 9)
        .expect("result present");
    let end = out[start..].find(r#","type":"tool_use"}"#).expect("end") + start;
    out[start..end].to_string()
}

#[test]
fn dropped_kinds_and_user_aliases() {
    let prompt = |kind: &str| format!(r#"{{"type":"{kind}","message":{{"content":"hi"}}}}"#);
    let user = lines(&[(U, r#","content":[{"text":"hi"}]}"#)]);
    let mut cases = vec![];
    for kind in [
        "progress",
        "file-history-snapshot",
        "queue-operation",
        "system",
        "summary",
        "x",
    ] {
        cases.push((kind, prompt(kind), String::new()));
    }
    cases.push(("user", prompt("user"), user.clone()));
    cases.push(("human", prompt("human"), user.clone()));
    cases.push((
        "role",
        r#"{"role":"user","message":{"content":"hi"}}"#.into(),
        user.clone(),
    ));
    cases.push((
        "empty type",
        r#"{"type":"","role":"human","message":{"content":"hi"}}"#.into(),
        user.clone(),
    ));
    cases.push((
        "non-string type",
        r#"{"type":5,"role":"user","message":{"content":"hi"}}"#.into(),
        user,
    ));
    cases.push((
        "type wins",
        r#"{"type":"system","role":"user","message":{"content":"hi"}}"#.into(),
        String::new(),
    ));
    let cases: Vec<_> = cases
        .iter()
        .map(|(n, i, w)| (*n, i.as_str(), w.clone()))
        .collect();
    check_table(&cases);
}

#[test]
fn assistant_content_rules() {
    check_table(&[
        (
            "thinking removed",
            r#"{"type":"assistant","message":{"id":"m","content":[{"type":"thinking","thinking":"x","signature":"s"},{"type":"redacted_thinking","data":"d"},{"type":"text","text":"hello"}]}}"#,
            lines(&[(
                A,
                r#","id":"m","content":[{"text":"hello","type":"text"}]}"#,
            )]),
        ),
        (
            "only thinking skipped",
            r#"{"type":"assistant","message":{"id":"m","content":[{"type":"thinking","thinking":"x"}]}}"#,
            String::new(),
        ),
        (
            "empty array skipped",
            r#"{"type":"assistant","message":{"id":"m","content":[]}}"#,
            String::new(),
        ),
        (
            "null skipped",
            r#"{"type":"assistant","message":{"id":"m","content":null}}"#,
            String::new(),
        ),
        (
            "missing content is null",
            r#"{"type":"assistant","message":{"id":"m"}}"#,
            lines(&[(A, r#","id":"m","content":null}"#)]),
        ),
        (
            "string content",
            r#"{"type":"assistant","message":{"content":"plain <b>"}}"#,
            lines(&[(A, r#","content":"plain \u003cb\u003e"}"#)]),
        ),
        (
            "tool_use reduced, keys sorted",
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t","name":"Read","input":{"z":1,"a":[1, 2]},"caller":"x"},{"type":"text","text":"a","citations":null,"text":"b"}]}}"#,
            lines(&[(
                A,
                r#","content":[{"id":"t","input":{"z":1,"a":[1,2]},"name":"Read","type":"tool_use"},{"citations":null,"text":"b","type":"text"}]}"#,
            )]),
        ),
        (
            "non-object elements kept, thinking still dropped",
            r#"{"type":"assistant","message":{"content":[1,null,{"type":"thinking"},{"type":"text","text":"t"}]}}"#,
            lines(&[(A, r#","content":[1,null,{"text":"t","type":"text"}]}"#)]),
        ),
        (
            "tokens, ts, id; zero tokens omitted",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:00:00Z","message":{"id":"msg_1","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":0,"output_tokens":9}}}"#,
            lines(&[(
                A,
                r#","ts":"2026-01-01T00:00:00Z","id":"msg_1","output_tokens":9,"content":[{"text":"x","type":"text"}]}"#,
            )]),
        ),
        (
            "bad usage ignored",
            r#"{"type":"assistant","message":{"content":"x","usage":{"input_tokens":1.5,"output_tokens":9}}}"#,
            lines(&[(A, r#","content":"x"}"#)]),
        ),
        (
            "raw ts kept",
            r#"{"type":"assistant","timestamp":12.50,"message":{"content":"x"}}"#,
            lines(&[(A, r#","ts":12.50,"content":"x"}"#)]),
        ),
    ]);
}

#[test]
fn merges_consecutive_assistant_entries() {
    let a = |ts: &str, id: &str, text: &str, i: u32, o: u32| {
        format!(
            r#"{{"type":"assistant","timestamp":"{ts}","message":{{"id":"{id}","content":[{{"type":"text","text":"{text}"}}],"usage":{{"input_tokens":{i},"output_tokens":{o}}}}}}}"#
        )
    };
    let merged = format!(
        "{}\n{}\n{}\n",
        a("t1", "m", "one", 5, 1),
        a("t2", "m", "two", 0, 7),
        a("t3", "m", "three", 6, 0)
    );
    assert_eq!(
        run(&merged),
        lines(&[(
            A,
            r#","ts":"t3","id":"m","input_tokens":6,"output_tokens":7,"content":[{"text":"one","type":"text"},{"text":"two","type":"text"},{"text":"three","type":"text"}]}"#
        )])
    );
    let split = format!(
        "{}\n{}\n",
        a("t1", "m", "one", 1, 1),
        a("t2", "n", "two", 2, 2)
    );
    assert_eq!(run(&split).lines().count(), 2);
    let user_between = format!(
        "{}\n{}\n{}\n",
        a("t1", "m", "one", 1, 1),
        r#"{"type":"user","message":{"content":"q"}}"#,
        a("t2", "m", "two", 2, 2)
    );
    assert_eq!(run(&user_between).lines().count(), 3);
    // The later ts wins even when absent; a dropped line between does not split.
    let no_ts = format!(
        "{}\n{{\"type\":\"progress\"}}\n{}\n",
        a("t1", "", "x", 1, 1),
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"y"}]}}"#
    );
    assert_eq!(
        run(&no_ts),
        lines(&[(
            A,
            r#","input_tokens":1,"output_tokens":1,"content":[{"text":"x","type":"text"},{"text":"y","type":"text"}]}"#
        )])
    );
}

#[test]
fn inlines_tool_results() {
    let tr = |extra: &str| {
        format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"tu1","content":"out"{extra}}}]}}}}"#
        )
    };
    assert_eq!(
        tool_case(&tr("")),
        lines(&[(
            A,
            &format!(
                r#","ts":"t1","id":"m1","input_tokens":3,"output_tokens":4,{TOOL_OUT}"result":{{"output":"out","status":"success"}},"type":"tool_use"}}]}}"#
            )
        )])
    );
    assert_eq!(
        result_of(&tr(r#","is_error":true"#)),
        r#"{"output":"out","status":"error"}"#
    );
    assert_eq!(
        result_of(&tr(r#","is_error":"true""#)),
        r#"{"output":"out","status":"success"}"#
    );
    // Non-string content (block list) gives an empty output.
    let blocks = r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"tu1","content":[{"type":"text","text":"x"}]}]}}"#;
    assert_eq!(result_of(blocks), r#"{"output":"","status":"success"}"#);
    // Unmatched id: no result, and the user entry is still consumed.
    let unmatched = r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"zz","content":"o"}]}}"#;
    assert!(!tool_case(unmatched).contains("result"));
    assert_eq!(tool_case(unmatched).lines().count(), 1);
}

#[test]
fn tool_result_matching_order() {
    let two = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"X","input":{}},{"type":"tool_use","id":"a","name":"Y","input":{}},{"type":"tool_use","id":"b","name":"Z","input":{}}]}}"#;
    let res = |id: &str| {
        format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"{id}","content":"r-{id}"}}]}}}}"#
        )
    };
    let out = run(&format!("{two}\n{}\n", res("a")));
    assert!(
        out.contains(r#""name":"X","type""#),
        "first duplicate untouched: {out}"
    );
    assert!(
        out.contains(r#""name":"Y","result":{"output":"r-a""#),
        "last match wins: {out}"
    );
    let out = run(&format!("{two}\n{}\n", res("")));
    assert!(
        out.contains(r#""name":"Z","result":{"output":"r-""#),
        "empty id = last tool_use: {out}"
    );
    // A second user entry with results is not consumed and, having no text, is skipped.
    let out = run(&format!("{two}\n{}\n{}\n", res("a"), res("b")));
    assert_eq!(out.lines().count(), 1);
    assert!(!out.contains("r-b"));
}

#[test]
fn tool_use_result_enrichment() {
    let tr = |content: &str, tur: &str| {
        format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"tu1","content":"{content}"}}]}},"toolUseResult":{tur}}}"#
        )
    };
    let cases = [
        (
            tr("c", r#"{"stdout":"so","stderr":""}"#),
            r#"{"output":"so","status":"success"}"#,
        ),
        (
            tr("c", r#"{"stdout":""}"#),
            r#"{"output":"c","status":"success"}"#,
        ),
        (
            tr(
                "c",
                r#"{"type":"text","file":{"filePath":"/a.go","numLines":12,"content":"x"}}"#,
            ),
            r#"{"output":"c","status":"success","file":{"filePath":"/a.go","numLines":12}}"#,
        ),
        (
            tr("c", r#"{"file":{"filePath":"/a.go","numLines":"12"}}"#),
            r#"{"output":"c","status":"success"}"#,
        ),
        (
            tr("c", r#"{"filePath":"/b.go","oldString":"x"}"#),
            r#"{"output":"c","status":"success","file":{"filePath":"/b.go"}}"#,
        ),
        (
            tr(
                "c",
                r#"{"file":{"filePath":"/a.go","numLines":3},"filePath":"/b.go"}"#,
            ),
            r#"{"output":"c","status":"success","file":{"filePath":"/b.go"}}"#,
        ),
        (
            tr("c", r#"{"numFiles":4,"filenames":[]}"#),
            r#"{"output":"c","status":"success","matchCount":4}"#,
        ),
        (
            tr("c", r#"{"numFiles":0}"#),
            r#"{"output":"c","status":"success"}"#,
        ),
        (
            tr("c", r#""Error: boom""#),
            r#"{"output":"c","status":"success"}"#,
        ),
        // stdout alone creates the only result, which then matches the last tool_use.
        (
            r#"{"type":"user","message":{"content":[]},"toolUseResult":{"stdout":"only"}}"#
                .to_string(),
            r#"{"output":"only","status":"success"}"#,
        ),
    ];
    for (line, want) in cases {
        assert_eq!(result_of(&line), want, "{line}");
    }
    // With two results, toolUseResult fields are not applied.
    let two = r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"tu1","content":"c"},{"type":"tool_result","tool_use_id":"zz","content":"d"}]},"toolUseResult":{"stdout":"so","numFiles":3}}"#;
    assert_eq!(result_of(two), r#"{"output":"c","status":"success"}"#);
}

#[test]
fn consumed_user_entry_with_text_or_images() {
    let user = r#"{"type":"user","timestamp":"t2","promptId":"p1","message":{"content":[{"type":"tool_result","tool_use_id":"tu1","content":"o"},{"type":"text","text":" stop "}]}}"#;
    let out = tool_case(user);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].starts_with(A) && got[0].contains(r#""result":{"output":"o""#));
    assert_eq!(
        got[1],
        format!(r#"{U},"ts":"t2","content":[{{"id":"p1","text":"stop"}}]}}"#)
    );
    let img = r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"tu1","content":"o"},{"type":"image","source":{"type":"base64","data":"AA"}}]}}"#;
    let out = tool_case(img);
    let want =
        format!(r#"{U},"content":[{{"type":"image","source":{{"type":"base64","data":"AA"}}}}]}}"#);
    assert!(out.ends_with(&format!("{want}\n")), "{out}");
    // Emitted with a consumed user line, an empty assistant is kept (upstream quirk).
    let empty = r#"{"type":"assistant","message":{"id":"m","content":[]}}"#;
    let out = run(&format!("{empty}\n{user}\n"));
    assert!(
        out.starts_with(&format!(r#"{A},"id":"m","content":[]}}"#)),
        "{out}"
    );
}

#[test]
fn user_lines() {
    check_table(&[
        ("string trimmed", r#"{"type":"user","message":{"content":"  hi there \n"}}"#, lines(&[(U, r#","content":[{"text":"hi there"}]}"#)])),
        (
            "blocks joined",
            r#"{"type":"user","message":{"content":[{"type":"text","text":" a "},{"type":"text","text":""},{"type":"text","text":"b"}]}}"#,
            lines(&[(U, r#","content":[{"text":"a\n\nb"}]}"#)]),
        ),
        (
            "ide tags",
            r#"{"type":"user","message":{"content":[{"type":"text","text":"<ide_opened_file>f.go</ide_opened_file>"},{"type":"text","text":"<system-reminder>r</system-reminder>fix it"}]}}"#,
            lines(&[(U, r#","content":[{"text":"fix it"}]}"#)]),
        ),
        ("command only", r#"{"type":"user","message":{"content":"<command-name>/clear</command-name>"}}"#, lines(&[(U, r#","content":[{"text":""}]}"#)])),
        ("promptId", r#"{"type":"user","promptId":"p-1","message":{"content":"q"}}"#, lines(&[(U, r#","content":[{"id":"p-1","text":"q"}]}"#)])),
        ("no message", r#"{"type":"user","timestamp":"t"}"#, lines(&[(U, r#","ts":"t","content":[{"text":""}]}"#)])),
        (
            "image verbatim, no text",
            r#"{"type":"user","message":{"content":[{"type":"image","source":{"type":"base64", "media_type":"image/png","data":"QQ=="}}]}}"#,
            lines(&[(U, r#","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QQ=="}}]}"#)]),
        ),
        (
            "text then image",
            r#"{"type":"user","message":{"content":[{"type":"image","source":{}},{"type":"text","text":"see"}]}}"#,
            lines(&[(U, r#","content":[{"text":"see"},{"type":"image","source":{}}]}"#)]),
        ),
        ("pure tool result without assistant", r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"x","content":"o"}]}}"#, String::new()),
        (
            "pure tool result after user",
            "{\"type\":\"user\",\"message\":{\"content\":\"q\"}}\n{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":\"o\"}]}}",
            lines(&[(U, r#","content":[{"text":"q"}]}"#)]),
        ),
    ]);
}

#[test]
fn strips_tags_like_upstream() {
    let cases = [
        ("<ide_selection>x</ide_selection> keep", "keep"),
        ("a <ide_a>1</ide_b> b <ide_c>2</ide_d x> c", "a  b  c"),
        ("<ide_open>never closed", "<ide_open>never closed"),
        ("<user_query>\nhello\n</user_query>", "hello"),
        ("</user<user_query>_query>", "</user_query>"),
        ("  <timestamp>Mon</timestamp>\nquestion", "question"),
        ("<timestamp tz=\"x\">Mon</timestamp >q", "q"),
        ("q <timestamp>Mon</timestamp>", "q <timestamp>Mon</timestamp>"),
        ("<timestamps>x</timestamps>q", "<timestamps>x</timestamps>q"),
        ("<timestamp>a\nb</timestamp>q", "<timestamp>a\nb</timestamp>q"),
        ("<local-command-caveat>c</local-command-caveat><command-message>m</command-message><command-args></command-args>x", "x"),
        ("<local-command-stdout>o</local-command-stdout> <system-reminder a=1>\nr\n</system-reminder>y", "y"),
        ("<system-reminder>unclosed", "<system-reminder>unclosed"),
    ];
    for (input, want) in cases {
        assert_eq!(strip_tags(input), want, "{input:?}");
    }
}

#[test]
fn output_field_order_and_go_escaping() {
    let f = Fields {
        agent: "Claude Code",
        cli_version: "1.<2>&",
        start_line: 0,
    };
    let line = "{\"type\":\"user\",\"timestamp\" : \"t\" ,\"promptId\":\"p\",\"message\":{\"content\":\"a<b>&c \\u2028\u{2029} \\u0001\\b\\f\\t\\\"\\\\ \\/ é ☃ \\ud83d\\ude00\"}}\n";
    let out = String::from_utf8(compact(line.as_bytes(), &f)).unwrap();
    assert_eq!(
        out,
        "{\"v\":1,\"agent\":\"Claude Code\",\"cli_version\":\"1.\\u003c2\\u003e\\u0026\",\"type\":\"user\",\"ts\":\"t\",\"content\":[{\"id\":\"p\",\"text\":\"a\\u003cb\\u003e\\u0026c \\u2028\\u2029 \\u0001\\b\\f\\t\\\"\\\\ / é ☃ 😀\"}]}\n"
    );
    // Raw values keep their escapes and numbers but lose whitespace and get HTML escapes.
    let raw = "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\",\"input\":{ \"s\" : \"<\\u00e9\\/\u{2028}>\", \"n\": 1.50e3 }}]}}";
    assert_eq!(
        run(raw),
        lines(&[(
            A,
            r#","content":[{"input":{"s":"\u003c\u00e9\/\u2028\u003e","n":1.50e3},"type":"tool_use"}]}"#
        )])
    );
    let v: Value = serde_json::from_str(out.trim_end()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["v", "agent", "cli_version", "type", "ts", "content"]);
}

#[test]
fn malformed_lines_are_dropped() {
    let good = r#"{"type":"user","message":{"content":"ok"}}"#;
    for bad in [
        "garbage",
        "{\"type\":\"user\"",
        "{\"type\":\"user\",\"message\":{\"content\":\"a\"}}{\"type\":\"user\"}",
        "[1]",
        "null",
        "\"user\"",
        "{\"type\":\"user\",\"n\":01}",
        "{\"type\":\"user\",\"s\":\"\\x\"}",
        "{\"type\":\"user\",\"s\":\"tab\there\"}",
        "{\"type\":\"user\",}",
        "",
        "   ",
    ] {
        assert_eq!(
            run(&format!("{bad}\n{good}\n")),
            lines(&[(U, r#","content":[{"text":"ok"}]}"#)]),
            "{bad}"
        );
    }
    // CRLF and a missing final newline are fine.
    assert_eq!(run(&format!("{good}\r\n{good}")).lines().count(), 2);
}

#[test]
fn non_utf8_and_surrogates() {
    let mut line = br#"{"type":"user","message":{"content":"a"#.to_vec();
    line.extend_from_slice(b"\xff\xe2\x80 \\ud800\\u0041 \\udc00 \\ud83d\\ude00\"}}\n");
    let out = String::from_utf8(compact(&line, &F)).unwrap();
    assert_eq!(
        out,
        lines(&[(U, r#","content":[{"text":"a��� �A � 😀"}]}"#)])
    );
    // Bytes copied verbatim keep invalid UTF-8 (as Go does).
    let raw = b"{\"type\":\"assistant\",\"message\":{\"content\":\"\xff\"}}";
    assert!(compact(raw, &F).windows(3).any(|w| w == b"\"\xff\""));
}

#[test]
fn start_line_and_boundary() {
    let user = |t: &str| format!(r#"{{"type":"user","message":{{"content":"{t}"}}}}"#);
    let raw = format!("{}\n{}\n{}\n", user("first"), user("second"), user("third"));
    let at = |n: usize| Fields { start_line: n, ..F };
    let texts = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap().lines().count();
    assert_eq!(texts(&compact(raw.as_bytes(), &at(0))), 3);
    assert_eq!(texts(&compact(raw.as_bytes(), &at(1))), 2);
    assert!(String::from_utf8(compact(raw.as_bytes(), &at(2)))
        .unwrap()
        .contains("third"));
    assert!(compact(raw.as_bytes(), &at(3)).is_empty());
    assert!(compact(raw.as_bytes(), &at(9)).is_empty());
    let full = compact(raw.as_bytes(), &F);
    assert_eq!(
        compact_with_boundary(raw.as_bytes(), &at(0)),
        (full.clone(), 0)
    );
    assert_eq!(
        compact_with_boundary(raw.as_bytes(), &at(1)),
        (full.clone(), 1)
    );
    assert_eq!(compact_with_boundary(raw.as_bytes(), &at(9)), (full, 3));
    // A merged assistant straddling the boundary counts as this checkpoint's.
    let a = |t: &str| {
        format!(
            r#"{{"type":"assistant","message":{{"id":"m","content":[{{"type":"text","text":"{t}"}}]}}}}"#
        )
    };
    let raw = format!("{}\n{}\n{}\n", user("q"), a("x"), a("y"));
    let (full, boundary) = compact_with_boundary(raw.as_bytes(), &at(2));
    assert_eq!((texts(&full), boundary), (2, 1));
    // The upstream example: boundary 1 for two prompts from line 1.
    let raw = format!("{}\n{}\n", user("first"), user("second"));
    assert_eq!(compact_with_boundary(raw.as_bytes(), &at(1)).1, 1);
}

// ---------------------------------------------------------------------------
// Real transcripts

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/compact/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn golden_real_transcripts() {
    for name in ["20_14bbff865d_0", "30_e81e82f6ba_0", "9b_3838281539_0"] {
        let got = compact(&fixture(&format!("{name}.jsonl")), &F);
        let want = fixture(&format!("{name}.compact.jsonl"));
        assert!(got == want, "{name}: output differs from golden file");
        check_shape(&fixture(&format!("{name}.jsonl")), &got);
    }
}

/// Runs over every `*.jsonl` in `ENTIRE_SAMPLE_DIR` (skipped when unset).
#[test]
fn sample_dir_shape() {
    let Ok(dir) = std::env::var("ENTIRE_SAMPLE_DIR") else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("ENTIRE_SAMPLE_DIR readable") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let raw = std::fs::read(&path).unwrap();
            let out = compact(&raw, &F);
            check_shape(&raw, &out);
            let half = Fields {
                start_line: raw.iter().filter(|&&c| c == b'\n').count() / 2,
                ..F
            };
            let (full, boundary) = compact_with_boundary(&raw, &half);
            assert_eq!(full, out, "{path:?}");
            assert_eq!(
                (full.clone(), boundary),
                oracle::compact_with_boundary(&raw, &half),
                "{path:?}"
            );
            assert!(boundary <= full.iter().filter(|&&c| c == b'\n').count());
            seen += 1;
        }
    }
    assert!(seen > 0, "no *.jsonl in {dir}");
}

/// Valid JSONL with the fixed key order, no thinking, and every (tag-free)
/// prompt and assistant text of the input present.
fn check_shape(raw: &[u8], out: &[u8]) {
    let order = [
        "v",
        "agent",
        "cli_version",
        "type",
        "ts",
        "id",
        "input_tokens",
        "output_tokens",
        "content",
    ];
    let (mut user_texts, mut assistant_texts) = (Vec::new(), Vec::new());
    assert!(out.is_empty() || out.ends_with(b"\n"));
    for line in out.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).expect("valid JSON line");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| order.iter().position(|o| o == k).expect("known key"))
            .collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]) && keys.last().is_some_and(|k| *k == "content"),
            "{keys:?}"
        );
        assert_eq!(v["v"], 1);
        for block in v["content"].as_array().into_iter().flatten() {
            assert!(!matches!(
                block["type"].as_str(),
                Some("thinking" | "redacted_thinking")
            ));
            let text = block["text"].as_str().map(str::to_string);
            match v["type"].as_str() {
                Some("user") => user_texts.extend(text),
                Some("assistant") if block["type"] == "text" => assistant_texts.extend(text),
                Some("assistant") => {}
                other => panic!("bad type {other:?}"),
            }
        }
    }
    for line in raw.split(|&c| c == b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let content = &v["message"]["content"];
        match v["type"].as_str() {
            Some("user") => {
                let prompt = content
                    .as_str()
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && !t.contains('<'));
                if let Some(prompt) = prompt {
                    assert!(
                        user_texts.iter().any(|t| t.contains(prompt)),
                        "prompt {prompt:?} missing"
                    );
                }
            }
            Some("assistant") => {
                for block in content
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|b| b["type"] == "text")
                {
                    let Some(text) = block["text"].as_str() else {
                        continue;
                    };
                    assert!(
                        assistant_texts.iter().any(|t| t == text),
                        "assistant text {text:?} missing"
                    );
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Properties

#[derive(Debug, Clone)]
enum Gen {
    Prompt(String),
    Assistant {
        id: u8,
        blocks: Vec<GenBlock>,
        ts: u8,
    },
    ToolResult {
        id: u8,
        output: String,
        is_error: bool,
    },
    Noise,
}

#[derive(Debug, Clone)]
enum GenBlock {
    Text(String),
    Thinking(String),
    ToolUse(u8, Value),
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Exactly representable, so serde_json's parser round-trips them.
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z<&]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_entry() -> impl Strategy<Value = Gen> {
    let prompt = "[a-zA-Z0-9 \"\\\\&>/\u{e9}\u{2028}\n\t]{0,30}".prop_map(|s| format!("p{s}q"));
    let block = prop_oneof![
        any::<String>().prop_map(GenBlock::Text),
        any::<String>().prop_map(GenBlock::Thinking),
        (0..4u8, arb_json()).prop_map(|(id, input)| GenBlock::ToolUse(id, input)),
    ];
    prop_oneof![
        prompt.prop_map(Gen::Prompt),
        (0..3u8, prop::collection::vec(block, 0..4), any::<u8>())
            .prop_map(|(id, blocks, ts)| Gen::Assistant { id, blocks, ts }),
        (0..4u8, any::<String>(), any::<bool>()).prop_map(|(id, output, is_error)| {
            Gen::ToolResult {
                id,
                output,
                is_error,
            }
        }),
        Just(Gen::Noise),
    ]
}

fn render(entries: &[Gen], pretty: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let v = match e {
            Gen::Prompt(p) => json!({"type": "user", "message": {"role": "user", "content": p}}),
            Gen::Assistant { id, blocks, ts } => {
                let content: Vec<Value> = blocks
                    .iter()
                    .map(|b| match b {
                        GenBlock::Text(t) => json!({"type": "text", "text": t}),
                        GenBlock::Thinking(t) => json!({"type": "thinking", "thinking": t, "signature": "s"}),
                        GenBlock::ToolUse(id, input) => json!({"type": "tool_use", "id": format!("tu{id}"), "name": "T", "input": input}),
                    })
                    .collect();
                json!({"type": "assistant", "timestamp": format!("t{ts}"), "message": {"id": format!("m{id}"), "content": content, "usage": {"input_tokens": ts, "output_tokens": 1}}})
            }
            Gen::ToolResult {
                id,
                output,
                is_error,
            } => {
                json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": format!("tu{id}"), "content": output, "is_error": is_error}]}, "toolUseResult": {"stdout": output}})
            }
            Gen::Noise => json!({"type": "progress", "data": {"x": 1}}),
        };
        let text = if pretty {
            serde_json::to_string_pretty(&v).unwrap().replace('\n', " ")
        } else {
            v.to_string()
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), start in 0..8usize) {
        let f = Fields { start_line: start, ..F };
        let _ = compact(&bytes, &f);
        prop_assert_eq!(compact_with_boundary(&bytes, &f), oracle::compact_with_boundary(&bytes, &f));
    }

    #[test]
    fn corrupted_transcripts_never_panic(entries in prop::collection::vec(arb_entry(), 0..8), cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6)) {
        let mut raw = render(&entries, false);
        for (at, byte) in cuts {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        let out = compact(&raw, &F);
        prop_assert!(out.is_empty() || out.ends_with(b"\n"));
        prop_assert_eq!(out, oracle::compact(&raw, &F));
    }

    #[test]
    fn same_bytes_as_oracle(entries in prop::collection::vec(arb_entry(), 0..8), pretty in any::<bool>(), start in 0..10usize, cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)) {
        let mut raw = render(&entries, pretty);
        for (at, byte) in cuts {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        let f = Fields { start_line: start, ..F };
        prop_assert_eq!(compact_with_boundary(&raw, &f), oracle::compact_with_boundary(&raw, &f));
    }

    #[test]
    fn well_formed_transcripts_keep_shape(entries in prop::collection::vec(arb_entry(), 0..10), pretty in any::<bool>(), start in 0..12usize) {
        let raw = render(&entries, pretty);
        let out = compact(&raw, &F);
        check_shape(&raw, &out);
        // Tool inputs survive semantically (only compacted / escaped).
        let inputs: Vec<Value> = entries.iter().flat_map(|e| match e {
            Gen::Assistant { blocks, .. } => blocks.iter().filter_map(|b| match b {
                GenBlock::ToolUse(_, input) => Some(input.clone()),
                _ => None,
            }).collect(),
            _ => vec![],
        }).collect();
        let text = String::from_utf8(out.clone()).unwrap();
        let outputs: Vec<Value> = text.lines().flat_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["content"].as_array().cloned().unwrap_or_default()
        }).filter(|b| b["type"] == "tool_use").map(|b| b["input"].clone()).collect();
        prop_assert_eq!(inputs, outputs);
        let f = Fields { start_line: start, ..F };
        let (full, boundary) = compact_with_boundary(&raw, &f);
        prop_assert_eq!(&full, &out);
        let count = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
        prop_assert!(boundary <= count(&full));
    }
}

#[test]
fn deep_nesting_is_safe() {
    let line = |depth: usize| {
        let input = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        format!(
            r#"{{"type":"assistant","message":{{"content":[{{"type":"tool_use","input":{input}}}]}}}}"#
        )
    };
    // No recursion anywhere: very deep values neither overflow nor get dropped.
    assert_eq!(run(&line(100)).lines().count(), 1);
    let deep = run(&line(100_000));
    assert_eq!(deep.lines().count(), 1);
    assert!(deep.contains(&"[".repeat(100_000)));
}

/// Timing of the whole compaction over `ENTIRE_SAMPLE_DIR` (release-like
/// numbers need `--release`): `cargo test -p entire --lib --release
/// compact::tests::time_sample_dir -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_sample_dir() {
    let dir = std::env::var("ENTIRE_SAMPLE_DIR").expect("ENTIRE_SAMPLE_DIR");
    let raws: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("readable")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mib = raws.iter().map(Vec::len).sum::<usize>() as f64 / (1 << 20) as f64;
    let time = |which: &str, run: &dyn Fn(&[u8]) -> Vec<u8>| {
        let t = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..3 {
            bytes = raws.iter().map(|r| run(r).len()).sum::<usize>();
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / 3.0;
        println!(
            "{which}: {} files, {mib:.1} MiB in, {bytes} B out: {ms:.1} ms ({:.0} MiB/s)",
            raws.len(),
            mib * 1000.0 / ms
        );
        ms
    };
    let new = time("new", &|r| compact(r, &F));
    let old = time("oracle", &|r| oracle::compact(r, &F));
    println!("speed-up {:.2}x", old / new);
}
