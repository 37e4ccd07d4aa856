//! What a key did, for the key itself: `GET /api/external/usage` (its answers by outcome
//! and the leads it stored, in minute, hour or day buckets) and `GET
//! /api/external/requests` (its request log: the answers that were not 2xx). Both are
//! refused to browser keys, which are public, and count against the key's limit.
//!
//! [`Counting`] is where every answer to a key is counted: it leaves a
//! [`UsageSlot`] in the request for the key checker to fill in, and afterwards hands
//! the answer to the gateway's [`ciq_usage::Recorder`] (in memory; flushed every few
//! seconds). For an answer that goes into the request log it reads the error's code and
//! first detail from the body (never anything else of it).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use poem::web::Data;
use poem::{Request, Response};
use poem_openapi::param::Query;
use poem_openapi::payload::{Json, Response as Answer};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object, OpenApi};

use ciq_admin::usage::UsageBucket;
use ciq_http::{ErrorBody, FieldError, HttpError, Timestamp};
use ciq_usage::query::{self, Of, StatusFilter};
use ciq_usage::{KeyRef, LogEntry};

use crate::auth::{ApiKeyAuth, Caller, UsageSlot};
use crate::state::ApiState;
use crate::tags::ApiTags;

/// A request being counted, from [`Counting::begin`] to [`Counting::finish`]: every
/// answer given to a key that verified is counted (see the module documentation);
/// requests without one pass untouched.
pub struct Counting {
    slot: Arc<UsageSlot>,
    asked: Asked,
}

impl Counting {
    /// Leaves a [`UsageSlot`] in `req` for the key checker to fill in, and keeps what
    /// the request log would record of the request.
    pub fn begin(req: &mut Request) -> Self {
        let slot = Arc::new(UsageSlot::default());
        req.extensions_mut().insert(slot.clone());
        Self {
            slot,
            asked: Asked::of(req),
        }
    }

    /// Counts `result`, the answer, against the key that verified (and logs it when it
    /// is not a success), and hands it on; an error is rendered first, in the one
    /// error shape, so the log can read its code.
    pub async fn finish(
        self,
        state: &ApiState,
        result: poem::Result<Response>,
    ) -> poem::Result<Response> {
        let Some(key) = self.slot.key.get().copied() else {
            return result;
        };
        let mut resp = result.unwrap_or_else(ciq_http::error::render_framework_error);
        let status = resp.status().as_u16();
        let at = chrono::Utc::now();
        let loggable =
            !resp.status().is_success() && !self.slot.visitor_limited.load(Ordering::Relaxed);
        if state.usage.answered(key, at, status, loggable) {
            let (code, field, message) = error_summary(&mut resp).await;
            state.usage.log(
                key,
                LogEntry {
                    code,
                    field,
                    message,
                    ..self.asked.entry(state, at, status)
                },
            );
        }
        Ok(resp)
    }
}

/// What the request log keeps of a request, taken before it is handled: references
/// to the request's own parts (no copy), made text only for an answer that is logged.
struct Asked {
    method: poem::http::Method,
    uri: poem::http::Uri,
    request_id: Option<ciq_http::request_id::RequestId>,
    remote: poem::web::RemoteAddr,
    forwarded_for: Option<poem::http::HeaderValue>,
    origin: Option<poem::http::HeaderValue>,
    user_agent: Option<poem::http::HeaderValue>,
}

impl Asked {
    fn of(req: &Request) -> Self {
        let header = |name: &str| req.headers().get(name).cloned();
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            request_id: req
                .extensions()
                .get::<ciq_http::request_id::RequestId>()
                .cloned(),
            remote: req.remote_addr().clone(),
            forwarded_for: header("x-forwarded-for"),
            origin: header("origin"),
            user_agent: header("user-agent"),
        }
    }

    /// The log row of this request, answered at `at` with `status`.
    fn entry(self, state: &ApiState, at: chrono::DateTime<chrono::Utc>, status: u16) -> LogEntry {
        let text = |v: Option<poem::http::HeaderValue>, chars: usize| {
            v.map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(chars)
                    .collect()
            })
        };
        let client = ciq_http::client::client_address_of(
            &self.remote,
            self.forwarded_for.as_ref(),
            state.trust_forwarded_for,
        );
        LogEntry {
            at,
            method: self.method.as_str().to_owned(),
            path: self.uri.path().chars().take(255).collect(),
            status,
            code: None,
            field: None,
            message: None,
            request_id: self.request_id.map(|id| id.0.to_string()),
            client: ciq_usage::address::truncated(&client),
            origin: text(self.origin, 255),
            user_agent: text(self.user_agent, ciq_usage::recorder::USER_AGENT_CHARS),
        }
    }
}

