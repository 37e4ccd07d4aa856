//! What wraps every Settings page: the store breaker's bound, the body cap, the
//! replica freshness mark, and the headers that keep a page with a key or a token out
//! of caches and frames.

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderValue, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, RouteMethod};

use crate::cookies::{WROTE_COOKIE, cookie, set_cookie};
use crate::extract::PageError;
use crate::state::ConsoleState;
use crate::views;

/// Largest form body accepted, in bytes: the largest form (sign-in: a 254-character
/// email, a 128-character password, a token) is well under 1 KiB.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// A Settings page: `endpoint` with forms of at most [`MAX_FORM_BYTES`].
pub(crate) fn page(state: &Arc<ConsoleState>, endpoint: RouteMethod) -> BoxEndpoint<'static> {
    page_within(state, endpoint, MAX_FORM_BYTES, form_too_large)
}

/// A Settings page whose bodies may be `max_bytes` long (`too_large` answers longer
/// ones, before they are read).
pub(crate) fn page_within(
    state: &Arc<ConsoleState>,
    endpoint: RouteMethod,
    max_bytes: usize,
    too_large: fn(usize) -> Response,
) -> BoxEndpoint<'static> {
    let breaker = state.breaker.clone();
    let marking = state.clone();
    endpoint
        .around(move |endpoint, req| {
            let breaker = breaker.clone();
            async move {
                // Every page needs the account store: no wait while it is gone.
                match breaker.guard(endpoint.call(req)).await {
                    Err(down) => Ok(PageError::store(down).into_response()),
                    Ok(answer) => answer.map(IntoResponse::into_response),
                }
            }
        })
        // Outside the breaker's guard: a slow upload is the client's time, not the
        // store's.
        .around(move |endpoint, req| ciq_http::body::cap_body(endpoint, req, max_bytes, too_large))
        .around(move |endpoint, req| marking_writes(endpoint, req, marking.clone()))
        .map_to_response()
        .after(protect)
        .data(state.clone())
        .boxed()
}

/// 413 for a form over [`MAX_FORM_BYTES`].
fn form_too_large(max: usize) -> Response {
    views::page(
        poem::http::StatusCode::PAYLOAD_TOO_LARGE,
        views::message(
            "That form was too large",
            &format!("A form may carry at most {max} bytes. Go back and try again."),
        ),
    )
}

/// Pages that may show a key, a CSRF token or account data are never cached and
/// never framed.
pub(crate) async fn protect(result: poem::Result<Response>) -> poem::Result<Response> {
    result.map(|mut resp| {
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(views::content_security_policy()),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        resp
    })
}

/// Runs a page; when it took a form (a POST answered below 400) and a read replica is
/// configured, marks the browser as having just written, for as long as the replica
/// may lag.
async fn marking_writes<E: Endpoint>(
    endpoint: E,
    req: Request,
    state: Arc<ConsoleState>,
) -> poem::Result<Response> {
    let mut mark = Response::default();
    if let Some(fresh_for) = state.reads.fresh_for()
        && req.method() == poem::http::Method::POST
    {
        set_cookie(
            &mut mark,
            &req,
            &state,
            WROTE_COOKIE,
            "1",
            fresh_for.as_secs(),
        );
    }
    let mut resp = endpoint.call(req).await?.into_response();
    if resp.status().as_u16() < 400 {
        for cookie in mark.headers().get_all(header::SET_COOKIE) {
            resp.headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
    }
    Ok(resp)
}

impl ConsoleState {
    /// Where this request's lists are read: the read replica while it is fit, except
    /// for a POST (its page shows what it just wrote) and for a browser that wrote
    /// within the replica's lag bound (the `ciq_wrote` cookie): those read the primary.
    pub(crate) fn lists_for(&self, req: &Request) -> ciq_store::Reads {
        if req.method() == poem::http::Method::GET && cookie(req, self, WROTE_COOKIE).is_none() {
            self.reads.clone()
        } else {
            ciq_store::Reads::primary_only(self.db.clone())
        }
    }
}
