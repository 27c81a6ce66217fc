//! Tests for the redaction rules. Secret-shaped samples are assembled at run
//! time (`concat`, `repeat`) so that no scanner mistakes this file for a leak.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

/// 40 base62 characters with digits and both cases.
fn mixed(n: usize) -> String {
    "a1B2c3D4e5F6g7H8i9J0".chars().cycle().take(n).collect()
}

fn gh() -> String {
    format!("ghp_{}", mixed(36))
}

fn aws_id() -> String {
    ["AKIA", "IOSFODNN7", "EXAMPLE"].concat()
}

fn aws_secret() -> String {
    ["wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY"].concat()
}

fn jwt() -> String {
    [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0",
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ]
    .concat()
}

fn pem(kind: &str) -> String {
    let body = "MIIEowIBAAKCAQEA7bq98W0Lk3mQ9f2FQZc1Xy8v0s9d8f7g6h5j4k3l2m1n0b9v8c7x6z5\n\
                a4s3d2f1g0h9j8k7l6m5n4b3v2c1x0z9a8s7d6f5g4h3j2k1l0==";
    format!("-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----")
}

/// (rule, input, expected) for every rule, on free text.
fn rule_cases() -> Vec<(&'static str, String, String)> {
    let mut cases = key_and_cloud_cases();
    cases.extend(token_cases());
    cases
}

fn key_and_cloud_cases() -> Vec<(&'static str, String, String)> {
    let r = REPLACEMENT;
    vec![
        (
            "private_key",
            format!("key:\n{}\nend", pem("RSA ")),
            format!("key:\n{r}\nend"),
        ),
        ("private_key", pem("EC "), r.to_owned()),
        ("private_key", pem("OPENSSH "), r.to_owned()),
        ("private_key", pem(""), r.to_owned()),
        (
            "private_key",
            pem("PGP ").replace("KEY-----", "KEY BLOCK-----"),
            r.to_owned(),
        ),
        (
            "private_key_truncated",
            format!(
                "$ head -3 id_rsa\n{}\n(truncated)",
                pem("RSA ").split("\n-----END").next().unwrap_or("")
            ),
            format!("$ head -3 id_rsa\n{r}\n(truncated)"),
        ),
        (
            "aws_access_key_id",
            format!("id={} ok", aws_id()),
            format!("id={r} ok"),
        ),
        (
            "aws_access_key_id",
            ["ASIA", "Y34FZKBOKMUTVV7A"].concat(),
            r.to_owned(),
        ),
        (
            "aws_secret_access_key",
            format!("aws_secret_access_key = {}\n", aws_secret()),
            format!("aws_secret_access_key = {r}\n"),
        ),
        (
            "aws_secret_access_key",
            format!("export AWS_SECRET_ACCESS_KEY={}", aws_secret()),
            format!("export AWS_SECRET_ACCESS_KEY={r}"),
        ),
        (
            "aws_secret_access_key",
            format!("\"SecretAccessKey\": \"{}\",", aws_secret()),
            format!("\"SecretAccessKey\": \"{r}\","),
        ),
    ]
}

fn token_cases() -> Vec<(&'static str, String, String)> {
    let r = REPLACEMENT;
    vec![
        (
            "github_token",
            format!("token {} x", gh()),
            format!("token {r} x"),
        ),
        ("github_token", format!("gho_{}", mixed(36)), r.to_owned()),
        ("github_token", format!("ghs_{}", mixed(36)), r.to_owned()),
        ("github_token", format!("ghu_{}", mixed(36)), r.to_owned()),
        ("github_token", format!("ghr_{}", mixed(36)), r.to_owned()),
        (
            "github_pat",
            format!("github_pat_11{}_{}", mixed(20), mixed(59)),
            r.to_owned(),
        ),
        (
            "gitlab_pat",
            format!("glpat-{}.", mixed(20)),
            format!("{r}."),
        ),
        (
            "slack_token",
            format!("xoxb-{}-{}", "123456789012", mixed(24)),
            r.to_owned(),
        ),
        ("slack_token", format!("xoxp-{}", mixed(30)), r.to_owned()),
        (
            "stripe_key",
            format!("sk_{}_{}", "live", mixed(24)),
            r.to_owned(),
        ),
        (
            "stripe_key",
            format!("rk_{}_{}", "live", mixed(24)),
            r.to_owned(),
        ),
        (
            "google_api_key",
            format!("key={}&q=1", ["AIza", &mixed(35)].concat()),
            format!("key={r}&q=1"),
        ),
        (
            "anthropic_key",
            format!("sk-ant-api03-{}AA", mixed(93)),
            r.to_owned(),
        ),
        (
            "openai_key",
            format!("OPENAI_API_KEY=sk-{}", mixed(48)),
            format!("OPENAI_API_KEY={r}"),
        ),
        (
            "openai_key",
            format!("sk-proj-{}", mixed(120)),
            r.to_owned(),
        ),
        (
            "npm_token",
            format!("//registry/:_authToken=npm_{}", mixed(36)),
            format!("//registry/:_authToken={r}"),
        ),
        (
            "jwt",
            format!("cookie: s={}; path=/", jwt()),
            format!("cookie: s={r}; path=/"),
        ),
        (
            "bearer",
            format!("curl -H 'Authorization: Bearer {}' https://x", mixed(32)),
            format!("curl -H 'Authorization: Bearer {r}' https://x"),
        ),
        (
            "bearer",
            format!("authorization=bearer {}==", mixed(20)),
            format!("authorization=bearer {r}"),
        ),
    ]
}

