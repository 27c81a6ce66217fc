//! In-process protocol-v2 `ls-refs` with `ref-prefix` filtering, through gix.
//!
//! Used for the helper's `list` in own mode (ssh, git://, file://, paths) and for `--reconcile`. The server
//! filters by prefix, so a remote holding 100,000 checkpoint refs costs nothing when only `refs/heads/` is asked
//! for. Servers that only speak protocol v0/v1 send their full advertisement; the result is filtered here, so
//! callers always see exactly the refs under the requested prefixes.
//!
//! A local repository (`file://` or a path) is read in-process instead, exactly as `git-upload-pack` would
//! advertise it, unless it hides refs (`transfer.hideRefs`, `uploadpack.hideRefs`): no process, no protocol.
//!
//! gix needs a repository for configuration (ssh command, protocol version, url rewrites). Outside a repository
//! (`git ls-remote entire::… ` run anywhere) a throw-away empty repository provides the defaults.
//!
//! Failure modes: [`LsRefsError::Unreachable`] for anything that prevented a listing (connection, handshake,
//! authentication); [`LsRefsError::Setup`] for local problems.

use gix::bstr::ByteSlice;
use gix::ObjectId;

use crate::git::repo::Repo;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of listing remote refs.
#[derive(Debug, thiserror::Error)]
pub enum LsRefsError {
    #[error("cannot list refs of {url}")]
    Unreachable {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot prepare listing refs of {url}: {what}")]
    Setup {
        url: String,
        what: String,
        #[source]
        source: BoxError,
    },
}

/// What a remote ref points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    /// A direct ref; `peeled` is the target of an annotated tag.
    Object {
        id: ObjectId,
        peeled: Option<ObjectId>,
    },
    /// A symbolic ref (usually `HEAD`) and the object its target points at (`None` when unborn).
    Symbolic {
        target: String,
        id: Option<ObjectId>,
    },
}

/// One advertised ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub value: RefValue,
}

/// The result of one listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub refs: Vec<RemoteRef>,
    /// The remote's object format when it announced one (`sha1`, `sha256`).
    pub object_format: Option<String>,
}

/// The refspec that makes gix send `prefix` as a `ref-prefix`.
fn spec_for(prefix: &str) -> String {
    if prefix.ends_with('/') {
        format!("{prefix}*:{prefix}*")
    } else {
        prefix.to_string()
    }
}

/// True if `name` is selected by one of `prefixes` (an exact name or a `…/` prefix).
pub fn matches(prefixes: &[&str], name: &str) -> bool {
    prefixes.iter().any(|p| {
        if p.ends_with('/') {
            name.starts_with(p)
        } else {
            name == *p
        }
    })
}

/// List the refs of `url` under `prefixes` (each an exact name like `HEAD` or a prefix ending in `/`).
pub fn ls_refs(repo: Option<&Repo>, url: &str, prefixes: &[&str]) -> Result<Listing, LsRefsError> {
    if let Some(listing) = local_path(url).and_then(|p| ls_refs_local(&p, prefixes)) {
        return Ok(listing);
    }
    match repo {
        Some(r) => ls_refs_in(r.gix(), url, prefixes),
        None => {
            let setup = |what: &str, source: BoxError| LsRefsError::Setup {
                url: url.to_string(),
                what: what.to_string(),
                source,
            };
            let dir = tempfile::Builder::new()
                .prefix("entire-ls-refs-")
                .tempdir()
                .map_err(|e| setup("temporary directory", Box::new(e)))?;
            let scratch =
                gix::init_bare(dir.path()).map_err(|e| setup("scratch repository", Box::new(e)))?;
            ls_refs_in(&scratch, url, prefixes)
        }
    }
}

fn ls_refs_in(
    repo: &gix::Repository,
    url: &str,
    prefixes: &[&str],
) -> Result<Listing, LsRefsError> {
    let setup = |what: &str, source: BoxError| LsRefsError::Setup {
        url: url.to_string(),
        what: what.to_string(),
        source,
    };
    let unreachable = |source: BoxError| LsRefsError::Unreachable {
        url: url.to_string(),
        source,
    };
    // `refs/` means everything: no `ref-prefix` at all (gix turns a `refs/*` refspec into a listing of `HEAD`
    // alone).
    let specs: Vec<String> = match prefixes.contains(&"refs/") {
        true => Vec::new(),
        false => prefixes.iter().map(|p| spec_for(p)).collect(),
    };
    let remote = repo
        .remote_at(url)
        .map_err(|e| setup("invalid URL", Box::new(e)))?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(
            specs.iter().map(String::as_str),
            gix::remote::Direction::Fetch,
        )
        .map_err(|e| setup("invalid prefix", Box::new(e)))?;
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| unreachable(Box::new(e)))?;
    let (map, handshake) = connection
        .ref_map(
            gix::progress::Discard,
            gix::remote::ref_map::Options::default(),
        )
        .map_err(|e| unreachable(Box::new(e)))?;
    let object_format = handshake
        .capabilities
        .capability("object-format")
        .and_then(|c| c.value().map(|v| v.to_str_lossy().into_owned()));
    let mut refs = Vec::new();
    for r in &map.remote_refs {
        let converted = convert(r);
        if matches(prefixes, &converted.name) {
            refs.push(converted);
        }
    }
    Ok(Listing {
        refs,
        object_format,
    })
}

