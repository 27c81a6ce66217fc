//! A gix handle tuned for the migration's reads: a pack-entry cache.
//!
//! Legacy branches arrive as packs whose trees are long delta chains (each shard tree a delta of its previous
//! version). Without a pack cache every tree read re-inflates its whole chain. gix's memory-capped LRU
//! (`pack-cache-lru-dynamic`) does the caching.
//!
//! Invariant: the cache only ever holds bytes gix itself decoded, keyed by (pack, offset), so it changes speed,
//! never results.

use gix::odb::pack::cache::lru::MemoryCappedHashmap;

use crate::git::repo::Repo;

const PACK_CACHE_BYTES: usize = 96 << 20;

/// A clone of `repo`'s gix handle with read caches suited to walking a legacy branch.
pub fn tuned(repo: &Repo) -> gix::Repository {
    let mut g = repo.gix().clone();
    g.objects
        .set_pack_cache(|| Box::new(MemoryCappedHashmap::new(PACK_CACHE_BYTES)));
    g
}
