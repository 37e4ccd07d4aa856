//! Headers every response carries, error pages and Swagger UI included: no MIME
//! sniffing, never framed by another site, and — over TLS — HSTS. Surfaces that need a stricter policy (the
//! Settings pages) set their own `Content-Security-Policy`; this fills in only what is
//! missing.

use poem::http::header::{
    CONTENT_SECURITY_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use poem::http::{HeaderMap, HeaderValue};

/// The policy of responses that set none of their own: they may not be framed.
pub const DEFAULT_CSP: &str = "frame-ancestors 'none'";

/// `Strict-Transport-Security` of answers over TLS: a year, this host and its subdomains.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Adds the baseline headers to an answer's `headers`, keeping a stricter
/// `X-Frame-Options` or `Content-Security-Policy` the answer set itself; `tls` (see
/// [`crate::client::over_tls`]) adds HSTS.
pub fn add_baseline(headers: &mut HeaderMap, tls: bool) {
    // The names as `HeaderName` constants: a `&str` name is parsed on every insert.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if tls {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    if !headers.contains_key(X_FRAME_OPTIONS) {
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
}
