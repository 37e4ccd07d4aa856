//! The `X-API-Key` security scheme: who is calling, and may they call now.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use poem::Request;
use poem::http::{HeaderMap, HeaderValue};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use ciq_admin::{VerifiedKey, VerifyError};
use ciq_http::HttpError;
use ciq_http::client::client_address;
use ciq_limiter::{Bucket, Decision};

use crate::state::ApiState;

/// The authenticated caller and the limiter's decision for this request. A handler
/// that takes this parameter can only run for a valid, admitted key, and the tenant
/// it writes under comes from here, never from the request body.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The verified key and its owner.
    pub key: VerifiedKey,
    /// The web origin this browser request came from when the key does not allow it
    /// (refused by [`Caller::require`], after the scope); `None` for requests without
    /// `Origin`, from the gateway's own pages, or from an allowed origin.
    pub refused_origin: Option<String>,
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
        .data::<Arc<ApiState>>()
        .expect("the API state is attached to every public route");
    let presented = api_key.key.trim();
    if presented.is_empty() {
        record_failure(state, req).await?;
        return Err(HttpError::missing_api_key().into());
    }
    // A cached key is answered from memory. Anything else needs the store (and maybe
    // argon2), within the allowances of failures; every failure uses up a little more
    // of its address's.
    let verified = match state.verifier.verify_cached(presented).await {
        Some(answer) => answer,
        None => verify_within_allowances(state, req, presented).await?,
    };
    let key = match verified {
        Ok(key) => key,
        Err(err) => {
            record_failure(state, req).await?;
            return Err(refusal(err).into());
        }
    };
    let limit = key.rate_limit_per_minute.unwrap_or(state.limits.per_window);
    let window = state.limits.window;
    let asked = std::time::Instant::now();
    let decision = state
        .limiter
        .acquire(&Bucket::Key(key.key_id), limit, window)
        .await;
    ciq_http::metrics::record_decision_latency(asked.elapsed());
    ciq_http::metrics::record_decision("key", decision.allowed);
    let refused_origin = foreign_origin(req, &key, &state.public_origin);
    let caller = Caller {
        key,
        refused_origin,
        decision,
        window_secs: state.limits.window_secs(),
    };
    if !decision.allowed {
        return Err(caller.refused(HttpError::rate_limited(
            limit,
            caller.window_secs,
            decision.reset_after_secs(),
        )));
    }
    Ok(caller)
}

/// The `Origin` of a browser request that `key` may not serve: present, not the
/// gateway's own (`CIQ_PUBLIC_URL`: Swagger UI at `/docs`), and not among the key's
/// allowed origins. `null` (sandboxed pages, local files) is never allowed. The own
/// origin comes from configuration, never from `Host` or `X-Forwarded-Host`: a page
/// that rebinds its DNS name to the gateway controls both.
fn foreign_origin(req: &Request, key: &VerifiedKey, own: &str) -> Option<String> {
    let header = req.headers().get(poem::http::header::ORIGIN)?;
    let text = String::from_utf8_lossy(header.as_bytes());
    let Some(origin) = ciq_admin::origins::request_origin(&text) else {
        return Some(text.into_owned());
    };
    if origin == own || key.allowed_origins.allows(&origin) {
        return None;
    }
    Some(origin)
}

fn refusal(err: VerifyError) -> HttpError {
    match err {
        VerifyError::Malformed(why) => {
            HttpError::invalid_api_key(format!("the API key is not valid: {why}"))
        }
        VerifyError::Unknown => HttpError::invalid_api_key("the API key is not valid"),
        VerifyError::Revoked => HttpError::invalid_api_key("the API key has been revoked"),
        VerifyError::Expired => HttpError::invalid_api_key("the API key has expired"),
        VerifyError::Unavailable(cause) => {
            HttpError::service_unavailable(format!("key store unavailable: {cause}"))
        }
        VerifyError::Throttled => HttpError::invalid_api_key(
            "the API key was not checked: too many failed attempts with this key's id; retry in a minute",
        ),
    }
}

/// The address group a bad key counts against: an IPv6 address by its /64, as sign-in
/// counts it (rotating addresses within one network buys nothing).
fn failures_bucket(state: &ApiState, req: &Request) -> String {
    ciq_http::client::throttle_group(&client_address(req, state.trust_forwarded_for))
}

/// Failed argon2 verifications allowed per key lookup id per window, from all
/// addresses together: lookup ids are not secret (a browser key is public), so this
/// bounds the argon2 work anyone can aim at one key.
pub const LOOKUP_FAILURES_PER_WINDOW: u32 = 10;

