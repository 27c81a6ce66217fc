//! Entire Transcript Format: the compact `transcript.jsonl` made from a raw
//! Claude Code (generic JSONL) transcript (reference §2.11, upstream Go
//! package `transcript/compact`).
//!
//! Each output line is `{"v":1,"agent","cli_version","type","ts"?,"id"?,
//! "input_tokens"?,"output_tokens"?,"content"}` + `\n`, in that order, with
//! Go `json.Marshal` bytes (§2.6: `<>&` → `\u003c\u003e\u0026`, U+2028/9
//! escaped). `ts` is the raw `timestamp`; values copied from the input are
//! compacted but keep their bytes; content-block objects get sorted, unique keys
//! (Go `map[string]RawMessage`).
//!
//! Rules: `start_line` skips raw lines first. Malformed lines are dropped. The
//! kind is `type`, else `role`: `user`/`human` → user, `assistant` →
//! assistant, all else (`progress`, `system`, `file-history-snapshot`,
//! `queue-operation`, `summary`, …) is dropped. Assistant content loses
//! `thinking`/`redacted_thinking`; `tool_use` keeps `type,id,name,input`;
//! tokens come from `message.usage`. Consecutive assistants with equal ids
//! (even empty) merge: contents concatenated, later `ts` (even absent) and
//! later non-zero tokens win. A following user entry with tool results is
//! consumed: each result goes into the matching `tool_use` (`tool_use_id`,
//! last match backwards, empty id = last `tool_use`) as
//! `"result":{"output","status","file"?,"matchCount"?}`, enriched from
//! `toolUseResult` (`stdout`, `file.filePath/numLines`, `filePath`,
//! `numFiles`); if it also had text or images a user line follows. Assistant
//! lines with `[]`/`null` content are skipped (not when emitted with such a
//! user line, as upstream). User content is `[{"id"?:promptId,"text"},
//! images…]`, text present when non-empty or without images; text is the
//! string content or `text` blocks joined by `"\n\n"`, with IDE/system tags
//! (`<ide_*>`, `<system-reminder>`, `<command-*>`, `<local-command-*>`, a
//! leading `<timestamp>`, `<user_query>`) stripped, trimmed. Unconsumed user
//! entries with only tool results are skipped.
//!
//! Invariants: every line is a JSON object (valid JSONL for UTF-8 input); no
//! thinking block survives; every user prompt (after tag stripping) and every
//! assistant text block appears. Never panics or fails; bad input loses lines.
//!
//! Cost: each kept line is validated once (serde_json, no decoding) and then
//! split structurally per nesting level; other kinds are dropped after one
//! structural scan of the top level; output is copied in runs. Tests compare
//! every byte with the previous implementation (`oracle`, test builds only).
//!
//! Choices: `agent` is the caller's value, written verbatim, since upstream
//! callers differ (`"claude-code"` vs `"Claude Code"`); skipping on an empty
//! agent or output is the caller's job too. Only the generic JSONL path exists
//! (upstream first detects OpenCode, Gemini, pi, Codex, Copilot, Droid). A
//! content array with a non-object element is still filtered (upstream copies
//! it verbatim, thinking included). Tags follow upstream's latest version.
//! Decoding follows Go: bad UTF-8 and lone surrogates in decoded strings become
//! U+FFFD (copied values keep their bytes); integers must be integer literals
//! (a wrongly typed `usage`/`file` field voids it). Unlike Go, struct keys are
//! case-sensitive and nesting depth is not limited (Go: 10000). The result key
//! order needs serde_json's `preserve_order` feature.

use std::borrow::Cow;
use std::collections::BTreeMap;

mod gojson;

use gojson::{
    count_while, document, elements, get, go_string, int_field, json_string, members, skip_ws,
    str_field, Members,
};

