//! Byte pumping ([`copy_flushing`]) and a passive pkt-line observer for the relay's byte pump: it never changes a byte, it only notes the
//! `want <oid>` lines git sends, so the checkpoint pull-along knows which commits a protocol-v2 fetch brought.
//!
//! Invariant: malformed framing makes the observer give up silently (it then reports what it saw so far); the
//! bytes themselves are forwarded by the pump regardless.

use std::io::{BufRead, Write};

/// Copy everything from `from` to `to`, flushing after each chunk, until `from` ends; every chunk is also
/// shown to `observe`. Bytes already buffered in `from` go first, so a line reader can hand over to a pump.
pub fn copy_flushing(from: &mut impl BufRead, to: &mut impl Write, mut observe: impl FnMut(&[u8])) {
    loop {
        let n = match from.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => {
                observe(buf);
                if to.write_all(buf).and_then(|_| to.flush()).is_err() {
                    return;
                }
                buf.len()
            }
        };
        from.consume(n);
    }
}

/// Filters the ref advertisement that opens a `git-receive-pack` conversation: lines for refs under
/// `refs/entire/` are dropped (so `--mirror`/`--prune` cannot delete checkpoints) unless `keep` says
/// otherwise, the capabilities travel on the first line that remains, and everything after the advertisement
/// passes unchanged.
#[derive(Default)]
pub struct AdvertFilter<'a> {
    pending: Vec<u8>,
    lines: Vec<Vec<u8>>,
    done: bool,
    /// Refs under `refs/entire/` to advertise after all (e.g. those the local repository also has).
    keep: Option<&'a dyn Fn(&str) -> bool>,
}

impl std::fmt::Debug for AdvertFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvertFilter")
            .field("pending", &self.pending.len())
            .field("lines", &self.lines.len())
            .field("done", &self.done)
            .finish()
    }
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

impl<'a> AdvertFilter<'a> {
    /// A filter that also passes the `refs/entire/` refs `keep` accepts.
    pub fn keeping(keep: &'a dyn Fn(&str) -> bool) -> Self {
        AdvertFilter {
            keep: Some(keep),
            ..Default::default()
        }
    }

    /// Feed server bytes; returns the bytes to pass on to git now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.done {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        loop {
            if self.pending.len() < 4 {
                return Vec::new();
            }
            let len = std::str::from_utf8(&self.pending[..4])
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            let Some(len) = len else {
                return self.give_up();
            };
            if len == 0 {
                self.pending.drain(..4);
                return self.finish();
            }
            if len < 4 {
                return self.give_up();
            }
            if self.pending.len() < len {
                return Vec::new();
            }
            let payload: Vec<u8> = self.pending[4..len].to_vec();
            self.pending.drain(..len);
            self.lines.push(payload);
        }
    }

    /// Not an advertisement we understand: pass everything through untouched from here on.
    fn give_up(&mut self) -> Vec<u8> {
        self.done = true;
        let mut out: Vec<u8> = self.lines.drain(..).flat_map(|l| pkt(&l)).collect();
        out.append(&mut self.pending);
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        self.done = true;
        let mut caps: Option<Vec<u8>> = None;
        let mut oid_len = 40;
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for line in self.lines.drain(..) {
            let (body, c) = match line.iter().position(|&b| b == 0) {
                Some(nul) => (line[..nul].to_vec(), Some(line[nul + 1..].to_vec())),
                None => (line.clone(), None),
            };
            if c.is_some() {
                caps = c;
            }
            let text = String::from_utf8_lossy(&body);
            let Some((oid, name)) = text.trim_end_matches('\n').split_once(' ') else {
                kept.push(line);
                continue;
            };
            oid_len = oid.len();
            if !name.starts_with("refs/entire/") || self.keep.is_some_and(|k| k(name)) {
                kept.push(body);
            }
        }
        let mut out = Vec::new();
        let version_line = kept.first().is_some_and(|l| l.starts_with(b"version "));
        let first_ref = usize::from(version_line);
        if let Some(caps) = caps {
            if kept.len() > first_ref {
                let line = &mut kept[first_ref];
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                line.push(0);
                line.extend_from_slice(&caps);
            } else {
                let mut line = format!("{} capabilities^{{}}", "0".repeat(oid_len)).into_bytes();
                line.push(0);
                line.extend_from_slice(&caps);
                kept.push(line);
            }
        }
        for l in kept {
            out.extend(pkt(&l));
        }
        out.extend_from_slice(b"0000");
        out.append(&mut self.pending);
        out
    }
}

/// Collects `want` object IDs from a stream of pkt-lines fed in arbitrary chunks.
#[derive(Debug, Default)]
pub struct WantSniffer {
    pending: Vec<u8>,
    wants: Vec<String>,
    broken: bool,
}