#[test]
fn every_rule_redacts_its_samples() {
    let cases = rule_cases();
    for name in rule_names() {
        assert!(
            cases.iter().any(|(n, _, _)| *n == name),
            "rule {name} has no sample"
        );
    }
    for (name, input, expected) in cases {
        assert_eq!(redact_text(&input), expected, "rule {name}");
        assert_eq!(
            redact_text(&expected),
            expected,
            "rule {name}: not idempotent"
        );
    }
}

#[test]
fn every_rule_redacts_inside_json_strings() {
    for (name, input, expected) in rule_cases() {
        let line = serde_json::to_string(&serde_json::json!({"type": "text", "text": input}))
            .expect("serialize");
        let want = serde_json::to_string(&serde_json::json!({"type": "text", "text": expected}))
            .expect("serialize");
        let out = redact_jsonl(line.as_bytes());
        assert_eq!(String::from_utf8_lossy(&out), want, "rule {name}");
    }
}

#[test]
fn pem_block_inside_json_string_with_escapes() {
    let line = format!(
        r#"{{"type":"tool_result","content":"$ cat key\n{}\n\tdone \"ok\""}}"#,
        pem("OPENSSH ").replace('\n', "\\n")
    );
    let out = redact_jsonl(line.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out),
        r#"{"type":"tool_result","content":"$ cat key\nREDACTED\n\tdone \"ok\""}"#
    );
}

#[test]
fn secret_spelled_with_escapes_is_replaced_whole_and_json_stays_valid() {
    // `\u0067` is `g`; `\/` is `/`. The raw span covers the escapes.
    let token = gh();
    let line = format!(
        r#"{{"a":"x\"\u0067{}\"y","b":"\/path","k":"{}"}}"#,
        &token[1..],
        aws_secret().replace('/', "\\/")
    );
    let out = redact_jsonl(line.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!(
            r#"{{"a":"x\"REDACTED\"y","b":"\/path","k":"{}"}}"#,
            aws_secret().replace('/', "\\/")
        )
    );
    serde_json::from_slice::<Value>(&out).expect("still valid JSON");
}

#[test]
fn json_key_value_context_is_searched() {
    let line = format!(
        r#"{{"env":{{"AWS_SECRET_ACCESS_KEY":"{}","PATH":"/bin"}},"headers":{{"Authorization":"Bearer {}"}}}}"#,
        aws_secret(),
        mixed(40)
    );
    let out = redact_jsonl(line.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out),
        r#"{"env":{"AWS_SECRET_ACCESS_KEY":"REDACTED","PATH":"/bin"},"headers":{"Authorization":"Bearer REDACTED"}}"#
    );
}

