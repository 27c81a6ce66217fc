//! The implementation before the single-pass rewrite, kept verbatim as the
//! oracle of the differential tests (test builds only): every output byte of
//! the new code must equal this one's.
#![allow(dead_code)]
use std::borrow::Cow;
use std::collections::BTreeMap;

mod gojson;

use gojson::{document, elements, get, go_string, int_field, members, str_field, Members};

use super::Fields;

/// Compact a raw Claude Code (generic JSONL) transcript. Returns the compact
/// JSONL bytes (each line ends with '\n'), possibly empty.
pub fn compact(raw: &[u8], fields: &Fields) -> Vec<u8> {
    compact_jsonl(slice_from_line(raw, fields.start_line), fields)
}

/// Full compact plus boundary: (compact of the whole transcript,
/// lines(full) - lines(compact from start_line) floored at 0).
pub fn compact_with_boundary(raw: &[u8], fields: &Fields) -> (Vec<u8>, usize) {
    let full = compact_jsonl(raw, fields);
    if fields.start_line == 0 {
        return (full, 0);
    }
    let lines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
    let boundary = lines(&full).saturating_sub(lines(&compact(raw, fields)));
    (full, boundary)
}

fn slice_from_line(raw: &[u8], start_line: usize) -> &[u8] {
    let Some(n) = start_line.checked_sub(1) else {
        return raw;
    };
    let mut newlines = raw.iter().enumerate().filter(|(_, &c)| c == b'\n');
    newlines.nth(n).map_or(&[][..], |(i, _)| &raw[i + 1..])
}

// ---------------------------------------------------------------------------
// Entries

type Object<'a> = BTreeMap<String, Cow<'a, [u8]>>;

/// Assistant content, keeping the distinctions upstream's output depends on.
#[derive(Default)]
enum Content<'a> {
    /// No `content` key: written as `null` but not treated as empty.
    #[default]
    Absent,
    /// Non-array content (string, object, number, `null`), copied as is.
    Verbatim(&'a [u8]),
    Array(Vec<Block<'a>>),
}

enum Block<'a> {
    Obj(Object<'a>),
    Other(&'a [u8]),
}

#[derive(Default)]
struct ToolResult {
    tool_use_id: String,
    output: String,
    is_error: bool,
    file: Option<(String, i64)>,
    match_count: i64,
}

/// One user or assistant line. User entries never set `id` or `tokens`.
#[derive(Default)]
struct Entry<'a> {
    user: bool,
    ts: Option<&'a [u8]>,
    id: String,
    prompt_id: String,
    tokens: (i64, i64),
    content: Content<'a>,
    text: String,
    images: Vec<&'a [u8]>,
    results: Vec<ToolResult>,
}

fn compact_jsonl(content: &[u8], f: &Fields) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = content
        .split(|&c| c == b'\n')
        .filter_map(parse_line)
        .peekable();
    while let Some(mut e) = it.next() {
        if e.user {
            if e.results.is_empty() || !e.text.is_empty() || !e.images.is_empty() {
                emit(&mut out, f, &e);
            }
            continue;
        }
        while let Some(next) = it.next_if(|n| !n.user && n.id == e.id) {
            e = merge(e, next);
        }
        if let Some(u) = it.next_if(|n| n.user && !n.results.is_empty()) {
            inline_results(&mut e.content, &u.results);
            if !u.text.is_empty() || !u.images.is_empty() {
                emit(&mut out, f, &e);
                emit(&mut out, f, &u);
                continue;
            }
        }
        let empty = match &e.content {
            Content::Absent => false,
            Content::Verbatim(raw) => *raw == b"null",
            Content::Array(blocks) => blocks.is_empty(),
        };
        if !empty {
            emit(&mut out, f, &e);
        }
    }
    out
}

fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let obj = members(document(line)?)?;
    let mut kind = go_string(get(&obj, "type"));
    if kind.is_empty() {
        kind = go_string(get(&obj, "role"));
    }
    let mut e = Entry::default();
    (e.user, e.ts) = match kind.as_str() {
        "user" | "human" => (true, get(&obj, "timestamp")),
        "assistant" => (false, get(&obj, "timestamp")),
        _ => return None,
    };
    let msg = get(&obj, "message").and_then(members).unwrap_or_default();
    if e.user {
        e.prompt_id = go_string(get(&obj, "promptId"));
        if let Some(c) = get(&msg, "content") {
            extract_user(c, &mut e);
        }
        if let Some(tur) = get(&obj, "toolUseResult").and_then(members) {
            enrich(&mut e.results, &tur);
        }
    } else {
        e.id = go_string(get(&msg, "id"));
        if let Some(c) = get(&msg, "content") {
            e.content = strip_assistant(c);
        }
        let usage = get(&msg, "usage").and_then(members).unwrap_or_default();
        let tokens = |key| int_field(&usage, key);
        if let (Ok(i), Ok(o)) = (tokens("input_tokens"), tokens("output_tokens")) {
            e.tokens = (i, o);
        }
    }
    Some(e)
}

