//! `POST /api/external/leads/create` — the reference's Create Lead endpoint — and the
//! objects it reads and answers with (the domain's types mapped to the document's).

mod attribution;
pub mod batch;
pub(crate) mod body;
mod idempotent;
pub mod manage;
pub mod quarantine;
pub mod spooled;
pub mod upsert;

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Header;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{ApiResponse, Object, OpenApi};

use ciq_http::{ErrorBody, FieldError, HttpError, Timestamp};
use ciq_leads::store::{LeadOwner, Remembered};
use ciq_leads::{Violation, group_commit};

pub use attribution::{AttributionFields, ConsentInput, ConsentRecord};
pub use body::{LeadSubmission, PatchSubmission};
pub use spooled::LeadQueued;

use crate::auth::ApiKeyAuth;
use crate::money::Amount;
use crate::state::ApiState;
use crate::tags::ApiTags;

/// Makes the document's create and update objects from the domain's list of the fields
/// a client sends ([`ciq_leads::submitted_fields!`]).
macro_rules! submitted_objects {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty => $changed:literal, )*) => {
        /// A lead as submitted. Field rules are those of the reference's Field Reference;
        /// the lengths and the score range are written into the document from the rules
        /// `ciq_leads::rules` enforces (see `crate::openapi`), so they are stated once.
        #[derive(Debug, Object)]
        #[oai(deny_unknown_fields)]
        pub struct LeadInput {
            $( $(#[doc = $doc])* pub $field: <$ty as DocumentField>::Shown, )*
        }

        /// The fields an update may carry: any of a lead's, each following the create rules;
        /// `null` empties an optional field (name, email, source, industry and status cannot be
        /// emptied).
        #[derive(Debug, Object)]
        #[oai(deny_unknown_fields)]
        pub struct LeadChanges {
            $( #[doc = $changed] pub $field: <$ty as DocumentField>::Changed, )*
        }
    };
}

ciq_leads::submitted_fields!(submitted_objects);

/// How a field of the domain's lead is written in the document: money as [`Amount`],
/// times as [`Timestamp`], the status as the document's enum, the rest as it is.
pub trait DocumentField {
    /// The field's type in the document.
    type Shown;
    /// Its type in an update, where every field may be left out.
    type Changed;
    /// The value, as the document writes it.
    fn shown(self) -> Self::Shown;
}

/// [`DocumentField`] for types the document writes as they are.
macro_rules! shown_as_is {
    ($($ty:ty),*) => {$(
        impl DocumentField for $ty {
            type Shown = Self;
            type Changed = Option<Self>;
            fn shown(self) -> Self {
                self
            }
        }
    )*};
}
shown_as_is!(uuid::Uuid, String, i32);

impl DocumentField for ciq_leads::LeadStatus {
    type Shown = LeadStatus;
    type Changed = Option<LeadStatus>;
    fn shown(self) -> LeadStatus {
        self.into()
    }
}

impl DocumentField for ciq_leads::Money {
    type Shown = Amount;
    type Changed = Option<Amount>;
    fn shown(self) -> Amount {
        Amount(self)
    }
}

impl DocumentField for ciq_leads::lead::Time {
    type Shown = Timestamp;
    type Changed = Option<Timestamp>;
    fn shown(self) -> Timestamp {
        self.into()
    }
}

impl DocumentField for ciq_leads::Spam {
    // Boxed: most leads have none, and the answers that carry a lead stay small.
    type Shown = Box<SpamVerdict>;
    type Changed = Option<Box<SpamVerdict>>;
    fn shown(self) -> Box<SpamVerdict> {
        Box::new(SpamVerdict {
            reason: self.reason,
            at: self.at.into(),
        })
    }
}

/// Why a lead is quarantined as spam. Spam leads are stored (nothing a visitor sends
/// is lost) but are out of the list (unless `?spam=true`) and exports, and send no
/// webhook event until their owner marks them "Not spam" in Settings.
#[derive(Debug, Clone, Object)]
pub struct SpamVerdict {
    /// `honeypot` (the form's hidden field was filled in), `link_in_name`,
    /// `links_in_description` (more than 3), `blocked_email` (the account's block list)
    /// or `challenge_unverified` (the challenge provider could not be reached).
    pub reason: String,
    /// When the lead was judged spam.
    pub at: Timestamp,
}

impl<T: DocumentField> DocumentField for Option<T> {
    type Shown = Option<T::Shown>;
    type Changed = Option<T::Shown>;
    fn shown(self) -> Self::Shown {
        self.map(T::shown)
    }
}

/// Where the lead is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
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

impl From<ciq_leads::LeadStatus> for LeadStatus {
    fn from(status: ciq_leads::LeadStatus) -> Self {
        match status {
            ciq_leads::LeadStatus::New => Self::New,
            ciq_leads::LeadStatus::Contacted => Self::Contacted,
            ciq_leads::LeadStatus::Qualified => Self::Qualified,
            ciq_leads::LeadStatus::Lost => Self::Lost,
        }
    }
}

/// Body of an update.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct PatchLeadRequest {
    /// The fields to change.
    pub lead: LeadChanges,
}

/// Body of a create request.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateLeadRequest {
    /// The lead to create.
    pub lead: LeadInput,
    /// A web form's hidden honeypot input, sent as it is (people never see it, so it
    /// stays empty; bots fill it in). Non-empty: the answer is an ordinary 201 and the
    /// lead is stored as spam (reason `honeypot`).
    pub honeypot: Option<String>,
}

