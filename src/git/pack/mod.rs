//! New objects, hashed in memory and written as ONE pack (`.pack` + `.idx` v2) straight into the object store.
//!
//! Why: a migration creates up to three small objects per checkpoint (commit, tree, metadata blob). Writing
//! 100k+ loose files one at a time is dominated by file-system metadata; one pack is a single sequential write.
//! Objects are stored whole (zlib streams from [`deflate`], no deltas), so the index needs no second
//! pass: offsets, CRC32s and IDs are known while streaming.
//!
//! Invariants:
//! - [`ObjectSet`] computes every ID in memory (`--dry-run` stops there: nothing touches the disk).
//! - The pack is written to `objects/pack/<stem>.{pack,idx}`, both fsynced (as git does by default for
//!   packs), then renamed to
//!   `pack-<checksum>.pack` and only then `pack-<checksum>.idx`. git only looks at packs through their `.idx`,
//!   so a crash at any point leaves either no visible pack or a complete one; a leftover temporary or orphan
//!   `.pack` is harmless: the migration (one stem, under its lock) removes its own temporaries, other writers
//!   use a per-process stem starting with `tmp_` that `git gc` expires like its own `tmp_pack_*` files.
//! - Objects already in the repository are not written again (a resumed run writes only what is missing).
//!
//! Concurrency: entries are encoded (zlib + CRC32) on every core, window by window of about 8 MiB of input,
//! and written in set order by the calling thread; each thread has its own [`Deflater`], whose output depends
//! on the input only, so the pack's bytes do not depend on the number of threads.
//!
//! Failure modes: [`PackError`] names the file being written.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use gix::objs::{Kind, WriteTo};

pub mod deflate;

use deflate::{stored_zlib, Deflater};

/// `ENTIRE_MIGRATE_ZLIB=zlib-rs` encodes blobs with gix's zlib-rs (fastest level) instead of [`Deflater`]: the
/// "without" side of the with/without ratio `scripts/bench-migrate --zlib-compare` prints.
pub const ZLIB_ENV: &str = "ENTIRE_MIGRATE_ZLIB";

/// One zlib stream through gix's zlib-rs at the fastest level (the comparison baseline for [`Deflater`]).
fn zlib_rs_fast(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    use gix::zlib::stream::deflate;
    let level = gix::zlib::Compression::BEST_SPEED;
    let mut w = deflate::Write::new(std::mem::take(out), level);
    w.write_all(data)?;
    w.flush()?;
    *out = w.into_inner();
    Ok(())
}
use crate::git::repo::ObjectId;

/// The temporary stem the migration uses (one run at a time, under the migration lock).
pub const MIGRATE_STEM: &str = "tmp_entire-migrate";

/// A temporary stem no other live process uses: `tmp_entire-<pid>-<nanos>`.
pub fn unique_stem() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("tmp_entire-{}-{nanos}", std::process::id())
}

/// Writing the pack failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write pack {path}: {source}")]
pub struct PackError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// One object to write.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub id: ObjectId,
    pub kind: Kind,
    pub data: Vec<u8>,
}

/// Objects created in memory, de-duplicated by ID, in creation order.
#[derive(Debug)]
pub struct ObjectSet {
    hash: gix::hash::Kind,
    seen: HashSet<ObjectId>,
    objects: Vec<NewObject>,
}

impl ObjectSet {
    pub fn new(hash: gix::hash::Kind) -> Self {
        ObjectSet {
            hash,
            seen: HashSet::new(),
            objects: Vec::new(),
        }
    }

    /// Hash `data` as an object of `kind` (no storage).
    pub fn hash_of(&self, kind: Kind, data: &[u8]) -> ObjectId {
        gix::objs::compute_hash(self.hash, kind, data).expect("hashing in-memory data cannot fail")
    }

    /// Encode, hash and keep `object`; returns its ID.
    pub fn add(&mut self, object: &impl WriteTo) -> ObjectId {
        let mut data = Vec::with_capacity(object.size() as usize);
        object
            .write_to(&mut data)
            .expect("encoding into memory cannot fail");
        self.add_raw(object.kind(), data)
    }

    /// Keep already-encoded `data`; returns its ID.
    pub fn add_raw(&mut self, kind: Kind, data: Vec<u8>) -> ObjectId {
        let id = self.hash_of(kind, &data);
        if self.seen.insert(id) {
            self.objects.push(NewObject { id, kind, data });
        }
        id
    }

    /// Keep already-encoded `data` whose ID the caller computed (with [`ObjectSet::hash_kind`], e.g. on
    /// another thread); returns it.
    pub fn add_hashed(&mut self, kind: Kind, data: Vec<u8>, id: ObjectId) -> ObjectId {
        debug_assert_eq!(id, self.hash_of(kind, &data), "add_hashed: wrong ID");
        if self.seen.insert(id) {
            self.objects.push(NewObject { id, kind, data });
        }
        id
    }