/// Metadata written to every line, plus the raw line to start from.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// Written verbatim as `agent` (caller's choice, see module docs).
    pub agent: &'a str,
    /// Written verbatim as `cli_version`.
    pub cli_version: &'a str,
    /// Raw lines to skip (`checkpoint_transcript_start`).
    pub start_line: usize,
}

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
    let lines = |b: &[u8]| memchr::memchr_iter(b'\n', b).count();
    let boundary = lines(&full).saturating_sub(lines(&compact(raw, fields)));
    (full, boundary)
}

fn slice_from_line(raw: &[u8], start_line: usize) -> &[u8] {
    let Some(n) = start_line.checked_sub(1) else {
        return raw;
    };
    memchr::memchr_iter(b'\n', raw)
        .nth(n)
        .map_or(&[][..], |i| &raw[i + 1..])
}

// ---------------------------------------------------------------------------
// Entries

type Object<'a> = BTreeMap<Cow<'a, str>, Cow<'a, [u8]>>;

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
    /// The output as a JSON string literal, serde_json's encoding (empty: `""`).
    output: Vec<u8>,
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
    let mut it = lines(content).filter_map(parse_line).peekable();
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

/// `content.split(|&c| c == b'\n')`, found with memchr.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(content);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(at) => {
                rest = Some(&r[at + 1..]);
                Some(&r[..at])
            }
            None => rest.take(),
        }
    })
}

