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
//! - [`surround`]: the one outermost layer that applies the id, metrics, `Allow` and
//!   security headers to every answer.
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
pub mod surround;
pub mod text;
pub mod time;

pub use error::{Coded, ErrorBody, ErrorCode, FieldError, HttpError};
pub use time::Timestamp;

/// Implements poem-openapi's `Type` for a scalar newtype: `$name` is its name in the
/// document, `$schema` (a `MetaSchema`) what the document says of it; the raw value is
/// the value itself. `ParseFromJSON` and `ToJSON` stay the type's own.
#[macro_export]
macro_rules! scalar_type {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }
    };
}
