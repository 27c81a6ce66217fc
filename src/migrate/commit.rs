//! Building the migration commits: legacy dates, operator identity, optional signature.
//!
//! Invariants:
//! - A commit is a pure function of (tree, parent, identity, the legacy dates of its checkpoint, message,
//!   signature), so the same branch and options give the same IDs everywhere; "now" never enters it.
//! - Author and committer times are the author and committer times of the legacy commit that last changed the
//!   checkpoint ([`super::dates`]); author and committer names are the operator's git identities (`--author`
//!   replaces the author only), exactly as `git commit-tree` would record them.
//! - The message is upstream's: `Import checkpoint <id> (migrated from git-branch)`.

use std::collections::HashMap;

use gix::objs::{Commit, WriteTo};

use crate::git::repo::{ObjectId, Repo, RepoError, Role};

use super::dates::When;
use super::plan::{Planned, Step};
use super::sign::{SignError, Signer};
use crate::git::pack::ObjectSet;

/// Who the migration commits are by (dates come from the legacy history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct People {
    pub author: (String, String),
    pub committer: (String, String),
}

impl People {
    /// The operator's identities in `repo`, with an optional `--author` override.
    pub fn of(repo: &Repo, author_override: Option<(String, String)>) -> Self {
        People {
            author: author_override.unwrap_or_else(|| repo.person(Role::Author)),
            committer: repo.person(Role::Committer),
        }
    }
}

/// Why building commits failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The message of a migration commit.
pub fn message(id: &str) -> String {
    format!("Import checkpoint {id} (migrated from git-branch)\n")
}

fn signature((name, email): &(String, String), time: gix::date::Time) -> gix::actor::Signature {
    gix::actor::Signature {
        name: name.as_str().into(),
        email: email.as_str().into(),
        time,
    }
}

/// Create the commit of every [`Step::Commit`] in `planned`; returns checkpoint ID → commit ID.
/// `dates` holds the legacy dates by v1 path; `signed(n)` reports progress.
pub fn build(
    planned: &[Planned],
    dates: &HashMap<String, When>,
    people: &People,
    signer: Option<&Signer>,
    objects: &mut ObjectSet,
    progress: &mut dyn FnMut(usize),
) -> Result<HashMap<String, ObjectId>, CommitError> {
    let mut out = HashMap::new();
    for (n, p) in planned.iter().enumerate() {
        let Step::Commit { parent, tree, .. } = &p.step else {
            continue;
        };
        let when = dates
            .get(&p.id.v1_path())
            .expect("every committed checkpoint was dated");
        let mut commit = Commit {
            tree: *tree,
            parents: parent.iter().copied().collect(),
            author: signature(&people.author, when.author),
            committer: signature(&people.committer, when.committer),
            encoding: None,
            message: message(p.id.as_str()).into(),
            extra_headers: Vec::new(),
        };
        if let Some(signer) = signer {
            let mut payload = Vec::with_capacity(commit.size() as usize);
            commit
                .write_to(&mut payload)
                .expect("encoding into memory cannot fail");
            let sig = signer.sign(&payload)?;
            commit.extra_headers.push(("gpgsig".into(), sig.into()));
        }
        out.insert(p.id.to_string(), objects.add(&commit));
        progress(n + 1);
    }
    Ok(out)
}
