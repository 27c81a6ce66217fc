//! Validation of agent-supplied identifiers: session IDs, tool-use IDs and
//! agent IDs.
//!
//! These IDs arrive from coding-agent hooks (untrusted input) and end up in
//! file names and git tree paths, e.g. `<session-id>.json` in the session
//! state directory, `tasks/<tool-use-id>/`, `checkpoints/NNN-<tool-use-id>.json`
//! and `agent-<agent-id>.jsonl` in checkpoint metadata. Validate them at the
//! boundary (hook input, before any path or ref is built from them), so that
//! an ID can never escape its directory or smuggle in special characters.
//!
//! # Upstream
//!
//! Ported from the Entire CLI (`github.com/entireio/cli`), Go package
//! `validation`, file `cmd/entire/cli/validation/validators.go`
//! (upstream commit `f446dcfc`, 2026-02-15):
//!
//! * `ValidateSessionID`: rejects empty and any `/` or `\`; nothing else.
//! * `ValidateToolUseID`, `ValidateAgentID`: empty is accepted ("optional
//!   field"); otherwise must match `^[a-zA-Z0-9_-]+$` (`pathSafeRegex`).
//! * (`ValidateAgentSessionID`, same regex but empty rejected, is not ported
//!   here.)
//!
//! Upstream callers: `checkpoint.GitStore.WriteCommitted`, `WriteTemporary`,
//! `WriteTemporaryTask`, `session.StateStore.Load/Save/Clear`,
//! `strategy.LoadSessionState/SaveSessionState`, `logging.Init`.
//!
//! # Rules
//!
//! Every kind of ID must satisfy all of:
//!
//! 1. not empty;
//! 2. at most [`MAX_LEN`] (128) bytes;
//! 3. does not start with `-` (would read as a command-line option);
//! 4. contains no `/`, `\` (path separators), `:` (drive letters, NTFS
//!    streams, refspecs), `*`, `?`, `[` (glob / pathspec magic), and no
//!    control character ([`char::is_control`]: NUL, tab, LF, CR, DEL,
//!    C1 controls, ...);
//! 5. does not contain `..` anywhere and is not `.`.
//!
//! Tool-use IDs and agent IDs must additionally consist only of ASCII
//! letters, digits, `_` and `-` (upstream's `^[a-zA-Z0-9_-]+$`). That
//! allow-list already implies rules 4 and 5.
//!
//! Session IDs otherwise accept any character, including `.`, `@`, spaces
//! and non-ASCII text, because upstream does (its own tests accept
//! `session-2026.01.25_test@123`) and agents other than Claude Code may use
//! other ID formats. Claude Code session IDs are UUIDs.
//!
//! # Where we differ from upstream
//!
//! We are never looser than upstream; every difference is stricter:
//!
//! * Session IDs: upstream only forbids empty, `/` and `\`. It accepts `..`,
//!   `.`, `:`, glob characters, control characters (newlines would corrupt
//!   line-oriented output and commit trailers), leading `-`, and any length.
//!   We reject all of those (product spec).
//! * Tool-use and agent IDs: identical character set to upstream, but
//!   upstream accepts the empty string (it treats the field as optional) and
//!   a leading `-`. Here an absent ID is modelled as `Option<&str>` by the
//!   caller, so the validators reject `""`; `-` cannot start an ID.
//! * Upstream has no length cap; ours, [`MAX_LEN`], keeps names such as
//!   `<id>.json` or `NNN-<id>.json` well below the usual 255-byte file-name
//!   limit. Real IDs are far shorter (UUID: 36 bytes; `toolu_…`: ~30).

use std::fmt;

/// Maximum length of any ID, in bytes (UTF-8).
pub const MAX_LEN: usize = 128;

/// Characters forbidden in every kind of ID (besides control characters).
const FORBIDDEN: &[char] = &['/', '\\', ':', '*', '?', '['];

/// How many characters of an over-long value are shown in error messages.
const PREVIEW_CHARS: usize = 32;

/// The kind of identifier being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// An agent session ID (Claude Code: a UUID).
    Session,
    /// A tool-use ID (Claude Code: `toolu_…`).
    ToolUse,
    /// A subagent ID.
    Agent,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Session => "session",
            IdKind::ToolUse => "tool use",
            IdKind::Agent => "agent",
        })
    }
}

