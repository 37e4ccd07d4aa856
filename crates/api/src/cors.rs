//! CORS for the paths a web page may post to (create and batch):
//! browser keys. A preflight carries no key, so it is answered for any origin and never
//! counts against a limit; the origin rule itself is enforced on the request
//! ([`crate::auth::Caller::require`]), whose answer — refusals included — carries the
//! CORS headers so the page can read it.

use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{IntoResponse, Request, Response};

/// The paths browser keys may use.
pub const BROWSER_PATHS: &[&str] = &[ciq_http::routes::CREATE_LEAD, ciq_http::routes::BATCH_LEADS];

/// How long a browser may reuse a preflight's answer (Chromium caps it at 2 h).
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 7200;

/// The request headers a page may send.
pub const ALLOWED_HEADERS: &str =
    "content-type, x-api-key, idempotency-key, x-challenge-token, prefer";

/// The response headers a page may read besides the simple ones.
pub const EXPOSED_HEADERS: &str = "x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, \
     ratelimit, ratelimit-policy, retry-after, x-request-id, idempotent-replayed";

/// Whether `path` answers browsers.
pub fn is_browser_path(path: &str) -> bool {
    BROWSER_PATHS.contains(&path)
}

/// A request's CORS side, from [`Cors::of`] to [`Cors::finish`]: on
/// [`BROWSER_PATHS`], `OPTIONS` is answered here (204) and every other answer to a
/// request that carries `Origin` gets the CORS headers; other paths pass untouched.
pub struct Cors {
    browser: bool,
    origin: Option<HeaderValue>,
}

impl Cors {
    /// What `req` needs of CORS: nothing off the browser paths.
    pub fn of(req: &Request) -> Self {
        let browser = is_browser_path(req.uri().path());
        Self {
            browser,
            origin: browser
                .then(|| req.headers().get(header::ORIGIN).cloned())
                .flatten(),
        }
    }

    /// The answer to `req` when it is a preflight on a browser path (204): it carries
    /// no key, so it is answered before anything counts it.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if !self.browser || req.method() != Method::OPTIONS {
            return None;
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let headers = resp.headers_mut();
        allow_origin(headers, self.origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_SECS),
        );
        Some(resp)
    }

    /// `result`, the answer, with the CORS headers a page needs to read it; on a
    /// browser path an error is rendered here, in the one error shape, so they can go
    /// on it.
    pub fn finish(self, result: poem::Result<Response>) -> poem::Result<Response> {
        if !self.browser {
            return result;
        }
        let mut resp = result.unwrap_or_else(ciq_http::error::render_framework_error);
        if self.origin.is_some() {
            let headers = resp.headers_mut();
            allow_origin(headers, self.origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
        Ok(resp)
    }
}

/// Echoes `origin` (the answer differs per origin, so caches must key on it).
fn allow_origin(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}
