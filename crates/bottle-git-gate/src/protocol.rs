//! The smart-HTTP protocol's pure parts: which request is which, pkt-lines, content types.
//!
//! | request | answer |
//! |---|---|
//! | `GET /<name>[.git]/info/refs?service=git-upload-pack` | refresh from upstream, then `upload-pack --advertise-refs` |
//! | `GET /<name>[.git]/info/refs?service=git-receive-pack` | refresh from upstream, then `receive-pack --advertise-refs` |
//! | `POST /<name>[.git]/git-upload-pack` | `upload-pack --stateless-rpc` |
//! | `POST /<name>[.git]/git-receive-pack` | `receive-pack --stateless-rpc` (runs the pre-receive hook) |
//! | `GET /health` | `200 ok` once every repository is ready |
//!
//! Nothing else is served: no dumb HTTP (`/HEAD`, `/objects/…`), no files, no listing.

use http::Method;

/// A git service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Fetch, clone, pull, ls-remote.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// `git-upload-pack` or `git-receive-pack`, as in URLs and content types.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The git subcommand: `upload-pack` or `receive-pack`.
    pub fn subcommand(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
        }
    }

    fn from_name(name: &str) -> Option<Service> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    /// The content type of the ref advertisement.
    pub fn advertisement_type(self) -> String {
        format!("application/x-{}-advertisement", self.name())
    }

    /// The content type a client posts.
    pub fn request_type(self) -> String {
        format!("application/x-{}-request", self.name())
    }

    /// The content type of the answer to a post.
    pub fn result_type(self) -> String {
        format!("application/x-{}-result", self.name())
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `GET /health`.
    Health,
    /// `GET …/info/refs?service=…`: the first request of every git operation.
    Advertise {
        /// The repository as named in the URL (with or without `.git`).
        repo: &'a str,
        /// Which service.
        service: Service,
    },
    /// `POST …/git-upload-pack` or `…/git-receive-pack`.
    Rpc {
        /// The repository as named in the URL.
        repo: &'a str,
        /// Which service.
        service: Service,
    },
    /// Anything else, with the reason to give.
    NotFound(&'static str),
}

/// Route a request by method, path and query.
pub fn route<'a>(method: &Method, path: &'a str, query: Option<&str>) -> Target<'a> {
    if path == "/health" {
        return if method == Method::GET || method == Method::HEAD {
            Target::Health
        } else {
            Target::NotFound("`/health` answers GET only")
        };
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Target::NotFound("not a repository path");
    };
    let (repo, tail) = match rest.split_once('/') {
        Some(split) => split,
        None => return Target::NotFound("not a git request"),
    };
    if repo.is_empty() || repo.starts_with('.') || repo.contains('%') {
        return Target::NotFound("not a repository name");
    }
    match (method, tail) {
        (&Method::GET, "info/refs") => {
            let service = query
                .into_iter()
                .flat_map(|q| q.split('&'))
                .find_map(|pair| pair.strip_prefix("service="))
                .and_then(Service::from_name);
            match service {
                Some(service) => Target::Advertise { repo, service },
                None => Target::NotFound(
                    "the gate speaks git's smart HTTP protocol only (`?service=git-upload-pack` or `git-receive-pack`); update git",
                ),
            }
        }
        (&Method::POST, tail) => match Service::from_name(tail) {
            Some(service) => Target::Rpc { repo, service },
            None => Target::NotFound("not a git request"),
        },
        _ => Target::NotFound(
            "the gate serves git's smart HTTP protocol only; there are no files to download",
        ),
    }
}

/// The entry names a URL's repository part can mean: itself, and without a trailing `.git`.
pub fn entry_candidates(repo: &str) -> impl Iterator<Item = &str> {
    std::iter::once(repo).chain(repo.strip_suffix(".git"))
}

/// One pkt-line: four hex digits of length (the digits included), then the data.
pub fn pkt_line(data: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data.as_bytes());
    out
}