impl WantSniffer {
    /// Feed the next chunk of the git → server stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        while self.pending.len() >= at + 4 {
            let Some(len) = std::str::from_utf8(&self.pending[at..at + 4])
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            else {
                self.broken = true;
                self.pending.clear();
                return;
            };
            if len < 4 {
                at += 4; // flush, delimiter, response-end
                continue;
            }
            if self.pending.len() < at + len {
                break;
            }
            let payload = &self.pending[at + 4..at + len];
            if let Some(rest) = payload.strip_prefix(b"want ") {
                let oid: String = String::from_utf8_lossy(rest)
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect();
                if !oid.is_empty() && !self.wants.contains(&oid) {
                    self.wants.push(oid);
                }
            }
            at += len;
        }
        self.pending.drain(..at);
    }

    /// The object IDs git asked for.
    pub fn wants(self) -> Vec<String> {
        self.wants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> Vec<u8> {
        format!("{:04x}{s}", s.len() + 4).into_bytes()
    }

    #[test]
    fn advertisement_filter_table() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let b = "89abcdef0123456789abcdef0123456789abcdef";
        let zero = "0".repeat(40);
        let caps = "report-status delete-refs ofs-delta";
        let cases: Vec<(Vec<String>, Vec<String>)> = vec![
            (
                vec![
                    format!("{a} refs/entire/checkpoints/c4/a3b2c4d5e6c4\0{caps}\n"),
                    format!("{b} refs/heads/main\n"),
                ],
                vec![format!("{b} refs/heads/main\0{caps}\n")],
            ),
            (
                vec![format!(
                    "{a} refs/entire/checkpoints/c4/a3b2c4d5e6c4\0{caps}\n"
                )],
                vec![format!("{zero} capabilities^{{}}\0{caps}\n")],
            ),
            (
                vec![
                    format!("{b} refs/heads/main\0{caps}\n"),
                    format!("{a} refs/tags/v1\n"),
                    format!("{a} .have\n"),
                ],
                vec![
                    format!("{b} refs/heads/main\0{caps}\n"),
                    format!("{a} refs/tags/v1\n"),
                    format!("{a} .have\n"),
                ],
            ),
            (
                vec![
                    "version 1\n".into(),
                    format!("{zero} capabilities^{{}}\0{caps}\n"),
                ],
                vec![
                    "version 1\n".into(),
                    format!("{zero} capabilities^{{}}\0{caps}\n"),
                ],
            ),
        ];
        for (input, want) in cases {
            let mut stream: Vec<u8> = input
                .iter()
                .flat_map(|l| super::pkt(l.as_bytes()))
                .collect();
            stream.extend_from_slice(b"0000PACK-and-the-rest");
            let mut expect: Vec<u8> = want.iter().flat_map(|l| super::pkt(l.as_bytes())).collect();
            expect.extend_from_slice(b"0000PACK-and-the-rest");
            for cut in [0, 3, 7, stream.len() / 2, stream.len()] {
                let mut f = AdvertFilter::default();
                let mut out = f.feed(&stream[..cut]);
                out.extend(f.feed(&stream[cut..]));
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&expect),
                    "{input:?} cut {cut}"
                );
            }
        }
        let mut junk = AdvertFilter::default();
        assert_eq!(junk.feed(b"zzzz-not-pkt"), b"zzzz-not-pkt");
        assert_eq!(junk.feed(b"more"), b"more");
    }

    #[test]
    fn sniff_table() {
        let oid_a = "0123456789abcdef0123456789abcdef01234567";
        let oid_b = "89abcdef0123456789abcdef0123456789abcdef";
        let mut stream = Vec::new();
        stream.extend(pkt("command=fetch\n"));
        stream.extend(b"0001");
        stream.extend(pkt("thin-pack\n"));
        stream.extend(pkt(&format!("want {oid_a}\n")));
        stream.extend(pkt(&format!("want {oid_b}\n")));
        stream.extend(pkt(&format!("want {oid_a}\n")));
        stream.extend(pkt(&format!("have {oid_b}\n")));
        stream.extend(pkt("done\n"));
        stream.extend(b"0000");
        // Every way of cutting the stream into two chunks gives the same result.
        for cut in 0..=stream.len() {
            let mut s = WantSniffer::default();
            s.feed(&stream[..cut]);
            s.feed(&stream[cut..]);
            assert_eq!(
                s.wants(),
                vec![oid_a.to_string(), oid_b.to_string()],
                "cut at {cut}"
            );
        }
        let mut bad = WantSniffer::default();
        bad.feed(b"zzzz");
        bad.feed(&pkt(&format!("want {oid_a}\n")));
        assert!(bad.wants().is_empty());
    }

    /// `bytes` fed to `feed` in pieces cut at `cuts` (positions taken modulo the length).
    fn in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), cuts in proptest::collection::vec(0usize..300, 0..5)) {
            let mut filter = AdvertFilter::default();
            let mut sniffer = WantSniffer::default();
            for piece in in_pieces(&bytes, &cuts) {
                let _ = filter.feed(&piece);
                sniffer.feed(&piece);
            }
            let _ = sniffer.wants();
        }

        /// An advertisement without checkpoint refs passes unchanged however it is cut; wants are found
        /// however the request is cut.
        #[test]
        fn chunking_does_not_matter(names in proptest::collection::vec("refs/heads/[a-z]{1,8}", 1..6), oids in proptest::collection::vec("[0-9a-f]{40}", 1..6), cuts in proptest::collection::vec(0usize..600, 0..6)) {
            let mut advert = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let line = match i {
                    0 => format!("{} {n}\0report-status\n", "a".repeat(40)),
                    _ => format!("{} {n}\n", "a".repeat(40)),
                };
                advert.extend(pkt(&line));
            }
            advert.extend(b"0000");
            let mut filter = AdvertFilter::default();
            let mut out = Vec::new();
            for piece in in_pieces(&advert, &cuts) {
                out.extend(filter.feed(&piece));
            }
            proptest::prop_assert_eq!(out, advert);

            let mut request = pkt("command=fetch\n");
            request.extend(b"0001");
            for o in &oids {
                request.extend(pkt(&format!("want {o}\n")));
            }
            request.extend(b"0000");
            let mut sniffer = WantSniffer::default();
            for piece in in_pieces(&request, &cuts) {
                sniffer.feed(&piece);
            }
            let mut want: Vec<String> = Vec::new();
            for o in oids {
                if !want.contains(&o) {
                    want.push(o);
                }
            }
            proptest::prop_assert_eq!(sniffer.wants(), want);
        }
    }
}
