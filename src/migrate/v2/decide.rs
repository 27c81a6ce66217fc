//! The per-checkpoint decision (reference `entire-v2-and-attach.md` §3.3), as a pure function.

/// What to do with one legacy checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not on `/main`: write every session.
    Fresh,
    /// On `/main`, every slot has `/full` artifacts and the legacy checkpoint has no slot beyond them.
    Skip,
    /// On `/main` but incomplete: look at these legacy/main facts (slots lacking `/full`, or new sessions).
    Resume { missing: Vec<usize> },
}

/// `missing`: `/main` slots lacking `/full` artifacts (`None` when not on `/main`); `main_slots` and
/// `legacy_slots`: how many sessions each side has.
pub fn decide(missing: Option<Vec<usize>>, main_slots: usize, legacy_slots: usize) -> Decision {
    match missing {
        None => Decision::Fresh,
        Some(m) if m.is_empty() && legacy_slots <= main_slots => Decision::Skip,
        Some(missing) => Decision::Resume { missing },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let r = |m: Vec<usize>| Decision::Resume { missing: m };
        for (missing, main, legacy, want) in [
            (None, 0, 1, Decision::Fresh),
            (None, 0, 3, Decision::Fresh),
            (Some(vec![]), 1, 1, Decision::Skip),
            (Some(vec![]), 2, 1, Decision::Skip),
            (Some(vec![]), 1, 2, r(vec![])),
            (Some(vec![1]), 2, 2, r(vec![1])),
            (Some(vec![0, 1]), 2, 2, r(vec![0, 1])),
        ] {
            assert_eq!(
                decide(missing.clone(), main, legacy),
                want,
                "{missing:?} {main} {legacy}"
            );
        }
    }
}
