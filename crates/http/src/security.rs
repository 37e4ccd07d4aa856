//! Headers every response carries, error pages and Swagger UI included: no MIME
//! sniffing, never framed by another site, and — over TLS — HSTS. Surfaces that need a stricter policy (the
//! Settings pages) set their own `Content-Security-Policy`; this fills in only what is
//! missing.

use poem::http::{HeaderMap, HeaderValue};

/// The policy of responses that set none of their own: they may not be framed.
pub const DEFAULT_CSP: &str = "frame-ancestors 'none'";

/// `Strict-Transport-Security` of answers over TLS: a year, this host and its subdomains.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Adds the baseline headers to an answer's `headers`, keeping a stricter
/// `X-Frame-Options` or `Content-Security-Policy` the answer set itself; `tls` (see
/// [`crate::client::over_tls`]) adds HSTS.
pub fn add_baseline(headers: &mut HeaderMap, tls: bool) {
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
}
