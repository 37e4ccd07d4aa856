//! Request bodies read into memory with a ceiling, for the surfaces whose extractors
//! would otherwise read whatever arrives (forms, the operator API's JSON): one
//! multi-gigabyte POST must not be able to exhaust memory.

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};

/// Past a limit, a body is still read (and dropped) for up to this many more bytes
/// before the 413 is sent, so that an ordinary client that is still sending (a browser
/// uploading a file) sees the answer rather than a reset connection; a body declared
/// larger still is refused at once, and a client that stops sending is answered after
/// [`DRAIN_TIME`].
pub const DRAIN_CAP: usize = 1024 * 1024;
/// The longest a body past its limit is drained.
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Why [`read_at_most`] gave no body.
#[derive(Debug)]
pub enum ReadRefusal {
    /// More than the limit (what was past it is drained, up to [`DRAIN_CAP`]).
    TooLarge,
    /// The connection failed while reading.
    Io(std::io::Error),
}

/// Reads at most `limit` bytes of `body` into memory (the buffer sized by the declared
/// length when there is one); past the limit, drains up to [`DRAIN_CAP`] more and
/// refuses. No buffer lives in the future itself: it is moved between the middleware
/// layers on every request.
pub async fn read_at_most(
    body: poem::Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, ReadRefusal> {
    use tokio::io::AsyncReadExt;
    let mut reader = body.into_async_read();
    let expected = declared
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(1024);
    let mut bytes = Vec::with_capacity(expected.min(limit) + 1);
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    (&mut reader)
        .take(limit_plus_one)
        .read_to_end(&mut bytes)
        .await
        .map_err(ReadRefusal::Io)?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    let drain = u64::try_from(DRAIN_CAP).unwrap_or(0);
    let drained = tokio::time::timeout(
        DRAIN_TIME,
        tokio::io::copy(&mut reader.take(drain), &mut tokio::io::sink()),
    )
    .await;
    if let Ok(Err(err)) = drained {
        return Err(ReadRefusal::Io(err));
    }
    Err(ReadRefusal::TooLarge)
}

/// Whether a body that declares `declared` bytes is refused before any of it is read:
/// past `limit` by more than [`DRAIN_CAP`].
pub fn refused_unread(declared: Option<u64>, limit: usize) -> bool {
    declared.is_some_and(|len| len > limit.saturating_add(DRAIN_CAP) as u64)
}

/// The `Content-Length` of `req`, if it declares one.
pub fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the body of `req` into memory, refusing one larger than `max` bytes — by its
/// `Content-Length` before anything is read when it is far larger, or once more than
/// `max` bytes have arrived (after draining a little more, see [`DRAIN_CAP`]) — with
/// the response `too_large` makes; the rest of the chain gets the bytes as an ordinary
/// body.
pub async fn cap_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut req: Request,
    max: usize,
    too_large: fn(usize) -> Response,
) -> poem::Result<Response> {
    let declared = declared_length(&req);
    if refused_unread(declared, max) {
        return Ok(refused(too_large(max)));
    }
    match read_at_most(req.take_body(), max, declared).await {
        Ok(bytes) => {
            req.set_body(bytes);
            endpoint.call(req).await.map(IntoResponse::into_response)
        }
        Err(ReadRefusal::TooLarge) => Ok(refused(too_large(max))),
        Err(ReadRefusal::Io(err)) => Err(poem::Error::from_string(
            format!("could not read the request body: {err}"),
            poem::http::StatusCode::BAD_REQUEST,
        )),
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