/// The error's code, its first detail's field and message (or its own message when
/// it has no details), read from the JSON body, which is put back as it was.
async fn error_summary(resp: &mut Response) -> (Option<String>, Option<String>, Option<String>) {
    let Ok(bytes) = resp.take_body().into_bytes().await else {
        return (None, None, None);
    };
    let summary = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .map(|body| {
            let error = &body["error"];
            let text =
                |v: &serde_json::Value| v.as_str().map(|s| s.chars().take(500).collect::<String>());
            let detail = &error["details"][0];
            let message = text(&detail["message"]).or_else(|| text(&error["message"]));
            (text(&error["code"]), text(&detail["field"]), message)
        })
        .unwrap_or_default();
    resp.set_body(bytes);
    summary
}

/// Body of `GET /api/external/usage`.
#[derive(Debug, Clone, Object)]
pub struct UsageReport {
    /// Always `true`.
    pub success: bool,
    /// `minute`, `hour` or `day`.
    pub interval: String,
    /// The window's first instant (inclusive).
    pub from: Timestamp,
    /// The window's end (exclusive).
    pub to: Timestamp,
    /// The non-empty buckets, oldest first.
    pub usage: Vec<UsageBucket>,
}

/// One answer of the request log. Never a body or a key.
#[derive(Debug, Clone, Object)]
pub struct LoggedRequest {
    /// When it was answered.
    pub at: Timestamp,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// HTTP status answered.
    pub status: u16,
    /// The error's `code`.
    pub code: Option<String>,
    /// The first detail's field, e.g. `lead.email`.
    pub field: Option<String>,
    /// The first detail's message, or the error's message.
    pub message: Option<String>,
    /// The request's `X-Request-Id` (give it to support).
    pub request_id: Option<String>,
    /// The client's network: its address truncated to /24 (IPv4) or /48 (IPv6).
    pub client: Option<String>,
    /// The request's `Origin`.
    pub origin: Option<String>,
    /// The request's `User-Agent` (at most 200 characters).
    pub user_agent: Option<String>,
}

impl From<ciq_entity::request_log::Model> for LoggedRequest {
    fn from(row: ciq_entity::request_log::Model) -> Self {
        Self {
            at: row.at.into(),
            method: row.method,
            path: row.path,
            status: u16::try_from(row.status).unwrap_or(0),
            code: row.code,
            field: row.field,
            message: row.message,
            request_id: row.request_id,
            client: row.client,
            origin: row.origin,
            user_agent: row.user_agent,
        }
    }
}

