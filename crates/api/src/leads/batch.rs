//! `POST /api/external/leads/batch`: 1 to 100 leads in one request, each created or
//! refused on its own, one result per item in order. The request counts once against
//! the key's limit, all its rows go in one statement, and an `Idempotency-Key` replays
//! the same per-item answer.

use std::sync::Arc;

use poem::{Request, RequestBody};
use poem_openapi::param::Header;
use poem_openapi::payload::{Json, Payload, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};
use serde_json::Value;

use ciq_http::HttpError;
use ciq_http::error::{ErrorBody, ErrorDetail, FieldError};
use ciq_leads::rules::{Envelope, LeadList};
use ciq_leads::store::{BatchOutcome, RememberedBatch};
use ciq_leads::{LeadError, LeadOwner, NewLead, idempotency};

use super::body::{parsed, read_body};
use super::idempotent;
use super::{Lead, Rendered, field_errors};
use crate::auth::ApiKeyAuth;
use crate::state::ApiState;
use crate::tags::ApiTags;

/// Most leads in one batch.
pub const MAX_BATCH_LEADS: usize = 100;
// The parsed list makes room for a whole batch before reading it.
const _: () = assert!(LeadList::RESERVED == MAX_BATCH_LEADS);

/// A batch to create.
#[derive(Debug, Object)]
pub struct BatchLeadsRequest {
    /// 1 to 100 leads, each an object with the fields and rules of a create's `lead`
    /// (`LeadInput`). Items are checked one by one: one that breaks a rule (or is no
    /// object at all) is answered 422 in its own result, and the others go on, so the
    /// document does not hold items to that schema.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub leads: Vec<serde_json::Value>,
    /// A web form's hidden honeypot input, as on create: non-empty, every item is
    /// answered as usual and stored as spam (reason `honeypot`).
    pub honeypot: Option<String>,
}

