//! `POST /api/external/leads/create` — the reference's Create Lead endpoint.

mod body;
pub mod group_commit;
pub mod idempotency;
pub mod input;
pub mod money;
mod store;

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{ApiResponse, Object, OpenApi};

pub use body::LeadSubmission;
use money::Money;

use crate::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A lead as submitted. Field rules are those of the reference's Field Reference.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LeadInput {
    /// Lead's full name.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    /// Lead's email address.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Recommended. E.164 format without + (e.g., 15551234567): 8 to 15 digits, not
    /// starting with 0. A leading +, spaces, dashes, dots and parentheses are removed
    /// first; the bare digits are stored and returned.
    #[oai(validator(max_length = 32))]
    pub phone: Option<String>,
    /// Lead source (e.g., "Website", "API").
    #[oai(validator(min_length = 1, max_length = 100))]
    pub source: String,
    /// Industry/vertical.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub industry: String,
    /// Lead quality score (1-10), a whole number.
    #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
    pub score: Option<i32>,
    /// new, contacted, qualified, lost. Defaults to new.
    pub status: Option<LeadStatus>,
    /// Estimated monthly revenue: non-negative, at most 2 decimal places, stored exactly.
    pub monthly_revenue: Option<Money>,
    /// Lead's budget: non-negative, at most 2 decimal places, stored exactly.
    pub budget: Option<Money>,
    /// Additional notes (newlines allowed).
    #[oai(validator(max_length = 5000))]
    pub description: Option<String>,
}

/// Where the lead is in the pipeline.
#[derive(Debug, Clone, Copy, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum LeadStatus {
    /// Not contacted yet (default).
    New,
    /// Contacted.
    Contacted,
    /// Qualified.
    Qualified,
    /// Lost.
    Lost,
}

/// Body of a create request.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateLeadRequest {
    /// The lead to create.
    pub lead: LeadInput,
}

/// A stored lead.
#[derive(Debug, Clone, Object)]
pub struct Lead {
    /// Lead id.
    pub id: uuid::Uuid,
    /// The account the lead belongs to: the owner of the API key used.
    pub user_id: uuid::Uuid,
    /// Lead's full name.
    pub name: String,
    /// Lead's email address.
    pub email: String,
    /// E.164 digits without +, or null.
    pub phone: Option<String>,
    /// Lead source.
    pub source: String,
    /// Industry/vertical.
    pub industry: String,
    /// Lead quality score (1-10), or null.
    pub score: Option<i32>,
    /// new, contacted, qualified or lost.
    pub status: String,
    /// Estimated monthly revenue, or null.
    pub monthly_revenue: Option<Money>,
    /// Lead's budget, or null.
    pub budget: Option<Money>,
    /// Additional notes, or null.
    pub description: Option<String>,
    /// When the lead was stored: RFC 3339, UTC, milliseconds, e.g. 2025-08-13T00:00:00.000Z.
    pub created_at: String,
}

/// Body of a successful create.
#[derive(Debug, Clone, Object)]
pub struct LeadCreated {
    /// Always `true`.
    pub success: bool,
    /// The stored lead.
    pub lead: Lead,
}