#[test]
fn signatures_and_image_data_are_not_searched() {
    let key = ["AIza", &mixed(35)].concat();
    let line = format!(
        r#"{{"content":[{{"type":"thinking","thinking":"t","signature":"Eo{key}/x"}},{{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"iVBOR/{key}/w=="}}}},{{"type":"text","text":"{key}"}}]}}"#
    );
    let out = String::from_utf8(redact_jsonl(line.as_bytes())).expect("utf-8");
    assert_eq!(
        out.matches(&key).count(),
        2,
        "signature and image data kept: {out}"
    );
    assert!(
        out.ends_with(r#"{"type":"text","text":"REDACTED"}]}"#),
        "{out}"
    );
}

#[test]
fn jsonl_without_secrets_is_byte_for_byte_unchanged() {
    let input = concat!(
        "{\"type\":\"user\",\"sessionId\":\"0c275b1b-9732-433e-9e70-9b7bfdb578a3\",\"message\":{\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\/x\"}}\n",
        "  { \"spaced\" :  [1, 2.5e3, true, null] }  \r\n",
        "\n",
        "{\"commit\":\"9fceb02d0ae598e95dc970b74767f19372d61af8\",\"text\":\"Bearer tokens expire; see sk-learn docs\"}\n",
        "not json at all: AKIA and eyJ alone\n",
        "{\"truncated\": \"partial line",
    );
    let out = redact_jsonl(input.as_bytes());
    assert_eq!(out, input.as_bytes());
    assert_eq!(redact_jsonl(b""), b"");
    assert_eq!(redact_jsonl(b"\n\n"), b"\n\n");
}

#[test]
fn invalid_json_line_is_redacted_as_text() {
    let line = format!("{{\"broken\": \"{} \n{{}}", gh());
    let out = redact_jsonl(line.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"broken\": \"REDACTED \n{}"
    );
}

#[test]
fn false_positives_are_left_alone() {
    let samples = [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixes it",
        "session 0c275b1b-9732-433e-9e70-9b7bfdb578a3",
        "The bearer of this token must authorize requests; Authorization: Bearer <token>",
        "Authorization: Bearer $GITHUB_TOKEN and Authorization: Bearer ${token}",
        "use sk-learn-compatible-estimator-wrapper-for-pipelines here",
        "task-runner-configuration-for-the-whole-workspace-x and disk-usage",
        "AKIA is a prefix; ghp_ is a prefix; xoxb- too; eyJ starts JSON",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "sha256:4355a46b19d348dc2f57c046f8ef63d4538ebb936000f3c9ee954a27460dd865",
        "aws_secret_access_key = ${AWS_SECRET}",
        "ordinary words, numbers 1234567890 and punctuation!",
    ];
    for s in samples {
        assert!(matches!(redact_text(s), Cow::Borrowed(_)), "changed: {s}");
    }
}

#[test]
fn adjacent_secrets_are_each_redacted() {
    let key = ["AIza", &mixed(35)].concat();
    assert_eq!(redact_text(&format!("{key},{key}")), "REDACTED,REDACTED");
    assert_eq!(
        redact_text(&format!("{} {}", gh(), aws_id())),
        "REDACTED REDACTED"
    );
    // Overlapping rules (bearer + jwt) merge into one replacement.
    assert_eq!(
        redact_text(&format!("Authorization: Bearer {}", jwt())),
        "Authorization: Bearer REDACTED"
    );
}

#[test]
fn unicode_around_secrets_survives() {
    let s = format!("é{}ü — ok", gh());
    assert_eq!(redact_text(&s), "éREDACTEDü — ok");
}

/// Text fragments that mix secrets, near-misses and JSON-hostile characters.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(gh()),
        Just(aws_id()),
        Just(format!("aws_secret_access_key={}", aws_secret())),
        Just(jwt()),
        Just(pem("RSA ")),
        Just(format!("Authorization: Bearer {}", mixed(24))),
        Just(["AIza", &mixed(35)].concat()),
        Just(format!("sk-proj-{}", mixed(40))),
        Just("REDACTED".to_owned()),
        Just("-----BEGIN EC PRIVATE KEY-----".to_owned()),
        "[ \\n\\t\"\\\\/,:={}\\[\\]_-]{0,3}",
        "[A-Za-z0-9]{0,12}",
        any::<String>(),
    ]
}

fn text_with_secrets() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..8).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text_with_secrets().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text_with_secrets(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let out = redact_jsonl(&bytes);
        prop_assert_eq!(redact_jsonl(&out), out);
    }

    #[test]
    fn redact_text_is_idempotent(s in text_with_secrets()) {
        let once = redact_text(&s).into_owned();
        let twice = redact_text(&once);
        prop_assert_eq!(twice.as_ref(), once.as_str());
    }

    #[test]
    fn jsonl_stays_valid_and_redaction_is_idempotent(values in prop::collection::vec(json_value(), 1..4)) {
        let input: Vec<u8> = values
            .iter()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        let once = redact_jsonl(&input);
        for line in once.split(|&b| b == b'\n') {
            prop_assert!(serde_json::from_slice::<Value>(line).is_ok(), "invalid: {}", String::from_utf8_lossy(line));
        }
        prop_assert_eq!(redact_jsonl(&once), once);
    }

    #[test]
    fn text_that_cannot_hold_a_secret_is_unchanged(s in "[a-zB-IK-Z0-9 .,;!?()'\"\n\t]{0,200}") {
        prop_assert!(matches!(redact_text(&s), Cow::Borrowed(_)));
        prop_assert_eq!(redact_jsonl(s.as_bytes()), s.as_bytes());
    }
}
