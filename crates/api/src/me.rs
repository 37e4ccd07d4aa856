//! `GET /api/external/me`: the calling key, its account and what is left of its limit —
//! the credentials test integrations (Zapier, n8n, scripts) call before anything else.
//! It has an allowance of its own ([`crate::auth::KEY_INFO_PER_WINDOW`] a window), so
//! testing a key never spends its budget; a browser key (one with allowed origins) is
//! public and is refused.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{ApiResponse, Object, OpenApi};

use ciq_http::{ErrorBody, HttpError, Timestamp};

use crate::auth::{ApiKeyAuth, Caller};
use crate::state::ApiState;
use crate::tags::ApiTags;

/// The calling key, as its owner set it up (never its secret).
#[derive(Debug, Clone, Object)]
pub struct KeyDetails {
    /// The key's id (what Settings and the operator API name it by).
    pub id: uuid::Uuid,
    /// The owner's name for the key.
    pub name: String,
    /// `ciq_` and the first characters of the key, as Settings shows it.
    pub display_prefix: String,
    /// What the key may do (`leads:create`, `leads:read`, `leads:write`).
    pub scopes: Vec<String>,
    /// Web origins the key may be used from; always empty here (a key with origins is
    /// public and cannot call this).
    pub allowed_origins: Vec<String>,
    /// Requests the key may make per minute (its own limit, or the gateway's default).
    pub rate_limit: u32,
    /// Its own visitor limit for browser submissions, or null (the gateway's default).
    pub visitor_rate_limit: Option<u32>,
    /// When the key stops working, or null (never).
    pub expires_at: Option<Timestamp>,
    /// When the key was generated (a rolled key: when it was rolled).
    pub created_at: Timestamp,
}

/// The account the key's leads go to.
#[derive(Debug, Clone, Object)]
pub struct AccountDetails {
    /// The account's id (`user_id` on every lead).
    pub id: uuid::Uuid,
    /// The account's name, or null when none was set.
    pub name: Option<String>,
    /// The account owner's email address (what integrations label a connection with).
    pub email: String,
}

/// The key's limit as it stands, before this call (which does not count against it).
#[derive(Debug, Clone, Object)]
pub struct RateLimitState {
    /// Requests per window.
    pub limit: u32,
    /// Requests left in the current sliding window.
    pub remaining: u32,
    /// When a request will have aged out of the window, in unix seconds (as
    /// `X-RateLimit-Reset`).
    pub reset: u64,
}

/// Body of `GET /api/external/me`.
#[derive(Debug, Clone, Object)]
pub struct Me {
    /// Always `true`.
    pub success: bool,
    /// The key that made the call.
    pub key: KeyDetails,
    /// Its account.
    pub account: AccountDetails,
    /// Its limit, unspent by this call.
    pub rate_limit: RateLimitState,
}

/// Every answer of `me`.
#[derive(Debug, ApiResponse)]
pub enum MeResponse {
    /// The key is valid: what it is and what is left of its limit.
    #[oai(status = 200)]
    Ok(Json<Me>),
    /// `missing_api_key` / `invalid_api_key` (malformed, unknown, revoked or expired).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `insufficient_scope`: a browser key (one with allowed origins) is public and
    /// cannot read its own details.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `rate_limited`: over this endpoint's own allowance (600 a minute per key).
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds until a call will be admitted.
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

crate::responses::error_variants!(MeResponse {
    401 => Unauthorized,
    403 => Forbidden,
    429 => RateLimited,
    500 => Internal,
    503 => Unavailable,
});

/// The credentials test.
pub struct MeApi;

#[OpenApi]
impl MeApi {
    /// Test your key
    ///
    /// The key you call with, its account, and what is left of its rate limit: what an
    /// integration calls to check a key before it uses it. Any valid key without allowed
    /// origins may call it, whatever its scopes; it does not count against the key's 100
    /// requests a minute (it has an allowance of its own, 600 a minute). The rate-limit
    /// headers show the key's own window.
    #[oai(
        path = "/api/external/me",
        method = "get",
        operation_id = "getMe",
        tag = "ApiTags::Account"
    )]
    async fn me(&self, auth: ApiKeyAuth, state: Data<&Arc<ApiState>>) -> Response<MeResponse> {
        let caller = auth.0;
        let answer = me(&state, &caller).await;
        caller.answer(match answer {
            Ok(me) => MeResponse::Ok(Json(me)),
            Err(err) => MeResponse::from(err),
        })
    }
}

async fn me(state: &ApiState, caller: &Caller) -> Result<Me, HttpError> {
    caller.require_private("read its own details")?;
    let (user_id, key_id) = (caller.key.user_id, caller.key.key_id);
    // Both exist: the key was verified a moment ago (a revocation since is seen within
    // a second; answering from what was verified is what any request does).
    let key = ciq_admin::keys::find_key_in_account(&state.db, user_id, key_id)
        .await?
        .ok_or(ciq_admin::AdminError::KeyNotFound(key_id))?;
    let user = ciq_admin::users::find_user(&state.db, &user_id.to_string()).await?;
    let decision = caller
        .decision
        .expect("authentication looked at the key's window");
    Ok(Me {
        success: true,
        key: KeyDetails {
            id: key.id,
            name: key.name,
            display_prefix: key.display_prefix,
            scopes: caller
                .key
                .scopes
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            allowed_origins: Vec::new(),
            rate_limit: caller.key_limit(state),
            visitor_rate_limit: caller.key.visitor_rate_limit_per_minute,
            expires_at: key.expires_at.map(Timestamp::from),
            created_at: key.created_at.into(),
        },
        account: AccountDetails {
            id: user.id,
            name: user.name,
            email: user.email,
        },
        rate_limit: RateLimitState {
            limit: decision.limit,
            remaining: decision.remaining,
            reset: crate::auth::reset_at(&decision),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        use ciq_http::ErrorCode;
        let waits = [ErrorCode::RateLimited, ErrorCode::ServiceUnavailable];
        ciq_http::error::assert_variants_match_table::<MeResponse>(&waits);
    }
}
