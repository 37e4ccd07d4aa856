//! Request bodies read into memory with a ceiling, for the surfaces whose extractors
//! would otherwise read whatever arrives (forms, the operator API's JSON): one
//! multi-gigabyte POST must not be able to exhaust memory.

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};

/// Reads the body of `req` into memory, refusing one larger than `max` bytes — by its
/// `Content-Length` before anything is read, or as soon as more than `max` bytes have
/// arrived — with the response `too_large` makes; the rest of the chain gets the bytes
/// as an ordinary body.
pub async fn cap_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut req: Request,
    max: usize,
    too_large: fn(usize) -> Response,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Ok(refused(too_large(max)));
    }
    match req.take_body().into_bytes_limit(max).await {
        Ok(bytes) => {
            req.set_body(bytes);
            endpoint.call(req).await.map(IntoResponse::into_response)
        }
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Ok(refused(too_large(max))),
        Err(err) => Err(err.into()),
    }
}

/// The client may still be sending: close the connection after the answer rather
/// than read the rest.
fn refused(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}
