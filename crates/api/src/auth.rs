//! The `X-API-Key` security scheme: who is calling, and may they call now.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use poem::Request;
use poem::http::{HeaderMap, HeaderValue};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use ciq_admin::{VerifiedKey, VerifyError};
use ciq_limiter::Decision;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller and the limiter's decision for this request. A handler
/// that takes this parameter can only run for a valid, admitted key, and the tenant
/// it writes under comes from here, never from the request body.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The verified key and its owner.
    pub key: VerifiedKey,
    /// The rate-limit decision, for the response headers.
    pub decision: Decision,
    /// Window length in seconds, for the `RateLimit-Policy` header.
    pub window_secs: u64,
}

/// Your `ciq_` API key. Generate one in Settings → API Key.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header",
    checker = "authenticate"
)]
pub struct ApiKeyAuth(pub Caller);

async fn authenticate(req: &Request, api_key: ApiKey) -> poem::Result<Caller> {
    let state = req
        .data::<Arc<AppState>>()
        .expect("the application state is attached to every route");
    let presented = api_key.key.trim();
    if presented.is_empty() {
        return Err(ApiError::missing_api_key().into());
    }
    let key = state.verifier.verify(presented).await.map_err(|err| {
        let api = match err {
            VerifyError::Malformed(why) => {
                ApiError::invalid_api_key(format!("the API key is not valid: {why}"))
            }
            VerifyError::Unknown => ApiError::invalid_api_key("the API key is not valid"),
            VerifyError::Revoked => ApiError::invalid_api_key("the API key has been revoked"),
            VerifyError::Expired => ApiError::invalid_api_key("the API key has expired"),
            VerifyError::Unavailable(cause) => {
                tracing::error!(%cause, "key store unavailable");
                ApiError::service_unavailable()
            }
        };
        poem::Error::from(api)
    })?;
    let limit = key.rate_limit_per_minute.unwrap_or(state.limits.per_window);
    let window = state.limits.window;
    let decision = state
        .limiter
        .acquire(&format!("key:{}", key.key_id), limit, window)
        .await;
    let caller = Caller {
        key,
        decision,
        window_secs: window.as_secs().max(1),
    };
    if !decision.allowed {
        let mut resp = poem::IntoResponse::into_response(ApiError::rate_limited(
            limit,
            caller.window_secs,
            decision.reset_after_secs(),
        ));
        caller.apply_headers(resp.headers_mut());
        return Err(poem::Error::from_response(resp));
    }
    Ok(caller)
}

impl Caller {
    /// Sets the rate-limit headers: `X-RateLimit-Limit/Remaining/Reset` and the IETF
    /// draft's `RateLimit-Policy` and `RateLimit`.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        let d = &self.decision;
        let reset_in = d.reset_after_secs();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs());
        let mut set = |name: &'static str, value: String| {
            headers.insert(
                name,
                HeaderValue::from_str(&value).expect("header values are ASCII"),
            );
        };
        set("x-ratelimit-limit", d.limit.to_string());
        set("x-ratelimit-remaining", d.remaining.to_string());
        set("x-ratelimit-reset", (now + reset_in).to_string());
        set(
            "ratelimit-policy",
            format!("\"default\";q={};w={}", d.limit, self.window_secs),
        );
        set(
            "ratelimit",
            format!("\"default\";r={};t={}", d.remaining, reset_in),
        );
    }
}
