//! `POST /api/external/leads/upsert`: create or update a lead by its `external_id`,
//! race-free. Updates like `PATCH` (the fields given replace, `null` clears an optional
//! one, omitted fields keep their values); creates with the create rules.

use std::sync::Arc;

use poem::{Request, RequestBody};
use poem_openapi::param::Header;
use poem_openapi::payload::{Json, Payload, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};

use ciq_admin::Scope;
use ciq_http::error::FieldError;
use ciq_http::{ErrorBody, HttpError};
use ciq_leads::rules::{Change, LeadPatch, validate_submission, validate_upsert_patch};
use ciq_leads::store::{RememberedUpsert, Upserted};
use ciq_leads::{LeadOwner, NewLead, idempotency};

use super::body::read_json_within;
use super::idempotent;
use super::{CreateLeadRequest, Lead, field_errors};
use crate::auth::ApiKeyAuth;
use crate::state::ApiState;
use crate::tags::ApiTags;

/// The answer to an upsert.
#[derive(Debug, Clone, Object)]
pub struct LeadUpserted {
    /// Always `true`.
    pub success: bool,
    /// `true`: no lead had the `external_id` and this one was created (201); `false`:
    /// the lead that has it was updated (200).
    pub created: bool,
    /// The lead as stored now.
    pub lead: Lead,
}

/// Every answer of the upsert endpoint.
#[derive(Debug, ApiResponse)]
pub enum UpsertLeadResponse {
    /// No lead had the `external_id`: created.
    #[oai(status = 201)]
    Created(Json<LeadUpserted>),
    /// The lead with the `external_id` was updated with the fields given.
    #[oai(status = 200)]
    Updated(Json<LeadUpserted>),
    /// `invalid_json`: the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key` or `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:create` or `leads:write` (named).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `lead_deleted`: the lead this `Idempotency-Key` stored has been erased since.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// `payload_too_large`: over the create limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: no `external_id`, a field rule broken (the update rules
    /// always; the create rules too when no lead has the `external_id`);
    /// `idempotency_key_reused`.
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
    /// `internal_error`: a fault of ours (logged).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`: the store cannot be reached; nothing was written.
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

crate::responses::error_variants!(UpsertLeadResponse {
    400 => BadRequest,
    401 => Unauthorized,
    403 => Forbidden,
    409 => Conflict,
    410 => Gone,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// An upsert body checked: the update it makes, the external id it is found by, and
/// the lead it creates (or the create rules it breaks) if none has that id.
pub struct Upsert {
    patch: LeadPatch,
    external_id: String,
    new: Result<NewLead, Vec<FieldError>>,
    body: serde_json::Value,
}

/// The body of an upsert, or why it cannot be used (never fails to extract).
pub struct UpsertSubmission(Result<Upsert, HttpError>);

/// The update rules first (they hold either way), then the external id it needs; the
/// create rules are kept for the case that no lead has it.
pub fn validate_upsert(body: serde_json::Value) -> Result<Upsert, HttpError> {
    let patch = validate_upsert_patch(&body)
        .map_err(|violations| HttpError::validation_failed(field_errors(violations)))?;
    let Change::Set(external_id) = patch.external_id.clone() else {
        return Err(HttpError::validation_failed(vec![FieldError::new(
            "lead.external_id",
            "is required: an upsert finds the lead by it",
        )]));
    };
    let new = validate_submission(&body).map_err(field_errors);
    Ok(Upsert {
        patch,
        external_id,
        new,
        body,
    })
}

impl<'a> ApiExtractor<'a> for UpsertSubmission {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<CreateLeadRequest> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "The lead, wrapped in `lead`, with its `external_id` (required here).",
            ),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Json<CreateLeadRequest> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let limit = request
            .data::<Arc<ApiState>>()
            .map_or(crate::state::DEFAULT_MAX_BODY_BYTES, |s| s.max_body_bytes);
        let upsert = read_json_within(request, body, limit)
            .await
            .and_then(validate_upsert);
        Ok(Self(upsert))
    }
}

/// Create-or-update by external id.
pub struct UpsertLeadApi;

#[OpenApi]
impl UpsertLeadApi {
    /// Create or update a lead by external_id
    ///
    /// Finds the lead of your account with the body's `external_id` (required): if one
    /// has it, the fields given replace its values, `null` clears an optional one and
    /// omitted fields keep theirs (200, `created: false`; the update rules, as `PATCH`);
    /// otherwise the lead is created (201, `created: true`; the create rules).
    /// Concurrent upserts of one `external_id` leave one lead. Needs both
    /// `leads:create` and `leads:write`. `api_key_id` stays the key that created the
    /// lead. `Idempotency-Key` replays the first answer, as on create.
    #[oai(
        path = "/api/external/leads/upsert",
        method = "post",
        tag = "ApiTags::Leads",
        operation_id = "upsertLead",
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
            description = "`true` when this answer replays an earlier request with the same Idempotency-Key."
        )
    )]
    async fn upsert_lead(
        &self,
        auth: ApiKeyAuth,
        submission: UpsertSubmission,
        /// Optional, as on create: a retry with the same key and body within 24 hours
        /// replays the first answer.
        #[oai(name = "Idempotency-Key")]
        #[allow(unused_variables)]
        idempotency_key: Header<Option<String>>,
        state: poem::web::Data<&Arc<ApiState>>,
        req: &Request,
    ) -> Response<UpsertLeadResponse> {
        let caller = auth.0;
        match upsert(&state, &caller, submission, idempotent::raw_key(req)).await {
            Ok((answer, replayed)) => {
                let response = if answer.created {
                    UpsertLeadResponse::Created(Json(answer))
                } else {
                    UpsertLeadResponse::Updated(Json(answer))
                };
                idempotent::marked(caller.answer(response), replayed)
            }
            Err(err) => caller.answer(UpsertLeadResponse::from(err)),
        }
    }
}