/// What became of one item.
#[derive(Debug, Clone, Object)]
pub struct BatchItem {
    /// The item's place in the request (0-based).
    pub index: u32,
    /// 201 created; 202 queued (the store is down and the request said
    /// `Prefer: respond-async`: stored with this lead's id and `created_at` when it is
    /// back); 422 field rules broken; 409 `external_id` taken (also by an earlier item of
    /// the batch); 503 not stored (the store is down and the item has an `external_id`);
    /// 410 erased since (a replay only).
    pub status: u16,
    /// `true` on a 202 item.
    #[oai(skip_serializing_if_is_none)]
    pub queued: Option<bool>,
    /// The stored lead (status 201).
    #[oai(skip_serializing_if_is_none)]
    pub lead: Option<Lead>,
    /// Why the item was refused, as a failed create would say it; field paths name the
    /// item (`leads[3].email`).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<ErrorDetail>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Object)]
pub struct BatchCreated {
    /// Always `true`: the request was acceptable, whatever became of its items.
    pub success: bool,
    /// Items created (201) or queued (202).
    pub created: u32,
    /// Items refused.
    pub failed: u32,
    /// One result per item, in the request's order.
    pub results: Vec<BatchItem>,
}

impl BatchCreated {
    fn of(results: Vec<BatchItem>) -> Self {
        let created = results
            .iter()
            .filter(|r| matches!(r.status, 201 | 202))
            .count();
        Self {
            success: true,
            created: u32::try_from(created).unwrap_or(u32::MAX),
            failed: u32::try_from(results.len() - created).unwrap_or(u32::MAX),
            results,
        }
    }
}

/// Every answer of the batch endpoint.
#[derive(Debug, ApiResponse)]
pub enum BatchLeadsResponse {
    /// The batch was taken: each item's own answer is in `results`.
    #[oai(status = 200)]
    Ok(Rendered<BatchCreated>),
    /// `invalid_json`: the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key` or `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:create`; `origin_not_allowed`; or
    /// `challenge_failed` (a browser key's challenge token missing or refused).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `payload_too_large`: over the batch's own limit (room for 100 full leads).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: `leads` is missing, not an array, empty or longer than 100
    /// (field `leads`), or another top-level field was sent;
    /// `idempotency_key_reused`: the key was used with another body.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`: over the key's limit (a batch counts once), or (a browser
    /// submission) over the visitor limit, where each lead counts and a batch larger than
    /// what is left is refused whole (`RateLimit-Policy: "visitor";…`).
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

crate::responses::error_variants!(BatchLeadsResponse {
    400 => BadRequest,
    401 => Unauthorized,
    403 => Forbidden,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// A batch body read and checked: each item's lead or its broken rules.
pub struct Batch {
    items: Vec<Result<NewLead, Vec<FieldError>>>,
    honeypot: Option<String>,
    /// The body as sent (valid JSON), for the idempotency fingerprint.
    body: Vec<u8>,
}

/// What a batch's idempotency fingerprint is made from: the body, parsed again (only a
/// request with an `Idempotency-Key` needs it).
fn fingerprint(body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).expect("the body was parsed before");
    idempotency::fingerprint(idempotency::Operation::Batch, &body)
}

/// The body of a batch request, or why it cannot be used (never fails to extract, so
/// the handler answers every case with the rate-limit headers), and how many leads it
/// carries (what a browser submission's visitor limit counts; 1 when it is unreadable).
pub struct BatchSubmission(Result<Batch, HttpError>, usize);

/// The batch's own body limit: room for [`MAX_BATCH_LEADS`] leads of the size a
/// create accepts.
pub fn batch_body_limit(create_limit: usize) -> usize {
    create_limit.saturating_mul(MAX_BATCH_LEADS)
}

/// The request's rules, then each item's, all at once: `leads` must be an array of 1
/// to 100; each item is checked as a create's `lead`, its field paths renamed
/// `leads[i].…`. Returns each item's lead or broken rules, and the honeypot's text.
pub fn validate_batch(body: &Envelope<LeadList>) -> Result<Checked, HttpError> {
    let rule = format!("must be an array of 1 to {MAX_BATCH_LEADS} leads");
    if !body.is_object() {
        return Err(HttpError::validation_failed(vec![FieldError::new(
            "leads", rule,
        )]));
    }
    let mut broken: Vec<FieldError> = body
        .beside()
        .iter()
        .map(|k| {
            FieldError::new(
                k.clone(),
                "is not a field of a batch (send {\"leads\": [...]})",
            )
        })
        .collect();
    let mut trap_errors = Vec::new();
    let honeypot = ciq_leads::rules::honeypot_of(body.honeypot(), &mut trap_errors);
    broken.extend(field_errors(trap_errors));
    let leads = match body.member() {
        Some(LeadList::Items(leads)) if (1..=MAX_BATCH_LEADS).contains(&leads.len()) => leads,
        Some(LeadList::Items(leads)) => {
            broken.push(FieldError::new(
                "leads",
                format!("{rule} ({} given)", leads.len()),
            ));
            return Err(HttpError::validation_failed(broken));
        }
        None | Some(LeadList::NotArray) => {
            broken.push(FieldError::new("leads", rule));
            return Err(HttpError::validation_failed(broken));
        }
    };
    if !broken.is_empty() {
        return Err(HttpError::validation_failed(broken));
    }
    let items = leads
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.validate().map_err(|violations| {
                field_errors(violations)
                    .into_iter()
                    .map(|mut e| {
                        e.field = match e.field.strip_prefix("lead") {
                            Some(rest) => format!("leads[{index}]{rest}"),
                            None => e.field,
                        };
                        e
                    })
                    .collect()
            })
        })
        .collect();
    Ok((items, honeypot))
}

/// A batch's items checked (each one's lead or broken rules) and its honeypot's text.
pub type Checked = (Vec<Result<NewLead, Vec<FieldError>>>, Option<String>);

impl<'a> ApiExtractor<'a> for BatchSubmission {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<BatchLeadsRequest> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("1 to 100 leads, wrapped in `leads`."),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Json<BatchLeadsRequest> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let create_limit = request
            .data::<Arc<ApiState>>()
            .map_or(crate::state::DEFAULT_MAX_BODY_BYTES, |s| s.max_body_bytes);
        let limit = batch_body_limit(create_limit);
        let read = match read_body(request, body, limit).await {
            Ok(bytes) => parsed::<Envelope<LeadList>>(&bytes).map(|parsed| (parsed, bytes)),
            Err(err) => Err(err),
        };
        let leads = match &read {
            Ok((parsed, _)) => match parsed.member() {
                Some(LeadList::Items(leads)) => leads.len(),
                _ => 1,
            },
            Err(_) => 1,
        }
        .clamp(1, MAX_BATCH_LEADS);
        let batch = read.and_then(|(parsed, body)| {
            let (items, honeypot) = validate_batch(&parsed)?;
            Ok(Batch {
                items,
                honeypot,
                body,
            })
        });
        Ok(Self(batch, leads))
    }
}

