//! `X-Request-Id`: accepted from the client (or the load balancer) when it is sane,
//! generated otherwise, echoed on the response, and carried by every log line of the
//! request. One access line per request says what happened — never a key, a body or
//! a token. A failure's cause (left by the raiser in the response, see
//! [`crate::error::ErrorCause`]) is logged here, once.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method};
use poem::{Request, Response};

/// The header that carries a request's id both ways: a client's is kept when it is
/// well formed, otherwise one is made; every answer sends it back.
pub const HEADER: &str = "x-request-id";
/// Longest id accepted from a client.
pub const MAX_LEN: usize = 128;

/// The request's id: the client's if 1–128 visible ASCII characters, else a new UUIDv7.
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=MAX_LEN).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// The request's id, in the request's extensions for what runs after [`begin`] (the
/// request log records it).
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// A request's id and its span, from [`begin`] to [`end`].
pub struct Tracking {
    /// The id, also in the request's extensions as [`RequestId`].
    pub id: Arc<str>,
    /// The span every log line of the request is recorded in.
    pub span: tracing::Span,
}

/// Id in: the request's id (the client's or a new one) put in its extensions, and the
/// span its log lines are recorded in.
pub fn begin(req: &mut Request) -> Tracking {
    let id: Arc<str> = request_id(req).into();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    Tracking { id, span }
}

/// Id out, and the request's access line: status, time and — for a failure — the cause
/// its raiser left in the response, taken out of it here so it is logged once.
pub fn end(
    tracking: &Tracking,
    resp: &mut Response,
    method: &Method,
    route: &str,
    started: Instant,
) {
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let cause = resp.extensions_mut().remove::<crate::error::ErrorCause>();
    tracking.span.in_scope(|| match cause {
        Some(crate::error::ErrorCause(cause)) if status >= 500 => {
            tracing::error!(%method, route, status, ms, %cause, "request");
        }
        Some(crate::error::ErrorCause(cause)) => {
            tracing::info!(%method, route, status, ms, %cause, "request");
        }
        None => tracing::info!(%method, route, status, ms, "request"),
    });
    resp.headers_mut().insert(
        HEADER,
        HeaderValue::from_str(&tracking.id).expect("request ids are visible ASCII"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Request {
        Request::builder().header(HEADER, value).finish()
    }

    #[test]
    fn sane_client_ids_are_kept_and_others_replaced() {
        assert_eq!(request_id(&with("lb-1234")), "lb-1234");
        for bad in ["", "has space", &"x".repeat(129)] {
            let id = request_id(&with(bad));
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} -> {id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(&Request::builder().finish())).is_ok());
    }
}
