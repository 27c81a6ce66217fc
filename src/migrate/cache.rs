//! What earlier runs proved, so a rerun with nothing to do reads no checkpoint content.
//!
//! `<common-dir>/entire-migrate.cache` holds two kinds of facts about immutable objects:
//! - **pairs** `S → C`: legacy checkpoint subtree `S`, ref commit `C` a run left for it, recorded only after
//!   `C`'s first-parent chain was seen to contain the normalised tree of `S`. A rerun skips a checkpoint without
//!   reading anything when its ref still points at the cached `C` for its current subtree;
//! - **listing**: the checkpoints (ID, subtree) found in legacy root tree `R`, recorded only when that scan
//!   found nothing malformed. A rerun whose legacy tip has root tree `R` does not read the shard trees again.
//!
//! Both are pure functions of object contents, so the cache can be old but never wrong; anything it does not
//! prove is checked the slow way.
//!
//! Invariants:
//! - The file is replaced atomically (temporary file + rename, skipped when the content is unchanged) and ends
//!   with a checksum; a truncated, foreign or outdated file (other format or normalisation version, other hash
//!   kind) is ignored, never trusted. IDs read back are validated again.
//! - `--dry-run` never writes it.
//!
//! Failure modes: reading problems mean "no cache"; a write failure is returned as [`std::io::Error`] and is
//! only worth a warning (the migration itself is complete).

use std::fs;
use std::io;
use std::path::Path;

use crate::git::repo::ObjectId;
use crate::model::id::CheckpointId;

use super::normalize::MIGRATED_CLI_VERSION;
use super::source::LegacyCheckpoint;

/// File name in the git common dir.
pub const CACHE_FILE: &str = "entire-migrate.cache";
/// Temporary name while writing (one migration at a time holds the lock, so a fixed name is safe).
const CACHE_TMP: &str = "entire-migrate.cache.tmp";
/// Bump whenever the normalisation rules or the layout change: cached facts would no longer hold.
const FORMAT: &str = "entire-migrate-cache 3";

/// Legacy subtree → ref commit known to contain its normalised tree.
pub type Pairs = gix::hashtable::HashMap<ObjectId, ObjectId>;

/// The loaded cache.
#[derive(Debug, Default)]
pub struct Cache {
    pub map: Pairs,
    /// Legacy root tree and the checkpoints a clean scan of it found.
    pub listing: Option<(ObjectId, Vec<LegacyCheckpoint>)>,
    /// The file as read, to skip rewriting identical content.
    raw: Vec<u8>,
}

fn header(hash: gix::hash::Kind) -> Vec<u8> {
    format!("{FORMAT} {MIGRATED_CLI_VERSION} {}\n", hash.len_in_bytes()).into_bytes()
}

/// Layout after the header: the listing's root tree (all zeros: no listing), then per checkpoint
/// `subtree, commit (zeros: none), id length (u8), id`, then the checksum of everything before it.
impl Cache {
    /// Load the cache of `common_dir`; anything unreadable or unrecognised gives an empty cache.
    pub fn load(common_dir: &Path, hash: gix::hash::Kind) -> Cache {
        let Ok(bytes) = fs::read(common_dir.join(CACHE_FILE)) else {
            return Cache::default();
        };
        Self::parse(bytes, hash).unwrap_or_default()
    }

    fn parse(bytes: Vec<u8>, hash: gix::hash::Kind) -> Option<Cache> {
        let n = hash.len_in_bytes();
        let head = header(hash);
        let len = bytes.len().checked_sub(n)?;
        if !bytes.starts_with(&head) || len < head.len() + n {
            return None;
        }
        if bytes[len..] != checksum_of(&bytes[..len], hash)[..] {
            return None;
        }
        let root = ObjectId::from_bytes_or_panic(&bytes[head.len()..head.len() + n]);
        let mut rest = &bytes[head.len() + n..len];
        let estimate = rest.len() / (2 * n + 13);
        let mut map = Pairs::with_capacity_and_hasher(estimate, Default::default());
        let mut listing = Vec::with_capacity(estimate);
        while !rest.is_empty() {
            let id_len = *rest.get(2 * n)? as usize;
            let record = rest.get(..2 * n + 1 + id_len)?;
            let subtree = ObjectId::from_bytes_or_panic(&record[..n]);
            let commit = ObjectId::from_bytes_or_panic(&record[n..2 * n]);
            let id = CheckpointId::parse(std::str::from_utf8(&record[2 * n + 1..]).ok()?).ok()?;
            if !commit.is_null() {
                map.insert(subtree, commit);
            }
            listing.push(LegacyCheckpoint { id, subtree });
            rest = &rest[record.len()..];
        }
        let listing = (!root.is_null()).then_some((root, listing));
        Some(Cache {
            map,
            listing,
            raw: bytes,
        })
    }