fn strip_assistant(raw: &[u8]) -> Content<'_> {
    let Some(items) = elements(raw) else {
        return Content::Verbatim(raw);
    };
    let blocks = items.into_iter().filter_map(|item| {
        let Some(m) = members(item).filter(|_| item != b"null") else {
            return Some(Block::Other(item));
        };
        let mut obj: Object = m.into_iter().map(|(k, v)| (k, Cow::Borrowed(v))).collect();
        match obj_str(&obj, "type").as_str() {
            "thinking" | "redacted_thinking" => return None,
            "tool_use" => obj.retain(|k, _| matches!(k.as_str(), "type" | "id" | "name" | "input")),
            _ => {}
        }
        Some(Block::Obj(obj))
    });
    Content::Array(blocks.collect())
}

fn extract_user<'a>(raw: &'a [u8], e: &mut Entry<'a>) {
    if raw.first() == Some(&b'"') || raw == b"null" {
        e.text = strip_tags(&go_string(Some(raw)));
        return;
    }
    let mut text = String::new();
    for item in elements(raw).unwrap_or_default() {
        let block = members(item).unwrap_or_default();
        match go_string(get(&block, "type")).as_str() {
            "tool_result" => e.results.push(ToolResult {
                tool_use_id: go_string(get(&block, "tool_use_id")),
                output: go_string(get(&block, "content")),
                is_error: get(&block, "is_error").is_some_and(|v| v == b"true"),
                ..ToolResult::default()
            }),
            "image" => e.images.push(item),
            "text" => {
                let s = strip_tags(&go_string(get(&block, "text")));
                if !s.is_empty() {
                    text.push_str(&s);
                    text.push_str("\n\n");
                }
            }
            _ => {}
        }
    }
    e.text = text.trim().to_string();
}

/// Applies `toolUseResult`, which describes one tool call: `stdout` may create
/// the only result; the other fields apply only when exactly one exists.
fn enrich(results: &mut Vec<ToolResult>, tur: &Members) {
    let stdout = go_string(get(tur, "stdout"));
    if !stdout.is_empty() && results.len() <= 1 {
        if results.is_empty() {
            results.push(ToolResult::default());
        }
        results[0].output = stdout;
    }
    let [only] = results.as_mut_slice() else {
        return;
    };
    if let Some(file) = get(tur, "file").and_then(members) {
        match (str_field(&file, "filePath"), int_field(&file, "numLines")) {
            (Ok(path), Ok(lines)) if !path.is_empty() => only.file = Some((path, lines)),
            _ => {}
        }
    }
    let path = go_string(get(tur, "filePath"));
    if !path.is_empty() {
        only.file = Some((path, 0));
    }
    if let Ok(n @ 1..) = int_field(tur, "numFiles") {
        only.match_count = n;
    }
}

fn merge<'a>(mut a: Entry<'a>, b: Entry<'a>) -> Entry<'a> {
    let blocks = |c: Content<'a>| match c {
        Content::Array(v) => Some(v),
        _ => None,
    };
    // As in Go: concatenating two non-arrays (or a non-array and `[]`) is `null`.
    a.content = match (blocks(a.content), blocks(b.content)) {
        (None, None) => Content::Verbatim(b"null"),
        (None, Some(v)) if v.is_empty() => Content::Verbatim(b"null"),
        (None, Some(v)) => Content::Array(v),
        (Some(mut v), more) => {
            v.extend(more.unwrap_or_default());
            Content::Array(v)
        }
    };
    let pick = |x: i64, y: i64| if y > 0 { y } else { x };
    a.tokens = (pick(a.tokens.0, b.tokens.0), pick(a.tokens.1, b.tokens.1));
    a.ts = b.ts;
    a
}

fn inline_results(content: &mut Content, results: &[ToolResult]) {
    let Content::Array(blocks) = content else {
        return;
    };
    for tr in results {
        let target = blocks.iter_mut().rev().find_map(|b| match b {
            Block::Obj(o) if obj_str(o, "type") == "tool_use" => {
                (tr.tool_use_id.is_empty() || obj_str(o, "id") == tr.tool_use_id).then_some(o)
            }
            _ => None,
        });
        if let Some(obj) = target {
            obj.insert("result".to_string(), Cow::Owned(result_json(tr)));
        }
    }
}

fn obj_str(obj: &Object, key: &str) -> String {
    go_string(obj.get(key).map(|v| v.as_ref()))
}

// ---------------------------------------------------------------------------
// Emission: serde_json output made Go-like by `put_raw`

fn result_json(tr: &ToolResult) -> Vec<u8> {
    let status = if tr.is_error { "error" } else { "success" };
    // Key order relies on serde_json's `preserve_order` feature.
    let mut r = serde_json::json!({ "output": tr.output, "status": status });
    if let Some((path, lines)) = &tr.file {
        r["file"] = serde_json::json!({ "filePath": path });
        if *lines != 0 {
            r["file"]["numLines"] = (*lines).into();
        }
    }
    if tr.match_count != 0 {
        r["matchCount"] = tr.match_count.into();
    }
    serde_json::to_vec(&r).unwrap_or_default()
}