/// Makes the document's lead object from the domain's list of a lead's fields
/// ([`ciq_leads::lead_fields!`]): the same fields, in the same order, as the domain's
/// serialised lead.
macro_rules! lead_object {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty, )*) => {
        /// A stored lead.
        #[derive(Debug, Clone, Object)]
        pub struct Lead {
            $( $(#[doc = $doc])* pub $field: <$ty as DocumentField>::Shown, )*
        }

        impl From<ciq_leads::Lead> for Lead {
            fn from(lead: ciq_leads::Lead) -> Self {
                Self { $( $field: DocumentField::shown(lead.$field), )* }
            }
        }
    };
}

ciq_leads::lead_fields!(lead_object);

/// Body of a successful create.
#[derive(Debug, Clone, Object)]
pub struct LeadCreated {
    /// Always `true`.
    pub success: bool,
    /// The stored lead.
    pub lead: Lead,
}

/// A JSON body written once by serde, documented as the OpenAPI object `D` whose JSON
/// it is. poem-openapi's `Json<D>` first builds a `serde_json::Value` tree of `D` (a map
/// entry per field) and then writes the tree: for the create's 201 that was about 6 % of
/// the gateway's CPU per request. The body of a [`Rendered`] is the same JSON, byte for
/// byte (tests compare it with `D`'s own rendering).
pub struct Rendered<D> {
    pub(crate) body: Vec<u8>,
    doc: std::marker::PhantomData<fn() -> D>,
}

impl<D> Rendered<D> {
    fn new(body: String) -> Self {
        Self::written(body.into_bytes())
    }

    /// `value` as poem-openapi renders `D` (an answer made as the documented object).
    pub(crate) fn documented(value: &D) -> Self
    where
        D: poem_openapi::types::ToJSON,
    {
        Self::written(value.to_json_string().into_bytes())
    }

    /// JSON written for `D` by hand; it must be what `D` renders (a test per use).
    pub(crate) fn written(json: Vec<u8>) -> Self {
        Self {
            body: json,
            doc: std::marker::PhantomData,
        }
    }
}

impl<D> std::fmt::Debug for Rendered<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Rendered")
            .field(&String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl<D: poem_openapi::types::Type> poem_openapi::payload::Payload for Rendered<D> {
    const CONTENT_TYPE: &'static str = <Json<D> as poem_openapi::payload::Payload>::CONTENT_TYPE;

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        D::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        D::register(registry);
    }
}

impl<D: poem_openapi::types::Type> poem::IntoResponse for Rendered<D> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type(<Self as poem_openapi::payload::Payload>::CONTENT_TYPE)
            .body(self.body)
    }
}

/// The body of a create's 201 for `lead`, as [`LeadCreated`] renders it (its spam
/// verdict hidden, as [`quarantine::as_submitted`] hides it), written from the domain's
/// lead.
fn render_created(lead: &ciq_leads::Lead) -> String {
    let body = one_lead(|out| quarantine::write_as_submitted(lead, out));
    String::from_utf8(body).expect("JSON is UTF-8")
}

/// `{"success":true,"lead":…}` with the lead `write` appends: the body of a found lead
/// and of a create's 201.
fn one_lead(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    const OPEN: &[u8] = br#"{"success":true,"lead":"#;
    let mut out = Vec::with_capacity(OPEN.len() + 1 + ciq_leads::Lead::JSON_CAPACITY);
    out.extend_from_slice(OPEN);
    write(&mut out);
    out.push(b'}');
    out
}

