//! CORS for the paths a web page may post to (create and batch):
//! browser keys. A preflight carries no key, so it is answered for any origin and never
//! counts against a limit; the origin rule itself is enforced on the request
//! ([`crate::auth::Caller::require`]), whose answer — refusals included — carries the
//! CORS headers so the page can read it.

use std::sync::Arc;

use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

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

/// Middleware: on [`BROWSER_PATHS`], answers `OPTIONS` itself (204) and adds the
/// CORS headers to every other answer of a request that carries `Origin`; other
/// paths pass through untouched.
pub async fn handle<E: Endpoint>(endpoint: Arc<E>, req: Request) -> poem::Result<Response> {
    if !is_browser_path(req.uri().path()) {
        return endpoint.call(req).await.map(IntoResponse::into_response);
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let headers = resp.headers_mut();
        allow_origin(headers, origin);
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
        return Ok(resp);
    }
    let mut resp = match endpoint.call(req).await {
        Ok(resp) => resp.into_response(),
        // Rendered here, in the one error shape, so the CORS headers can go on it.
        Err(err) => ciq_http::error::render_framework_error(err),
    };
    if origin.is_some() {
        let headers = resp.headers_mut();
        allow_origin(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    Ok(resp)
}

/// Echoes `origin` (the answer differs per origin, so caches must key on it).
fn allow_origin(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}