fn answer_of(upserted: &Upserted) -> LeadUpserted {
    LeadUpserted {
        success: true,
        created: matches!(upserted, Upserted::Created(_)),
        lead: upserted.lead().clone().into(),
    }
}

async fn upsert(
    state: &ApiState,
    caller: &crate::auth::Caller,
    submission: UpsertSubmission,
    idempotency_key: Option<Vec<u8>>,
) -> Result<(LeadUpserted, bool), HttpError> {
    caller.require(Scope::LeadsCreate)?;
    caller.require(Scope::LeadsWrite)?;
    let Upsert {
        patch,
        external_id,
        new,
        body,
    } = submission.0?;
    let user_id = caller.key.user_id;
    let key = match idempotent::claim(state, user_id, idempotency_key, || {
        idempotency::fingerprint(idempotency::Operation::Upsert, &body)
    })
    .await?
    {
        idempotent::Keyed::Fresh(key) => key,
        idempotent::Keyed::Replay(stored) => return Ok((idempotent::stored(&stored)?, true)),
        // A create's queued answer under this key: another operation's body never
        // has its fingerprint, so the key was used with another body.
        idempotent::Keyed::Queued(_) => {
            return Err(ciq_leads::LeadError::IdempotencyKeyReused.into());
        }
    };
    let (new, create_rules) = match new {
        Ok(lead) => (Some(lead), Vec::new()),
        Err(broken) => (None, broken),
    };
    let render =
        |upserted: &Upserted| poem_openapi::types::ToJSON::to_json_string(&answer_of(upserted));
    let remembered = key.as_deref().map(|key| RememberedUpsert {
        key,
        render: &render,
    });
    let owner = LeadOwner {
        user_id,
        api_key_id: Some(caller.key.key_id),
    };
    let stored = state
        .leads
        .upsert(owner, &external_id, patch, new, remembered)
        .await;
    let outcome = match stored {
        Ok(Some(upserted)) => {
            if let Upserted::Created(lead) = &upserted {
                super::quarantine::count_stored(state, caller, [&**lead]);
            }
            return Ok((answer_of(&upserted), false));
        }
        // No lead has the external id, and the body is no lead to create.
        Ok(None) => HttpError::validation_failed(create_rules),
        Err(err) => HttpError::from(err),
    };
    idempotent::release(state, user_id, key.as_deref()).await;
    Err(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciq_http::ErrorCode;

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        ciq_http::error::assert_variants_match_table::<UpsertLeadResponse>(&[
            ErrorCode::RateLimited,
            ErrorCode::ServiceUnavailable,
        ]);
    }

    #[test]
    fn an_upsert_needs_an_external_id_and_keeps_the_create_rules_aside() {
        let err = validate_upsert(serde_json::json!({"lead": {"name": "Jane"}}))
            .err()
            .unwrap();
        assert_eq!(err.details[0].field, "lead.external_id");
        let partial = validate_upsert(
            serde_json::json!({"lead": {"external_id": "crm-1", "status": "qualified"}}),
        )
        .ok()
        .unwrap();
        assert_eq!(partial.external_id, "crm-1");
        let missing: Vec<String> = partial
            .new
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(
            missing.contains(&"lead.name".to_owned()) && missing.contains(&"lead.email".to_owned())
        );
        let unknown =
            validate_upsert(serde_json::json!({"lead": {"external_id": "x", "colour": "red"}}))
                .err()
                .unwrap();
        assert_eq!(unknown.details[0].field, "lead.colour");
    }
}
