//! What earlier runs proved, so a rerun with nothing to do reads no checkpoint content.
//!
//! `<common-dir>/entire-migrate.cache` maps a legacy checkpoint subtree `S` to the ref commit `C` a run left
//! for it, recorded only after `C`'s first-parent chain was seen to contain the normalised tree of `S`. That is a
//! fact about immutable objects, so the cache can be old but never wrong: a rerun skips a checkpoint without
//! reading anything when its ref still points at the cached `C` for its current subtree, and falls back to the
//! full check otherwise (ref moved, legacy subtree changed, cache missing).
//!
//! Invariants:
//! - The file is replaced atomically (temporary file + rename) and ends with a checksum; a truncated, foreign
//!   or outdated file (different format or normalisation version, different hash kind) is ignored, never trusted.
//! - `--dry-run` never writes it.
//!
//! Failure modes: reading problems mean "no cache"; a write failure is returned as [`std::io::Error`] and is
//! only worth a warning (the migration itself is complete).

use std::fs;
use std::io;
use std::path::Path;

use crate::repo::ObjectId;

use super::normalize::MIGRATED_CLI_VERSION;

/// File name in the git common dir.
pub const CACHE_FILE: &str = "entire-migrate.cache";
/// Temporary name while writing (one migration at a time holds the lock, so a fixed name is safe).
const CACHE_TMP: &str = "entire-migrate.cache.tmp";
/// Bump whenever the normalisation rules change: cached pairs would no longer be facts.
const FORMAT: &str = "entire-migrate-cache 1";

/// Legacy subtree → ref commit known to contain its normalised tree.
pub type Pairs = gix::hashtable::HashMap<ObjectId, ObjectId>;

/// The loaded cache.
#[derive(Debug, Default)]
pub struct Cache {
    pub map: Pairs,
}

fn header(hash: gix::hash::Kind) -> Vec<u8> {
    format!("{FORMAT} {MIGRATED_CLI_VERSION} {}\n", hash.len_in_bytes()).into_bytes()
}

impl Cache {
    /// Load the cache of `common_dir`; anything unreadable or unrecognised gives an empty cache.
    pub fn load(common_dir: &Path, hash: gix::hash::Kind) -> Cache {
        let Ok(bytes) = fs::read(common_dir.join(CACHE_FILE)) else {
            return Cache::default();
        };
        Self::parse(&bytes, hash).unwrap_or_default()
    }

    fn parse(bytes: &[u8], hash: gix::hash::Kind) -> Option<Cache> {
        let head = header(hash);
        let n = hash.len_in_bytes();
        let body = bytes.strip_prefix(head.as_slice())?;
        if body.len() < n || !(body.len() - n).is_multiple_of(2 * n) {
            return None;
        }
        let (records, checksum) = body.split_at(body.len() - n);
        if checksum != checksum_of(bytes.len() - n, bytes, hash).as_slice() {
            return None;
        }
        let map = records
            .chunks_exact(2 * n)
            .map(|r| {
                (
                    ObjectId::from_bytes_or_panic(&r[..n]),
                    ObjectId::from_bytes_or_panic(&r[n..]),
                )
            })
            .collect();
        Some(Cache { map })
    }

    /// Serialize `pairs` (sorted, so the file is deterministic).
    fn serialize(pairs: &Pairs, hash: gix::hash::Kind) -> Vec<u8> {
        let mut sorted: Vec<_> = pairs.iter().collect();
        sorted.sort();
        let mut out = header(hash);
        for (s, c) in sorted {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(c.as_bytes());
        }
        let sum = checksum_of(out.len(), &out, hash);
        out.extend_from_slice(&sum);
        out
    }

    /// Replace the cache file with `pairs`.
    pub fn save(common_dir: &Path, hash: gix::hash::Kind, pairs: &Pairs) -> io::Result<()> {
        let tmp = common_dir.join(CACHE_TMP);
        fs::write(&tmp, Self::serialize(pairs, hash))?;
        fs::rename(&tmp, common_dir.join(CACHE_FILE))
    }

    /// Remove the temporary file of a run killed while saving. Only call while holding the migration lock.
    pub fn remove_leftovers(common_dir: &Path) {
        let _ = fs::remove_file(common_dir.join(CACHE_TMP));
    }
}

fn checksum_of(len: usize, bytes: &[u8], hash: gix::hash::Kind) -> Vec<u8> {
    let mut h = gix::hash::hasher(hash);
    h.update(&bytes[..len]);
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

    #[test]
    fn round_trip_and_rejections() {
        let sha1 = gix::hash::Kind::Sha1;
        let pairs: Pairs = [(oid('a'), oid('b')), (oid('c'), oid('d'))]
            .into_iter()
            .collect();
        let bytes = Cache::serialize(&pairs, sha1);
        assert_eq!(Cache::parse(&bytes, sha1).expect("parses").map, pairs);
        // Truncated, corrupted, or of another format: all ignored.
        assert!(Cache::parse(&bytes[..bytes.len() - 1], sha1).is_none());
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert!(Cache::parse(&flipped, sha1).is_none());
        let other = [b"entire-migrate-cache 0".as_slice(), &bytes[FORMAT.len()..]].concat();
        assert!(Cache::parse(&other, sha1).is_none());
        assert!(Cache::parse(b"", sha1).is_none());
    }
}