/// The longest pkt-line payload git accepts.
const MAX_PKT_DATA: usize = 65516;

/// An `ERR` pkt-line: git stops and prints `fatal: remote error: <message>`. As the first
/// packet of a ref advertisement it works for protocol v0 and v2 alike.
pub fn err_line(message: &str) -> Vec<u8> {
    let mut text = format!("ERR {}", message.replace(['\n', '\r'], " "));
    if text.len() > MAX_PKT_DATA {
        let mut cut = MAX_PKT_DATA;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    pkt_line(&text)
}

/// The `Git-Protocol` header value as `GIT_PROTOCOL`, when it is what git sends
/// (`version=2`, `key=value` pairs separated by `:`); anything else is dropped, so a header
/// never becomes arbitrary environment.
pub fn git_protocol(header: Option<&str>) -> Option<String> {
    let value = header?;
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b));
    ok.then(|| value.to_owned())
}

/// Whether a `GIT_PROTOCOL` value asks for protocol v2.
pub fn is_v2(protocol: Option<&str>) -> bool {
    protocol.is_some_and(|p| p.split(':').any(|kv| kv == "version=2"))
}

/// The `# service=…` header a v0 advertisement starts with, and its flush.
pub fn service_header(service: Service) -> Vec<u8> {
    let mut out = pkt_line(&format!("# service={}\n", service.name()));
    out.extend_from_slice(b"0000");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(route(&get, "/health", None), Target::Health);
        assert_eq!(
            route(&get, "/app.git/info/refs", Some("service=git-upload-pack")),
            Target::Advertise {
                repo: "app.git",
                service: Service::UploadPack
            }
        );
        assert_eq!(
            route(&get, "/app/info/refs", Some("x=1&service=git-receive-pack")),
            Target::Advertise {
                repo: "app",
                service: Service::ReceivePack
            }
        );
        assert_eq!(
            route(&post, "/app.git/git-receive-pack", None),
            Target::Rpc {
                repo: "app.git",
                service: Service::ReceivePack
            }
        );
        for (method, path, query) in [
            (&get, "/app.git/info/refs", None),
            (&get, "/app.git/HEAD", None),
            (&get, "/app.git/objects/info/packs", None),
            (&get, "/../etc/passwd", None),
            (&get, "/.git/info/refs", Some("service=git-upload-pack")),
            (
                &get,
                "/a%2f..%2fkeys/info/refs",
                Some("service=git-upload-pack"),
            ),
            (&post, "/app.git/git-upload-archive", None),
            (&get, "/app.git/git-upload-pack", None),
            (&post, "/health", None),
            (&get, "/", None),
            (&get, "/app.git", None),
        ] {
            assert!(
                matches!(route(method, path, query), Target::NotFound(_)),
                "{method} {path}"
            );
        }
        assert_eq!(
            entry_candidates("app.git").collect::<Vec<_>>(),
            ["app.git", "app"]
        );
        assert_eq!(entry_candidates("app").collect::<Vec<_>>(), ["app"]);
    }

    #[test]
    fn pkt_lines() {
        assert_eq!(
            pkt_line("# service=git-upload-pack\n"),
            b"001e# service=git-upload-pack\n"
        );
        assert_eq!(err_line("no\nway"), b"000eERR no way");
        assert_eq!(err_line(&"x".repeat(70_000)).len(), 65520);
    }

    #[test]
    fn the_protocol_header_is_filtered() {
        assert_eq!(
            git_protocol(Some("version=2")).as_deref(),
            Some("version=2")
        );
        assert_eq!(
            git_protocol(Some("version=2:object-format=sha256")).as_deref(),
            Some("version=2:object-format=sha256")
        );
        assert_eq!(git_protocol(Some("version=2\nLD_PRELOAD=x")), None);
        assert_eq!(git_protocol(Some("a b")), None);
        assert!(is_v2(Some("version=2")));
        assert!(!is_v2(Some("version=1")));
        assert!(!is_v2(None));
    }
}