/// The kind is read from a structural split of the line before the one
/// validating pass, so dropped kinds cost one scan; a malformed line is dropped
/// whatever that split says.
fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let obj = members(&line[skip_ws(line, 0)..])?;
    let mut kind = go_string(get(&obj, "type"));
    if kind.is_empty() {
        kind = go_string(get(&obj, "role"));
    }
    let mut e = Entry::default();
    (e.user, e.ts) = match &*kind {
        "user" | "human" => (true, get(&obj, "timestamp")),
        "assistant" => (false, get(&obj, "timestamp")),
        _ => return None,
    };
    document(line)?;
    let msg = get(&obj, "message").and_then(members).unwrap_or_default();
    if e.user {
        e.prompt_id = go_string(get(&obj, "promptId")).into_owned();
        if let Some(c) = get(&msg, "content") {
            extract_user(c, &mut e);
        }
        if let Some(tur) = get(&obj, "toolUseResult").and_then(members) {
            enrich(&mut e.results, &tur);
        }
    } else {
        e.id = go_string(get(&msg, "id")).into_owned();
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
        match &*obj_str(&obj, "type") {
            "thinking" | "redacted_thinking" => return None,
            "tool_use" => obj.retain(|k, _| matches!(&**k, "type" | "id" | "name" | "input")),
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
        match &*go_string(get(&block, "type")) {
            "tool_result" => e.results.push(ToolResult {
                tool_use_id: go_string(get(&block, "tool_use_id")).into_owned(),
                output: json_string(get(&block, "content")),
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
    // A string literal longer than `""` decodes to a non-empty string.
    let stdout = get(tur, "stdout").filter(|r| r.first() == Some(&b'"') && r.len() > 2);
    if let (Some(stdout), true) = (stdout, results.len() <= 1) {
        if results.is_empty() {
            results.push(ToolResult::default());
        }
        results[0].output = json_string(Some(stdout));
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
        only.file = Some((path.into_owned(), 0));
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
            obj.insert(Cow::Borrowed("result"), Cow::Owned(result_json(tr)));
        }
    }
}

fn obj_str<'a>(obj: &'a Object, key: &str) -> Cow<'a, str> {
    go_string(obj.get(key).map(|v| v.as_ref()))
}

// ---------------------------------------------------------------------------
// Emission: serde_json output made Go-like by `put_raw`

fn result_json(tr: &ToolResult) -> Vec<u8> {
    let status = if tr.is_error { "error" } else { "success" };
    // Key order relies on serde_json's `preserve_order` feature.
    // serde_json's compact bytes for {"output","status","file"?:{"filePath","numLines"?},"matchCount"?}.
    let mut r = Vec::with_capacity(tr.output.len() + 64);
    r.extend_from_slice(b"{\"output\":");
    match tr.output.is_empty() {
        true => r.extend_from_slice(b"\"\""),
        false => r.extend_from_slice(&tr.output),
    }
    r.extend_from_slice(b",\"status\":\"");
    r.extend_from_slice(status.as_bytes());
    r.push(b'"');
    if let Some((path, lines)) = &tr.file {
        r.extend_from_slice(b",\"file\":{\"filePath\":");
        r.extend_from_slice(&serde_json::to_vec(path).unwrap_or_default());
        if *lines != 0 {
            r.extend_from_slice(format!(",\"numLines\":{lines}").as_bytes());
        }
        r.push(b'}');
    }
    if tr.match_count != 0 {
        r.extend_from_slice(format!(",\"matchCount\":{}", tr.match_count).as_bytes());
    }
    r.push(b'}');
    r
}

fn emit(out: &mut Vec<u8>, f: &Fields, e: &Entry) {
    let kind = if e.user { "user" } else { "assistant" };
    out.extend_from_slice(b"{\"v\":1");
    put_field(out, "agent");
    put_str(out, f.agent);
    put_field(out, "cli_version");
    put_str(out, f.cli_version);
    put_field(out, "type");
    put_str(out, kind);
    if let Some(ts) = e.ts {
        put_field(out, "ts");
        put_raw(out, ts);
    }
    if !e.id.is_empty() {
        put_field(out, "id");
        put_str(out, &e.id);
    }
    for (name, n) in [("input_tokens", e.tokens.0), ("output_tokens", e.tokens.1)] {
        if n != 0 {
            put_field(out, name);
            out.extend_from_slice(n.to_string().as_bytes());
        }
    }
    put_field(out, "content");
    put_content(out, e);
    out.extend_from_slice(b"}\n");
}

fn put_user_content(out: &mut Vec<u8>, e: &Entry) {
    out.push(b'[');
    let with_text = !e.text.is_empty() || e.images.is_empty();
    if with_text {
        out.push(b'{');
        if !e.prompt_id.is_empty() {
            out.extend_from_slice(b"\"id\":");
            put_str(out, &e.prompt_id);
            out.push(b',');
        }
        out.extend_from_slice(b"\"text\":");
        put_str(out, &e.text);
        out.push(b'}');
    }
    for (i, image) in e.images.iter().enumerate() {
        if i > 0 || with_text {
            out.push(b',');
        }
        put_raw(out, image);
    }
    out.push(b']');
}

/// Writes the `content` value; pieces are whole JSON values, so copying each
/// through `put_raw` equals copying their concatenation.
fn put_content(out: &mut Vec<u8>, e: &Entry) {
    match &e.content {
        _ if e.user => put_user_content(out, e),
        Content::Absent => out.extend_from_slice(b"null"),
        Content::Verbatim(raw) => put_raw(out, raw),
        Content::Array(blocks) => {
            out.push(b'[');
            for (i, block) in blocks.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match block {
                    Block::Obj(obj) => {
                        out.push(b'{');
                        for (j, (k, v)) in obj.iter().enumerate() {
                            if j > 0 {
                                out.push(b',');
                            }
                            put_str(out, k);
                            out.push(b':');
                            put_raw(out, v);
                        }
                        out.push(b'}');
                    }
                    Block::Other(raw) => put_raw(out, raw),
                }
            }
            out.push(b']');
        }
    }
}

/// Go `json.Marshal` of a string: serde_json's escaping, then `put_raw`'s.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let plain = |c: u8| c >= 0x20 && !matches!(c, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xE2);
    if s.bytes().all(plain) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        put_raw(out, &serde_json::to_vec(s).unwrap_or_default());
    }
}

