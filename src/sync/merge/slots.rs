//! Slot planning for a checkpoint both sides wrote: which session lands in which slot of the merged
//! checkpoint, and from which side. Pure: no objects, no refs.
//!
//! Rules:
//! - the remote's slots keep their numbers (others may already have read them);
//! - a local slot whose owner (`session_id`) the remote also has is the same session: one slot, the remote's
//!   number; its content comes from the local side when the two differ (the recovering machine's latest write);
//! - a local slot without a known owner is the same session as the remote's slot of the same number only when
//!   their contents are identical;
//! - every other local slot is a session the remote does not have: it keeps its number when that is free, else
//!   it takes the lowest free number (in the order of the local numbers).
//!
//! Guarantees (tested by property): every session of either side is placed exactly once, no two placements
//! share a slot, and two identical sides give the identity plan.

use std::collections::BTreeSet;

/// One existing slot of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot<T> {
    pub n: usize,
    /// `session_id` of the slot's `metadata.json`, when readable.
    pub owner: Option<String>,
    /// Something that is equal exactly when the slot contents are (a tree ID).
    pub content: T,
}

/// Which side a placed slot's content comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Remote,
}

/// One slot of the merged checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The slot in the merged checkpoint.
    pub slot: usize,
    pub side: Side,
    /// The slot number on `side`.
    pub from: usize,
    /// The same session's slot number on the other side, when it has it.
    pub twin: Option<usize>,
}

impl Placed {
    /// The slot number this session has on `side`, if any.
    pub fn on(&self, side: Side) -> Option<usize> {
        if side == self.side {
            Some(self.from)
        } else {
            self.twin
        }
    }
}

