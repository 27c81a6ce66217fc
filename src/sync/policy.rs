//! git's transport policy, applied before any connection the helper or the library makes on git's behalf.
//!
//! git checks `protocol.allow` for the `entire` transport before it starts the helper, but it cannot see the
//! transport the helper then uses (`file`, `ssh`, `git`, `http`, `https`): that check is ours, with git's
//! rules (`git help config`, `protocol.allow`; git's `transport.c:is_transport_allowed`):
//! 1. `GIT_ALLOW_PROTOCOL` set: only the colon-separated protocols listed are allowed, nothing else counts;
//! 2. else `protocol.<name>.allow`, else `protocol.allow` (`always` | `never` | `user`);
//! 3. else git's defaults: `http`, `https`, `git`, `ssh` always; `ext` never; anything else (`file` too) `user`.
//!
//! `user` allows the protocol unless `GIT_PROTOCOL_FROM_USER` is false (git sets it to 0 for submodules).
//!
//! Invariants: [`protocol_of`] and [`decide`] are pure and total. Settings are read through the layered config
//! view (`git -c` and `GIT_CONFIG_*` included), or from `git config --get` outside a repository; an
//! unparsable value counts as `never`, as in git (which dies).

use crate::git::repo::Repo;

/// A transport that git's policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transport '{protocol}' not allowed (see protocol.allow in git-config(1))")]
pub struct NotAllowed {
    pub protocol: String,
}

/// The protocol name git uses for `url` in its policy: `file` for paths, `ssh` for `host:path`, else the
/// scheme (`<transport>::<address>` gives `<transport>`).
pub fn protocol_of(url: &str) -> String {
    if let Some((transport, _)) = url.split_once("::") {
        if !transport.is_empty() && !transport.contains(['/', ':']) {
            return transport.to_string();
        }
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if !scheme.is_empty() && !scheme.contains('/') {
            return match scheme {
                "git+ssh" | "ssh+git" => "ssh".to_string(),
                s => s.to_string(),
            };
        }
    }
    // scp-like `host:path` is ssh unless a slash comes before the first colon (git's rule).
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) if slash < colon => "file".into(),
        (Some(_), _) => "ssh".into(),
        (None, _) => "file".into(),
    }
}

/// git's decision for `protocol`, given the environment's allow list, the two settings and
/// `GIT_PROTOCOL_FROM_USER`.
pub fn decide(
    protocol: &str,
    allow_list: Option<&str>,
    specific: Option<&str>,
    general: Option<&str>,
    from_user: Option<&str>,
) -> bool {
    if let Some(list) = allow_list {
        return list.split(':').any(|p| p == protocol);
    }
    let policy = match specific.or(general) {
        Some(v) => v.trim().to_ascii_lowercase(),
        None => match protocol {
            "http" | "https" | "git" | "ssh" => "always".into(),
            "ext" => "never".into(),
            _ => "user".into(),
        },
    };
    match policy.as_str() {
        "always" => true,
        "user" => from_user.is_none_or(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off" | ""
            )
        }),
        _ => false,
    }
}

/// Check `url` against git's policy, with settings from `repo` (or only the environment and `git -c` outside
/// a repository).
pub fn check(repo: Option<&Repo>, url: &str) -> Result<(), NotAllowed> {
    let protocol = protocol_of(url);
    let setting = |key: &str| match repo {
        Some(r) => crate::git::config::get(r, key),
        // Outside a repository (`git ls-remote entire::…` anywhere): git's own view of system, global,
        // `GIT_CONFIG_*` and `git -c` settings, asked once per key.
        None => crate::git::cmd::run_ok(crate::git::cmd::git().args(["config", "--get", key]))
            .ok()
            .map(|v| v.trim().to_string()),
    };
    let allowed = decide(
        &protocol,
        std::env::var("GIT_ALLOW_PROTOCOL").ok().as_deref(),
        setting(&format!("protocol.{protocol}.allow")).as_deref(),
        setting("protocol.allow").as_deref(),
        std::env::var("GIT_PROTOCOL_FROM_USER").ok().as_deref(),
    );
    match allowed {
        true => Ok(()),
        false => Err(NotAllowed { protocol }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn protocol_names() {
        for (url, want) in [
            ("file:///srv/r.git", "file"),
            ("/srv/r.git", "file"),
            ("./a:b", "file"),
            ("r.git", "file"),
            ("host:r.git", "ssh"),
            ("ssh://h/r", "ssh"),
            ("git+ssh://h/r", "ssh"),
            ("git://h/r", "git"),
            ("https://h/r", "https"),
            ("ext::ssh -i key h %S r", "ext"),
        ] {
            assert_eq!(protocol_of(url), want, "{url}");
        }
    }

    #[test]
    fn decisions_follow_git() {
        type Case<'a> = (&'a str, [Option<&'a str>; 4], bool);
        let cases: &[Case] = &[
            ("file", [None, None, None, None], true),
            ("file", [None, None, None, Some("0")], false),
            ("file", [None, Some("never"), None, None], false),
            ("file", [None, None, Some("never"), None], false),
            (
                "file",
                [None, Some("always"), Some("never"), Some("0")],
                true,
            ),
            ("ssh", [None, None, None, Some("0")], true),
            ("ext", [None, None, None, None], false),
            (
                "file",
                [Some("ssh:https"), Some("always"), None, None],
                false,
            ),
            ("file", [Some("entire:file"), None, None, None], true),
            ("git", [None, Some("bogus"), None, None], false),
        ];
        for &(p, [list, specific, general, user], want) in cases {
            assert_eq!(
                decide(p, list, specific, general, user),
                want,
                "{p} {list:?} {specific:?} {general:?} {user:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_url_has_a_protocol(url in ".{0,40}") {
            let _ = protocol_of(&url);
        }
    }
}
