//! Webhook subscriptions through the API, for integrations (Zapier's REST hooks, n8n's
//! trigger nodes, your own code): `POST/GET /api/external/webhooks`,
//! `GET/PATCH/DELETE /api/external/webhooks/{id}`. An endpoint made here is the same kind
//! as one made in Settings (signed, durable, retried; 50 per account however made), and
//! may carry a filter on the lead's fields ([`ciq_webhooks::filter`]). Subscribing the
//! same URL, events and filter again answers the existing endpoint: integrations that
//! re-subscribe on every activation make no duplicates.

use std::marker::PhantomData;
use std::sync::Arc;

use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, Payload, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use ciq_admin::Scope;
use ciq_entity::webhook_endpoint;
use ciq_http::{ErrorBody, FieldError, HttpError, Timestamp};
use ciq_webhooks::endpoints::{self, EndpointChanges, EndpointError, Subscribed, Subscription};
use ciq_webhooks::filter::Filter;

use crate::auth::{ApiKeyAuth, Caller};
use crate::leads::body::read_json_within;
use crate::state::ApiState;
use crate::tags::ApiTags;

/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = endpoints::MAX_DESCRIPTION_LEN;

/// A webhook endpoint of your account (never its secret).
#[derive(Debug, Clone, Object)]
pub struct Webhook {
    /// The endpoint's id.
    pub id: Uuid,
    /// Where events are sent (as normalised when it was subscribed).
    pub url: String,
    /// The event types it receives: `lead.created`, `lead.updated`, `lead.deleted`.
    pub events: Vec<String>,
    /// Which events of those types it receives (fields of the lead, all must hold), or
    /// null: every one. Written canonically (keys sorted, text lower-cased).
    pub filter: Option<Value>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// Why it is disabled (`disabled through the API`, `key_revoked`, failures), or null.
    pub disabled_reason: Option<String>,
    /// What it is for, or null.
    pub description: Option<String>,
    /// When it was subscribed.
    pub created_at: Timestamp,
}

impl From<webhook_endpoint::Model> for Webhook {
    fn from(row: webhook_endpoint::Model) -> Self {
        Self {
            id: row.id,
            url: row.url,
            events: row
                .events
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            filter: row
                .filter
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            description: row.description,
            created_at: row.created_at.into(),
        }
    }
}

/// Body of a subscription.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// Where to send events: an `https://` URL on the public internet (the rules of
    /// Settings).
    pub url: String,
    /// Event types (`lead.created`, `lead.updated`, `lead.deleted`); absent or empty:
    /// all three.
    pub events: Option<Vec<String>>,
    /// Fields of the lead the event must match, ANDed, e.g.
    /// `{"source": {"eq": "Website Form"}, "score": {"gte": 5}}`. Operators: `eq`, `in`
    /// (up to 50 values), `gte`, `lte` (numbers), `exists`. Fields: `source`,
    /// `industry`, `status`, `score`, `monthly_revenue`, `budget`, `external_id`,
    /// `email_domain`, `attribution.utm_source`, `attribution.utm_medium`,
    /// `attribution.utm_campaign`. Text compares ignoring case.
    pub filter: Option<Value>,
    /// What it is for (up to 500 characters).
    pub description: Option<String>,
}

/// Body of a change: each field given replaces the endpoint's (`filter` and
/// `description` take null to remove them).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct WebhookChanges {
    /// New event types (at least one).
    pub events: Option<Vec<String>>,
    /// A new filter, or null: every event of its types.
    pub filter: Option<Value>,
    /// `false` disables it (its pending deliveries fail); `true` enables it again.
    pub enabled: Option<bool>,
    /// A new description, or null.
    pub description: Option<String>,
}

/// A new endpoint and its signing secret.
#[derive(Debug, Clone, Object)]
pub struct WebhookCreated {
    /// Always `true`.
    pub success: bool,
    /// The endpoint.
    pub webhook: Webhook,
    /// Its signing secret (`whsec_…`, Standard Webhooks): shown this once; verify each
    /// delivery's `webhook-signature` with it.
    pub secret: String,
}

/// One endpoint.
#[derive(Debug, Clone, Object)]
pub struct WebhookFound {
    /// Always `true`.
    pub success: bool,
    /// The endpoint.
    pub webhook: Webhook,
}

/// The account's endpoints.
#[derive(Debug, Clone, Object)]
pub struct WebhookList {
    /// Always `true`.
    pub success: bool,
    /// Oldest first (at most 50).
    pub webhooks: Vec<Webhook>,
}

