//! What every HTTP surface of the gateway shares, below all of them:
//!
//! - [`error`]: the error contract — one [`ErrorCode`] table (code, status, default
//!   message), the JSON error shape, and the one place that renders it.
//! - [`routes`]: the route table that metrics labels and `Allow` headers read.
//! - [`request_id`]: `X-Request-Id` and the access log (where failures are logged).
//! - [`metrics`]: the Prometheus recorder and the request counters.
//! - [`client`]: the client address behind a trusted proxy.
//! - [`body`]: request bodies read with a ceiling.
//! - [`time`]: the one time format of every JSON answer.
//! - [`secret`]: secret body fields (passwords) that never print.
//! - [`security`]: the headers every response carries.
//! - [`openapi`]: the fixes every generated OpenAPI document gets.
//!
//! Nothing here knows leads, keys or pages.

pub mod body;
pub mod client;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod secret;
pub mod security;
pub mod time;

pub use error::{ErrorBody, ErrorCode, FieldError, HttpError};
pub use time::Timestamp;
