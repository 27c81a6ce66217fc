//! The JSON metadata model: root `metadata.json` (checkpoint summary) and `<n>/metadata.json` (session).
//!
//! Invariants:
//! - Both are kept as ordered JSON objects (`serde_json` with `preserve_order`), so every field we do not
//!   model — legacy keys such as `context`, `transcript_path`, `migration_source_commit` — survives a rewrite
//!   untouched and in place. Typed accessors read and set the fields we need.
//! - Output is byte-compatible with the Go CLI's `MarshalIndentWithNewline`: two-space indent, a trailing
//!   newline, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\u003c`-style sequences (Go's HTML-safe default).
//!
//! Failure modes: [`MetadataError`] names the file that is not a JSON object or lacks a required field.

use serde_json::{Map, Value};

/// Errors reading metadata.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: expected a JSON object")]
    NotObject { what: String },
    #[error("{what}: missing or empty string field {field:?}")]
    Missing { what: String, field: &'static str },
    #[error("{what}: {source}")]
    InvalidId {
        what: String,
        #[source]
        source: crate::model::validate::InvalidId,
    },
    #[error("{what}: field {field:?} contains a control character ({value:?})")]
    ControlChar {
        what: String,
        field: &'static str,
        value: String,
    },
}

/// Fields of a session's `metadata.json` that end up in commit-message trailers (besides `session_id`).
const TRAILER_FIELDS: [&str; 2] = ["strategy", "agent"];

/// Parse `bytes` as a JSON object; `what` names the file in errors.
pub fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, MetadataError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(MetadataError::NotObject { what: what.into() }),
        Err(source) => Err(MetadataError::Json {
            what: what.into(),
            source,
        }),
    }
}

/// Serialize like Go's `json.MarshalIndent(v, "", "  ")` plus a trailing newline.
pub fn to_go_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter::default());
    serde::Serialize::serialize(value, &mut ser)
        .expect("serializing a Value into memory cannot fail");
    out.push(b'\n');
    out
}

/// A copy of `value` with all object keys sorted, recursively (Go's map marshalling order).
pub fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

#[derive(Default)]
struct GoFormatter<'a> {
    pretty: serde_json::ser::PrettyFormatter<'a>,
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(fn $name<W: ?Sized + std::io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
            self.pretty.$name(w $(, $arg)*)
        })*
    };
}

impl serde_json::ser::Formatter for GoFormatter<'_> {
    delegate!(
        begin_array(),
        end_array(),
        begin_array_value(first: bool),
        end_array_value(),
        begin_object(),
        end_object(),
        begin_object_key(first: bool),
        begin_object_value(),
        end_object_value(),
    );

    /// Go's `encoding/json` float format: shortest round-trip digits, plain notation for 1e-6 <= |f| < 1e21,
    /// otherwise exponent notation with an explicit sign (`1e+21`, `1e-7`).
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        w.write_all(go_float(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // Fast path: none of the escaped characters (0xE2 leads U+2028 and U+2029 in UTF-8).
        if !fragment
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
        {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    let e = format!("{f:e}");
    match e.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => e,
    }
}

/// A string field of an object, if present and a string.
pub fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// A session's `metadata.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMetadata(pub Map<String, Value>);

impl SessionMetadata {
    /// Parse input from outside: require a valid `session_id` (the upstream rules of
    /// [`crate::model::validate`]) and no control characters in the fields that become commit trailers, so
    /// nothing from a session can forge a trailer or reach a path unvalidated.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, MetadataError> {
        let m = parse_object(bytes, what)?;
        let Some(sid) = str_field(&m, "session_id").filter(|s| !s.is_empty()) else {
            return Err(MetadataError::Missing {
                what: what.into(),
                field: "session_id",
            });
        };
        crate::model::validate::session_id(sid).map_err(|source| MetadataError::InvalidId {
            what: what.into(),
            source,
        })?;
        for field in TRAILER_FIELDS {
            if let Some(v) = str_field(&m, field).filter(|v| v.chars().any(char::is_control)) {
                return Err(MetadataError::ControlChar {
                    what: what.into(),
                    field,
                    value: v.into(),
                });
            }
        }
        Ok(SessionMetadata(m))
    }

    pub fn session_id(&self) -> &str {
        str_field(&self.0, "session_id").unwrap_or_default()
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        str_field(&self.0, key)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        to_go_json(&Value::Object(self.0.clone()))
    }
}

/// The root `metadata.json` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RootMetadata(pub Map<String, Value>);

impl RootMetadata {
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, MetadataError> {
        parse_object(bytes, what).map(RootMetadata)
    }

    pub fn checkpoint_id(&self) -> Option<&str> {
        str_field(&self.0, "checkpoint_id")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        to_go_json(&Value::Object(self.0.clone()))
    }
}