/// Every answer of a subscription.
#[derive(Debug, ApiResponse)]
pub enum SubscribeResponse {
    /// Subscribed: a new endpoint, with its secret (shown this once).
    #[oai(status = 201)]
    Created(Json<WebhookCreated>),
    /// The account already has an endpoint with this URL, events and filter: that one
    /// (enabled again if it was disabled), without its secret.
    #[oai(status = 200)]
    Existing(Json<WebhookFound>),
    /// `invalid_json`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `webhooks:manage` or `leads:read`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `too_many_webhooks`: the account has 50 endpoints.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `payload_too_large`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: the URL, an event or the filter (named by its path,
    /// `filter.score.gte`).
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `internal_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`.
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

crate::responses::error_variants!(SubscribeResponse {
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

/// Every answer of reading or changing endpoints.
#[derive(Debug, ApiResponse)]
pub enum WebhookResponse<T: ParseFromJSON + ToJSON> {
    /// The endpoint(s).
    #[oai(status = 200)]
    Ok(Json<T>),
    /// `invalid_json`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `webhooks:manage` (or, to change one,
    /// `leads:read`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `webhook_not_found`: no such endpoint in this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `payload_too_large`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `rate_limited`.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `internal_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`.
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

crate::responses::error_variants!(WebhookResponse<T: ParseFromJSON, ToJSON> {
    400 => BadRequest,
    401 => Unauthorized,
    403 => Forbidden,
    404 => NotFound,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// Every answer of a delete.
#[derive(Debug, ApiResponse)]
pub enum UnsubscribeResponse {
    /// Deleted, with its delivery log (pending deliveries are never sent).
    #[oai(status = 204)]
    Deleted,
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `webhooks:manage`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `webhook_not_found`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `rate_limited`.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a request will be admitted.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// `internal_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `service_unavailable`.
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

crate::responses::error_variants!(UnsubscribeResponse {
    401 => Unauthorized,
    403 => Forbidden,
    404 => NotFound,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// A JSON body documented as `T` and read as JSON, so that its rules are checked here
/// and answered in our shape, each naming its field (never fails to extract).
pub struct JsonBody<T>(Result<Value, HttpError>, PhantomData<T>);

impl<'a, T: Type + ParseFromJSON + ToJSON> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Json<T> as Payload>::schema_ref(),
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
        Ok(Self(
            read_json_within(request, body, limit).await,
            PhantomData,
        ))
    }
}

/// The fields of a body object, or why it is not one; any key outside `known` is a
/// broken rule.
fn fields_of<'v>(
    body: &'v Value,
    known: &[&str],
    broken: &mut Vec<FieldError>,
) -> Result<&'v Map<String, Value>, HttpError> {
    let Value::Object(object) = body else {
        return Err(HttpError::validation_failed(vec![FieldError::new(
            "body",
            "must be a JSON object",
        )]));
    };
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        broken.push(FieldError::new(
            key.clone(),
            format!("is not a known field (known: {})", known.join(", ")),
        ));
    }
    Ok(object)
}

/// The `events` of a body, each an event type: `None` when absent or null (or broken),
/// empty for `[]`.
fn events_of(value: Option<&Value>, broken: &mut Vec<FieldError>) -> Option<Vec<&'static str>> {
    let value = value.filter(|v| !v.is_null())?;
    let Some(items) = value.as_array() else {
        broken.push(FieldError::new("events", "must be an array of event types"));
        return None;
    };
    if items.is_empty() {
        return Some(Vec::new());
    }
    let mut names = Vec::new();
    for item in items {
        match item.as_str() {
            Some(name) => names.push(name.to_owned()),
            None => {
                broken.push(FieldError::new("events", "must be an array of event types"));
                return None;
            }
        }
    }
    match endpoints::parse_events(&names, &ciq_leads::events::NAMES) {
        Ok(events) => Some(events),
        Err(err) => {
            broken.push(FieldError::new("events", err.to_string()));
            None
        }
    }
}

/// The `filter` of a body, checked: `None` when absent; `Some(None)` for null or `{}`.
fn filter_of(value: Option<&Value>, broken: &mut Vec<FieldError>) -> Option<Option<Filter>> {
    let value = value?;
    match Filter::parse(value) {
        Ok(filter) => Some(filter),
        Err(errors) => {
            broken.extend(
                errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, e.message)),
            );
            None
        }
    }
}

/// The `description` of a body: `None` when absent; `Some(None)` for null or blank.
fn description_of(value: Option<&Value>, broken: &mut Vec<FieldError>) -> Option<Option<String>> {
    let value = value?;
    match value {
        Value::Null => Some(None),
        Value::String(text) => match endpoints::check_description(text) {
            Ok(description) => Some(description),
            Err(rule) => {
                broken.push(FieldError::new("description", rule));
                None
            }
        },
        _ => {
            broken.push(FieldError::new("description", "must be a string"));
            None
        }
    }
}

fn checked<T>(value: T, broken: Vec<FieldError>) -> Result<T, HttpError> {
    if broken.is_empty() {
        Ok(value)
    } else {
        Err(HttpError::validation_failed(broken))
    }
}

/// A subscription body, checked.
fn subscription_of(body: &Value, api_key_id: Uuid) -> Result<Subscription, HttpError> {
    let mut broken = Vec::new();
    let object = fields_of(
        body,
        &["url", "events", "filter", "description"],
        &mut broken,
    )?;
    let url = match object.get("url") {
        Some(Value::String(url)) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            broken.push(FieldError::new("url", "is required"));
            None
        }
        Some(_) => {
            broken.push(FieldError::new("url", "must be a string"));
            None
        }
    };
    let events = events_of(object.get("events"), &mut broken)
        .filter(|events| !events.is_empty())
        .unwrap_or_else(|| ciq_leads::events::NAMES.to_vec());
    let filter = filter_of(object.get("filter"), &mut broken).flatten();
    let description = description_of(object.get("description"), &mut broken).flatten();
    checked(
        Subscription {
            url: url.unwrap_or_default(),
            events,
            filter,
            description,
            api_key_id,
        },
        broken,
    )
}