/// Body of `GET /api/external/requests`.
#[derive(Debug, Clone, Object)]
pub struct RequestLogPage {
    /// Always `true`.
    pub success: bool,
    /// At most `limit` answers, newest first.
    pub requests: Vec<LoggedRequest>,
    /// Pass it back as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Every answer of a usage read.
#[derive(Debug, ApiResponse)]
pub enum UsageResponse<T: ParseFromJSON + ToJSON> {
    /// The usage or the page.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: a browser key (one with allowed origins) is public and
    /// cannot read its usage.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `validation_failed`: a query parameter broke a rule (`field` names it).
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`: over the key's limit.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `internal_error`: a fault of ours.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`: the store cannot be reached.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// Any other code of the error table, with its own status.
    Other(poem::http::StatusCode, Json<ErrorBody>),
}

crate::responses::error_variants!(UsageResponse<T: ParseFromJSON, ToJSON> {
    401 => Unauthorized,
    403 => Forbidden,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// A key's usage and request log.
pub struct UsageApi;

#[OpenApi]
impl UsageApi {
    /// Your key's usage
    ///
    /// The calling key's answers by outcome and the leads it stored, in buckets of a
    /// minute, an hour or a day (UTC), oldest first; buckets with nothing in them are
    /// left out. A call appears in later answers, never in its own: counts are written
    /// every few seconds (`CIQ_USAGE_FLUSH_SECS`, default 5), and every request answered
    /// before that, on any instance, is in. Minute buckets are kept 48 hours, then
    /// rolled up into hours; usage is kept 90 days. Any valid key without allowed
    /// origins may call it; it counts against the key's limit.
    #[oai(
        path = "/api/external/usage",
        method = "get",
        operation_id = "getUsage",
        tag = "ApiTags::Account"
    )]
    async fn usage(
        &self,
        auth: ApiKeyAuth,
        /// `minute` (the default), `hour` or `day`.
        interval: Query<Option<String>>,
        /// First instant counted (RFC 3339, inclusive); default 24 hours before `to`.
        /// At most 1 440 buckets before `to`; for minutes, within the last 48 hours.
        from: Query<Option<String>>,
        /// End of the window (RFC 3339, exclusive); default now.
        to: Query<Option<String>>,
        state: Data<&Arc<ApiState>>,
    ) -> Answer<UsageResponse<UsageReport>> {
        let caller = auth.0;
        let answer = usage(&state, &caller, interval.0, from.0, to.0).await;
        caller.answer(match answer {
            Ok(report) => UsageResponse::Ok(Json(report)),
            Err(err) => UsageResponse::from(err),
        })
    }

    /// Your key's request log
    ///
    /// The calling key's answers that were not 2xx, newest first: when, what was asked
    /// (method and path, never the body), the status, the error's code and its first
    /// detail, the request id, the client's network, `Origin` and `User-Agent`. Kept 7
    /// days and 1 000 per key; under a flood at most 10 a second per key are written
    /// (the rest are counted as `dropped` in the usage). A visitor limit's 429s are
    /// counted, not logged. Any valid key without allowed origins may call it; it counts
    /// against the key's limit.
    #[oai(
        path = "/api/external/requests",
        method = "get",
        operation_id = "listRequests",
        tag = "ApiTags::Account"
    )]
    async fn requests(
        &self,
        auth: ApiKeyAuth,
        /// Answers per page, 1 to 100 (default 50).
        limit: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only this status (e.g. `429`) or class (`4xx`, `5xx`).
        status: Query<Option<String>>,
        state: Data<&Arc<ApiState>>,
    ) -> Answer<UsageResponse<RequestLogPage>> {
        let caller = auth.0;
        let answer = requests(&state, &caller, limit.0, cursor.0, status.0).await;
        caller.answer(match answer {
            Ok(page) => UsageResponse::Ok(Json(page)),
            Err(err) => UsageResponse::from(err),
        })
    }
}

fn key_of(caller: &Caller) -> KeyRef {
    KeyRef {
        key_id: caller.key.key_id,
        user_id: caller.key.user_id,
    }
}

async fn usage(
    state: &ApiState,
    caller: &Caller,
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<UsageReport, HttpError> {
    caller.require_private("read its usage")?;
    let window = ciq_admin::usage::window(interval, from, to)?;
    let buckets = query::buckets(&state.db, Of::Key(key_of(caller)), &window)
        .await
        .map_err(ciq_usage::UsageError::from)?;
    Ok(UsageReport {
        success: true,
        interval: window.interval.as_str().to_owned(),
        from: window.from.into(),
        to: window.to.into(),
        usage: UsageBucket::list(buckets),
    })
}

async fn requests(
    state: &ApiState,
    caller: &Caller,
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
) -> Result<RequestLogPage, HttpError> {
    caller.require_private("read its request log")?;
    let mut broken = Vec::new();
    let limit = checked(query::page_size(limit.as_deref()), &mut broken);
    let after = cursor.map(|c| checked(query::cursor(&c), &mut broken));
    let status = status
        .filter(|s| !s.trim().is_empty())
        .map(|s| checked(StatusFilter::parse(&s), &mut broken));
    let (Some(limit), true) = (limit, broken.is_empty()) else {
        return Err(HttpError::validation_failed(broken));
    };
    let page = query::requests(
        &state.db,
        key_of(caller),
        limit,
        after.flatten(),
        status.flatten(),
    )
    .await
    .map_err(ciq_usage::UsageError::from)?;
    Ok(RequestLogPage {
        success: true,
        requests: page.rows.into_iter().map(LoggedRequest::from).collect(),
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    })
}

/// The value of a parameter that follows its rule; a broken one goes into `broken`.
fn checked<T>(result: Result<T, ciq_usage::UsageError>, broken: &mut Vec<FieldError>) -> Option<T> {
    result
        .map_err(|err| {
            if let Some((field, rule)) = err.param() {
                broken.push(FieldError::new(field, rule));
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        let waits = [
            ciq_http::ErrorCode::RateLimited,
            ciq_http::ErrorCode::ServiceUnavailable,
        ];
        ciq_http::error::assert_variants_match_table::<UsageResponse<UsageReport>>(&waits);
    }
}