fn item(index: usize, status: u16, lead: Option<Lead>, error: Option<HttpError>) -> BatchItem {
    BatchItem {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        status,
        queued: (status == 202).then_some(true),
        lead,
        error: error.map(|e| e.body().error),
    }
}

/// The items of the answer, in order, from what the store did and what the rules said.
fn results(outcomes: &[BatchOutcome], refusals: &[Option<Vec<FieldError>>]) -> Vec<BatchItem> {
    outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| result(index, outcome, refusals))
        .collect()
}

/// The answer's item `index`, from what the store did with it and what the rules said.
fn result(index: usize, outcome: &BatchOutcome, refusals: &[Option<Vec<FieldError>>]) -> BatchItem {
    match outcome {
        BatchOutcome::Created(lead) => item(
            index,
            201,
            Some(super::quarantine::as_submitted((**lead).clone())),
            None,
        ),
        BatchOutcome::Duplicate(holder) => item(
            index,
            409,
            None,
            Some(HttpError::from(LeadError::DuplicateLead(*holder))),
        ),
        BatchOutcome::Refused => item(
            index,
            422,
            None,
            Some(HttpError::validation_failed(
                refusals[index].clone().unwrap_or_default(),
            )),
        ),
    }
}

/// The answer to a batch the store took: what `BatchCreated::of(results(…))` renders,
/// byte for byte (a test holds the two together), with each created lead written from
/// the domain's lead ([`ciq_leads::Lead::write_json`]) instead of through a
/// `serde_json::Value` tree per lead — poem-openapi's rendering was two fifths of a
/// 100-lead batch's instructions in the gateway (callgrind, 2026-12-07). A refused
/// item is rendered as before.
fn answered(
    outcomes: &[BatchOutcome],
    refusals: &[Option<Vec<FieldError>>],
) -> Rendered<BatchCreated> {
    use std::io::Write;
    let created = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, BatchOutcome::Created(_)))
        .count();
    let failed = outcomes.len() - created;
    // Each item is its lead and about 40 bytes around it.
    let per_item = 40 + ciq_leads::Lead::JSON_CAPACITY;
    let mut out = Vec::with_capacity(64 + outcomes.len() * per_item);
    let wrote = "a Vec takes every write";
    write!(
        out,
        r#"{{"success":true,"created":{created},"failed":{failed},"results":["#
    )
    .expect(wrote);
    for (index, outcome) in outcomes.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match outcome {
            BatchOutcome::Created(lead) => {
                write!(out, r#"{{"index":{index},"status":201,"lead":"#).expect(wrote);
                super::quarantine::write_as_submitted(lead, &mut out);
                out.push(b'}');
            }
            refused => {
                out.extend_from_slice(result(index, refused, refusals).to_json_string().as_bytes());
            }
        }
    }
    out.extend_from_slice(b"]}");
    Rendered::written(out)
}