    /// The hash function object IDs use.
    pub fn hash_kind(&self) -> gix::hash::Kind {
        self.hash
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Drop objects for which `exists` is true (they are already in the repository).
    pub fn retain_missing(&mut self, exists: impl Fn(ObjectId) -> bool) {
        self.objects.retain(|o| !exists(o.id));
    }

    pub fn objects(&self) -> &[NewObject] {
        &self.objects
    }
}

/// Remove the temporaries `stem` names (an earlier, interrupted run's). Only for a stem no live process uses.
pub fn remove_leftovers(objects_dir: &Path, stem: &str) {
    let dir = objects_dir.join("pack");
    for ext in ["pack", "idx"] {
        let _ = fs::remove_file(dir.join(format!("{stem}.{ext}")));
    }
}

/// Write `set` as one pack into `objects_dir/pack` through the temporaries `<stem>.{pack,idx}`, with
/// `progress(n)` after each object. Returns the pack's path, or `None` when there was nothing to write.
pub fn write(
    objects_dir: &Path,
    set: &ObjectSet,
    stem: &str,
    progress: &mut dyn FnMut(usize),
) -> Result<Option<PathBuf>, PackError> {
    if set.is_empty() {
        return Ok(None);
    }
    let dir = objects_dir.join("pack");
    let tmp_pack = dir.join(format!("{stem}.pack"));
    let tmp_idx = dir.join(format!("{stem}.idx"));
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError { path, source }
    };
    fs::create_dir_all(&dir).map_err(err(&dir))?;
    let (entries, checksum) = write_pack(&tmp_pack, set, progress).map_err(err(&tmp_pack))?;
    write_index(&tmp_idx, set.hash, entries, &checksum).map_err(err(&tmp_idx))?;
    let stem = format!("pack-{}", hex(&checksum));
    let pack = dir.join(format!("{stem}.pack"));
    let idx = dir.join(format!("{stem}.idx"));
    fs::rename(&tmp_pack, &pack).map_err(err(&pack))?;
    fs::rename(&tmp_idx, &idx).map_err(err(&idx))?;
    Ok(Some(pack))
}

/// One written entry: ID, pack offset, CRC32 of its raw bytes.
struct Entry {
    id: ObjectId,
    offset: u64,
    crc: u32,
}

/// A writer that hashes and counts everything passing through.
struct Hashing<W> {
    inner: W,
    hasher: gix::hash::Hasher,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pack_type(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// The variable-length entry header: type and uncompressed size.
fn entry_header(kind: Kind, size: usize, out: &mut Vec<u8>) {
    let mut size = size as u64;
    let mut byte = (pack_type(kind) << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

fn write_pack(
    path: &Path,
    set: &ObjectSet,
    progress: &mut dyn FnMut(usize),
) -> io::Result<(Vec<Entry>, Vec<u8>)> {
    let file = File::create(path)?;
    let mut out = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: gix::hash::hasher(set.hash),
        written: 0,
    };
    out.write_all(b"PACK")?;
    out.write_all(&2u32.to_be_bytes())?;
    out.write_all(&(set.len() as u32).to_be_bytes())?;
    let mut entries = Vec::with_capacity(set.len());
    let zlib_rs = std::env::var_os(ZLIB_ENV).is_some_and(|v| v == "zlib-rs");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut done = 0;
    for window in windows(set.objects()) {
        for (object, (raw, crc)) in window.iter().zip(encode_all(window, zlib_rs, threads)?) {
            entries.push(Entry {
                id: object.id,
                offset: out.written,
                crc,
            });
            out.write_all(&raw)?;
            done += 1;
            progress(done);
        }
    }
    let checksum = out
        .hasher
        .clone()
        .try_finalize()
        .expect("hashing cannot fail")
        .as_slice()
        .to_vec();
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&checksum)?;
    file.sync_all()?;
    Ok((entries, checksum))
}

/// Consecutive runs of `objects` of about [`WINDOW_BYTES`] each: encoded in parallel, then written in order,
/// so memory stays bounded whatever the pack's size.
fn windows(objects: &[NewObject]) -> impl Iterator<Item = &[NewObject]> {
    let mut rest = objects;
    std::iter::from_fn(move || {
        let (mut n, mut bytes) = (0, 0);
        while bytes < WINDOW_BYTES && n < rest.len() {
            bytes += rest[n].data.len() + 64;
            n += 1;
        }
        let (window, tail) = rest.split_at(n);
        rest = tail;
        (n > 0).then_some(window)
    })
}

/// Input bytes per window of [`windows`].
const WINDOW_BYTES: usize = 8 << 20;

/// Pack entries (header + zlib stream) and their CRC32s, in `objects` order, made on up to `threads` threads
/// (each with its own [`Deflater`], whose output depends on the input only).
fn encode_all(
    objects: &[NewObject],
    zlib_rs: bool,
    threads: usize,
) -> io::Result<Vec<(Vec<u8>, u32)>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> io::Result<Vec<(usize, Vec<u8>, u32)>> {
        let (mut deflater, mut out) = (Deflater::default(), Vec::new());
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(object) = objects.get(i) else {
                return Ok(out);
            };
            let raw = encode(object, zlib_rs, &mut deflater)?;
            let crc = crc32fast::hash(&raw);
            out.push((i, raw, crc));
        }
    };
    let threads = threads.min(objects.len() / 64 + 1);
    let parts: Vec<io::Result<Vec<_>>> = crate::par::on_threads(threads, work);
    let mut all = Vec::with_capacity(objects.len());
    for part in parts {
        all.extend(part?);
    }
    all.sort_unstable_by_key(|(i, _, _)| *i);
    Ok(all.into_iter().map(|(_, raw, crc)| (raw, crc)).collect())
}