/// Sum the integer fields of several `token_usage`-like objects (nested objects are summed recursively).
pub fn sum_usage<'a>(items: impl IntoIterator<Item = &'a Value>) -> Option<Value> {
    let mut acc: Map<String, Value> = Map::new();
    let mut any = false;
    for item in items {
        let Value::Object(m) = item else { continue };
        any = true;
        for (k, v) in m {
            let merged = match (acc.get(k), v) {
                (Some(Value::Number(a)), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                    (Some(a), Some(b)) => Value::from(a + b),
                    _ => Value::from(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
                },
                (Some(a @ Value::Object(_)), b @ Value::Object(_)) => {
                    sum_usage([a, b]).expect("two objects sum to an object")
                }
                (None, v) => v.clone(),
                (Some(a), _) => a.clone(),
            };
            acc.insert(k.clone(), merged);
        }
    }
    any.then_some(Value::Object(acc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_formatting_table() {
        let cases = [
            (json!({}), "{}\n"),
            (json!([]), "[]\n"),
            (json!({"a": 1}), "{\n  \"a\": 1\n}\n"),
            (json!({"a": []}), "{\n  \"a\": []\n}\n"),
            (
                json!({"a": [1, 2]}),
                "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n",
            ),
            (
                json!({"h": "<b>&</b>"}),
                "{\n  \"h\": \"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\"\n}\n",
            ),
            (
                json!({"q": "a\"b\\c\nd"}),
                "{\n  \"q\": \"a\\\"b\\\\c\\nd\"\n}\n",
            ),
            (json!({"u": "\u{2028}x"}), "{\n  \"u\": \"\\u2028x\"\n}\n"),
            (json!([1.0, 0.5, 1e21, 1e-7, 1.5e-7, 123456.789, -2.5e300, 1e-6]), "[\n  1,\n  0.5,\n  1e+21,\n  1e-7,\n  1.5e-7,\n  123456.789,\n  -2.5e+300,\n  0.000001\n]\n"),
        ];
        for (value, want) in cases {
            assert_eq!(
                String::from_utf8(to_go_json(&value)).expect("utf-8"),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_order_survive() {
        let input = b"{\n  \"zeta\": 1,\n  \"session_id\": \"s\",\n  \"transcript_path\": \"x\",\n  \"alpha\": {\"b\": 1, \"a\": 2}\n}\n";
        let m = SessionMetadata::parse(input, "0/metadata.json").expect("valid");
        let out = String::from_utf8(m.to_bytes()).expect("utf-8");
        assert_eq!(
            out,
            "{\n  \"zeta\": 1,\n  \"session_id\": \"s\",\n  \"transcript_path\": \"x\",\n  \"alpha\": {\n    \"b\": 1,\n    \"a\": 2\n  }\n}\n"
        );
    }

    #[test]
    fn session_id_required() {
        for bad in [
            &b"{}"[..],
            b"{\"session_id\": \"\"}",
            b"{\"session_id\": 3}",
            b"[]",
            b"nope",
        ] {
            assert!(
                SessionMetadata::parse(bad, "m.json").is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn hostile_session_fields_rejected() {
        for bad in [
            r#"{"session_id": "s\nEntire-Checkpoint: 0123456789ab"}"#,
            r#"{"session_id": "s\u0000x"}"#,
            r#"{"session_id": "a/b"}"#,
            r#"{"session_id": "a\\b"}"#,
            r#"{"session_id": ".."}"#,
            r#"{"session_id": "a:b"}"#,
            r#"{"session_id": "a*"}"#,
            r#"{"session_id": "-rf"}"#,
            r#"{"session_id": "ok", "agent": "x\nSigned-off-by: m"}"#,
            r#"{"session_id": "ok", "strategy": "x\ry"}"#,
        ] {
            let err = SessionMetadata::parse(bad.as_bytes(), "m.json").expect_err(bad);
            assert!(err.to_string().starts_with("m.json: "), "{err}");
        }
        let ok = SessionMetadata::parse(
            br#"{"session_id": "2026-01-25_test@123", "agent": "Claude Code"}"#,
            "m.json",
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    proptest::proptest! {
        /// Whatever the input, a parsed session can never put a line break into a trailer.
        #[test]
        fn parsed_sessions_never_carry_line_breaks(sid in ".{0,40}", agent in ".{0,20}") {
            let json = serde_json::json!({"session_id": sid, "agent": agent}).to_string();
            if let Ok(m) = SessionMetadata::parse(json.as_bytes(), "m.json") {
                proptest::prop_assert!(!m.session_id().contains(['\n', '\r', '\0']));
                proptest::prop_assert!(!m.get_str("agent").unwrap_or("").contains(['\n', '\r']));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = SessionMetadata::parse(&bytes, "m.json");
            let _ = RootMetadata::parse(&bytes, "m.json");
        }
    }

    #[test]
    fn sorted_and_summed() {
        let v = sorted_keys(&json!({"b": {"d": 1, "c": 2}, "a": [{"z": 1, "y": 2}]}));
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"a":[{"y":2,"z":1}],"b":{"c":2,"d":1}}"#
        );
        let total = sum_usage([
            &json!({"input_tokens": 1, "sub": {"x": 2}}),
            &json!({"input_tokens": 2, "output_tokens": 5, "sub": {"x": 3}}),
        ]);
        assert_eq!(
            total,
            Some(json!({"input_tokens": 3, "sub": {"x": 5}, "output_tokens": 5}))
        );
    }
}