fn emit(out: &mut Vec<u8>, f: &Fields, e: &Entry) {
    let kind = if e.user { "user" } else { "assistant" };
    out.extend_from_slice(b"{\"v\":1");
    put_field(out, "agent", &json_str(f.agent));
    put_field(out, "cli_version", &json_str(f.cli_version));
    put_field(out, "type", &json_str(kind));
    if let Some(ts) = e.ts {
        put_field(out, "ts", ts);
    }
    if !e.id.is_empty() {
        put_field(out, "id", &json_str(&e.id));
    }
    for (name, n) in [("input_tokens", e.tokens.0), ("output_tokens", e.tokens.1)] {
        if n != 0 {
            put_field(out, name, n.to_string().as_bytes());
        }
    }
    put_field(out, "content", &content_json(e));
    out.extend_from_slice(b"}\n");
}

fn user_content(e: &Entry) -> Vec<u8> {
    let mut items = Vec::new();
    if !e.text.is_empty() || e.images.is_empty() {
        let mut block = serde_json::Map::new();
        if !e.prompt_id.is_empty() {
            block.insert("id".into(), e.prompt_id.as_str().into());
        }
        block.insert("text".into(), e.text.as_str().into());
        items.push(serde_json::to_vec(&block).unwrap_or_default());
    }
    items.extend(e.images.iter().map(|image| image.to_vec()));
    join(b"[]", items)
}

fn content_json(e: &Entry) -> Vec<u8> {
    let object = |o: &Object| {
        join(
            b"{}",
            o.iter().map(|(k, v)| [&json_str(k)[..], b":", v].concat()),
        )
    };
    match &e.content {
        _ if e.user => user_content(e),
        Content::Absent => b"null".to_vec(),
        Content::Verbatim(raw) => raw.to_vec(),
        Content::Array(blocks) => join(
            b"[]",
            blocks.iter().map(|block| match block {
                Block::Obj(obj) => object(obj),
                Block::Other(raw) => raw.to_vec(),
            }),
        ),
    }
}

fn join(brackets: &[u8; 2], items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let items: Vec<Vec<u8>> = items.into_iter().collect();
    [&brackets[..1], &items.join(&b',')[..], &brackets[1..]].concat()
}

fn json_str(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_default()
}

fn put_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(format!(",\"{name}\":").as_bytes());
    put_raw(out, value);
}

/// Copies valid JSON like Go's compact with HTML escaping: drops whitespace
/// outside strings, escapes `<>&` and U+2028/U+2029 inside them. serde_json's
/// string escaping plus this equals Go's `json.Marshal` of a string.
fn put_raw(out: &mut Vec<u8>, raw: &[u8]) {
    let (mut in_str, mut escaped, mut i) = (false, false, 0);
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if !in_str {
            in_str = c == b'"';
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                out.push(c);
            }
        } else if escaped {
            escaped = false;
            out.push(c);
        } else if matches!(c, b'<' | b'>' | b'&') {
            out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
        } else if c == 0xE2 && matches!(raw.get(i..i + 2), Some([0x80, 0xA8 | 0xA9])) {
            out.extend_from_slice(format!("\\u202{}", raw[i + 1] - 0xA0).as_bytes());
            i += 2;
        } else {
            // A backslash escapes the next byte; an unescaped quote ends the string.
            escaped = c == b'\\';
            in_str = c != b'"';
            out.push(c);
        }
    }
}

// ---------------------------------------------------------------------------
// IDE / system tag stripping (upstream `textutil.StripIDEContextTags`)

const SYSTEM_TAGS: &str =
    "local-command-caveat system-reminder command-name command-message command-args local-command-stdout";

// `strip_pairs` and `strip_leading_timestamp` were not rewritten: the oracle uses the module's own.
use super::{strip_leading_timestamp, strip_pairs};

fn strip_tags(text: &str) -> String {
    let mut s = strip_pairs(text, "<ide_", "</ide_", true);
    s = strip_leading_timestamp(&s);
    for tag in SYSTEM_TAGS.split(' ') {
        s = strip_pairs(&s, &format!("<{tag}"), &format!("</{tag}>"), false);
    }
    // `</?user_query>`: matches cannot overlap, so find each `user_query>` and
    // look for the `<` or `</` before it.
    let (mut out, mut kept) = (String::with_capacity(s.len()), 0);
    for (p, tag) in s.match_indices("user_query>") {
        let opener = ["</", "<"].into_iter().find(|o| s[kept..p].ends_with(o));
        if let Some(opener) = opener {
            out.push_str(&s[kept..p - opener.len()]);
            kept = p + tag.len();
        }
    }
    out.push_str(&s[kept..]);
    out.trim().to_string()
}
