//! The receive-pack ref advertisement of a [`Connection`]: reading it (kept verbatim, refs and capabilities
//! parsed), rewriting it without some refs, and pkt-line framing.
//!
//! Invariants: [`Connection::advertisement`] holds exactly the bytes received, up to and including the flush;
//! a rewritten advertisement always carries the capabilities on its first ref line (a `capabilities^{}` line
//! when no ref remains), as receive-pack itself announces an empty repository.
//!
//! Failure modes: a connection that ends before the flush, a bad pkt-line length or an `ERR` line is a
//! [`ConnectError::Remote`] naming the URL (the `ERR` text passed on verbatim).

use std::io::{BufRead, Read};

use super::{Advertised, ConnectError, Connection};

impl Connection {
    pub(super) fn read_advertisement(&mut self) -> Result<(), ConnectError> {
        let url = self.url.clone();
        let hung_up = || ConnectError::Remote {
            url: url.clone(),
            message: "the remote end hung up before it listed its refs".into(),
        };
        loop {
            let mut head = [0u8; 4];
            if self.reader.read_exact(&mut head).is_err() {
                return Err(hung_up());
            }
            self.advertisement.extend_from_slice(&head);
            let len = std::str::from_utf8(&head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnectError::Remote {
                    url: url.clone(),
                    message: format!(
                        "protocol error: bad line length {:?}",
                        String::from_utf8_lossy(&head)
                    ),
                })?;
            if len == 0 {
                return Ok(());
            }
            if len < 4 {
                continue;
            }
            let mut payload = vec![0u8; len - 4];
            if self.reader.read_exact(&mut payload).is_err() {
                return Err(hung_up());
            }
            self.advertisement.extend_from_slice(&payload);
            self.parse_line(&payload)?;
            self.lines.push(payload);
        }
    }