/// A remembered answer's items (a JSON array; `null` where the lead was erased since).
/// A batch while the store is down, for a client that takes queued answers: each valid
/// item without an `external_id` is queued (202) in one spool entry, an item with one is
/// 503 (its uniqueness needs the store), a refused item 422 as always. Its
/// `Idempotency-Key` replays this answer until the entry is drained, then the answer
/// with the queued items as 201.
async fn spool_batch(
    state: &ApiState,
    spool: &ciq_spool::Spool,
    caller: &crate::auth::Caller,
    items: Vec<Result<NewLead, Vec<FieldError>>>,
    honeypot: Option<&str>,
    keyed: Option<(String, String)>,
) -> Result<(BatchCreated, bool), HttpError> {
    let blocked = super::quarantine::block_list(state, caller).await;
    let owner = LeadOwner {
        user_id: caller.key.user_id,
        api_key_id: Some(caller.key.key_id),
    };
    let mut rows = Vec::new();
    let mut held = Vec::new();
    let mut queued = Vec::with_capacity(items.len());
    let mut stored = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let answered = match item {
            Ok(mut lead) if lead.external_id.is_none() => {
                super::quarantine::receive(caller, &mut lead, honeypot, blocked.as_deref());
                let row = ciq_leads::store::prepare(owner, lead);
                let shown = super::quarantine::as_submitted(ciq_leads::Lead::from(row.clone()));
                held.push((index, row.id));
                rows.push(row);
                queued.push(self::item(index, 202, Some(shown.clone()), None));
                stored.push(self::item(index, 201, Some(shown), None));
                continue;
            }
            Ok(_) => self::item(
                index,
                503,
                None,
                Some(super::spooled::unavailable(
                    "the store is unreachable: an item with an external_id cannot be queued",
                )),
            ),
            Err(broken) => self::item(index, 422, None, Some(HttpError::validation_failed(broken))),
        };
        queued.push(answered.clone());
        stored.push(answered);
    }
    let queued = BatchCreated::of(queued);
    if rows.is_empty() {
        return Ok((queued, false));
    }
    let as_stored: Vec<Value> = stored
        .iter()
        .map(|item| item.to_json().unwrap_or(Value::Null))
        .collect();
    let request = ciq_leads::spooled::SpooledRequest {
        user_id: owner.user_id,
        rows,
        browser: caller.visitor.is_some(),
        remembered: keyed.map(|(key, fingerprint)| ciq_leads::spooled::RememberedAnswer {
            key,
            fingerprint,
            status: 200,
            body: Value::Array(as_stored).to_string(),
            held,
        }),
    };
    Ok(
        match super::spooled::write(spool, &request, &queued.to_json_string()).await? {
            None => (queued, false),
            Some(body) => (idempotent::stored(&body)?, true),
        },
    )
}

