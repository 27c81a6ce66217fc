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
}