    /// The file content for `checkpoints` (with their pairs) and, if the scan was clean, its `root`.
    fn serialize(
        root: Option<ObjectId>,
        checkpoints: &[LegacyCheckpoint],
        pairs: &Pairs,
        hash: gix::hash::Kind,
    ) -> Vec<u8> {
        let null = ObjectId::null(hash);
        let mut out = header(hash);
        out.extend_from_slice(root.unwrap_or(null).as_bytes());
        for cp in checkpoints {
            out.extend_from_slice(cp.subtree.as_bytes());
            out.extend_from_slice(pairs.get(&cp.subtree).unwrap_or(&null).as_bytes());
            out.push(cp.id.as_str().len() as u8);
            out.extend_from_slice(cp.id.as_str().as_bytes());
        }
        let sum = checksum_of(&out, hash);
        out.extend_from_slice(&sum);
        out
    }

    /// Replace the cache file, unless it already says exactly this. `root` is the legacy root tree when its
    /// scan was clean (`checkpoints` is then its complete listing).
    pub fn save(
        &self,
        common_dir: &Path,
        hash: gix::hash::Kind,
        root: Option<ObjectId>,
        checkpoints: &[LegacyCheckpoint],
        pairs: &Pairs,
    ) -> io::Result<()> {
        let content = Self::serialize(root, checkpoints, pairs, hash);
        if content == self.raw {
            return Ok(());
        }
        let tmp = common_dir.join(CACHE_TMP);
        fs::write(&tmp, content)?;
        fs::rename(&tmp, common_dir.join(CACHE_FILE))
    }

    /// Remove the temporary file of a run killed while saving. Only call while holding the migration lock.
    pub fn remove_leftovers(common_dir: &Path) {
        let _ = fs::remove_file(common_dir.join(CACHE_TMP));
    }
}

fn checksum_of(bytes: &[u8], hash: gix::hash::Kind) -> Vec<u8> {
    let mut h = gix::hash::hasher(hash);
    h.update(bytes);
    h.try_finalize()
        .expect("hashing cannot fail")
        .as_slice()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(c: char) -> ObjectId {
        ObjectId::from_hex(c.to_string().repeat(40).as_bytes()).expect("hex")
    }

    fn cp(id: &str, c: char) -> LegacyCheckpoint {
        LegacyCheckpoint {
            id: CheckpointId::parse(id).expect("valid"),
            subtree: oid(c),
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let sha1 = gix::hash::Kind::Sha1;
        let listing = vec![
            cp("aaaaaaaaaaaa", 'a'),
            cp("01KVBJCWYA4YW6J5M9GP655HZN", 'c'),
        ];
        let pairs: Pairs = [(oid('a'), oid('b'))].into_iter().collect();
        for root in [Some(oid('f')), None] {
            let bytes = Cache::serialize(root, &listing, &pairs, sha1);
            let parsed = Cache::parse(bytes.clone(), sha1).expect("parses");
            assert_eq!(
                parsed.map, pairs,
                "only checkpoints with a commit have a pair"
            );
            assert_eq!(parsed.listing, root.map(|r| (r, listing.clone())));
            // Truncated, corrupted, or of another format: all ignored.
            assert!(Cache::parse(bytes[..bytes.len() - 1].to_vec(), sha1).is_none());
            let mut flipped = bytes.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 1;
            assert!(Cache::parse(flipped, sha1).is_none());
            let other = [b"entire-migrate-cache 0".as_slice(), &bytes[FORMAT.len()..]].concat();
            assert!(Cache::parse(other, sha1).is_none());
        }
        assert!(Cache::parse(Vec::new(), sha1).is_none());
    }
}