/// An uncached key, checked within the allowances of failures. While the client's
/// address and the key's lookup id both have some left, fully (argon2; a wrong secret
/// uses up one of the lookup id's); past either, only against the digest of the key's
/// last successful verification, so a key that verifies is never refused because other
/// requests failed. `Err`: the 429 of an address past its allowance whose key did not
/// verify.
async fn verify_within_allowances(
    state: &ApiState,
    req: &Request,
    presented: &str,
) -> poem::Result<Result<VerifiedKey, VerifyError>> {
    let limits = &state.limits;
    let address = failures_bucket(state, req);
    let address_left = state
        .limiter
        .peek(
            &Bucket::Address(&address),
            limits.unauthenticated_per_window,
            limits.window,
        )
        .await;
    let lookup_id = ciq_admin::key::parse(presented)
        .ok()
        .map(|parsed| parsed.lookup_id);
    let lookup = lookup_id.as_deref().map(Bucket::LookupFailures);
    let lookup_left = match &lookup {
        Some(bucket) => {
            state
                .limiter
                .peek(bucket, LOOKUP_FAILURES_PER_WINDOW, limits.window)
                .await
                .allowed
        }
        None => true,
    };
    let verified = if address_left.allowed && lookup_left {
        let verified = state.verifier.verify(presented).await;
        if let (Err(VerifyError::Unknown), Some(bucket)) = (&verified, &lookup) {
            state
                .limiter
                .acquire(bucket, LOOKUP_FAILURES_PER_WINDOW, limits.window)
                .await;
        }
        verified
    } else {
        state.verifier.verify_without_argon2(presented).await
    };
    if verified.is_err() && !address_left.allowed {
        failures_verdict(state, &address_left)?;
    }
    Ok(verified)
}

/// Counts a request that carried no usable key (missing, malformed, unknown, revoked,
/// expired) against its client address; 429 once the address's allowance is used up.
pub async fn record_failure(state: &ApiState, req: &Request) -> poem::Result<()> {
    let limits = &state.limits;
    let decision = state
        .limiter
        .acquire(
            &Bucket::Address(&failures_bucket(state, req)),
            limits.unauthenticated_per_window,
            limits.window,
        )
        .await;
    failures_verdict(state, &decision)
}

fn failures_verdict(state: &ApiState, decision: &Decision) -> poem::Result<()> {
    ciq_http::metrics::record_decision("address", decision.allowed);
    if decision.allowed {
        return Ok(());
    }
    let window_secs = state.limits.window_secs();
    let retry_after = decision.reset_after_secs();
    let mut err = HttpError::rate_limited(decision.limit, window_secs, retry_after);
    err.message = format!(
        "too many requests without a valid API key from this address; retry in {retry_after} s"
    )
    .into();
    let mut resp = poem::IntoResponse::into_response(err);
    apply_rate_limit_headers(resp.headers_mut(), decision, window_secs);
    Err(poem::Error::from_response(resp))
}

impl Caller {
    /// 403 `insufficient_scope` naming `scope` unless the key has it, then 403
    /// `origin_not_allowed` for a browser request from an origin the key does not
    /// allow. Checked on every request, cached keys included: scopes and origins
    /// travel with the verified key.
    pub fn require(&self, scope: ciq_admin::Scope) -> Result<(), HttpError> {
        if !self.key.scopes.allows(scope) {
            return Err(HttpError::with_message(
                ciq_http::ErrorCode::InsufficientScope,
                format!("this operation needs an API key with the {scope} scope"),
            ));
        }
        let Some(origin) = &self.refused_origin else {
            return Ok(());
        };
        let message = if self.key.allowed_origins.is_empty() {
            format!(
                "this API key may not be used from a web page (origin {origin}); make a key \
                 with only the leads:create scope and allow this origin in Settings → API Key"
            )
        } else {
            format!(
                "this API key may not be used from {origin}; its owner can allow that origin \
                 in Settings → API Key"
            )
        };
        Err(HttpError::with_message(
            ciq_http::ErrorCode::OriginNotAllowed,
            message,
        ))
    }

    /// `response` with this caller's rate-limit headers.
    pub fn answer<T: poem_openapi::ApiResponse>(
        &self,
        response: T,
    ) -> poem_openapi::payload::Response<T> {
        let mut headers = HeaderMap::new();
        self.apply_headers(&mut headers);
        headers
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value)))
            .fold(
                poem_openapi::payload::Response::new(response),
                |resp, (name, value)| resp.header(name, value),
            )
    }

    /// Sets the rate-limit headers of this caller's decision.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        apply_rate_limit_headers(headers, &self.decision, self.window_secs);
    }

    fn refused(&self, err: HttpError) -> poem::Error {
        let mut resp = poem::IntoResponse::into_response(err);
        self.apply_headers(resp.headers_mut());
        poem::Error::from_response(resp)
    }
}

/// Sets `X-RateLimit-Limit/Remaining/Reset` and the IETF draft's `RateLimit-Policy`
/// and `RateLimit` for `decision` under a window of `window_secs`.
pub fn apply_rate_limit_headers(headers: &mut HeaderMap, decision: &Decision, window_secs: u64) {
    let reset_in = decision.reset_after_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let mut set = |name: &'static str, value: String| {
        headers.insert(
            name,
            HeaderValue::from_str(&value).expect("header values are ASCII"),
        );
    };
    set("x-ratelimit-limit", decision.limit.to_string());
    set("x-ratelimit-remaining", decision.remaining.to_string());
    set("x-ratelimit-reset", (now + reset_in).to_string());
    set(
        "ratelimit-policy",
        format!("\"default\";q={};w={}", decision.limit, window_secs),
    );
    set(
        "ratelimit",
        format!("\"default\";r={};t={}", decision.remaining, reset_in),
    );
}
