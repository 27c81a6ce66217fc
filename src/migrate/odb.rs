//! A gix handle tuned for the migration's reads: a pack-entry cache.
//!
//! Legacy branches arrive as packs whose trees are long delta chains (each shard tree a delta of its previous
//! version). Without a pack cache every tree read re-inflates its whole chain. The crate's gix build has no
//! pack-cache feature enabled, so a small memory-capped cache is provided here.
//!
//! Invariant: caches only ever hold bytes gix itself decoded, keyed by (pack, offset), so they change speed,
//! never results.

use std::collections::{HashMap, VecDeque};

use gix::objs::Kind;
use gix::odb::pack::cache::DecodeEntry;

use crate::repo::Repo;

const PACK_CACHE_BYTES: usize = 96 << 20;
/// Entries larger than this are not worth keeping (they are transcripts, read once).
const MAX_ENTRY: usize = 1 << 20;

/// Pack entries by (pack id, offset), evicted first-in-first-out beyond a byte budget.
#[derive(Default)]
struct PackCache {
    map: HashMap<(u32, u64), (Kind, Vec<u8>, usize)>,
    order: VecDeque<(u32, u64)>,
    bytes: usize,
}

impl DecodeEntry for PackCache {
    fn put(&mut self, pack_id: u32, offset: u64, data: &[u8], kind: Kind, compressed_size: usize) {
        if data.len() > MAX_ENTRY || self.map.contains_key(&(pack_id, offset)) {
            return;
        }
        while self.bytes + data.len() > PACK_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, d, _)) = self.map.remove(&old) {
                self.bytes -= d.len();
            }
        }
        self.bytes += data.len();
        self.order.push_back((pack_id, offset));
        self.map
            .insert((pack_id, offset), (kind, data.to_vec(), compressed_size));
    }

    fn get(&mut self, pack_id: u32, offset: u64, out: &mut Vec<u8>) -> Option<(Kind, usize)> {
        let (kind, data, compressed) = self.map.get(&(pack_id, offset))?;
        out.clear();
        out.extend_from_slice(data);
        Some((*kind, *compressed))
    }
}

/// A clone of `repo`'s gix handle with read caches suited to walking a legacy branch.
pub fn tuned(repo: &Repo) -> gix::Repository {
    let mut g = repo.gix().clone();
    g.objects.set_pack_cache(|| Box::<PackCache>::default());
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_returns_what_was_put_and_evicts_oldest() {
        let mut c = PackCache::default();
        let mut out = Vec::new();
        assert_eq!(c.get(1, 10, &mut out), None);
        c.put(1, 10, b"abc", Kind::Tree, 7);
        assert_eq!(c.get(1, 10, &mut out), Some((Kind::Tree, 7)));
        assert_eq!(out, b"abc");
        let big = vec![0u8; MAX_ENTRY];
        for i in 0..(PACK_CACHE_BYTES / MAX_ENTRY) as u64 {
            c.put(2, i, &big, Kind::Blob, 1);
        }
        assert_eq!(c.get(1, 10, &mut out), None, "the oldest entry was evicted");
        assert!(c.bytes <= PACK_CACHE_BYTES);
    }
}
