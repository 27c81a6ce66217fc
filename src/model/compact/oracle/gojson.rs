//! JSON scanning and decoding with Go `encoding/json` semantics, over raw bytes: values are validated by
//! serde_json without decoding, so bad UTF-8 and lone surrogates pass through as they do in Go; decoding turns
//! them into U+FFFD. Pure functions; malformed input gives `None`/`Err(())`, never a panic.

use serde::de::IgnoredAny;

/// Object members in order, duplicates kept.
pub(super) type Members<'a> = Vec<(String, &'a [u8])>;

pub(super) fn count_while(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.iter().skip(i).take_while(|&&c| pred(c)).count()
}

pub(super) fn skip_ws(b: &[u8], i: usize) -> usize {
    i + count_while(b, i, |c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// End of the JSON value starting at `i` (after optional whitespace), validated
/// by serde_json without decoding (bad UTF-8 and lone surrogates pass, as in Go).
pub(super) fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?;
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<IgnoredAny>();
    values.next()?.ok()?;
    Some(i + values.byte_offset())
}

/// The single JSON value filling `line` (surrounding whitespace allowed).
pub(super) fn document(line: &[u8]) -> Option<&[u8]> {
    let start = skip_ws(line, 0);
    let end = skip_value(line, start)?;
    (skip_ws(line, end) == line.len()).then(|| &line[start..end])
}

/// Raw keys (empty for arrays) and values of a validated `{…}` or `[…]`; `:`
/// and `,` are not re-checked.
pub(super) fn children(v: &[u8], open: u8) -> Option<Vec<(&[u8], &[u8])>> {
    (v.first() == Some(&open)).then_some(())?;
    let (mut out, mut i) = (Vec::new(), skip_ws(v, 1));
    // `open + 2` is the matching `}` or `]`.
    while v.get(i).is_some_and(|&c| c != open + 2) {
        let (mut key, mut start) = (&[][..], i);
        if open == b'{' {
            let key_end = skip_value(v, i)?;
            (key, start) = (&v[i..key_end], skip_ws(v, skip_ws(v, key_end) + 1));
        }
        let end = skip_value(v, start)?;
        out.push((key, &v[start..end]));
        i = skip_ws(v, end);
        i = skip_ws(v, i + usize::from(v.get(i) == Some(&b',')));
    }
    Some(out)
}

/// Object members in order, duplicates kept; `null` gives none (Go nil map).
pub(super) fn members(v: &[u8]) -> Option<Members<'_>> {
    if v == b"null" {
        return Some(Vec::new());
    }
    let kids = children(v, b'{')?;
    Some(kids.into_iter().map(|(k, v)| (decode_str(k), v)).collect())
}

pub(super) fn elements(v: &[u8]) -> Option<Vec<&[u8]>> {
    Some(children(v, b'[')?.into_iter().map(|(_, v)| v).collect())
}

/// Last value for `key` (Go map semantics: later duplicates win).
pub(super) fn get<'a>(obj: &[(String, &'a [u8])], key: &str) -> Option<&'a [u8]> {
    obj.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Go `json.Unmarshal` into a `string`, errors ignored: non-strings give "".
pub(super) fn go_string(raw: Option<&[u8]>) -> String {
    raw.filter(|r| r.first() == Some(&b'"'))
        .map(decode_str)
        .unwrap_or_default()
}

/// Go decoding of a `string` struct field: absent/`null` is "", else a string.
pub(super) fn str_field(obj: &Members, key: &str) -> Result<String, ()> {
    match get(obj, key) {
        None | Some(b"null") => Ok(String::new()),
        Some(v) if v[0] == b'"' => Ok(decode_str(v)),
        Some(_) => Err(()),
    }
}

/// Go decoding of an `int` struct field: absent/`null` is 0, else an integer.
pub(super) fn int_field(obj: &Members, key: &str) -> Result<i64, ()> {
    match get(obj, key) {
        None | Some(b"null") => Ok(0),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(()),
    }
}

/// Decodes a validated string literal; bad UTF-8 and unpaired surrogates
/// become U+FFFD, as in Go.
pub(super) fn decode_str(lit: &[u8]) -> String {
    let s = lit.get(1..lit.len().saturating_sub(1)).unwrap_or_default();
    let hex = |i: usize| u32::from_str_radix(std::str::from_utf8(s.get(i..i + 4)?).ok()?, 16).ok();
    let (mut out, mut i) = (String::with_capacity(s.len()), 0);
    while i < s.len() {
        let run = count_while(s, i, |c| c != b'\\');
        push_lossy(&mut out, &s[i..i + run]);
        i += run;
        let Some(&c) = s.get(i + 1) else { break };
        i += 2;
        out.push(match c {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex(i).unwrap_or(0xFFFD);
                i += 4;
                let lo = hex(i + 2)
                    .filter(|lo| s[i..].starts_with(b"\\u") && (0xDC00..0xE000).contains(lo));
                match lo.filter(|_| (0xD800..0xDC00).contains(&hi)) {
                    Some(lo) => {
                        i += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    }
                    None => char::from_u32(hi),
                }
                .unwrap_or('\u{FFFD}')
            }
            other => char::from(other),
        });
    }
    out
}

/// Appends bytes as UTF-8, one U+FFFD per invalid byte (Go's decoding).
pub(super) fn push_lossy(out: &mut String, mut bytes: &[u8]) {
    while let Err(e) = std::str::from_utf8(bytes) {
        let (good, bad) = bytes.split_at(e.valid_up_to());
        out.push_str(std::str::from_utf8(good).unwrap_or_default());
        out.push('\u{FFFD}');
        bytes = &bad[1..];
    }
    out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
}