/// Plan the merged slots of one checkpoint; sorted by slot.
pub fn plan<T: PartialEq>(local: &[Slot<T>], remote: &[Slot<T>]) -> Vec<Placed> {
    let mut used: BTreeSet<usize> = remote.iter().map(|r| r.n).collect();
    let mut matched = vec![false; local.len()];
    let mut out = Vec::with_capacity(local.len() + remote.len());
    for r in remote {
        let twin = local.iter().enumerate().position(|(i, l)| {
            !matched[i]
                && match (&l.owner, &r.owner) {
                    (Some(a), Some(b)) => a == b,
                    (None, _) | (_, None) => l.n == r.n && l.content == r.content,
                }
        });
        let placed = match twin {
            Some(i) => {
                matched[i] = true;
                let l = &local[i];
                if l.content == r.content {
                    Placed {
                        slot: r.n,
                        side: Side::Remote,
                        from: r.n,
                        twin: Some(l.n),
                    }
                } else {
                    Placed {
                        slot: r.n,
                        side: Side::Local,
                        from: l.n,
                        twin: Some(r.n),
                    }
                }
            }
            None => Placed {
                slot: r.n,
                side: Side::Remote,
                from: r.n,
                twin: None,
            },
        };
        out.push(placed);
    }
    let mut rest: Vec<&Slot<T>> = local
        .iter()
        .enumerate()
        .filter(|(i, _)| !matched[*i])
        .map(|(_, l)| l)
        .collect();
    rest.sort_by_key(|l| l.n);
    for l in rest {
        let slot = if used.contains(&l.n) {
            (0..).find(|n| !used.contains(n)).unwrap_or(l.n)
        } else {
            l.n
        };
        used.insert(slot);
        out.push(Placed {
            slot,
            side: Side::Local,
            from: l.n,
            twin: None,
        });
    }
    out.sort_by_key(|p| p.slot);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: usize, owner: &str, content: u8) -> Slot<u8> {
        Slot {
            n,
            owner: (!owner.is_empty()).then(|| owner.to_string()),
            content,
        }
    }

    fn p(slot: usize, side: Side, from: usize, twin: Option<usize>) -> Placed {
        Placed {
            slot,
            side,
            from,
            twin,
        }
    }

    #[test]
    fn plan_table() {
        use Side::{Local as L, Remote as R};
        type Case = (&'static str, Vec<Slot<u8>>, Vec<Slot<u8>>, Vec<Placed>);
        let cases: Vec<Case> = vec![
            (
                "identical",
                vec![s(0, "a", 1)],
                vec![s(0, "a", 1)],
                vec![p(0, R, 0, Some(0))],
            ),
            (
                "same session changed on both: local wins",
                vec![s(0, "a", 2)],
                vec![s(0, "a", 1)],
                vec![p(0, L, 0, Some(0))],
            ),
            (
                "both appended a new session at slot 1",
                vec![s(0, "a", 1), s(1, "b", 2)],
                vec![s(0, "a", 1), s(1, "c", 3)],
                vec![p(0, R, 0, Some(0)), p(1, R, 1, None), p(2, L, 1, None)],
            ),
            (
                "the same session in different slots keeps the remote's number",
                vec![s(0, "b", 2), s(1, "a", 1)],
                vec![s(0, "a", 1), s(1, "b", 2)],
                vec![p(0, R, 0, Some(1)), p(1, R, 1, Some(0))],
            ),
            (
                "local-only session on a free number keeps it",
                vec![s(2, "x", 9)],
                vec![s(0, "a", 1)],
                vec![p(0, R, 0, None), p(2, L, 2, None)],
            ),
            (
                "unknown owner, same content: one slot",
                vec![s(0, "", 5)],
                vec![s(0, "", 5)],
                vec![p(0, R, 0, Some(0))],
            ),
            (
                "unknown owner, other content: both kept",
                vec![s(0, "", 5)],
                vec![s(0, "", 6)],
                vec![p(0, R, 0, None), p(1, L, 0, None)],
            ),
            (
                "nothing local",
                vec![],
                vec![s(0, "a", 1)],
                vec![p(0, R, 0, None)],
            ),
        ];
        for (name, local, remote, want) in cases {
            assert_eq!(plan(&local, &remote), want, "{name}");
        }
    }

    /// Owners are unique per side (the store guarantees it; 0 means unreadable) and a slot's content includes
    /// its metadata, so equal contents mean equal owners.
    fn side() -> impl Strategy<Value = Vec<Slot<(u8, u8)>>> {
        proptest::collection::btree_map(0usize..6, (0u8..5, 0u8..3), 0..5).prop_map(|m| {
            let mut seen = BTreeSet::new();
            m.into_iter()
                .map(|(n, (owner, content))| {
                    let owner = if owner > 0 && seen.insert(owner) {
                        owner
                    } else {
                        0
                    };
                    Slot {
                        n,
                        owner: (owner > 0).then(|| format!("s{owner}")),
                        content: (owner, content),
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_session_placed_once_in_distinct_slots(local in side(), remote in side()) {
            let placed = plan(&local, &remote);
            let slots: BTreeSet<usize> = placed.iter().map(|p| p.slot).collect();
            prop_assert_eq!(slots.len(), placed.len());
            for r in &remote {
                prop_assert!(placed.iter().any(|p| p.on(Side::Remote) == Some(r.n)), "remote {}", r.n);
                prop_assert!(placed.iter().any(|p| p.slot == r.n), "remote keeps {}", r.n);
            }
            for l in &local {
                prop_assert_eq!(placed.iter().filter(|p| p.on(Side::Local) == Some(l.n)).count(), 1);
            }
            let owners: Vec<&String> = local.iter().chain(&remote).filter_map(|s| s.owner.as_ref()).collect();
            for o in owners {
                let holders = placed.iter().filter(|p| {
                    let find = |side: Side, list: &[Slot<(u8, u8)>]| p.on(side)
                        .and_then(|n| list.iter().find(|s| s.n == n))
                        .and_then(|s| s.owner.as_ref()) == Some(o);
                    find(Side::Local, &local) || find(Side::Remote, &remote)
                }).count();
                prop_assert_eq!(holders, 1, "session {} once", o);
            }
        }

        #[test]
        fn identical_sides_are_the_identity(both in side()) {
            let placed = plan(&both, &both);
            prop_assert_eq!(placed.len(), both.len());
            for (p, s) in placed.iter().zip(&both) {
                prop_assert_eq!((p.slot, p.side, p.from), (s.n, Side::Remote, s.n));
            }
        }
    }
}
