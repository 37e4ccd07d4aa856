//! The one error shape of every JSON surface, the one table of error codes, and the
//! one place that renders them.
//!
//! ```json
//! {"success": false, "error": {"code": "validation_failed", "message": "...",
//!   "details": [{"field": "lead.email", "message": "must be a valid email address"}]}}
//! ```
//! Every failure — ours or one the framework raises (missing header, unknown route,
//! wrong method) — leaves the server in this shape, never as plain text. Each code
//! has exactly one status ([`ErrorCode::status`]); a 500 is always `internal_error`
//! (no `Retry-After`), a 503 only an outage of a store or dependency (with it).

use std::borrow::Cow;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use serde::Serialize;

/// Most field details one error carries; the rest are counted in `details_truncated`.
pub const MAX_DETAILS: usize = 50;

/// Seconds a client should wait after a 503 before trying again.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

pub use ciq_errors::{Coded, ErrorCode};

/// One broken rule, named by the field's path in the request (`lead.email`, or a
/// query parameter's or header's name).
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
    /// Stable, machine-readable code, e.g. `missing_api_key`, `invalid_api_key`,
    /// `invalid_json`, `unsupported_media_type`, `payload_too_large`,
    /// `validation_failed`, `rate_limited`, `internal_error`, `service_unavailable`,
    /// `not_found`, `method_not_allowed`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Broken field rules, at most 50 (empty for errors that are not about fields).
    pub details: Vec<FieldError>,
    /// How many further broken rules were left out of `details` (absent when none).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_truncated: Option<u32>,
    /// With `duplicate_lead`: the lead that already has the `external_id`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<uuid::Uuid>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Object)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error on its way to the client: a code of the table, a message, field details,
/// and the seconds for `Retry-After` where the code sends one. The cause of a 5xx is
/// kept beside it for the access log, never sent.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// Stable code; it decides the status.
    pub code: ErrorCode,
    /// What the client reads in `error.message` (never a secret, never the cause).
    pub message: Cow<'static, str>,
    /// Field details (all of them; the body carries at most [`MAX_DETAILS`]).
    pub details: Vec<FieldError>,
    /// Seconds for `Retry-After` (429 and 503 only).
    pub retry_after: Option<u64>,
    /// What really went wrong, for the log line of this request only.
    pub cause: Option<String>,
    /// With `duplicate_lead`: the lead that already has the `external_id`.
    pub lead_id: Option<uuid::Uuid>,
}

/// The cause of a failed request, left in the response's extensions for the access
/// log (see [`crate::request_id::end`]), which logs it once.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

impl HttpError {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: Cow::Borrowed(code.default_message()),
            details: Vec::new(),
            retry_after: None,
            cause: None,
            lead_id: None,
        }
    }

    /// An error with its own message.
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    /// Adds the cause that the access log records (never sent to the client).
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// 401 `missing_api_key`.
    pub fn missing_api_key() -> Self {
        Self::new(ErrorCode::MissingApiKey)
    }

    /// 401 `invalid_api_key`; `reason` says why without echoing the key.
    pub fn invalid_api_key(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::with_message(ErrorCode::InvalidApiKey, reason)
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_message(ErrorCode::InvalidJson, message)
    }

    /// 415 `unsupported_media_type`, naming what was sent.
    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let message = match got {
            Some(ct) => format!("Content-Type must be application/json, not {ct:?}"),
            None => "Content-Type must be application/json (the header is missing)".to_owned(),
        };
        Self::with_message(ErrorCode::UnsupportedMediaType, message)
    }

    /// 413 `payload_too_large`, naming the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::with_message(
            ErrorCode::PayloadTooLarge,
            format!("the request body must be at most {limit} bytes"),
        )
    }

    /// 422 `validation_failed` with every broken rule.
    pub fn validation_failed(details: Vec<FieldError>) -> Self {
        let n = details.len();
        Self {
            details,
            ..Self::with_message(
                ErrorCode::ValidationFailed,
                format!(
                    "{n} field rule{} broken; see details",
                    if n == 1 { " was" } else { "s were" }
                ),
            )
        }
    }

    /// 429 `rate_limited`, retry after `retry_after` seconds.
    pub fn rate_limited(limit: u32, window_secs: u64, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::with_message(
                ErrorCode::RateLimited,
                format!(
                    "rate limit of {limit} requests per {window_secs} seconds exceeded; retry in {retry_after} s"
                ),
            )
        }
    }

    /// 503 `service_unavailable` with `Retry-After`; `cause` is logged, not sent.
    pub fn service_unavailable(cause: impl std::fmt::Display) -> Self {
        Self {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ..Self::new(ErrorCode::ServiceUnavailable)
        }
        .caused_by(cause)
    }

    /// 500 `internal_error`, no `Retry-After`; `cause` is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InternalError).caused_by(cause)
    }

    /// 404 `not_found` naming what was not found.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_message(ErrorCode::NotFound, message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(ErrorCode::MethodNotAllowed)
    }

    /// The JSON body: at most [`MAX_DETAILS`] details, the rest counted.
    pub fn body(&self) -> ErrorBody {
        let shown = self.details.len().min(MAX_DETAILS);
        let left_out = self.details.len() - shown;
        ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone().into_owned(),
                details: self.details[..shown].to_vec(),
                details_truncated: (left_out > 0)
                    .then(|| u32::try_from(left_out).unwrap_or(u32::MAX)),
                lead_id: self.lead_id,
            },
        }
    }

    /// Puts the cause (if any) where the access log finds it.
    pub fn annotate(&self, resp: &mut Response) {
        if let Some(cause) = &self.cause {
            resp.extensions_mut().insert(ErrorCause(cause.clone()));
        }
    }
}