/// One pack entry: header, then the object's zlib stream.
fn encode(object: &NewObject, zlib_rs: bool, deflater: &mut Deflater) -> io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(object.data.len() / 2 + 16);
    entry_header(object.kind, object.data.len(), &mut raw);
    match object.kind {
        // Blobs (metadata.json) compress well. Commits and trees are mostly hashes: stored, they cost
        // nothing to encode for a few percent of pack size.
        Kind::Blob if zlib_rs => zlib_rs_fast(&object.data, &mut raw)?,
        Kind::Blob => deflater.zlib(&object.data, &mut raw),
        _ => stored_zlib(&object.data, &mut raw),
    }
    Ok(raw)
}

fn write_index(
    path: &Path,
    hash: gix::hash::Kind,
    mut entries: Vec<Entry>,
    pack_checksum: &[u8],
) -> io::Result<()> {
    entries.sort_by_key(|e| e.id);
    let file = File::create(path)?;
    let mut out = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: gix::hash::hasher(hash),
        written: 0,
    };
    out.write_all(b"\xfftOc")?;
    out.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for e in &entries {
        fanout[e.id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        out.write_all(&total.to_be_bytes())?;
    }
    for e in &entries {
        out.write_all(e.id.as_bytes())?;
    }
    for e in &entries {
        out.write_all(&e.crc.to_be_bytes())?;
    }
    let mut large = Vec::new();
    for e in &entries {
        let small = if e.offset < 0x8000_0000 {
            e.offset as u32
        } else {
            large.push(e.offset);
            0x8000_0000 | (large.len() as u32 - 1)
        };
        out.write_all(&small.to_be_bytes())?;
    }
    for offset in large {
        out.write_all(&offset.to_be_bytes())?;
    }
    out.write_all(pack_checksum)?;
    let checksum = out
        .hasher
        .clone()
        .try_finalize()
        .expect("hashing cannot fail");
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(checksum.as_slice())?;
    file.sync_all()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_header_table() {
        // (kind, size) -> bytes, per the pack format: MSB continuation, 3 type bits, 4 + 7n size bits.
        let cases: &[(Kind, usize, &[u8])] = &[
            (Kind::Blob, 0, &[0x30]),
            (Kind::Blob, 15, &[0x3f]),
            (Kind::Blob, 16, &[0xb0, 0x01]),
            (Kind::Commit, 300, &[0x9c, 0x12]),
            (Kind::Tree, 1 << 20, &[0xa0, 0x80, 0x80, 0x04]),
        ];
        for (kind, size, want) in cases {
            let mut out = Vec::new();
            entry_header(*kind, *size, &mut out);
            assert_eq!(&out, want, "{kind:?} {size}");
        }
    }

    #[test]
    fn the_zlib_rs_baseline_appends_one_stream_that_inflates_back() {
        let data = b"{\"session_id\": \"abc\", \"files\": [\"a\", \"a\", \"a\"]}".repeat(20);
        let mut out = vec![0xaa];
        zlib_rs_fast(&data, &mut out).expect("compress");
        assert_eq!(out[0], 0xaa, "appends after what was there");
        let mut back = vec![0u8; data.len()];
        let mut z = gix::zlib::Decompress::new();
        let status = z
            .decompress(&out[1..], &mut back, gix::zlib::FlushDecompress::Finish)
            .expect("valid zlib");
        assert_eq!(status, gix::zlib::Status::StreamEnd);
        assert_eq!(back, data);
    }
}
