//! Real transcripts (golden files, the sample directory), generated transcripts (proptests, the oracle), and
//! timing against the oracle.

use super::*;
use serde_json::json;

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