/// The filesystem path of a local URL (`file://…` or a path), `None` for network URLs.
pub fn local_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(rest.into());
    }
    if url.contains("://") {
        return None;
    }
    // scp-like `host:path` is ssh unless a slash comes before the first colon (git's rule).
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) if slash < colon => Some(url.into()),
        (Some(_), _) => None,
        (None, _) => Some(url.into()),
    }
}

/// Read a local repository's refs directly, as `git-upload-pack` would advertise them, without starting it.
/// `None` (use the protocol) when the repository cannot be opened, hides refs from upload-pack, or stores refs
/// in a backend other than files (gix cannot read reftable).
fn ls_refs_local(path: &std::path::Path, prefixes: &[&str]) -> Option<Listing> {
    let remote = gix::open_opts(path, gix::open::Options::isolated()).ok()?;
    let config = remote.config_snapshot();
    for key in [
        "transfer.hideRefs",
        "uploadpack.hideRefs",
        "uploadpack.allowRefInWant",
        "extensions.refStorage",
    ] {
        if config.string(key).is_some() {
            return None;
        }
    }
    let peel = PackedPeel::read(remote.common_dir(), prefixes);
    let mut refs = Vec::new();
    // Overlapping prefixes (`refs/heads/` and `refs/heads/main`) list a ref once, as the protocol does.
    let inside_another = |p: &str| {
        prefixes
            .iter()
            .any(|q| *q != p && q.ends_with('/') && p.starts_with(q))
    };
    for p in prefixes.iter().filter(|p| !inside_another(p)) {
        if !p.ends_with('/') {
            refs.extend(local_exact(&remote, p)?);
            continue;
        }
        let platform = remote.references().ok()?;
        for r in platform.prefixed(*p).ok()? {
            let mut r = r.ok()?;
            let name = r.name().as_bstr().to_str_lossy().into_owned();
            let Some(id) = r.target().try_id().map(|i| i.to_owned()) else {
                continue;
            };
            let peeled = match peel.known(&name, r.inner.peeled) {
                Some(known) => known,
                None => match remote.find_header(id).ok()?.kind() {
                    gix::object::Kind::Tag => Some(r.peel_to_id().ok()?.detach()),
                    _ => None,
                },
            };
            refs.push(RemoteRef {
                name,
                value: RefValue::Object { id, peeled },
            });
        }
    }
    let object_format = Some(
        match remote.object_hash() {
            gix::hash::Kind::Sha1 => "sha1",
            #[allow(unreachable_patterns)]
            _ => "sha256",
        }
        .to_string(),
    );
    Some(Listing {
        refs,
        object_format,
    })
}

/// What `packed-refs` already says about peeling, so that listing a large remote costs no object lookup per
/// ref (git's `upload-pack` reads the same lines). A packed ref is peeled from its `^` line when the header
/// promises complete peel lines (`fully-peeled`: every ref; `peeled`: refs under `refs/tags/`); a loose ref,
/// or a packed one without such a promise, is looked up in the object database.
struct PackedPeel {
    /// The header's `fully-peeled` trait.
    fully: bool,
    /// The header's `peeled` trait (complete peel lines for `refs/tags/`).
    tags: bool,
    /// Loose refs under the listed prefixes: they shadow their packed entry and carry no peel line.
    loose: std::collections::HashSet<String>,
}

impl PackedPeel {
    fn read(common: &std::path::Path, prefixes: &[&str]) -> Self {
        let traits = std::fs::File::open(common.join("packed-refs"))
            .ok()
            .and_then(|f| {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut line).ok()?;
                Some(line)
            })
            .unwrap_or_default();
        let (fully, tags) = header_traits(&traits);
        let loose = prefixes
            .iter()
            .filter(|p| p.ends_with('/'))
            .flat_map(|p| crate::git::packedrefs::loose_refs(common, p))
            .collect();
        PackedPeel { fully, tags, loose }
    }

    /// `Some(peeled)` when `packed-refs` answers for `name` (whose packed peel line, if any, is `from_packed`),
    /// `None` when the object must be looked up.
    fn known(&self, name: &str, from_packed: Option<ObjectId>) -> Option<Option<ObjectId>> {
        if from_packed.is_some() {
            return Some(from_packed);
        }
        let promised = self.fully || (self.tags && name.starts_with("refs/tags/"));
        (promised && !self.loose.contains(name)).then_some(None)
    }
}

/// The `fully-peeled` and `peeled` traits of a `packed-refs` header line (false, false when it is none).
fn header_traits(first_line: &str) -> (bool, bool) {
    let Some(traits) = first_line.strip_prefix("# pack-refs with:") else {
        return (false, false);
    };
    let has = |t: &str| traits.split_ascii_whitespace().any(|x| x == t);
    (has("fully-peeled"), has("peeled"))
}

