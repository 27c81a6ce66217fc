//! Transcript chunking and content hashes, as the upstream CLI does them.
//!
//! Invariants:
//! - A transcript of at most [`MAX_CHUNK`] bytes is stored unchanged as `full.jsonl`.
//! - A larger one is split at line boundaries: each split point's `\n` is dropped, so
//!   [`reassemble`] (join with `\n`) restores the input byte for byte. Chunk 0 is `full.jsonl`, chunk i ≥ 1 is
//!   `full.jsonl.%03d`.
//! - The content hash is `sha256:<64 lowercase hex>` over the whole, unchunked bytes (no trailing newline).
//!
//! Failure modes: a single line longer than the cap cannot be chunked ([`ChunkError::LineTooLong`]).

use sha2::{Digest, Sha256};

/// Chunk cap: 50 MiB (GitHub's 100 MB blob limit with margin).
pub const MAX_CHUNK: usize = 50 * 1024 * 1024;
/// Base name of the raw transcript.
pub const TRANSCRIPT: &str = "full.jsonl";

/// Chunking failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("transcript line {line} is {len} bytes, larger than the {max}-byte chunk limit")]
    LineTooLong { line: usize, len: usize, max: usize },
}

/// File name of chunk `i`.
pub fn chunk_name(i: usize) -> String {
    chunk_name_of(TRANSCRIPT, i)
}

/// File name of chunk `i` of a transcript stored as `base` (`base`, `base.001`, …): the same rule for
/// `full.jsonl` and for subagent transcripts (`agent-<id>.jsonl`).
pub fn chunk_name_of(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_string()
    } else {
        format!("{base}.{i:03}")
    }
}

/// Index of a chunk file name (`full.jsonl` → 0, `full.jsonl.007` → 7), `None` for other names.
pub fn chunk_index(name: &str) -> Option<usize> {
    chunk_index_of(TRANSCRIPT, name)
}

/// Index of chunk file `name` of the transcript stored as `base`, `None` for other names.
pub fn chunk_index_of(base: &str, name: &str) -> Option<usize> {
    if name == base {
        return Some(0);
    }
    let suffix = name.strip_prefix(base)?.strip_prefix('.')?;
    (suffix.len() >= 3 && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then(|| suffix.parse().ok())
        .flatten()
        .filter(|&i| i > 0)
}

/// Split `data` into chunks of at most `max` bytes at line boundaries.
pub fn chunk(data: &[u8], max: usize) -> Result<Vec<&[u8]>, ChunkError> {
    if data.len() <= max {
        return Ok(vec![data]);
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while data.len() - start > max {
        // The last newline at or before start+max ends this chunk (the newline itself is dropped).
        let window = &data[start..=start + max];
        match window.iter().rposition(|&b| b == b'\n') {
            Some(pos) => {
                chunks.push(&data[start..start + pos]);
                start += pos + 1;
            }
            None => {
                let line = data[..start].iter().filter(|&&b| b == b'\n').count() + 1;
                let len = data[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(data.len() - start);
                return Err(ChunkError::LineTooLong { line, len, max });
            }
        }
    }
    chunks.push(&data[start..]);
    Ok(chunks)
}

/// Join chunks back into the original transcript.
pub fn reassemble(chunks: &[Vec<u8>]) -> Vec<u8> {
    chunks.join(&b'\n')
}

/// `sha256:<hex>` of `data`.
pub fn content_hash(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        for (i, name) in [
            (0, "full.jsonl"),
            (1, "full.jsonl.001"),
            (12, "full.jsonl.012"),
            (1000, "full.jsonl.1000"),
        ] {
            assert_eq!(chunk_name(i), name);
            assert_eq!(chunk_index(name), Some(i));
        }
        for bad in [
            "full.jsonl.",
            "full.jsonl.1",
            "full.jsonl.000",
            "full.jsonlx",
            "full.log",
            "full.jsonl.0a1",
        ] {
            assert_eq!(chunk_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn chunk_round_trips() {
        let cases: &[(&[u8], usize, usize)] = &[
            (b"", 4, 1),
            (b"abc", 4, 1),
            (b"ab\ncd\nef\n", 5, 2),
            (b"ab\ncd\nef", 5, 2),
            (b"a\nb\nc\nd\n", 3, 3),
            (b"\n\n\n\n\n\n", 2, 3),
            (b"abcd\nefgh\n", 5, 2),
        ];
        for &(data, max, n) in cases {
            let chunks = chunk(data, max).expect("chunkable");
            assert_eq!(chunks.len(), n, "{:?}", String::from_utf8_lossy(data));
            assert!(chunks.iter().all(|c| c.len() <= max));
            let owned: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
            assert_eq!(reassemble(&owned), data);
        }
    }

    #[test]
    fn overlong_line_is_an_error() {
        let err = chunk(b"ab\nabcdefgh\ncd", 4).expect_err("line too long");
        assert_eq!(
            err,
            ChunkError::LineTooLong {
                line: 2,
                len: 8,
                max: 4
            }
        );
    }

    #[test]
    fn hash_format() {
        assert_eq!(
            content_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