fn replayed(stored: &str) -> Result<BatchCreated, HttpError> {
    let unreadable = |why: String| {
        HttpError::from(LeadError::StoredAnswerUnreadable(format!(
            "a batch answer: {why}"
        )))
    };
    let items: Vec<Value> = serde_json::from_str(stored).map_err(|e| unreadable(e.to_string()))?;
    let results = items
        .into_iter()
        .enumerate()
        .map(|(index, value)| match value {
            Value::Null => Ok(item(
                index,
                410,
                None,
                Some(HttpError::from(LeadError::LeadDeleted)),
            )),
            value => {
                BatchItem::parse_from_json(Some(value)).map_err(|e| unreadable(e.into_message()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BatchCreated::of(results))
}

/// Batch creation.
pub struct BatchLeadsApi;

#[OpenApi]
impl BatchLeadsApi {
    /// Create up to 100 leads
    ///
    /// Each item of `leads` is validated and created on its own, with the create rules;
    /// the answer is 200 whenever the request itself is acceptable, with one result per
    /// item in order (201 with the lead, 422 naming `leads[i].field`, 409
    /// `duplicate_lead` with `lead_id`). Within a batch the first created item with an
    /// `external_id` wins and later items with it get 409 naming that lead. The
    /// request counts once against the key's limit. With `Idempotency-Key`, a retry
    /// replays the same per-item answer (an item whose lead was erased since: 410
    /// `lead_deleted`). Browser keys may use it like create.
    #[oai(
        path = "/api/external/leads/batch",
        method = "post",
        tag = "ApiTags::Leads",
        operation_id = "batchCreateLeads",
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
            description = "`true` when this 200 replays the answer to an earlier request with the same Idempotency-Key."
        )
    )]
    async fn batch_create_leads(
        &self,
        auth: ApiKeyAuth,
        submission: BatchSubmission,
        /// Optional, as on create: a retry with the same key and body within 24 hours
        /// replays the first answer.
        #[oai(name = "Idempotency-Key")]
        #[allow(unused_variables)]
        idempotency_key: Header<Option<String>>,
        /// For a browser key that demands a challenge: the token its widget wrote into
        /// the form (`cf-turnstile-response`, `h-captcha-response` or
        /// `g-recaptcha-response`), verified once with the provider.
        #[oai(name = "X-Challenge-Token")]
        #[allow(unused_variables)]
        challenge_token: Header<Option<String>>,
        state: poem::web::Data<&Arc<ApiState>>,
        req: &Request,
    ) -> Response<BatchLeadsResponse> {
        let mut caller = auth.0;
        let answer = match caller.admit(&state, req, submission.1).await {
            Ok(()) => batch(&state, &caller, submission, req).await,
            Err(err) => Err(err),
        };
        let (response, replayed) = match answer {
            Ok((answer, replayed)) => (BatchLeadsResponse::Ok(answer), replayed),
            Err(err) => (BatchLeadsResponse::from(err), false),
        };
        idempotent::marked(caller.answer(response), replayed)
    }
}

async fn batch(
    state: &ApiState,
    caller: &crate::auth::Caller,
    submission: BatchSubmission,
    req: &Request,
) -> Result<(Rendered<BatchCreated>, bool), HttpError> {
    caller.require(ciq_admin::Scope::LeadsCreate)?;
    let Batch {
        items,
        honeypot,
        body,
    } = submission.0?;
    let user_id = caller.key.user_id;
    let idempotency_key = idempotent::raw_key(req);
    if let Some(spool) = super::spooled::usable(state, req)
        && state.leads.writer().breaker().is_open()
    {
        let keyed = idempotent::validated(idempotency_key)?.map(|key| (key, fingerprint(&body)));
        let (answer, replayed) =
            spool_batch(state, spool, caller, items, honeypot.as_deref(), keyed).await?;
        return Ok((Rendered::documented(&answer), replayed));
    }
    let key =
        match idempotent::claim(state, user_id, idempotency_key, || fingerprint(&body)).await? {
            idempotent::Keyed::Fresh(key) => key,
            idempotent::Keyed::Replay(stored) => {
                return Ok((Rendered::documented(&replayed(&stored)?), true));
            }
            idempotent::Keyed::Queued(stored) => {
                let answer: BatchCreated = idempotent::stored(&stored)?;
                return Ok((Rendered::documented(&answer), true));
            }
        };
    let blocked = super::quarantine::block_list(state, caller).await;
    let (leads, refusals): (Vec<Option<NewLead>>, Vec<Option<Vec<FieldError>>>) = items
        .into_iter()
        .map(|item| match item {
            Ok(mut lead) => {
                super::quarantine::receive(
                    caller,
                    &mut lead,
                    honeypot.as_deref(),
                    blocked.as_deref(),
                );
                (Some(lead), None)
            }
            Err(broken) => (None, Some(broken)),
        })
        .unzip();
    let render = |outcomes: &[BatchOutcome]| {
        let items: Vec<Value> = results(outcomes, &refusals)
            .iter()
            .map(|item| item.to_json().unwrap_or(Value::Null))
            .collect();
        Value::Array(items).to_string()
    };
    let owner = LeadOwner {
        user_id,
        api_key_id: Some(caller.key.key_id),
    };
    let remembered = key.as_deref().map(|key| RememberedBatch {
        key,
        render: &render,
    });
    let stored = state.leads.insert_batch(owner, leads, remembered).await;
    match stored {
        Ok(outcomes) => {
            let stored = outcomes.iter().filter_map(|outcome| match outcome {
                BatchOutcome::Created(lead) => Some(&**lead),
                _ => None,
            });
            super::quarantine::count_stored(state, caller, stored);
            Ok((answered(&outcomes, &refusals), false))
        }
        Err(err) => {
            idempotent::release(state, user_id, key.as_deref()).await;
            Err(HttpError::from(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciq_http::ErrorCode;

    /// The answer written from the domain's leads is the documented object's rendering,
    /// byte for byte: created leads (one quarantined as spam, whose verdict is hidden),
    /// a duplicate, a refused item, and a batch with nothing created.
    #[test]
    fn a_written_answer_is_the_documented_objects_json_byte_for_byte() {
        let [spam, plain] = crate::leads::tests::leads_of_every_shape();
        let outcomes = [
            BatchOutcome::Created(Box::new(plain)),
            BatchOutcome::Refused,
            BatchOutcome::Created(Box::new(spam)),
            BatchOutcome::Duplicate(uuid::Uuid::now_v7()),
        ];
        let refusals = [
            None,
            Some(vec![FieldError::new(
                "leads[1].email",
                "must be a valid email address",
            )]),
            None,
            None,
        ];
        let documented = |outcomes: &[BatchOutcome], refusals: &[Option<Vec<FieldError>>]| {
            BatchCreated::of(results(outcomes, refusals)).to_json_string()
        };
        assert_eq!(
            String::from_utf8(answered(&outcomes, &refusals).body).unwrap(),
            documented(&outcomes, &refusals)
        );
        let none_created = [BatchOutcome::Refused];
        let refused = [Some(vec![FieldError::new("leads[0].name", "is required")])];
        assert_eq!(
            String::from_utf8(answered(&none_created, &refused).body).unwrap(),
            documented(&none_created, &refused)
        );
    }

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        ciq_http::error::assert_variants_match_table::<BatchLeadsResponse>(&[
            ErrorCode::RateLimited,
            ErrorCode::ServiceUnavailable,
        ]);
    }

    #[test]
    fn the_request_rules_name_leads_and_item_rules_name_the_item() {
        // Checked as the handler checks it: parsed from the body's text.
        let check = |body: Value| validate_batch(&parsed(body.to_string().as_bytes()).unwrap());
        let fields = |body: Value| match check(body) {
            Err(err) => err.details.into_iter().map(|d| d.field).collect::<Vec<_>>(),
            Ok(_) => vec![],
        };
        assert_eq!(fields(serde_json::json!({"lead": {}})), ["lead", "leads"]);
        assert_eq!(fields(serde_json::json!({"leads": []})), ["leads"]);
        assert_eq!(fields(serde_json::json!([1])), ["leads"]);
        let many: Vec<Value> = (0..=MAX_BATCH_LEADS)
            .map(|_| serde_json::json!({}))
            .collect();
        assert_eq!(fields(serde_json::json!({ "leads": many })), ["leads"]);
        let (items, _) = check(serde_json::json!({"leads": [
            {"name": "A", "email": "a@example.com", "source": "API", "industry": "Tech"},
            {"name": "B", "email": "nope", "source": "API"},
            "not an object"
        ]}))
        .unwrap();
        assert!(items[0].is_ok());
        let broken: Vec<String> = items[1]
            .as_ref()
            .unwrap_err()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert!(
            broken.contains(&"leads[1].email".to_owned())
                && broken.contains(&"leads[1].industry".to_owned()),
            "{broken:?}"
        );
        let not_object: Vec<String> = items[2]
            .as_ref()
            .unwrap_err()
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(not_object, ["leads[2]"]);
    }
}
