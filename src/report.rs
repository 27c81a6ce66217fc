//! Turning an error and its `source()` chain into the lines a user reads.
//!
//! Many errors name their cause in their own message (`cannot read x: permission denied`) and also expose it as
//! `source()`. Printing the message and then every source would say the same thing twice; [`causes`] keeps each
//! cause once: a source whose text already appears in an earlier line is left out.

use std::error::Error;

/// The messages of `err` and its sources, outermost first, each cause named once.
pub fn causes(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !lines.iter().any(|l| l.contains(&text)) {
            lines.push(text);
        }
        next = e.source();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Repeats {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the store")]
    struct Wraps(#[source] Repeats);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = Wraps(Repeats {
            path: "a/b",
            source: io,
        });
        assert_eq!(
            causes(&e),
            [
                "cannot open the store",
                "cannot read a/b: permission denied"
            ]
        );
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let e = std::io::Error::other(Wraps(Repeats {
            path: "x",
            source: std::io::Error::other("disk full"),
        }));
        let lines = causes(&e);
        assert_eq!(lines.len(), 2, "{lines:?}");
    }
}