/// A change body, checked.
fn changes_of(body: &Value) -> Result<EndpointChanges, HttpError> {
    let mut broken = Vec::new();
    let object = fields_of(
        body,
        &["events", "filter", "enabled", "description"],
        &mut broken,
    )?;
    let events = events_of(object.get("events"), &mut broken);
    if events.as_ref().is_some_and(Vec::is_empty) {
        broken.push(FieldError::new(
            "events",
            "must name at least one event type",
        ));
    }
    let enabled = match object.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            broken.push(FieldError::new("enabled", "must be true or false"));
            None
        }
    };
    let changes = EndpointChanges {
        url: None,
        events,
        filter: filter_of(object.get("filter"), &mut broken),
        enabled,
        description: description_of(object.get("description"), &mut broken),
    };
    checked(changes, broken)
}

/// An endpoint id of a path: a string that is not a UUID names no endpoint.
fn webhook_id(id: &str) -> Result<Uuid, HttpError> {
    id.parse()
        .map_err(|_| HttpError::from(EndpointError::NotFound))
}

/// Webhook subscriptions.
pub struct WebhooksApi;

#[OpenApi]
impl WebhooksApi {
    /// Subscribe a webhook endpoint
    ///
    /// Sends the account's lead events (all three types unless `events` says) to `url`,
    /// signed with the secret in the answer (shown this once), as Settings → Webhooks
    /// does; `filter` narrows them to the leads that match. Subscribing the same URL,
    /// events and filter again answers 200 with the existing endpoint (enabled again if it
    /// was disabled) and no secret, so an integration that subscribes on every start makes
    /// one endpoint. At most 50 endpoints per account, however made. Needs
    /// `webhooks:manage` and `leads:read` (an endpoint receives leads).
    #[oai(
        path = "/api/external/webhooks",
        method = "post",
        operation_id = "subscribeWebhook",
        tag = "ApiTags::Webhooks"
    )]
    async fn subscribe(
        &self,
        auth: ApiKeyAuth,
        body: JsonBody<SubscribeRequest>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<SubscribeResponse> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::WebhooksManage)?;
            caller.require(Scope::LeadsRead)?;
            let subscription = subscription_of(&body.0?, caller.key.key_id)?;
            let subscribed = endpoints::subscribe(
                &state.db,
                state.secrets.as_ref(),
                caller.key.user_id,
                subscription,
                state.webhook_allow_private,
            )
            .await
            .map_err(HttpError::from)?;
            Ok::<_, HttpError>(match subscribed {
                Subscribed::Created(row, secret) => {
                    SubscribeResponse::Created(Json(WebhookCreated {
                        success: true,
                        webhook: (*row).into(),
                        secret: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
                    }))
                }
                Subscribed::Existing(row) => SubscribeResponse::Existing(Json(WebhookFound {
                    success: true,
                    webhook: (*row).into(),
                })),
            })
        }
        .await;
        caller.answer(answer.unwrap_or_else(SubscribeResponse::from))
    }

    /// List webhook endpoints
    ///
    /// The account's endpoints, oldest first (at most 50, however made), never their
    /// secrets. `url` finds the ones sending to that URL (as normalised when subscribed:
    /// how an integration finds its own before subscribing again). Needs
    /// `webhooks:manage`.
    #[oai(
        path = "/api/external/webhooks",
        method = "get",
        operation_id = "listWebhooks",
        tag = "ApiTags::Webhooks"
    )]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        /// Only endpoints sending to this URL.
        url: Query<Option<String>>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<WebhookResponse<WebhookList>> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::WebhooksManage)?;
            let wanted = match url.0.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                None => None,
                Some(url) => Some(
                    url::Url::parse(url)
                        .map_err(|_| {
                            HttpError::validation_failed(vec![FieldError::new(
                                "url",
                                "must be an absolute URL",
                            )])
                        })?
                        .to_string(),
                ),
            };
            let rows = endpoints::list(&state.db, caller.key.user_id)
                .await
                .map_err(|err| HttpError::from(EndpointError::Store(err)))?;
            Ok::<_, HttpError>(WebhookList {
                success: true,
                webhooks: rows
                    .into_iter()
                    .filter(|row| wanted.as_ref().is_none_or(|u| &row.url == u))
                    .map(Webhook::from)
                    .collect(),
            })
        }
        .await;
        respond(&caller, answer)
    }

    /// Get a webhook endpoint
    ///
    /// One endpoint of the account (never its secret). Another account's, and an id that
    /// is not one, answer 404 `webhook_not_found`. Needs `webhooks:manage`.
    #[oai(
        path = "/api/external/webhooks/:id",
        method = "get",
        operation_id = "getWebhook",
        tag = "ApiTags::Webhooks"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id.
        id: Path<String>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<WebhookResponse<WebhookFound>> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::WebhooksManage)?;
            let row = endpoints::find(&state.db, caller.key.user_id, webhook_id(&id.0)?)
                .await
                .map_err(HttpError::from)?;
            Ok::<_, HttpError>(WebhookFound {
                success: true,
                webhook: row.into(),
            })
        }
        .await;
        respond(&caller, answer)
    }

    /// Change a webhook endpoint
    ///
    /// Replaces what the body gives: `events`, `filter` (null: none), `enabled` (false
    /// disables it and fails its pending deliveries), `description`. The URL cannot
    /// change: subscribe the new one and delete this one. Needs `webhooks:manage` and
    /// `leads:read`.
    #[oai(
        path = "/api/external/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhook",
        tag = "ApiTags::Webhooks"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id.
        id: Path<String>,
        body: JsonBody<WebhookChanges>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<WebhookResponse<WebhookFound>> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::WebhooksManage)?;
            caller.require(Scope::LeadsRead)?;
            let id = webhook_id(&id.0)?;
            let changes = changes_of(&body.0?)?;
            let row = endpoints::update(&state.db, caller.key.user_id, id, changes)
                .await
                .map_err(HttpError::from)?;
            Ok::<_, HttpError>(WebhookFound {
                success: true,
                webhook: row.into(),
            })
        }
        .await;
        respond(&caller, answer)
    }

    /// Delete a webhook endpoint
    ///
    /// Deletes the endpoint and its delivery log; its pending deliveries are never sent.
    /// Needs `webhooks:manage`.
    #[oai(
        path = "/api/external/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook",
        tag = "ApiTags::Webhooks"
    )]
    async fn delete(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id.
        id: Path<String>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<UnsubscribeResponse> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::WebhooksManage)?;
            endpoints::delete(&state.db, caller.key.user_id, webhook_id(&id.0)?)
                .await
                .map_err(HttpError::from)
        }
        .await;
        caller.answer(match answer {
            Ok(()) => UnsubscribeResponse::Deleted,
            Err(err) => UnsubscribeResponse::from(err),
        })
    }
}

