//! Headers every response carries, error pages and Swagger UI included: no MIME
//! sniffing, never framed by another site, and — over TLS — HSTS. Surfaces that need a stricter policy (the
//! Settings pages) set their own `Content-Security-Policy`; this fills in only what is
//! missing.

use std::sync::Arc;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

/// The policy of responses that set none of their own: they may not be framed.
pub const DEFAULT_CSP: &str = "frame-ancestors 'none'";

/// `Strict-Transport-Security` of answers over TLS: a year, this host and its subdomains.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Middleware: adds the baseline headers to whatever the inner endpoint answered;
/// `trust_forwarded_for` says whether a proxy's `X-Forwarded-Proto` counts.
pub async fn baseline_headers<E: Endpoint>(
    endpoint: Arc<E>,
    req: Request,
    trust_forwarded_for: bool,
) -> poem::Result<Response> {
    let tls = crate::client::over_tls(&req, trust_forwarded_for);
    let mut resp = match endpoint.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let headers = resp.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if tls {
        headers.insert("strict-transport-security", HeaderValue::from_static(HSTS));
    }
    if !headers.contains_key("x-frame-options") {
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    if !headers.contains_key("content-security-policy") {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    Ok(resp)
}
