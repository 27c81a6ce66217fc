//! Fetching the `v2/full/*` generations for a read of a raw transcript that no local generation holds.
//!
//! Which archive holds a checkpoint cannot be told from the ref names, so the read's single fetch carries one
//! glob refspec `+refs/entire/checkpoints/v2/full/*:<scratch>/*`: git lists the generations with one
//! `ref-prefix` (protocol v2) and, in the same connection, asks only for those whose commits are not already
//! local — generations already present cost nothing, and no second round trip is needed to pick an archive.
//!
//! Invariants:
//! - The fetch writes only scratch refs `refs/entire-fetch-tmp/read-<pid>/full/*` (per process, so concurrent
//!   reads do not collide). [`adopt`] then creates the local generations that are missing and fast-forwards
//!   those that are behind, in one compare-and-swap transaction; a local generation that diverged is never
//!   touched (the read uses the fetched commit, the next push reconciles). A lost race leaves the local refs as
//!   they are. The scratch refs are deleted afterwards (compare-and-swap), whether the fetch succeeded or not.
//! - A served ref whose name is not a generation (`current` or 13 digits) or that is not a commit is refused:
//!   neither adopted nor read.

use std::cmp::Reverse;

use crate::git::cmd as gitcmd;
use crate::git::repo::{ObjectId, RefUpdate, Repo};
use crate::model::refname::V2_FULL_CURRENT;

use super::{invalid_ref, repo_dir, FetchError};

const FULL_PREFIX: &str = "refs/entire/checkpoints/v2/full/";

/// The valid fetched generations (local ref name, commit; `current` first, then archives newest → oldest) and
/// one line per refused ref.
pub(super) type Adopted = (Vec<(String, ObjectId)>, Vec<String>);

/// This process's scratch namespace for fetched generations.
pub(super) fn scratch_prefix() -> String {
    format!("refs/entire-fetch-tmp/read-{}/full/", std::process::id())
}

/// The refspec fetching every remote generation into `scratch` (forced: the namespace is ours alone).
pub(super) fn refspec(scratch: &str) -> String {
    format!("+{FULL_PREFIX}*:{scratch}*")
}

/// Adopt what a fetch wrote under `scratch` and remove the scratch refs. Returns the valid generations
/// (`current` first, then archives newest → oldest) and one line per refused ref.
pub(super) fn adopt(repo: &Repo, scratch: &str) -> Result<Adopted, FetchError> {
    let fetched = repo.refs_with_prefix(scratch)?;
    let result = adopt_fetched(repo, scratch, &fetched);
    let cleanup: Vec<RefUpdate> = fetched
        .iter()
        .map(|(name, v)| RefUpdate {
            name: name.clone(),
            expected: Some(*v),
            new: None,
        })
        .collect();
    if !cleanup.is_empty() {
        repo.transaction(&cleanup, "entire: drop fetched generations")?;
    }
    result
}

fn adopt_fetched(
    repo: &Repo,
    scratch: &str,
    fetched: &[(String, ObjectId)],
) -> Result<Adopted, FetchError> {
    let mut gens = Vec::new();
    let mut refused = Vec::new();
    let mut updates = Vec::new();
    for (name, value) in fetched {
        let local = format!("{FULL_PREFIX}{}", &name[scratch.len()..]);
        if let Some(why) = invalid_ref(repo, &local, *value) {
            tracing::debug!(target: "entire::fetch", "refused a generation the remote served: {why}");
            refused.push(why);
            continue;
        }
        gens.push((local.clone(), *value));
        let expected = repo.find_ref(&local)?;
        let adopt = match expected {
            None => true,
            Some(old) if old == *value => false,
            Some(old) => gitcmd::is_ancestor(&repo_dir(repo), old, *value)?,
        };
        if adopt {
            updates.push(RefUpdate {
                name: local,
                expected,
                new: Some(*value),
            });
        }
    }
    search_order(&mut gens);
    if !updates.is_empty() {
        if let Err(e) = repo.transaction(&updates, "entire: fetch v2/full generations") {
            tracing::info!(target: "entire::fetch", "local generations moved meanwhile, left as they are: {e}");
        }
    }
    Ok((gens, refused))
}

/// `current` first, then the archives newest → oldest (13-digit names sort as numbers).
fn search_order<T>(gens: &mut [(String, T)]) {
    gens.sort_by_key(|(name, _)| (name != V2_FULL_CURRENT, Reverse(name.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_searched_current_first_then_newest_archive() {
        let names = ["0000000000002", "current", "0000000000010", "0000000000001"];
        let mut gens: Vec<(String, ())> = names
            .iter()
            .map(|n| (format!("{FULL_PREFIX}{n}"), ()))
            .collect();
        search_order(&mut gens);
        let got: Vec<&str> = gens.iter().map(|(n, _)| &n[FULL_PREFIX.len()..]).collect();
        assert_eq!(
            got,
            ["current", "0000000000010", "0000000000002", "0000000000001"]
        );
        assert!(refspec("refs/x/").starts_with('+'));
        assert!(scratch_prefix().starts_with("refs/entire-fetch-tmp/read-"));
    }
}