/// One exactly named ref (`HEAD`), symbolic or direct; `None` inside means "cannot read, use the protocol".
fn local_exact(remote: &gix::Repository, name: &str) -> Option<Vec<RemoteRef>> {
    let Ok(Some(mut r)) = remote.try_find_reference(name) else {
        return Some(Vec::new());
    };
    // gix expands short names (`other` → `refs/heads/other`); the protocol lists exact names only.
    if r.name().as_bstr() != name.as_bytes() {
        return Some(Vec::new());
    }
    let value = match r
        .target()
        .try_name()
        .map(|n| n.as_bstr().to_str_lossy().into_owned())
    {
        Some(target) => RefValue::Symbolic {
            target,
            id: r.peel_to_id().ok().map(|i| i.detach()),
        },
        None => RefValue::Object {
            id: r.target().try_id()?.to_owned(),
            peeled: None,
        },
    };
    Some(vec![RemoteRef {
        name: name.to_string(),
        value,
    }])
}

fn convert(r: &gix::protocol::handshake::Ref) -> RemoteRef {
    use gix::protocol::handshake::Ref;
    let text = |b: &gix::bstr::BString| b.to_str_lossy().into_owned();
    match r {
        Ref::Direct {
            full_ref_name,
            object,
        } => RemoteRef {
            name: text(full_ref_name),
            value: RefValue::Object {
                id: *object,
                peeled: None,
            },
        },
        Ref::Peeled {
            full_ref_name,
            tag,
            object,
        } => RemoteRef {
            name: text(full_ref_name),
            value: RefValue::Object {
                id: *tag,
                peeled: Some(*object),
            },
        },
        Ref::Symbolic {
            full_ref_name,
            target,
            tag,
            object,
        } => RemoteRef {
            name: text(full_ref_name),
            value: RefValue::Symbolic {
                target: text(target),
                id: Some(tag.unwrap_or(*object)),
            },
        },
        Ref::Unborn {
            full_ref_name,
            target,
        } => RemoteRef {
            name: text(full_ref_name),
            value: RefValue::Symbolic {
                target: text(target),
                id: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_table() {
        let prefixes = ["HEAD", "refs/heads/", "refs/tags/"];
        let cases = [
            ("HEAD", true),
            ("refs/heads/main", true),
            ("refs/tags/v1", true),
            ("refs/entire/checkpoints/c4/a3b2c4d5e6c4", false),
            ("refs/headsX", false),
            ("HEADX", false),
        ];
        for (name, want) in cases {
            assert_eq!(matches(&prefixes, name), want, "{name}");
        }
        assert_eq!(spec_for("refs/heads/"), "refs/heads/*:refs/heads/*");
        assert_eq!(spec_for("HEAD"), "HEAD");
    }

    #[test]
    fn header_traits_table() {
        let cases = [
            (
                "# pack-refs with: peeled fully-peeled sorted \n",
                (true, true),
            ),
            ("# pack-refs with: peeled \n", (false, true)),
            ("# pack-refs with: sorted\n", (false, false)),
            ("# pack-refs with:fully-peeled\n", (true, false)),
            ("# pack-refs with: fully-peeledX\n", (false, false)),
            ("0123 refs/heads/main\n", (false, false)),
            ("", (false, false)),
        ];
        for (line, want) in cases {
            assert_eq!(header_traits(line), want, "{line:?}");
        }
    }

    #[test]
    fn packed_peel_answers_only_what_packed_refs_promises() {
        let id = ObjectId::from_hex(b"1111111111111111111111111111111111111111").expect("hex");
        let loose = ["refs/tags/loose".to_string()].into_iter().collect();
        let fully = PackedPeel {
            fully: true,
            tags: true,
            loose,
        };
        assert_eq!(fully.known("refs/heads/a", None), Some(None));
        assert_eq!(fully.known("refs/tags/t", Some(id)), Some(Some(id)));
        assert_eq!(fully.known("refs/tags/loose", None), None);
        let tags = PackedPeel {
            fully: false,
            tags: true,
            loose: Default::default(),
        };
        assert_eq!(tags.known("refs/tags/t", None), Some(None));
        assert_eq!(tags.known("refs/heads/a", None), None);
        let none = PackedPeel {
            fully: false,
            tags: false,
            loose: Default::default(),
        };
        assert_eq!(none.known("refs/tags/t", None), None);
    }

    #[test]
    fn local_path_table() {
        let cases = [
            ("file:///srv/r.git", Some("/srv/r.git")),
            ("/srv/r.git", Some("/srv/r.git")),
            ("../r.git", Some("../r.git")),
            ("./a:b", Some("./a:b")),
            ("host:r.git", None),
            ("git@host:r.git", None),
            ("ssh://host/r.git", None),
            ("https://host/r.git", None),
        ];
        for (url, want) in cases {
            assert_eq!(
                local_path(url).as_deref(),
                want.map(std::path::Path::new),
                "{url}"
            );
        }
    }
}
