//! The one error shape of the API and the one place that renders it.
//!
//! ```json
//! {"success": false, "error": {"code": "validation_failed", "message": "...",
//!   "details": [{"field": "lead.email", "message": "must be a valid email address"}]}}
//! ```
//! Every failure — ours or one the framework raises (missing header, unknown route,
//! wrong method) — leaves the server in this shape, never as plain text.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use serde::Serialize;

/// One broken rule, named by the field's path in the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Object)]
pub struct FieldError {
    /// Path of the offending field, e.g. `lead.email`.
    pub field: String,
    /// The rule it broke, e.g. `must be a valid email address`.
    pub message: String,
}

impl FieldError {
    /// A broken rule for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorDetail {
    /// Stable, machine-readable code: `missing_api_key`, `invalid_api_key`, `invalid_json`,
    /// `unsupported_media_type`, `payload_too_large`, `validation_failed`, `rate_limited`,
    /// `service_unavailable`, `not_found`, `method_not_allowed`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Every broken field rule (empty for errors that are not about fields).
    pub details: Vec<FieldError>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error on its way to the client: status, code, message, field details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Field details.
    pub details: Vec<FieldError>,
    /// Seconds for `Retry-After`, on 429 and 503.
    pub retry_after: Option<u64>,
}

/// Seconds a client should wait after a 503 before trying again.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 401 `missing_api_key`.
    pub fn missing_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "Send your API key in the X-API-Key header (Settings → API Key generates one)",
        )
    }

    /// 401 `invalid_api_key`; `reason` says why without echoing the key.
    pub fn invalid_api_key(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_api_key", reason)
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let message = match got {
            Some(ct) => format!("Content-Type must be application/json, not {ct:?}"),
            None => "Content-Type must be application/json (the header is missing)".to_owned(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {limit} bytes"),
        )
    }

    /// 422 `validation_failed` with every broken rule.
    pub fn validation_failed(details: Vec<FieldError>) -> Self {
        let n = details.len();
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!(
                "{n} field rule{} broken; see details",
                if n == 1 { " was" } else { "s were" }
            ),
        );
        err.details = details;
        err
    }

    /// 429 `rate_limited`, retry after `retry_after` seconds.
    pub fn rate_limited(limit: u32, window_secs: u64, retry_after: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit of {limit} requests per {window_secs} seconds exceeded; retry in {retry_after} s"
            ),
        );
        err.retry_after = Some(retry_after);
        err
    }

    /// 503 `service_unavailable`; the cause is logged, not sent.
    pub fn service_unavailable() -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the lead store is temporarily unavailable; retry shortly",
        );
        err.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        err
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::not_found_with("no such endpoint")
    }

    /// 404 `not_found` naming what was not found.
    pub fn not_found_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 with a specific code (operator token errors).
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 422 with a specific code and no field details.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method",
        )
    }

    /// 500 `internal_error`; the cause is logged, not sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("error bodies serialise");
        let mut resp = Response::builder()
            .status(self.status)
            .content_type("application/json; charset=utf-8")
            .body(body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// Renders any error that reached the edge of the server in our shape. Errors that
/// already carry a response of ours pass through untouched.
pub fn render_framework_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let api = if err.is::<poem_openapi::error::AuthorizationError>() {
        ApiError::missing_api_key()
    } else if err.is::<poem_openapi::error::ContentTypeError>() {
        ApiError::unsupported_media_type(None)
    } else {
        match err.status() {
            StatusCode::NOT_FOUND => ApiError::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(0),
            status if status.is_client_error() => {
                let mut e = ApiError::invalid_json(err.to_string());
                e.status = status;
                e.code = "bad_request";
                e
            }
            _ => {
                tracing::error!(error = %err, "unhandled error");
                ApiError::internal()
            }
        }
    };
    api.into_response()
}