/// Every answer of the create endpoint.
#[derive(Debug, ApiResponse)]
pub enum CreateLeadResponse {
    /// The lead was stored under the key owner's account.
    #[oai(status = 201)]
    Created(Json<LeadCreated>),
    /// `invalid_json`: the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key`: no X-API-Key header; `invalid_api_key`: malformed, unknown,
    /// revoked or expired key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `payload_too_large`: the body exceeds the size limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `idempotency_key_in_use`: a request with the same `Idempotency-Key` is still
    /// being processed.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `validation_failed`: field rules broken; every one is listed in `details`.
    /// `idempotency_key_reused`: the `Idempotency-Key` was used with another body.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`: over the key's limit. Waiting `Retry-After` seconds is enough.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `service_unavailable`: the store cannot be reached; retry after `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

impl From<ApiError> for CreateLeadResponse {
    fn from(err: ApiError) -> Self {
        let retry_after = err.retry_after.unwrap_or(0);
        let body = Json(err.body());
        match err.status.as_u16() {
            400 => Self::BadRequest(body),
            401 => Self::Unauthorized(body),
            413 => Self::PayloadTooLarge(body),
            415 => Self::UnsupportedMediaType(body),
            409 => Self::Conflict(body),
            422 => Self::ValidationFailed(body),
            429 => Self::RateLimited(body, retry_after),
            _ => Self::Unavailable(body, retry_after),
        }
    }
}

/// Path of the create endpoint.
pub const CREATE_PATH: &str = "/api/external/leads/create";

/// The leads API.
pub struct LeadsApi;

#[OpenApi]
impl LeadsApi {
    /// Create a lead
    ///
    /// Creates a lead in the account that owns the API key. Required fields: name,
    /// email, source, industry. Every broken field rule is reported at once in
    /// `error.details`. Rate limiting: 100 requests per minute per API key (sliding
    /// window); every authenticated response carries the rate-limit headers.
    #[oai(
        path = "/api/external/leads/create",
        method = "post",
        tag = "ApiTags::Leads",
        operation_id = "createLead",
        response_header(
            name = "X-RateLimit-Limit",
            ty = "Option<u32>",
            description = "Requests allowed per window for this key."
        ),
        response_header(
            name = "X-RateLimit-Remaining",
            ty = "Option<u32>",
            description = "Requests left in the current sliding window."
        ),
        response_header(
            name = "X-RateLimit-Reset",
            ty = "Option<u64>",
            description = "Unix time (seconds) when the oldest counted request leaves the window."
        ),
        response_header(
            name = "RateLimit-Policy",
            ty = "Option<String>",
            description = "IETF draft policy, e.g. \"default\";q=100;w=60."
        ),
        response_header(
            name = "RateLimit",
            ty = "Option<String>",
            description = "IETF draft state, e.g. \"default\";r=99;t=60."
        ),
        response_header(
            name = "Idempotent-Replayed",
            ty = "Option<String>",
            description = "`true` when this 201 replays the answer to an earlier request with the same Idempotency-Key."
        )
    )]
    async fn create_lead(
        &self,
        auth: ApiKeyAuth,
        submission: LeadSubmission,
        /// Optional, up to 255 printable ASCII characters, scoped to your account.
        /// Retrying with the same key and body within 24 hours replays the first
        /// answer (same lead, `Idempotent-Replayed: true`) instead of creating a
        /// duplicate; the same key with another body is 422 `idempotency_key_reused`;
        /// while the first request runs, 409 `idempotency_key_in_use`.
        #[oai(name = "Idempotency-Key")]
        #[allow(unused_variables)]
        idempotency_key: Header<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &poem::Request,
    ) -> Response<CreateLeadResponse> {
        let caller = auth.0;
        // Read raw: the typed parameter (kept for the document) would turn a key that
        // is not visible ASCII into "no key", and a retry into a duplicate lead.
        let raw_key = req
            .headers()
            .get(idempotency::HEADER)
            .map(|v| v.as_bytes().to_vec());
        let announcement = req
            .extensions()
            .get::<Arc<group_commit::Announcement>>()
            .cloned();
        let created = create(
            &state,
            &caller,
            submission,
            raw_key,
            announcement.as_deref(),
        )
        .await;
        if let Some(announcement) = &announcement {
            // Answered without a row (an error) or with one already queued.
            announcement.settle();
        }
        let (response, replayed) = match created {
            Ok((created, replayed)) => (CreateLeadResponse::Created(Json(created)), replayed),
            Err(err) => (CreateLeadResponse::from(err), false),
        };
        let mut headers = poem::http::HeaderMap::new();
        caller.apply_headers(&mut headers);
        let response = headers
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value)))
            .fold(Response::new(response), |resp, (name, value)| {
                resp.header(name, value)
            });
        if replayed {
            response.header("idempotent-replayed", "true")
        } else {
            response
        }
    }
}

/// Validates, claims the idempotency key if any, stores. Returns the answer and
/// whether it is a replay.
async fn create(
    state: &AppState,
    caller: &crate::auth::Caller,
    submission: LeadSubmission,
    idempotency_key: Option<Vec<u8>>,
    announcement: Option<&group_commit::Announcement>,
) -> Result<(LeadCreated, bool), ApiError> {
    let submitted = submission.into_submitted()?;
    let user_id = caller.key.user_id;
    let key = idempotency_key
        .as_deref()
        .map(idempotency::validate_key)
        .transpose()?;
    if let Some(key) = &key {
        match idempotency::claim(&state.db, user_id, key, &submitted.fingerprint()).await? {
            idempotency::Claim::Fresh => {}
            idempotency::Claim::Replay(body) => {
                let value = serde_json::from_str(&body).ok();
                let created = <LeadCreated as poem_openapi::types::ParseFromJSON>::parse_from_json(
                    value,
                )
                .map_err(|err| {
                    tracing::error!(error = %err.message(), "stored idempotent answer unreadable");
                    ApiError::internal()
                })?;
                return Ok((created, true));
            }
        }
    }
    match store::insert_lead(
        &state.db,
        &state.lead_writer,
        &caller.key,
        submitted.lead,
        key.as_deref(),
        announcement,
    )
    .await
    {
        Ok(lead) => Ok((
            LeadCreated {
                success: true,
                lead,
            },
            false,
        )),
        Err(err) => {
            if let Some(key) = &key {
                // Not stored: free the key so that the client's retry can succeed.
                let _ = idempotency::forget(&state.db, user_id, key).await;
            }
            Err(err)
        }
    }
}
