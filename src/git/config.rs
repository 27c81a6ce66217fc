//! git config as git itself layers it: system, global, repository, `GIT_CONFIG_COUNT`/`_KEY_n`/`_VALUE_n`,
//! then `git -c key=value` (which git hands to its children — the remote helper, hooks, `git entire` — only
//! through `GIT_CONFIG_PARAMETERS`).
//!
//! One view for the whole library: [`crate::git::repo::Repo::discover`] opens every repository with
//! [`cli_overrides`] applied as gix command-line overrides, and gix reads `GIT_CONFIG_COUNT` itself, so
//! every in-process read (`Repo::config_string`, gix's remote and identity resolution) sees what git sees.
//!
//! Invariant: a malformed `GIT_CONFIG_PARAMETERS` is ignored (git itself would have refused to start), never
//! an error.

use crate::git::repo::Repo;

/// The value of `key` (e.g. `entire.fetchCheckpoints`) for `repo`, honouring `git -c` and `GIT_CONFIG_*`.
pub fn get(repo: &Repo, key: &str) -> Option<String> {
    repo.config_string(key)
}

/// `GIT_CONFIG_PARAMETERS` as `key=value` overrides for gix (a key without a value is boolean true).
/// Entries gix could not take apart unambiguously (a `=` inside the key) are left out.
pub fn cli_overrides() -> Vec<String> {
    std::env::var("GIT_CONFIG_PARAMETERS")
        .ok()
        .and_then(|p| parse_parameters(&p))
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.contains('='))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// Compare config keys: section and name case-insensitively, a subsection exactly.
fn same_key(a: &str, b: &str) -> bool {
    let split = |k: &str| -> (String, String, String) {
        let (section, rest) = k.split_once('.').unwrap_or((k, ""));
        match rest.rsplit_once('.') {
            Some((sub, name)) => (
                section.to_ascii_lowercase(),
                sub.to_string(),
                name.to_ascii_lowercase(),
            ),
            None => (
                section.to_ascii_lowercase(),
                String::new(),
                rest.to_ascii_lowercase(),
            ),
        }
    };
    split(a) == split(b)
}

/// The last value of `key` in a `GIT_CONFIG_PARAMETERS` string.
pub fn from_parameters(params: &str, key: &str) -> Option<String> {
    let mut found = None;
    for (k, v) in parse_parameters(params)? {
        if same_key(&k, key) {
            found = Some(v);
        }
    }
    found
}

/// Parse git's `'key'='value' 'key2=value2' …` format (shell single quotes, `'\''` for a quote).
fn parse_parameters(params: &str) -> Option<Vec<(String, String)>> {
    let chars: Vec<char> = params.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let quoted = |i: &mut usize| -> Option<String> {
        let mut s = String::new();
        if chars.get(*i) != Some(&'\'') {
            return None;
        }
        loop {
            *i += 1;
            loop {
                match chars.get(*i)? {
                    '\'' => break,
                    c => s.push(*c),
                }
                *i += 1;
            }
            *i += 1;
            // `'\''` (or `'\!'`): an escaped character, then the quote reopens.
            if chars.get(*i) == Some(&'\\') && chars.get(*i + 2) == Some(&'\'') {
                s.push(*chars.get(*i + 1)?);
                *i += 2;
                continue;
            }
            return Some(s);
        }
    };
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let first = quoted(&mut i)?;
        if chars.get(i) == Some(&'=') {
            i += 1;
            let value = if chars.get(i) == Some(&'\'') {
                quoted(&mut i)?
            } else {
                String::new()
            };
            out.push((first, value));
        } else {
            let (k, v) = first.split_once('=').unwrap_or((&first, "true"));
            out.push((k.to_string(), v.to_string()));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_table() {
        let cases = [
            (
                "'entire.fetchcheckpoints'='none'",
                "entire.fetchCheckpoints",
                Some("none"),
            ),
            (
                "'entire.fetchcheckpoints=all'",
                "entire.fetchCheckpoints",
                Some("all"),
            ),
            (
                "'entire.remote'='a' 'core.x'='y' 'entire.remote'='b'",
                "entire.remote",
                Some("b"),
            ),
            ("'entire.remote'='it'\\''s'", "entire.remote", Some("it's")),
            (
                "'url.Foo.insteadof'='bar'",
                "url.Foo.insteadOf",
                Some("bar"),
            ),
            ("'url.foo.insteadof'='bar'", "url.Foo.insteadOf", None),
            ("'entire.flag'", "entire.flag", Some("true")),
            ("'entire.empty'=", "entire.empty", Some("")),
            ("'unterminated", "entire.remote", None),
            ("", "entire.remote", None),
        ];
        for (params, key, want) in cases {
            assert_eq!(
                from_parameters(params, key).as_deref(),
                want,
                "{params} / {key}"
            );
        }
    }
}