/// The one conversion of a domain's error into the JSON error: its code; for a 503 the
/// `Retry-After` and for any 5xx the cause (its `Display`) for the access log, never
/// sent; otherwise its message, field or lead as it names them.
impl<E: Coded> From<E> for HttpError {
    fn from(err: E) -> Self {
        let code = err.code();
        match code {
            ErrorCode::ServiceUnavailable => return HttpError::service_unavailable(err),
            _ if code.status().is_server_error() => {
                return Self {
                    code,
                    ..HttpError::internal(err)
                };
            }
            _ => {}
        }
        if let (ErrorCode::ValidationFailed, Some((field, rule))) = (code, err.field()) {
            return HttpError::validation_failed(vec![FieldError::new(field, rule)]);
        }
        let error = match err.message() {
            Some(message) => HttpError::with_message(code, message),
            None => HttpError::new(code),
        };
        Self {
            lead_id: err.lead_id(),
            ..error
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HttpError {}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("error bodies serialise");
        let mut resp = Response::builder()
            .status(self.status())
            .content_type("application/json; charset=utf-8")
            .body(body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        self.annotate(&mut resp);
        resp
    }
}

impl From<HttpError> for poem::Error {
    fn from(err: HttpError) -> Self {
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
        HttpError::missing_api_key()
    } else if err.is::<poem_openapi::error::ContentTypeError>() {
        HttpError::unsupported_media_type(None)
    } else {
        match err.status() {
            StatusCode::NOT_FOUND => HttpError::new(ErrorCode::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => HttpError::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => HttpError::new(ErrorCode::PayloadTooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => HttpError::unsupported_media_type(None),
            status if status.is_client_error() => {
                HttpError::with_message(ErrorCode::BadRequest, err.to_string())
            }
            _ => HttpError::internal(format!("unhandled error: {err}")),
        }
    };
    api.into_response()
}

/// For tests of a surface's response enum: every code of the table becomes a
/// response with the table's status; the codes in `with_retry_after` (those the
/// surface answers with a wait) carry `Retry-After`, and `internal_error` never does.
/// (Each enum maps the codes its operations raise to their documented variants and
/// any other to its `default` variant, which carries the status itself.)
pub fn assert_variants_match_table<R>(with_retry_after: &[ErrorCode])
where
    R: From<HttpError> + poem::IntoResponse,
{
    for &code in ErrorCode::ALL {
        let mut err = HttpError::new(code);
        if matches!(code, ErrorCode::RateLimited | ErrorCode::ServiceUnavailable) {
            err.retry_after = Some(7);
        }
        let resp = R::from(err).into_response();
        assert_eq!(resp.status(), code.status(), "{code}");
        let retry = resp.headers().get(header::RETRY_AFTER);
        if with_retry_after.contains(&code) {
            assert_eq!(retry.map(|v| v.as_bytes()), Some(&b"7"[..]), "{code}");
        } else if code == ErrorCode::InternalError {
            assert!(retry.is_none(), "{code} must not carry Retry-After");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A domain error for the conversion's tests: a code and what it names.
    struct Domain {
        code: ErrorCode,
        message: Option<&'static str>,
        field: Option<(&'static str, &'static str)>,
        lead: Option<uuid::Uuid>,
    }

    impl std::fmt::Display for Domain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused by db.internal:5432")
        }
    }

    impl Coded for Domain {
        fn code(&self) -> ErrorCode {
            self.code
        }
        fn message(&self) -> Option<String> {
            self.message.map(str::to_owned)
        }
        fn field(&self) -> Option<(&'static str, String)> {
            self.field.map(|(f, r)| (f, r.to_owned()))
        }
        fn lead_id(&self) -> Option<uuid::Uuid> {
            self.lead
        }
    }

    fn domain(code: ErrorCode) -> Domain {
        Domain {
            code,
            message: None,
            field: None,
            lead: None,
        }
    }

    #[test]
    fn a_domain_error_becomes_its_code_with_what_it_names() {
        let lead = uuid::Uuid::now_v7();
        let err = HttpError::from(Domain {
            lead: Some(lead),
            ..domain(ErrorCode::DuplicateLead)
        });
        assert_eq!(
            (err.code, err.lead_id),
            (ErrorCode::DuplicateLead, Some(lead))
        );
        assert_eq!(err.message, ErrorCode::DuplicateLead.default_message());
        assert_eq!(err.cause, None);

        let err = HttpError::from(Domain {
            message: Some("no such user"),
            ..domain(ErrorCode::NotFound)
        });
        assert_eq!(
            (err.status(), err.message.as_ref()),
            (StatusCode::NOT_FOUND, "no such user")
        );

        let err = HttpError::from(Domain {
            field: Some(("name", "must not be empty")),
            ..domain(ErrorCode::ValidationFailed)
        });
        assert_eq!(err.details, [FieldError::new("name", "must not be empty")]);
    }

    #[test]
    fn a_domain_outage_is_503_with_retry_after_and_its_cause_is_never_sent() {
        let err = HttpError::from(domain(ErrorCode::ServiceUnavailable));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.retry_after, Some(UNAVAILABLE_RETRY_AFTER_SECS));
        assert!(
            err.cause
                .as_deref()
                .is_some_and(|c| c.contains("db.internal"))
        );
        let fault = HttpError::from(domain(ErrorCode::InternalError));
        assert_eq!(
            (fault.status(), fault.retry_after),
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        );
        for err in [err, fault] {
            let body = serde_json::to_string(&err.body()).unwrap();
            assert!(!body.contains("db.internal"), "{body}");
        }
    }

    #[test]
    fn every_code_is_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn an_internal_error_is_a_500_without_retry_after() {
        let resp = HttpError::internal("boom").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            resp.extensions().get::<ErrorCause>().map(|c| c.0.as_str()),
            Some("boom")
        );
    }

    #[test]
    fn an_outage_is_a_503_with_retry_after_and_no_cause_in_the_body() {
        let err = HttpError::service_unavailable("connection refused to 10.0.0.1");
        let body = serde_json::to_string(&err.body()).unwrap();
        assert!(!body.contains("10.0.0.1"), "{body}");
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn details_are_capped_and_the_rest_counted() {
        let details = (0..120)
            .map(|i| FieldError::new(format!("lead.f{i}"), "is not a known field"))
            .collect();
        let body = HttpError::validation_failed(details).body();
        assert_eq!(body.error.details.len(), MAX_DETAILS);
        assert_eq!(body.error.details_truncated, Some(70));
        let few = HttpError::validation_failed(vec![FieldError::new("lead.name", "x")]).body();
        let json = serde_json::to_value(&few).unwrap();
        assert!(json["error"].get("details_truncated").is_none());
    }
}
