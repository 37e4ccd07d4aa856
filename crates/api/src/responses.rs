//! Each operation's response enum has one variant per error status it documents (with
//! its own description of the codes answered there) and an `Other` for the rest of the
//! error table. [`error_variants!`] writes the one mapping they all share: an error
//! goes to the variant of its status — 429 and 503 with `Retry-After` — or to `Other`
//! with its own status. A unit test per enum checks every code of the table against it.

/// `error_variants!(Enum { 400 => BadRequest, ... })` implements `From<HttpError>` for
/// `Enum`, whose `RateLimited` and `Unavailable` variants (if listed as `429 =>
/// RateLimited` and `503 => Unavailable`) also carry the `Retry-After` seconds.
macro_rules! error_variants {
    ($enum:ident $(<$param:ident: $($bound:path),+>)? { $($status:literal => $variant:ident),* $(,)? }) => {
        impl$(<$param: $($bound +)+>)? From<ciq_http::HttpError> for $enum$(<$param>)? {
            fn from(err: ciq_http::HttpError) -> Self {
                let status = err.code.status();
                let retry_after = err.retry_after;
                let body = poem_openapi::payload::Json(err.body());
                match status.as_u16() {
                    $($status => $crate::responses::error_variants!(@variant $variant, body, retry_after),)*
                    _ => Self::Other(status, body),
                }
            }
        }
    };
    (@variant RateLimited, $body:ident, $retry:ident) => {
        Self::RateLimited($body, $retry.unwrap_or(1))
    };
    (@variant Unavailable, $body:ident, $retry:ident) => {
        Self::Unavailable(
            $body,
            $retry.unwrap_or(ciq_http::error::UNAVAILABLE_RETRY_AFTER_SECS),
        )
    };
    (@variant $variant:ident, $body:ident, $retry:ident) => {
        Self::$variant($body)
    };
}

pub(crate) use error_variants;