/// Why an ID was rejected. The offending value is always printed escaped
/// (`{:?}`), so messages never contain raw control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// The ID is the empty string.
    #[error("invalid {kind} ID: must not be empty")]
    Empty { kind: IdKind },

    /// The ID is longer than [`MAX_LEN`] bytes. Only a prefix is printed.
    #[error("invalid {kind} ID {}: too long ({len} bytes, max {max})", preview(.value))]
    TooLong {
        kind: IdKind,
        value: String,
        len: usize,
        max: usize,
    },

    /// The ID starts with `-`.
    #[error("invalid {kind} ID {value:?}: starts with '-'")]
    LeadingDash { kind: IdKind, value: String },

    /// The ID contains a character forbidden for every kind of ID
    /// (`/ \ : * ? [` or a control character).
    #[error("invalid {kind} ID {value:?}: contains {ch:?}")]
    ForbiddenChar {
        kind: IdKind,
        value: String,
        ch: char,
    },

    /// A tool-use or agent ID contains a character outside `[A-Za-z0-9_-]`.
    #[error(
        "invalid {kind} ID {value:?}: contains {ch:?}, only ASCII letters, digits, '_' and '-' are allowed"
    )]
    NotAllowed {
        kind: IdKind,
        value: String,
        ch: char,
    },

    /// The ID contains `..` (or is `..`).
    #[error("invalid {kind} ID {value:?}: contains \"..\"")]
    DotDot { kind: IdKind, value: String },

    /// The ID is exactly `.`.
    #[error("invalid {kind} ID {value:?}: must not be \".\"")]
    Dot { kind: IdKind, value: String },
}

impl InvalidId {
    /// The kind of ID that was rejected.
    pub fn kind(&self) -> IdKind {
        match self {
            InvalidId::Empty { kind }
            | InvalidId::TooLong { kind, .. }
            | InvalidId::LeadingDash { kind, .. }
            | InvalidId::ForbiddenChar { kind, .. }
            | InvalidId::NotAllowed { kind, .. }
            | InvalidId::DotDot { kind, .. }
            | InvalidId::Dot { kind, .. } => *kind,
        }
    }
}

/// Escaped prefix of an over-long value, e.g. `"aaaa"…`.
fn preview(value: &str) -> String {
    let head: String = value.chars().take(PREVIEW_CHARS).collect();
    format!("{head:?}…")
}

/// Validates a session ID; see the module docs for the rules.
pub fn session_id(s: &str) -> Result<&str, InvalidId> {
    validate(IdKind::Session, s)
}

/// Validates a tool-use ID; see the module docs for the rules.
pub fn tool_use_id(s: &str) -> Result<&str, InvalidId> {
    validate(IdKind::ToolUse, s)
}

/// Validates an agent ID; see the module docs for the rules.
pub fn agent_id(s: &str) -> Result<&str, InvalidId> {
    validate(IdKind::Agent, s)
}