    fn parse_line(&mut self, payload: &[u8]) -> Result<(), ConnectError> {
        let (body, caps) = match payload.iter().position(|&b| b == 0) {
            Some(nul) => (&payload[..nul], Some(&payload[nul + 1..])),
            None => (payload, None),
        };
        if let Some(caps) = caps {
            self.capabilities = String::from_utf8_lossy(caps).trim_end().to_string();
        }
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        if let Some(msg) = body.strip_prefix(b"ERR ") {
            return Err(ConnectError::Remote {
                url: self.url.clone(),
                message: format!("remote error: {}", String::from_utf8_lossy(msg)),
            });
        }
        let Some(space) = body.iter().position(|&b| b == b' ') else {
            return Ok(());
        };
        let (oid, name) = (&body[..space], &body[space + 1..]);
        let is_ref = name.starts_with(b"refs/") || name == b"HEAD";
        if is_ref && oid.iter().all(u8::is_ascii_hexdigit) {
            if let (Ok(oid), Ok(name)) = (std::str::from_utf8(oid), std::str::from_utf8(name)) {
                self.refs.push(Advertised {
                    name: name.to_string(),
                    oid: oid.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The advertisement without the refs for which `drop` is true, the capabilities moved to the first line
    /// that remains (as receive-pack itself announces an empty repository when none does).
    pub fn advertisement_without(&self, drop: &dyn Fn(&str) -> bool) -> Vec<u8> {
        let mut caps: Option<&[u8]> = None;
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let (body, c) = match line.iter().position(|&b| b == 0) {
                Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
                None => (line.as_slice(), None),
            };
            if c.is_some() {
                caps = c;
            }
            let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
            let name = trimmed
                .iter()
                .position(|&b| b == b' ')
                .map(|sp| &trimmed[sp + 1..])
                .and_then(|n| std::str::from_utf8(n).ok());
            if name.is_some_and(drop) {
                continue;
            }
            let mut l = trimmed.to_vec();
            l.push(b'\n');
            kept.push(l);
        }
        let first_ref = usize::from(kept.first().is_some_and(|l| l.starts_with(b"version ")));
        if let Some(caps) = caps {
            let caps_line = |body: &[u8]| {
                let mut l = body.strip_suffix(b"\n").unwrap_or(body).to_vec();
                l.push(0);
                l.extend_from_slice(caps);
                if l.last() != Some(&b'\n') {
                    l.push(b'\n');
                }
                l
            };
            if kept.len() > first_ref {
                kept[first_ref] = caps_line(&kept[first_ref]);
            } else {
                let zero = "0".repeat(if self.object_format() == "sha256" {
                    64
                } else {
                    40
                });
                kept.push(caps_line(format!("{zero} capabilities^{{}}").as_bytes()));
            }
        }
        let mut out: Vec<u8> = kept.iter().flat_map(|l| pkt(l)).collect();
        out.extend_from_slice(b"0000");
        out
    }
}

/// One pkt-line.
pub fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Read one pkt-line: `Ok(None)` at a flush (or other special packet), `Err` at EOF or bad framing.
pub fn read_pkt(r: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    let len = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or_else(|| std::io::Error::other("bad pkt-line length"))?;
    if len < 4 {
        return Ok(None);
    }
    let mut payload = vec![0u8; len - 4];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    /// A connection with nothing read yet and no server behind it (for feeding lines by hand).
    fn empty() -> Connection {
        Connection {
            url: "u".into(),
            advertisement: Vec::new(),
            lines: Vec::new(),
            refs: Vec::new(),
            capabilities: String::new(),
            reader: BufReader::new(Box::new(std::io::empty())),
            writer: None,
            child: None,
        }
    }

    #[test]
    fn advertisement_lines() {
        let mut c = empty();
        let a = "0123456789abcdef0123456789abcdef01234567";
        c.parse_line(format!("{a} refs/heads/main\0report-status object-format=sha1\n").as_bytes())
            .expect("ref line");
        c.parse_line(format!("{a} .have\n").as_bytes())
            .expect("have");
        c.parse_line(format!("{} capabilities^{{}}\n", "0".repeat(40)).as_bytes())
            .expect("caps");
        assert_eq!(
            c.refs,
            vec![Advertised {
                name: "refs/heads/main".into(),
                oid: a.into()
            }]
        );
        assert_eq!(c.object_format(), "sha1");
        let err = c.parse_line(b"ERR access denied").expect_err("ERR");
        assert!(err.to_string().contains("access denied"), "{err}");
    }

    #[test]
    fn advertisement_without_table() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let zero = "0".repeat(40);
        let caps = "report-status delete-refs\n";
        let cp = "refs/entire/checkpoints/c4/a3b2c4d5e6c4";
        let cases: Vec<(Vec<String>, Vec<String>)> = vec![
            (
                vec![
                    format!("{a} {cp}\0{caps}"),
                    format!("{a} refs/heads/main\n"),
                ],
                vec![format!("{a} refs/heads/main\0{caps}")],
            ),
            (
                vec![format!("{a} {cp}\0{caps}")],
                vec![format!("{zero} capabilities^{{}}\0{caps}")],
            ),
            (
                vec![
                    format!("{a} refs/heads/main\0{caps}"),
                    format!("{a} .have\n"),
                ],
                vec![
                    format!("{a} refs/heads/main\0{caps}"),
                    format!("{a} .have\n"),
                ],
            ),
            (
                vec!["version 1\n".into(), format!("{a} {cp}\0{caps}")],
                vec![
                    "version 1\n".into(),
                    format!("{zero} capabilities^{{}}\0{caps}"),
                ],
            ),
        ];
        for (input, want) in cases {
            let c = Connection {
                url: "u".into(),
                advertisement: Vec::new(),
                lines: input.iter().map(|l| l.as_bytes().to_vec()).collect(),
                refs: Vec::new(),
                capabilities: String::new(),
                reader: BufReader::new(Box::new(std::io::empty())),
                writer: None,
                child: None,
            };
            let got = c.advertisement_without(&|n| n.starts_with("refs/entire/"));
            let mut expect: Vec<u8> = want.iter().flat_map(|l| pkt(l.as_bytes())).collect();
            expect.extend_from_slice(b"0000");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expect),
                "{input:?}"
            );
        }
    }

    #[test]
    fn err_line_is_an_error() {
        let mut c = empty();
        let err = c.parse_line(b"ERR access denied").expect_err("ERR");
        assert!(err.to_string().contains("access denied"), "{err}");
    }
}
