//! The embed script: `GET /embed/v1/form.js`, which turns a plain HTML form into a
//! lead form (attribution, honeypot, challenge token, one Idempotency-Key per
//! submission, errors beside their inputs). Its readable source is
//! `crates/api/embed/v1/form.js`, served as it is.
//!
//! A released version's bytes never change — pages pin them with `integrity=` — so a
//! change ships at a new path (`/embed/v2/form.js`) and the old paths stay.

use poem::http::{HeaderValue, header};
use poem::{IntoResponse, Response, Route};

/// One released version of the script: its path, its bytes and their SHA-384 as a
/// Subresource Integrity value (what docs/forms.md gives pages to pin).
#[derive(Debug, Clone, Copy)]
pub struct Release {
    /// Where it is served.
    pub path: &'static str,
    /// Its bytes, exactly as served.
    pub bytes: &'static [u8],
    /// `sha384-<base64>` of the bytes; fixed at release (a test holds the bytes to it).
    pub integrity: &'static str,
}

/// Every released version, oldest first (the last is [`ciq_http::routes::EMBED_FORM`]).
pub const RELEASES: [Release; 1] = [Release {
    path: ciq_http::routes::EMBED_FORM,
    bytes: include_bytes!("../embed/v1/form.js"),
    integrity: "sha384-Jf2xkqDAHAHqviivgzezJHXtfFrsCLdIAd+MDNlnO6Zia9rC/U5ZO64Lkiego0ji",
}];

/// How long browsers and CDNs may keep the script (it never changes at its path;
/// an hour bounds how long a withdrawn version lingers in caches).
pub const CACHE_CONTROL: &str = "public, max-age=3600";

/// Adds every release's path to `route`.
pub fn attach(route: Route) -> Route {
    RELEASES.iter().fold(route, |route, release| {
        let bytes = release.bytes;
        route.at(
            release.path,
            poem::get(poem::endpoint::make_sync(move |_| script(bytes))),
        )
    })
}

/// The script's answer: JavaScript, cacheable, readable by any origin (a page's
/// `integrity=` check needs a CORS read).
fn script(bytes: &'static [u8]) -> Response {
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::Digest;

    use super::*;

    fn integrity_of(bytes: &[u8]) -> String {
        format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
        )
    }

    #[test]
    fn released_bytes_keep_their_integrity_and_the_guide_gives_it() {
        let guide = include_str!("../../../docs/forms.md");
        for release in RELEASES {
            assert_eq!(
                integrity_of(release.bytes),
                release.integrity,
                "{} changed after its release: ship the change at a new version's path",
                release.path
            );
            assert!(
                guide.contains(release.integrity),
                "docs/forms.md gives {}'s integrity",
                release.path
            );
        }
    }

    #[test]
    fn the_script_depends_on_nothing_and_sets_no_inline_style() {
        for release in RELEASES {
            let source = std::str::from_utf8(release.bytes).unwrap();
            for banned in [
                "import ",
                "require(",
                "setAttribute(\"style\"",
                "innerHTML",
                "eval(",
            ] {
                assert!(!source.contains(banned), "{}: {banned}", release.path);
            }
        }
    }
}