/// Validates an ID of the given kind, returning it unchanged on success.
pub fn validate(kind: IdKind, s: &str) -> Result<&str, InvalidId> {
    let value = || s.to_owned();
    if s.is_empty() {
        return Err(InvalidId::Empty { kind });
    }
    if s.len() > MAX_LEN {
        return Err(InvalidId::TooLong {
            kind,
            value: value(),
            len: s.len(),
            max: MAX_LEN,
        });
    }
    if s.starts_with('-') {
        return Err(InvalidId::LeadingDash {
            kind,
            value: value(),
        });
    }
    let allow_list = matches!(kind, IdKind::ToolUse | IdKind::Agent);
    for ch in s.chars() {
        if ch.is_control() || FORBIDDEN.contains(&ch) {
            return Err(InvalidId::ForbiddenChar {
                kind,
                value: value(),
                ch,
            });
        }
        if allow_list && !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            return Err(InvalidId::NotAllowed {
                kind,
                value: value(),
                ch,
            });
        }
    }
    if s.contains("..") {
        return Err(InvalidId::DotDot {
            kind,
            value: value(),
        });
    }
    if s == "." {
        return Err(InvalidId::Dot {
            kind,
            value: value(),
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    const ALL: [IdKind; 3] = [IdKind::Session, IdKind::ToolUse, IdKind::Agent];

    /// Values accepted for every kind.
    const ACCEPT_ALL: &[&str] = &[
        // Real Claude Code session IDs (UUIDs).
        "f736da47-b2ca-4f86-bb32-a1bbe582e464",
        "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        // Upstream's date-prefixed session ID.
        "2026-01-25-f736da47-b2ca-4f86-bb32-a1bbe582e464",
        // Real tool-use IDs.
        "toolu_01ABCdefGHIjklMNOpqrSTUv",
        "toolu_01XFDUDYJgAACzvnptvVoYEL",
        "toolu_abc123def456",
        "tool_use-id-123",
        "agent-test-123",
        "abc123DEF456",
        "a",
        "_",
        "a-",
        "x_-_y",
    ];

    /// Values accepted as session IDs only (outside `[A-Za-z0-9_-]`).
    const ACCEPT_SESSION_ONLY: &[&str] = &[
        "session-2026.01.25_test@123",
        "a.b",
        ".hidden",
        "trailing.",
        "with space",
        "ünïcödé-セッション",
        "emoji-🦀",
        "a=b,c+d~e^f{g}h]i",
    ];

    /// Values rejected for every kind: `Some(ch)` = forbidden character
    /// `ch`, `None` = leading `-`.
    const REJECT_ALL: &[(&str, Option<char>)] = &[
        ("session/123", Some('/')),
        ("/etc/passwd", Some('/')),
        ("a/", Some('/')),
        ("session\\123", Some('\\')),
        ("C\\Windows", Some('\\')),
        ("C:", Some(':')),
        ("a:b", Some(':')),
        ("a*", Some('*')),
        ("a?b", Some('?')),
        ("[abc]", Some('[')),
        ("a\0b", Some('\0')),
        ("\0", Some('\0')),
        ("a\nb", Some('\n')),
        ("a\n", Some('\n')),
        ("a\rb", Some('\r')),
        ("a\tb", Some('\t')),
        ("a\x1b[31m", Some('\x1b')),
        ("a\x7f", Some('\x7f')),
        ("a\u{85}b", Some('\u{85}')),
        ("-", None),
        ("-rf", None),
        ("--help", None),
        ("-../x", None),
    ];

    #[test]
    fn accepted_everywhere() {
        for &kind in &ALL {
            for &v in ACCEPT_ALL {
                assert_eq!(validate(kind, v), Ok(v), "{kind} ID {v:?}");
            }
        }
        let max = "a".repeat(MAX_LEN);
        for &kind in &ALL {
            assert_eq!(validate(kind, &max), Ok(max.as_str()));
        }
    }

    #[test]
    fn session_only() {
        for &v in ACCEPT_SESSION_ONLY {
            assert_eq!(session_id(v), Ok(v), "{v:?}");
            for kind in [IdKind::ToolUse, IdKind::Agent] {
                assert!(
                    matches!(validate(kind, v), Err(InvalidId::NotAllowed { .. })),
                    "{kind} ID {v:?}: {:?}",
                    validate(kind, v)
                );
            }
        }
    }

    #[test]
    fn rejected_everywhere() {
        for &kind in &ALL {
            for &(v, ch) in REJECT_ALL {
                let value = v.to_owned();
                let expected = match ch {
                    Some(ch) => InvalidId::ForbiddenChar { kind, value, ch },
                    None => InvalidId::LeadingDash { kind, value },
                };
                assert_eq!(validate(kind, v), Err(expected), "{kind} ID {v:?}");
            }
        }
    }

    #[test]
    fn empty() {
        for &kind in &ALL {
            assert_eq!(validate(kind, ""), Err(InvalidId::Empty { kind }));
        }
    }

    #[test]
    fn too_long() {
        let long = "a".repeat(MAX_LEN + 1);
        // Multi-byte: 43 chars * 3 bytes = 129 bytes > MAX_LEN.
        let long_unicode = "セ".repeat(43);
        for &kind in &ALL {
            for v in [&long, &long_unicode] {
                assert_eq!(
                    validate(kind, v),
                    Err(InvalidId::TooLong {
                        kind,
                        value: v.clone(),
                        len: v.len(),
                        max: MAX_LEN
                    })
                );
            }
        }
    }

    #[test]
    fn dots() {
        for v in ["..", "a..b", "..a", "a..", "...", "x/../y"] {
            let err = session_id(v).unwrap_err();
            if v.contains('/') {
                assert!(matches!(err, InvalidId::ForbiddenChar { ch: '/', .. }));
            } else {
                assert_eq!(
                    err,
                    InvalidId::DotDot {
                        kind: IdKind::Session,
                        value: v.into()
                    }
                );
            }
        }
        assert_eq!(
            session_id("."),
            Err(InvalidId::Dot {
                kind: IdKind::Session,
                value: ".".into()
            })
        );
        for v in [".", "..", "a..b", "tool.use.id"] {
            assert!(matches!(
                tool_use_id(v),
                Err(InvalidId::NotAllowed { ch: '.', .. })
            ));
            assert!(matches!(
                agent_id(v),
                Err(InvalidId::NotAllowed { ch: '.', .. })
            ));
        }
    }

    #[test]
    fn upstream_tool_use_cases() {
        // From upstream validators_test.go (TestValidateToolUseID), minus
        // the empty string, which upstream accepts and we reject.
        for v in ["tool use id", "tool@use!id", "../../../etc/passwd"] {
            assert!(tool_use_id(v).is_err(), "{v:?}");
            assert!(agent_id(v).is_err(), "{v:?}");
        }
        assert!(session_id("../../etc/passwd").is_err());
        assert!(session_id("C:\\Windows\\System32").is_err());
    }

    #[test]
    fn messages() {
        let cases: &[(Result<&str, InvalidId>, &str)] = &[
            (
                session_id("a/b"),
                r#"invalid session ID "a/b": contains '/'"#,
            ),
            (
                session_id("a\nb"),
                r#"invalid session ID "a\nb": contains '\n'"#,
            ),
            (session_id(""), "invalid session ID: must not be empty"),
            (
                session_id("-x"),
                r#"invalid session ID "-x": starts with '-'"#,
            ),
            (
                session_id("a..b"),
                r#"invalid session ID "a..b": contains "..""#,
            ),
            (
                session_id("."),
                r#"invalid session ID ".": must not be ".""#,
            ),
            (
                tool_use_id("a b"),
                r#"invalid tool use ID "a b": contains ' ', only ASCII letters, digits, '_' and '-' are allowed"#,
            ),
            (agent_id("a\0"), r#"invalid agent ID "a\0": contains '\0'"#),
        ];
        for (res, want) in cases {
            assert_eq!(res.as_ref().unwrap_err().to_string(), *want);
        }
        let long = format!("{}\n", "a".repeat(MAX_LEN));
        let msg = session_id(&long).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "invalid session ID \"{}\"…: too long (129 bytes, max 128)",
                "a".repeat(PREVIEW_CHARS)
            )
        );
        assert_eq!(session_id("a/b").unwrap_err().kind(), IdKind::Session);
    }

    fn check_error(kind: IdKind, e: &InvalidId) {
        assert_eq!(e.kind(), kind);
        let msg = e.to_string();
        assert!(!msg.chars().any(char::is_control), "raw control in {msg:?}");
        assert!(msg.starts_with("invalid "), "{msg:?}");
        assert!(!msg.ends_with('.'), "{msg:?}");
    }

    fn check_accepted(kind: IdKind, s: &str) {
        assert!(!s.is_empty() && s.len() <= MAX_LEN);
        assert!(!s.starts_with('-'));
        assert!(!s.chars().any(|c| c.is_control() || FORBIDDEN.contains(&c)));
        assert!(!s.contains(".."));
        assert!(s != "." && s != "..");
        if kind != IdKind::Session {
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
        // A single, normal path component.
        let comps: Vec<_> = Path::new(s).components().collect();
        assert_eq!(comps, vec![Component::Normal(s.as_ref())], "{s:?}");
    }

    fn check(s: &str) {
        for &kind in &ALL {
            match validate(kind, s) {
                Ok(v) => {
                    assert_eq!(v, s);
                    check_accepted(kind, s);
                }
                Err(e) => check_error(kind, &e),
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings(s in any::<String>()) {
            check(&s);
        }

        #[test]
        fn id_like_strings(s in "[-_.a-zA-Z0-9:/\\\\*?\\[\\]\\x00-\\x1f\\x7f\\u{80}-\\u{9f} é🦀]{0,140}") {
            check(&s);
        }

        #[test]
        fn allow_list_accepted(s in "[a-zA-Z0-9_][a-zA-Z0-9_-]{0,127}") {
            for &kind in &ALL {
                prop_assert_eq!(validate(kind, &s), Ok(s.as_str()));
            }
        }
    }
}