/// Every answer of the create endpoint.
#[derive(Debug, ApiResponse)]
pub enum CreateLeadResponse {
    /// The lead was stored under the key owner's account.
    #[oai(status = 201)]
    Created(Rendered<LeadCreated>),
    /// The store is down and the request said `Prefer: respond-async`: the lead is
    /// accepted into the outage spool and will be stored with this `id` and
    /// `created_at` when the store is back (`Preference-Applied: respond-async`).
    #[oai(status = 202)]
    Queued(Json<LeadQueued>),
    /// `invalid_json`: the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key`: no X-API-Key header; `invalid_api_key`: malformed, unknown,
    /// revoked or expired key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:create`; `origin_not_allowed`: a
    /// browser request from a web origin the key does not list; `challenge_failed`: the
    /// key demands a challenge (Turnstile, hCaptcha, reCAPTCHA) and the widget's token in
    /// `X-Challenge-Token` is missing or refused by the provider.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `duplicate_lead`: a lead with this `external_id` exists (`error.lead_id` names it);
    /// `idempotency_key_in_use`: a request with the same `Idempotency-Key` is still
    /// being processed.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `lead_deleted`: the lead this `Idempotency-Key` created has been erased.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// `payload_too_large`: the body exceeds the size limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: field rules broken; every one is listed in `details`.
    /// `idempotency_key_reused`: the `Idempotency-Key` was used with another body.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`: over the key's limit, or (a browser submission) over the visitor
    /// limit, whose window the rate-limit headers then describe
    /// (`RateLimit-Policy: "visitor";…`). Waiting `Retry-After` seconds is enough.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `internal_error`: a fault of ours (logged). Retrying will not help by itself.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`: the store cannot be reached; retry after `Retry-After`.
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

crate::responses::error_variants!(CreateLeadResponse {
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

/// Broken rules as the error contract lists them.
pub fn field_errors(violations: Vec<Violation>) -> Vec<FieldError> {
    violations
        .into_iter()
        .map(|v| FieldError::new(v.field, v.message))
        .collect()
}

/// The lead endpoints of the public document: create, batch, upsert, list, get, update
/// and erase.
pub struct LeadsApi;

#[OpenApi]
impl LeadsApi {
    /// Create a lead
    ///
    /// Creates a lead in the account that owns the API key. Required fields: name,
    /// email, source, industry. Every broken field rule is reported at once in
    /// `error.details`. Rate limiting: 100 requests per minute per API key (sliding
    /// window); every authenticated response carries the rate-limit headers. A web page
    /// may call it with a browser key (only `leads:create`, with the page's origin
    /// allowed): the path answers CORS preflights, and a request whose `Origin` the key
    /// does not allow is 403 `origin_not_allowed`. Every create with such a key is a
    /// browser submission: before it spends the key's budget it passes the visitor limit
    /// (10 per client address per minute unless the key sets its own; over it, 429 with
    /// `RateLimit-Policy: "visitor";q=10;w=60`), and a filled-in `honeypot`, a link in
    /// the name or more than 3 in the description store the lead as spam (answered as
    /// an ordinary 201: see `spam` on the lead object). A key may also demand a
    /// challenge: the page's widget token goes in `X-Challenge-Token` and is verified
    /// with the provider before the key's budget is spent.
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
        /// For a browser key that demands a challenge: the token its widget wrote into
        /// the form (`cf-turnstile-response`, `h-captcha-response` or
        /// `g-recaptcha-response`), verified once with the provider.
        #[oai(name = "X-Challenge-Token")]
        #[allow(unused_variables)]
        challenge_token: Header<Option<String>>,
        state: Data<&Arc<ApiState>>,
        req: &poem::Request,
    ) -> Response<CreateLeadResponse> {
        answer_create(auth.0, submission, state.0, req).await
    }
}

/// `POST /api/external/leads/create` answered without the OpenAPI service's own layers:
/// [`crate::operations`] calls it for every such request, after the layer the public
/// operations share. The same key check (the `X-API-Key` scheme's, then its checker),
/// the same body extraction, in the same order, and the same answer as the documented
/// operation ([`LeadsApi`]'s `create_lead`, which stays the document's and answers
/// through the same [`answer_create`]). What it skips per create: the service's second
/// route table and method table, its query string parsed into a list, the operation id
/// put into the answer's extensions, and two boxed endpoint futures (each box a copy
/// of the whole future).
pub(crate) async fn create_directly(
    state: &ApiState,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    let (req, mut body) = req.split();
    let caller = crate::auth::ApiKeyAuth::from_header(&req).await?;
    let submission = LeadSubmission::extract(&req, &mut body).await;
    Ok(poem::IntoResponse::into_response(
        answer_create(caller, submission, state, &req).await,
    ))
}

/// The create's answer, whichever way it was routed: the key's budget spent on the body's
/// one lead, the lead stored (or spooled), the rate-limit headers, `Idempotent-Replayed`
/// and `Preference-Applied` as they apply.
async fn answer_create(
    mut caller: crate::auth::Caller,
    submission: LeadSubmission,
    state: &ApiState,
    req: &poem::Request,
) -> Response<CreateLeadResponse> {
    let announcement = req
        .extensions()
        .get::<Arc<group_commit::Announcement>>()
        .cloned();
    let created = match caller.admit(state, req, 1).await {
        Ok(()) => create(state, &caller, submission, req, announcement.as_deref()).await,
        Err(err) => Err(err),
    };
    if let Some(announcement) = &announcement {
        // Answered without a row (an error) or with one already queued.
        announcement.settle();
    }
    let (response, replayed) = match created {
        Ok((Answer::Created(body), replayed)) => {
            (CreateLeadResponse::Created(Rendered::new(body)), replayed)
        }
        Ok((Answer::Queued(queued), replayed)) => {
            (CreateLeadResponse::Queued(Json(*queued)), replayed)
        }
        Err(err) => (CreateLeadResponse::from(err), false),
    };
    let queued = matches!(response, CreateLeadResponse::Queued(_));
    let response = idempotent::marked(caller.answer(response), replayed);
    if queued {
        response.header(spooled::PREFERENCE_APPLIED, "respond-async")
    } else {
        response
    }
}

/// What a create answers: stored (201), or queued in the outage spool (202).
pub(crate) enum Answer {
    /// The 201's body ([`render_created`], or a replay's stored one).
    Created(String),
    /// The 202's body (boxed: rare, and several times a `String`'s size).
    Queued(Box<LeadQueued>),
}

/// Validates, claims the idempotency key if any, stores — or, while the store is down
/// and the client takes a queued answer, spools. Returns the answer and whether it is a
/// replay.
async fn create(
    state: &ApiState,
    caller: &crate::auth::Caller,
    submission: LeadSubmission,
    req: &poem::Request,
    announcement: Option<&group_commit::Announcement>,
) -> Result<(Answer, bool), HttpError> {
    caller.require(ciq_admin::Scope::LeadsCreate)?;
    let mut submitted = submission.into_submitted()?;
    let user_id = caller.key.user_id;
    let blocked = quarantine::block_list(state, caller).await;
    quarantine::receive(
        caller,
        &mut submitted.lead,
        submitted.honeypot.as_deref(),
        blocked.as_deref(),
    );
    let idempotency_key = idempotent::raw_key(req);
    let owner = LeadOwner {
        user_id,
        api_key_id: Some(caller.key.key_id),
    };
    let fingerprint = idempotency_key.is_some().then(|| submitted.fingerprint());
    let row = ciq_leads::store::prepare(owner, submitted.lead);
    // A create the store cannot take waits in the outage spool when its client takes a
    // queued answer — unless it has an external id, whose uniqueness needs the store.
    let spool = spooled::usable(state, req).filter(|_| row.external_id.is_none());
    let keyed = match spool {
        Some(_) => idempotent::validated(idempotency_key.clone())?.zip(fingerprint.clone()),
        None => None,
    };
    if let Some(spool) = spool
        && state.leads.writer().breaker().is_open()
    {
        // Boxed, here and below: only a create during an outage carries the spool's state.
        return Box::pin(spooled::create(spool, caller, row, keyed)).await;
    }
    let claimed = idempotent::claim(state, user_id, idempotency_key, || {
        fingerprint.unwrap_or_default()
    })
    .await;
    let key = match claimed {
        Ok(idempotent::Keyed::Fresh(key)) => key,
        Ok(idempotent::Keyed::Replay(body)) => {
            // Answered as stored, once it reads as the 201 it was.
            idempotent::stored::<LeadCreated>(&body)?;
            return Ok((Answer::Created(body), true));
        }
        Ok(idempotent::Keyed::Queued(body)) => {
            return Ok((Answer::Queued(Box::new(idempotent::stored(&body)?)), true));
        }
        // The store went before this instance knew: the spool takes it after all.
        Err(err) if spool.is_some() && err.code == ciq_http::ErrorCode::ServiceUnavailable => {
            return Box::pin(spooled::create(spool.expect("checked"), caller, row, keyed)).await;
        }
        Err(err) => return Err(err),
    };
    let remembered = key.as_deref().map(|key| Remembered {
        key,
        render: &render_created,
    });
    // Kept only for a create the spool may take: if the write fails for an outage it is
    // spooled as this same row (same id), so it is stored once even if the write did
    // commit after all.
    let kept = spool.map(|_| row.clone());
    // The store guards itself: group commit per batch, the other paths per write.
    let stored = state.leads.insert_lead(row, remembered, announcement).await;
    match stored {
        Ok(lead) => {
            quarantine::count_stored(state, caller, [&lead]);
            Ok((Answer::Created(render_created(&lead)), false))
        }
        Err(ciq_leads::LeadError::Unavailable(_))
            if let (Some(spool), Some(row)) = (spool, kept) =>
        {
            Box::pin(spooled::create(spool, caller, row, keyed)).await
        }
        Err(err) => {
            // Boxed: only a failed create with a key releases it.
            Box::pin(idempotent::release(state, user_id, key.as_deref())).await;
            Err(HttpError::from(err))
        }
    }
}

#[cfg(test)]
mod tests {
    /// The API's object and the domain's serialised lead (what webhook payloads carry)
    /// are the same JSON, field for field.
    #[test]
    fn the_lead_object_is_the_domains_serialised_lead() {
        use poem_openapi::types::ToJSON;
        for lead in leads_of_every_shape() {
            let domain = serde_json::to_value(&lead).unwrap();
            let api = super::Lead::from(lead).to_json().unwrap();
            assert_eq!(api, domain);
        }
    }

    /// The 201 written by serde is what the documented object renders, byte for byte:
    /// for a lead with every field set (its spam verdict hidden, as the API hides it
    /// from the key that sent it) and for the bare example.
    #[test]
    fn the_created_body_is_the_documented_objects_json_byte_for_byte() {
        use poem_openapi::types::ToJSON;
        for lead in leads_of_every_shape() {
            let documented = super::LeadCreated {
                success: true,
                lead: super::quarantine::as_submitted(lead.clone()),
            }
            .to_json_string();
            assert_eq!(super::render_created(&lead), documented);
        }
    }

    /// A lead with every field set (quarantined as spam too, with text that needs
    /// escaping), and the bare example: what the tests of written answers render.
    pub(crate) fn leads_of_every_shape() -> [ciq_leads::Lead; 2] {
        let at = chrono::DateTime::from_timestamp_millis(1_764_547_200_123).unwrap();
        let owner = ciq_leads::LeadOwner {
            user_id: uuid::Uuid::now_v7(),
            api_key_id: Some(uuid::Uuid::now_v7()),
        };
        let full = ciq_leads::Lead {
            phone: Some("15551234567".into()),
            score: Some(9),
            status: ciq_leads::LeadStatus::Contacted,
            monthly_revenue: Some(ciq_leads::Money { cents: 5_000_010 }),
            description: Some("said \"hi\" — ünïcode\nand a line".into()),
            external_id: Some("crm-1".into()),
            attribution: Some(ciq_leads::Attribution {
                utm_source: Some("newsletter".into()),
                ..Default::default()
            }),
            consent: Some(ciq_leads::Consent {
                text: "Yes, email me".into(),
                granted: true,
                granted_at: at,
                ip: Some("203.0.113.9".into()),
            }),
            spam: Some(ciq_leads::Spam {
                reason: "honeypot".into(),
                at,
            }),
            created_at: at,
            updated_at: at + chrono::TimeDelta::milliseconds(5),
            ..ciq_leads::Lead::example(owner)
        };
        [full, ciq_leads::Lead::example(owner)]
    }

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        ciq_http::error::assert_variants_match_table::<super::CreateLeadResponse>(&[
            ciq_http::ErrorCode::RateLimited,
            ciq_http::ErrorCode::ServiceUnavailable,
        ]);
    }
}
