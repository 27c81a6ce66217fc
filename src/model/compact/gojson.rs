//! JSON scanning and decoding with Go `encoding/json` semantics, over raw bytes: a line is validated once by
//! serde_json without decoding (`document`), so bad UTF-8 and lone surrogates pass through as they do in Go;
//! below that, values are split structurally (strings and brackets only), which is exact on validated input and
//! bounded and panic-free on any other. Decoding turns bad UTF-8 and lone surrogates into U+FFFD and borrows
//! when nothing needs decoding. Pure functions; malformed input gives `None`/`Err(())`, never a panic.

use std::borrow::Cow;

use serde::de::IgnoredAny;

/// Object members in order, duplicates kept.
pub(super) type Members<'a> = Vec<(Cow<'a, str>, &'a [u8])>;

pub(super) fn count_while(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.iter().skip(i).take_while(|&&c| pred(c)).count()
}

pub(super) fn skip_ws(b: &[u8], i: usize) -> usize {
    i + count_while(b, i, |c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The single JSON value filling `line` (surrounding whitespace allowed),
/// validated by serde_json without decoding (bad UTF-8 and lone surrogates
/// pass, as in Go). The only validating pass: everything below only splits.
pub(super) fn document(line: &[u8]) -> Option<&[u8]> {
    let start = skip_ws(line, 0);
    let rest = &line[start..];
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<IgnoredAny>();
    values.next()?.ok()?;
    let end = start + values.byte_offset();
    (skip_ws(line, end) == line.len()).then(|| &line[start..end])
}

/// End of the value starting at `i`, found structurally (strings, brackets)
/// without validating: exact for validated input; for other input some
/// position after `i` or `None`, never a panic or a loop.
pub(super) fn value_end(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match *b.get(j)? {
            b'"' => j = string_end(b, j)?,
            b'{' | b'[' => {
                depth += 1;
                j += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                j += 1;
            }
            _ if depth == 0 => {
                let n = count_while(b, j, |c| {
                    !matches!(c, b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r')
                });
                return (n > 0).then_some(j + n);
            }
            _ => {
                j += b[j..]
                    .iter()
                    .position(|&c| NESTING[usize::from(c)])
                    .unwrap_or(b.len() - j)
            }
        }
        if depth == 0 {
            return Some(j);
        }
    }
}

/// The bytes that start or end a value inside a container: `"{[}]`.
static NESTING: [bool; 256] = byte_table(b"\"{[}]");

/// A lookup table marking `bytes` (built at compile time).
pub(super) const fn byte_table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut k = 0;
    while k < bytes.len() {
        t[bytes[k] as usize] = true;
        k += 1;
    }
    t
}

/// End of the string literal whose quote is at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// Raw keys (empty for arrays) and values of a `{…}` or `[…]`, split
/// structurally (see `value_end`); `:` and `,` are not checked.
pub(super) fn children(v: &[u8], open: u8) -> Option<Vec<(&[u8], &[u8])>> {
    (v.first() == Some(&open)).then_some(())?;
    let (mut out, mut i) = (Vec::new(), skip_ws(v, 1));
    // `open + 2` is the matching `}` or `]`.
    while v.get(i).is_some_and(|&c| c != open + 2) {
        let (mut key, mut start) = (&[][..], i);
        if open == b'{' {
            (v[i] == b'"').then_some(())?;
            let key_end = string_end(v, i)?;
            (key, start) = (&v[i..key_end], skip_ws(v, skip_ws(v, key_end) + 1));
        }
        let end = value_end(v, start)?;
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
pub(super) fn get<'a>(obj: &[(Cow<'_, str>, &'a [u8])], key: &str) -> Option<&'a [u8]> {
    obj.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Go `json.Unmarshal` into a `string`, errors ignored: non-strings give "".
pub(super) fn go_string(raw: Option<&[u8]>) -> Cow<'_, str> {
    raw.filter(|r| r.first() == Some(&b'"'))
        .map_or(Cow::Borrowed(""), decode_str)
}

/// The serde_json encoding of what `raw` decodes to as a Go string (non-strings: `""`). A literal with no
/// `\u`/`\/` escape that is valid UTF-8 already IS that encoding (serde writes `\"`, `\\`, `\n`, `\r`,
/// `\t`, `\b`, `\f` as the input must spell them, and a valid literal holds no raw control byte), so it is
/// copied instead of decoded and encoded again: tool outputs are most of a transcript's bytes.
pub(super) fn json_string(raw: Option<&[u8]>) -> Vec<u8> {
    let Some(lit) = raw.filter(|r| r.first() == Some(&b'"')) else {
        return b"\"\"".to_vec();
    };
    let mut i = 0;
    let mut verbatim = true;
    while let Some(at) = memchr::memchr(b'\\', &lit[i..]) {
        let next = lit.get(i + at + 1).copied().unwrap_or(b'u');
        if matches!(next, b'u' | b'/') {
            verbatim = false;
            break;
        }
        i += at + 2;
        if i >= lit.len() {
            break;
        }
    }
    if verbatim && std::str::from_utf8(lit).is_ok() {
        return lit.to_vec();
    }
    serde_json::to_vec(&*decode_str(lit)).unwrap_or_default()
}

/// Go decoding of a `string` struct field: absent/`null` is "", else a string.
pub(super) fn str_field(obj: &Members, key: &str) -> Result<String, ()> {
    match get(obj, key) {
        None | Some(b"null") => Ok(String::new()),
        Some(v) if v[0] == b'"' => Ok(decode_str(v).into_owned()),
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
/// become U+FFFD, as in Go. Borrows when there is nothing to decode.
pub(super) fn decode_str(lit: &[u8]) -> Cow<'_, str> {
    let s = lit.get(1..lit.len().saturating_sub(1)).unwrap_or_default();
    if memchr::memchr(b'\\', s).is_none() {
        if let Ok(plain) = std::str::from_utf8(s) {
            return Cow::Borrowed(plain);
        }
    }
    let hex = |i: usize| u32::from_str_radix(std::str::from_utf8(s.get(i..i + 4)?).ok()?, 16).ok();
    let (mut out, mut i) = (String::with_capacity(s.len()), 0);
    while i < s.len() {
        let run = memchr::memchr(b'\\', &s[i..]).unwrap_or(s.len() - i);
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
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reencoded(lit: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&*decode_str(lit)).expect("encode")
    }

    #[test]
    fn json_string_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (br#""plain""#, br#""plain""#),
            (br#""a\nb\t\"q\" \\ \r\b\f""#, br#""a\nb\t\"q\" \\ \r\b\f""#),
            (br#""slash \/ goes""#, br#""slash / goes""#),
            (br#""\u0041\u00e9""#, "\"A\u{e9}\"".as_bytes()),
            (br#""\u001F""#, br#""\u001f""#),
            (br#""\\u0041""#, br#""\\u0041""#),
            (b"null", br#""""#),
            (b"12", br#""""#),
        ];
        for (lit, want) in cases {
            let got = json_string(Some(lit));
            assert_eq!(got, want.to_vec(), "{}", String::from_utf8_lossy(lit));
            if lit.first() == Some(&b'"') {
                assert_eq!(got, reencoded(lit), "same as decoding and encoding again");
            }
        }
        assert_eq!(json_string(None), br#""""#.to_vec());
    }

    #[test]
    fn json_string_of_bad_utf8_goes_through_decoding() {
        let lit = b"\"a\xffb\"";
        assert_eq!(json_string(Some(lit)), reencoded(lit));
    }

    proptest! {
        #[test]
        fn json_string_equals_decode_then_encode(
            s in any::<String>(),
            escapes in prop::collection::vec(0usize..9, 0..6),
        ) {
            // A valid literal: serde's encoding of `s`, with escapes spliced in between characters.
            let mut lit = serde_json::to_vec(&s).expect("encode");
            let spellings: [&[u8]; 9] = [
                br"\/", br"\u0041", br"\n", br"\\", br#"\""#, br"\u00e9", br"\t", br"\uD83D\uDE00", br"\u001F",
            ];
            for (k, e) in escapes.iter().enumerate() {
                let at = 1 + (k * 7) % (lit.len() - 1);
                let prefix = [&lit[..at], &b"\""[..]].concat();
                if serde_json::from_slice::<String>(&prefix).is_ok() {
                    lit.splice(at..at, spellings[*e].iter().copied());
                }
            }
            prop_assert_eq!(json_string(Some(&lit)), reencoded(&lit));
        }
    }
}
