//! Reading, changing and erasing leads: `GET /api/external/leads` (filtered, newest
//! first, paged by an opaque cursor), `GET`, `PATCH` and `DELETE
//! /api/external/leads/{id}`. Every query carries the key's account; another account's
//! lead answers exactly what a missing one does.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, Response};
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use ciq_admin::Scope;
use ciq_http::{ErrorBody, FieldError, HttpError};
use ciq_leads::store::{After, LeadFilter};
use ciq_leads::{LeadError, LeadStatus};

use super::{Lead, Rendered};
use crate::auth::ApiKeyAuth;
use crate::state::ApiState;
use crate::tags::ApiTags;
use ciq_http::time::param as time_param;

/// Leads per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u64 = 50;
/// Most leads per page.
pub const MAX_PAGE: u64 = 200;

/// One page of leads, newest first.
#[derive(Debug, Clone, Object)]
pub struct LeadPage {
    /// Always `true`.
    pub success: bool,
    /// At most `limit` leads, newest first.
    pub leads: Vec<Lead>,
    /// Pass it back as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// `leads` as a [`LeadPage`], written by serde from the domain's leads (the same JSON as
/// the documented object's; a `serde_json::Value` tree per lead was most of a page's
/// CPU).
fn page_of(leads: &[ciq_leads::Lead], next_cursor: Option<&str>) -> Rendered<LeadPage> {
    // Each growth copied the page so far: 1.5 % of the gateway's CPU per page.
    let mut out = Vec::with_capacity(64 + leads.len() * ciq_leads::Lead::JSON_CAPACITY);
    out.extend_from_slice(br#"{"success":true,"leads":["#);
    for (i, lead) in leads.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        lead.write_json(&mut out);
    }
    out.extend_from_slice(br#"],"next_cursor":"#);
    serde_json::to_writer(&mut out, &next_cursor).expect("a Vec takes every write");
    out.push(b'}');
    Rendered::written(out)
}

/// `lead` as a [`LeadFound`], written from the domain's lead.
fn found(lead: &ciq_leads::Lead) -> Rendered<LeadFound> {
    Rendered::written(super::one_lead(|out| lead.write_json(out)))
}

/// One lead.
#[derive(Debug, Clone, Object)]
pub struct LeadFound {
    /// Always `true`.
    pub success: bool,
    /// The lead.
    pub lead: Lead,
}

/// Every answer of a lead read.
#[derive(Debug, ApiResponse)]
pub enum ReadResponse<T: ParseFromJSON + ToJSON> {
    /// The lead or the page.
    #[oai(status = 200)]
    Ok(Rendered<T>),
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:read`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `lead_not_found`: no such lead in this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
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

/// Every answer of an update.
#[derive(Debug, ApiResponse)]
pub enum PatchResponse {
    /// Updated: the lead as it is now.
    #[oai(status = 200)]
    Ok(Json<LeadFound>),
    /// `invalid_json`: the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:write`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `lead_not_found`: no such lead in this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `duplicate_lead`: another lead of the account has this `external_id`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `payload_too_large`: the body exceeds the size limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: field rules broken, every one in `details`.
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

crate::responses::error_variants!(PatchResponse {
    400 => BadRequest,
    401 => Unauthorized,
    403 => Forbidden,
    404 => NotFound,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// Every answer of an erase.
#[derive(Debug, ApiResponse)]
pub enum EraseResponse {
    /// Erased: the lead and the data of every remembered answer holding it are gone.
    #[oai(status = 204)]
    Erased,
    /// `missing_api_key` / `invalid_api_key`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: the key lacks `leads:write`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `lead_not_found`: no such lead in this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
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

crate::responses::error_variants!(ReadResponse<T: ParseFromJSON, ToJSON> {
    401 => Unauthorized,
    403 => Forbidden,
    404 => NotFound,
    422 => ValidationFailed,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

crate::responses::error_variants!(EraseResponse {
    401 => Unauthorized,
    403 => Forbidden,
    404 => NotFound,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// A text filter, trimmed (empty: none). Control characters are refused naming the
/// parameter, as the writes refuse them (PostgreSQL refuses a NUL outright).
fn text_param(name: &str, value: Option<String>, broken: &mut Vec<FieldError>) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())?;
    if value.chars().any(char::is_control) {
        broken.push(FieldError::new(name, "must not contain control characters"));
        return None;
    }
    Some(value)
}

/// The query parameters of a listing, as sent.
#[derive(Debug, Default)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    source: Option<String>,
    email: Option<String>,
    external_id: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    spam: Option<String>,
    utm_source: Option<String>,
    utm_campaign: Option<String>,
}

/// The query of a listing, checked: every broken rule at once, each naming its
/// parameter.
fn listing(query: ListQuery) -> Result<(LeadFilter, Option<After>, u64), HttpError> {
    let ListQuery {
        limit,
        cursor,
        status,
        source,
        email,
        external_id,
        created_after,
        created_before,
        spam,
        utm_source,
        utm_campaign,
    } = query;
    let mut broken = Vec::new();
    let limit = match limit {
        None => DEFAULT_PAGE,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                broken.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                ));
                DEFAULT_PAGE
            }
        },
    };
    let after = match cursor {
        None => None,
        Some(cursor) => {
            let after = After::from_cursor(&cursor);
            if after.is_none() {
                broken.push(FieldError::new(
                    "cursor",
                    "must be a next_cursor this API returned",
                ));
            }
            after
        }
    };
    let status = match text_param("status", status, &mut broken) {
        None => None,
        Some(name) => {
            let status = LeadStatus::from_name(&name);
            if status.is_none() {
                let names: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
                broken.push(FieldError::new(
                    "status",
                    format!("must be one of {}", names.join(", ")),
                ));
            }
            status
        }
    };
    let filter = LeadFilter {
        status,
        source: text_param("source", source, &mut broken),
        email: text_param("email", email, &mut broken),
        external_id: text_param("external_id", external_id, &mut broken),
        created_after: time_param("created_after", created_after, &mut broken),
        created_before: time_param("created_before", created_before, &mut broken),
        api_key_id: None,
        spam: match text_param("spam", spam, &mut broken).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                broken.push(FieldError::new("spam", "must be true or false"));
                false
            }
        },
        utm_source: text_param("utm_source", utm_source, &mut broken),
        utm_campaign: text_param("utm_campaign", utm_campaign, &mut broken),
        ..LeadFilter::default()
    };
    if broken.is_empty() {
        Ok((filter, after, limit))
    } else {
        Err(HttpError::validation_failed(broken))
    }
}

/// The lead id of a path: a string that is not a UUID names no lead.
fn lead_id(id: &str) -> Result<Uuid, HttpError> {
    id.parse().map_err(|_| HttpError::from(LeadError::NotFound))
}

/// Reading and erasing leads.
pub struct ManageLeadsApi;

#[OpenApi(tag = "ApiTags::Leads")]
impl ManageLeadsApi {
    /// List leads
    ///
    /// Your account's leads, newest first, `limit` at a time (1 to 200, default 50).
    /// Pass `next_cursor` back as `cursor` for the next page: walking to the end
    /// returns every lead that existed when the walk began exactly once, whatever is
    /// created meanwhile. Filters are exact matches (`email`, `utm_source` and
    /// `utm_campaign` ignoring case);
    /// `created_after` is inclusive, `created_before` exclusive. Leads quarantined as
    /// spam are left out unless `spam=true`, which lists only them. Needs `leads:read`.
    #[oai(
        path = "/api/external/leads",
        method = "get",
        operation_id = "listLeads"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_leads(
        &self,
        auth: ApiKeyAuth,
        /// Leads per page, 1 to 200 (default 50).
        limit: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// new, contacted, qualified or lost.
        status: Query<Option<String>>,
        /// Exactly this source.
        source: Query<Option<String>>,
        /// This email, any case.
        email: Query<Option<String>>,
        /// Your own id for the lead.
        external_id: Query<Option<String>>,
        /// Created at or after this RFC 3339 time.
        created_after: Query<Option<String>>,
        /// Created before this RFC 3339 time.
        created_before: Query<Option<String>>,
        /// `true` lists only the leads quarantined as spam (with `spam.reason`); without
        /// it (or `false`) spam is left out.
        spam: Query<Option<String>>,
        /// Only leads whose `attribution.utm_source` is this, any case.
        utm_source: Query<Option<String>>,
        /// Only leads whose `attribution.utm_campaign` is this, any case.
        utm_campaign: Query<Option<String>>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<ReadResponse<LeadPage>> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::LeadsRead)?;
            let (filter, after, limit) = listing(ListQuery {
                limit: limit.0,
                cursor: cursor.0,
                status: status.0,
                source: source.0,
                email: email.0,
                external_id: external_id.0,
                created_after: created_after.0,
                created_before: created_before.0,
                spam: spam.0,
                utm_source: utm_source.0,
                utm_campaign: utm_campaign.0,
            })?;
            // A list may be as stale as the read replica is allowed to be.
            let (user_id, filter) = (caller.key.user_id, &filter);
            // Boxed where it starts: the read's future (the breaker, the replica's choice,
            // sqlx's fetch) is ~10 KB, and held inline it was copied into each future
            // around it (callgrind, 2026-12-07).
            let listed = Box::pin(state.leads.list(user_id, filter, after, limit));
            let (leads, more) = listed.await?;
            let next_cursor = more
                .then(|| leads.last().map(|l| After::lead(l).to_cursor()))
                .flatten();
            Ok::<_, HttpError>(page_of(&leads, next_cursor.as_deref()))
        }
        .await;
        caller.answer(match answer {
            Ok(page) => ReadResponse::Ok(page),
            Err(err) => ReadResponse::from(err),
        })
    }

    /// Get a lead
    ///
    /// One lead of your account. Another account's lead, and an id that is not a
    /// UUID, answer 404 `lead_not_found` exactly like a missing one. Needs
    /// `leads:read`.
    #[oai(
        path = "/api/external/leads/:id",
        method = "get",
        operation_id = "getLead"
    )]
    async fn get_lead(
        &self,
        auth: ApiKeyAuth,
        /// The lead's id.
        id: Path<String>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<ReadResponse<LeadFound>> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::LeadsRead)?;
            let id = lead_id(&id.0)?;
            // The replica first; what it does not have yet is asked of the primary, so
            // a create followed by a GET never answers 404.
            let user_id = caller.key.user_id;
            let lead = state.leads.find(user_id, id).await?;
            Ok::<_, HttpError>(found(&lead))
        }
        .await;
        caller.answer(match answer {
            Ok(found) => ReadResponse::Ok(found),
            Err(err) => ReadResponse::from(err),
        })
    }

    /// Update a lead
    ///
    /// Changes the fields the body carries, with the create rules; `null` empties an
    /// optional field; name, email, source, industry and status cannot be emptied;
    /// unknown fields are refused. `api_key_id` stays the key that created the lead;
    /// `updated_at` moves. Needs `leads:write`.
    #[oai(
        path = "/api/external/leads/:id",
        method = "patch",
        operation_id = "updateLead"
    )]
    async fn patch_lead(
        &self,
        auth: ApiKeyAuth,
        /// The lead's id.
        id: Path<String>,
        submission: super::PatchSubmission,
        state: Data<&Arc<ApiState>>,
    ) -> Response<PatchResponse> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::LeadsWrite)?;
            let patch = submission.into_patch()?;
            let id = lead_id(&id.0)?;
            let lead = state.leads.update(caller.key.user_id, id, patch).await?;
            Ok::<_, HttpError>(LeadFound {
                success: true,
                lead: lead.into(),
            })
        }
        .await;
        caller.answer(match answer {
            Ok(found) => PatchResponse::Ok(Json(found)),
            Err(err) => PatchResponse::from(err),
        })
    }

    /// Erase a lead
    ///
    /// Erases one lead of your account. A remembered `Idempotency-Key` answer holding
    /// it keeps its place but loses the lead's data: replaying that create answers 410
    /// `lead_deleted` and never creates it again. Needs `leads:write`.
    #[oai(
        path = "/api/external/leads/:id",
        method = "delete",
        operation_id = "deleteLead"
    )]
    async fn delete_lead(
        &self,
        auth: ApiKeyAuth,
        /// The lead's id.
        id: Path<String>,
        state: Data<&Arc<ApiState>>,
    ) -> Response<EraseResponse> {
        let caller = auth.0;
        let answer = async {
            caller.require(Scope::LeadsWrite)?;
            let id = lead_id(&id.0)?;
            Ok::<_, HttpError>(state.leads.erase(caller.key.user_id, id).await?)
        }
        .await;
        caller.answer(match answer {
            Ok(()) => EraseResponse::Erased,
            Err(err) => EraseResponse::from(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciq_http::ErrorCode;

    /// A page and a found lead written by serde are what the documented objects render,
    /// byte for byte — a spam lead's verdict included (a list of spam shows it).
    #[test]
    fn a_page_and_a_lead_are_the_documented_objects_json_byte_for_byte() {
        use poem_openapi::types::ToJSON;
        let leads = crate::leads::tests::leads_of_every_shape();
        for cursor in [Some("MTc2NDU0NzIwMDEyMy5hYmM"), None] {
            let documented = LeadPage {
                success: true,
                leads: leads.iter().cloned().map(Lead::from).collect(),
                next_cursor: cursor.map(str::to_owned),
            }
            .to_json_string();
            assert_eq!(page_of(&leads, cursor).body, documented.as_bytes());
        }
        assert_eq!(
            page_of(&[], None).body,
            br#"{"success":true,"leads":[],"next_cursor":null}"#
        );
        for lead in &leads {
            let documented = LeadFound {
                success: true,
                lead: Lead::from(lead.clone()),
            }
            .to_json_string();
            assert_eq!(found(lead).body, documented.as_bytes());
        }
    }

    #[test]
    fn every_broken_query_rule_is_named() {
        let err = listing(ListQuery {
            limit: Some("0".into()),
            cursor: Some("nope".into()),
            status: Some("won".into()),
            created_after: Some("yesterday".into()),
            spam: Some("yes".into()),
            utm_source: Some("a\u{0}b".into()),
            ..ListQuery::default()
        })
        .unwrap_err();
        let fields: Vec<&str> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "limit",
                "cursor",
                "status",
                "created_after",
                "spam",
                "utm_source"
            ]
        );
    }

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        let waits = [ErrorCode::RateLimited, ErrorCode::ServiceUnavailable];
        ciq_http::error::assert_variants_match_table::<ReadResponse<LeadFound>>(&waits);
        ciq_http::error::assert_variants_match_table::<EraseResponse>(&waits);
        ciq_http::error::assert_variants_match_table::<PatchResponse>(&waits);
    }
}