fn respond<T: ParseFromJSON + ToJSON>(
    caller: &Caller,
    answer: Result<T, HttpError>,
) -> Response<WebhookResponse<T>> {
    caller.answer(match answer {
        Ok(found) => WebhookResponse::Ok(Json(found)),
        Err(err) => WebhookResponse::from(err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciq_http::ErrorCode;

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        let waits = [ErrorCode::RateLimited, ErrorCode::ServiceUnavailable];
        ciq_http::error::assert_variants_match_table::<SubscribeResponse>(&waits);
        ciq_http::error::assert_variants_match_table::<WebhookResponse<WebhookFound>>(&waits);
        ciq_http::error::assert_variants_match_table::<UnsubscribeResponse>(&waits);
    }

    #[test]
    fn every_broken_rule_of_a_subscription_is_named() {
        let err = subscription_of(
            &serde_json::json!({"events": ["lead.exploded"], "filter": {"score": {"gte": "x"}},
                "description": 5, "colour": "red"}),
            Uuid::nil(),
        )
        .unwrap_err();
        let fields: Vec<&str> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            ["colour", "url", "events", "filter.score.gte", "description"]
        );
        let err =
            changes_of(&serde_json::json!({"url": "https://x.example", "events": []})).unwrap_err();
        let fields: Vec<&str> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["url", "events"]);
    }
}
