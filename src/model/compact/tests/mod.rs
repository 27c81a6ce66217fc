use super::*;
use proptest::prelude::*;
use serde_json::Value;

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

mod real;