fn put_field(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Copies valid JSON like Go's compact with HTML escaping: drops whitespace
/// outside strings, escapes `<>&` and U+2028/U+2029 inside them. serde_json's
/// string escaping plus this equals Go's `json.Marshal` of a string. Copies
/// runs of unchanged bytes at once.
fn put_raw(out: &mut Vec<u8>, raw: &[u8]) {
    out.reserve(raw.len());
    let (mut in_str, mut i, mut run) = (false, 0, 0);
    loop {
        if in_str {
            // Inside a string only these bytes matter: skip the rest in one go (tool outputs are long).
            let rest = raw.get(i..).unwrap_or_default();
            i += rest
                .iter()
                .position(|&c| IN_STRING[usize::from(c)])
                .unwrap_or(rest.len());
        }
        let Some(&c) = raw.get(i) else { break };
        let replace: Option<(&[u8], usize)> = match c {
            b'"' => {
                in_str = !in_str;
                None
            }
            // A backslash escapes the next byte, which is copied as is.
            b'\\' if in_str => {
                i += 1;
                None
            }
            b' ' | b'\t' | b'\n' | b'\r' if !in_str => Some((b"", 1)),
            b'<' if in_str => Some((b"\\u003c", 1)),
            b'>' if in_str => Some((b"\\u003e", 1)),
            b'&' if in_str => Some((b"\\u0026", 1)),
            0xE2 if in_str => match raw.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) => Some((b"\\u2028", 3)),
                Some([0x80, 0xA9]) => Some((b"\\u2029", 3)),
                _ => None,
            },
            _ => None,
        };
        match replace {
            Some((with, len)) => {
                out.extend_from_slice(&raw[run..i]);
                out.extend_from_slice(with);
                i += len;
                run = i;
            }
            None => i += 1,
        }
    }
    out.extend_from_slice(&raw[run..]);
}

/// The bytes `put_raw` acts on inside a string: `"`, `\\`, `<`, `>`, `&` and 0xE2 (U+2028/9's lead byte).
static IN_STRING: [bool; 256] = gojson::byte_table(b"\"\\<>&\xE2");

// ---------------------------------------------------------------------------
// IDE / system tag stripping (upstream `textutil.StripIDEContextTags`)

const SYSTEM_TAGS: &str =
    "local-command-caveat system-reminder command-name command-message command-args local-command-stdout";

fn strip_tags(text: &str) -> String {
    // Every pattern below starts with `<`.
    if !text.contains('<') {
        return text.trim().to_string();
    }
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

/// Removes `open[^>]*>.*?close` (then `[^>]*>` when `close_tail`), leftmost
/// first and non-greedy, as Go's `regexp.ReplaceAllString` does.
fn strip_pairs(text: &str, open: &str, close: &str, close_tail: bool) -> String {
    let (mut out, mut kept, mut from) = (String::new(), 0, 0);
    while let Some(start) = text[from..].find(open).map(|p| p + from) {
        let Some(gt) = text[start + open.len()..].find('>') else {
            break;
        };
        let body = start + open.len() + gt + 1;
        let Some(c) = text[body..].find(close).map(|p| p + body + close.len()) else {
            break;
        };
        let end = if close_tail {
            text[c..].find('>').map(|p| c + p + 1)
        } else {
            Some(c)
        };
        let Some(end) = end else { break };
        out.push_str(&text[kept..start]);
        (kept, from) = (end, end);
    }
    out.push_str(&text[kept..]);
    out
}

/// Removes `\A\s*<timestamp(\s[^>]*)?>[^<\n]*</timestamp\s*>`.
fn strip_leading_timestamp(s: &str) -> String {
    let b = s.as_bytes();
    let space = |i| {
        count_while(b, i, |c| {
            matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
        })
    };
    let end = (|| {
        let mut i = space(0);
        b[i..].starts_with(b"<timestamp").then_some(())?;
        i += b"<timestamp".len();
        if b.get(i) != Some(&b'>') {
            (space(i) > 0).then_some(())?;
            i += b[i..].iter().position(|&c| c == b'>')?;
        }
        i += 1;
        i += count_while(b, i, |c| c != b'<' && c != b'\n');
        b[i..].starts_with(b"</timestamp").then_some(())?;
        i += b"</timestamp".len();
        i += space(i);
        (b.get(i) == Some(&b'>')).then_some(i + 1)
    })();
    s[end.unwrap_or(0)..].to_string()
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
