//! The `X-API-Key` security scheme: who is calling, and may they call now.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use poem::Request;
use poem::http::{HeaderMap, HeaderName, HeaderValue};
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
    /// The rate-limit decision, for the response headers: the key's, or for a browser
    /// submission refused by its visitor limit, that limit's. `None` for a browser
    /// submission until [`Caller::admit`] runs its gates.
    pub decision: Option<Decision>,
    /// The policy `decision` belongs to, as the `RateLimit-Policy` header names it
    /// (`default`: the key's; `visitor`: the visitor limit's).
    pub policy: &'static str,
    /// Window length in seconds, for the `RateLimit-Policy` header.
    pub window_secs: u64,
    /// For a browser submission (a create or batch with a key that has allowed
    /// origins, whatever its `Origin`): the client's address group (an IPv6 address by
    /// its /64), which the visitor limit counts against. `None` for every other request.
    pub visitor: Option<String>,
    /// For a browser submission, the client's whole address: what its leads' consent
    /// records as `ip`. `None` for every other request.
    pub address: Option<String>,
    /// A browser submission whose challenge provider could not be asked: its leads are
    /// stored as spam (`challenge_unverified`), never lost.
    pub challenge_unverified: bool,
}

/// Who a request is counted for in usage: left in the request's extensions by
/// [`crate::usage::Counting`], filled in here once a key verifies (a request whose key
/// does not verify belongs to no key and is not counted), and marked when a visitor
/// limit refused it (counted, never logged).
#[derive(Debug, Default)]
pub struct UsageSlot {
    /// The verified key and its account.
    pub key: std::sync::OnceLock<ciq_usage::KeyRef>,
    /// Refused by the visitor limit of a browser submission.
    pub visitor_limited: std::sync::atomic::AtomicBool,
}

impl UsageSlot {
    fn of(req: &Request) -> Option<&Self> {
        req.extensions().get::<Arc<UsageSlot>>().map(Arc::as_ref)
    }
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

/// The header the scheme reads the key from (`key_name` above), named once.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

impl ApiKeyAuth {
    /// The scheme's check, for a route answered outside the OpenAPI service
    /// (`leads::create_directly`): the `X-API-Key` header read as poem-openapi reads it
    /// (absent, or not visible ASCII: its `AuthorizationError`, answered 401
    /// `missing_api_key`), then the same checker.
    pub(crate) async fn from_header(req: &Request) -> poem::Result<Caller> {
        let key = req
            .headers()
            .get(&API_KEY_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or(poem_openapi::error::AuthorizationError)?;
        authenticate(
            req,
            ApiKey {
                key: key.to_owned(),
            },
        )
        .await
    }
}

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
    if let Some(slot) = UsageSlot::of(req) {
        let _ = slot.key.set(ciq_usage::KeyRef {
            key_id: key.key_id,
            user_id: key.user_id,
        });
    }
    let refused_origin = foreign_origin(req, &key, &state.public_origin);
    let window_secs = state.limits.window_secs();
    let browser = is_browser_submission(req, &key);
    let address = browser.then(|| client_address(req, state.trust_forwarded_for));
    let mut caller = Caller {
        visitor: address.as_deref().map(ciq_http::client::throttle_group),
        address,
        key,
        refused_origin,
        decision: None,
        policy: DEFAULT_POLICY,
        window_secs,
        challenge_unverified: false,
    };
    if browser {
        // A public key: the origin, the visitor limit and the challenge come before the
        // key's budget is spent ([`Caller::admit`], once the body says how many leads).
        if let Some(origin) = caller.refused_origin.take() {
            ciq_http::metrics::record_browser_submissions("origin_not_allowed", 1);
            caller.look_at_key_budget(state).await;
            return Err(caller.refused(origin_refusal(&caller.key, &origin)));
        }
        return Ok(caller);
    }
    if req.uri().path() == ciq_http::routes::ME {
        // The credentials test: an allowance of its own; the key's window is only
        // looked at, for the answer and its headers.
        caller
            .spend_info_allowance(state)
            .await
            .map_err(|err| caller.refused(err))?;
        return Ok(caller);
    }
    caller
        .spend_key_budget(state)
        .await
        .map_err(|err| caller.refused(err))?;
    Ok(caller)
}

/// Calls of `GET /api/external/me` a key may make per window, besides its own budget.
pub const KEY_INFO_PER_WINDOW: u32 = 600;

/// The `RateLimit-Policy` name of the `me` allowance (on its 429 only).
const KEY_INFO_POLICY: &str = "me";

/// The request's `Idempotency-Key`, when it is a valid one.
fn idempotency_key(req: &Request) -> Option<String> {
    let raw = req.headers().get(ciq_leads::idempotency::HEADER)?;
    ciq_leads::idempotency::validate_key(raw.as_bytes()).ok()
}

/// The header a browser submission's challenge widget token travels in.
pub const CHALLENGE_TOKEN: &str = "x-challenge-token";

/// The `RateLimit-Policy` name of the key's own budget.
const DEFAULT_POLICY: &str = "default";
/// The `RateLimit-Policy` name of the visitor limit.
const VISITOR_POLICY: &str = "visitor";

/// Whether `req` is a browser submission: a create or batch made with a key that has
/// allowed origins. Its `Origin` does not matter (a bot sends none, or any it likes).
fn is_browser_submission(req: &Request, key: &VerifiedKey) -> bool {
    !key.allowed_origins.is_empty()
        && req.method() == poem::http::Method::POST
        && crate::cors::is_browser_path(req.uri().path())
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

/// 403 `origin_not_allowed` for a request from `origin`, which `key` does not allow.
fn origin_refusal(key: &VerifiedKey, origin: &str) -> HttpError {
    let message = if key.allowed_origins.is_empty() {
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
    HttpError::with_message(ciq_http::ErrorCode::OriginNotAllowed, message)
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
        match &self.refused_origin {
            Some(origin) => Err(origin_refusal(&self.key, origin)),
            None => Ok(()),
        }
    }

    /// 403 `insufficient_scope` for a key with allowed origins: it sits in a web page
    /// for anyone to read, so it may not `what` (its details, usage, log).
    pub fn require_private(&self, what: &str) -> Result<(), HttpError> {
        if self.key.allowed_origins.is_empty() {
            return Ok(());
        }
        Err(HttpError::with_message(
            ciq_http::ErrorCode::InsufficientScope,
            format!(
                "this key has allowed origins: it is public (it sits in a web page), so it \
                 cannot {what}; call with a server key"
            ),
        ))
    }

    /// Runs the gates of a browser submission of `leads` leads, then spends the key's
    /// budget; for any other request (admitted when it was authenticated) nothing. In
    /// order: the visitor limit (429 with the visitor window's headers; every lead
    /// counts, and a batch larger than what is left is refused whole), the key's
    /// challenge (403 `challenge_failed`), then the key's limit (429). A refused
    /// submission costs the key's budget nothing.
    pub async fn admit(
        &mut self,
        state: &ApiState,
        req: &Request,
        leads: usize,
    ) -> Result<(), HttpError> {
        let Some(address) = &self.visitor else {
            return Ok(());
        };
        if self.decision.is_some() {
            return Ok(());
        }
        let limits = &state.limits;
        let limit = self
            .key
            .visitor_rate_limit_per_minute
            .unwrap_or(limits.visitor_per_window);
        let cost = u32::try_from(leads.max(1)).unwrap_or(u32::MAX);
        let visitor = state
            .limiter
            .acquire_many(
                &Bucket::Visitor(self.key.key_id, address),
                cost,
                limit,
                limits.window,
            )
            .await;
        ciq_http::metrics::record_decision("visitor", visitor.allowed);
        if !visitor.allowed {
            if let Some(slot) = UsageSlot::of(req) {
                slot.visitor_limited
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            self.decision = Some(visitor);
            self.policy = VISITOR_POLICY;
            ciq_http::metrics::record_browser_submissions("visitor_limited", 1);
            let window = self.window_secs;
            let (retry_after, message) = if cost > limit {
                // Never fits: waiting a whole window is the honest answer, with why.
                (
                    window,
                    format!(
                        "a batch of {cost} leads is more than a visitor may send with this key \
                         ({limit} per {window} seconds); send at most {limit} at a time"
                    ),
                )
            } else {
                let retry_after = visitor.reset_after_secs();
                (
                    retry_after,
                    format!(
                        "too many submissions from this address: at most {limit} leads per \
                         {window} seconds per visitor with this key; retry in {retry_after} s"
                    ),
                )
            };
            let mut err = HttpError::rate_limited(limit, window, retry_after);
            err.message = message.into();
            return Err(err);
        }
        // Boxed: only a key with a challenge needs its (large) future state.
        if let Err(err) = Box::pin(self.pass_challenge(state, req)).await {
            ciq_http::metrics::record_browser_submissions("challenge_failed", 1);
            self.look_at_key_budget(state).await;
            return Err(err);
        }
        self.spend_key_budget(state).await
    }

    /// The key's challenge, if it has one: the widget's token (`X-Challenge-Token`)
    /// verified with the provider. 403 `challenge_failed` when it is missing or refused;
    /// a provider that cannot be asked lets the submission through marked
    /// [`Caller::challenge_unverified`]. A retry whose `Idempotency-Key` holds an answer
    /// is replayed, so it is not asked again (its token was spent on the first request).
    async fn pass_challenge(&mut self, state: &ApiState, req: &Request) -> Result<(), HttpError> {
        use crate::challenge::Verdict;
        let Some(challenge) = &self.key.challenge else {
            return Ok(());
        };
        let provider = challenge.provider;
        if let Some(raw) = idempotency_key(req)
            && state
                .leads
                .answered(self.key.user_id, &raw, state.idempotency_retention)
                .await
                .unwrap_or(false)
        {
            return Ok(());
        }
        let token = req
            .headers()
            .get(CHALLENGE_TOKEN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if token.trim().is_empty() {
            return Err(HttpError::with_message(
                ciq_http::ErrorCode::ChallengeFailed,
                format!(
                    "this form is protected by {}: complete the challenge, and send the widget's \
                     token ({}) in the X-Challenge-Token header",
                    provider.title(),
                    provider.token_field()
                ),
            ));
        }
        let verdict = match state
            .secrets
            .as_ref()
            .map(|secrets| challenge.secret(secrets, self.key.key_id))
        {
            Some(Ok(secret)) => {
                let address = client_address(req, state.trust_forwarded_for);
                state
                    .challenges
                    .verify(provider, &secret, token, &address)
                    .await
            }
            Some(Err(err)) => Verdict::Unreachable(format!("the secret does not open: {err}")),
            None => Verdict::Unreachable("the gateway has no secret key".into()),
        };
        match verdict {
            Verdict::Passed => Ok(()),
            Verdict::Refused => Err(HttpError::with_message(
                ciq_http::ErrorCode::ChallengeFailed,
                format!(
                    "{} did not accept the challenge token (not passed, expired, or used \
                     before); complete the challenge again",
                    provider.title()
                ),
            )),
            Verdict::Unreachable(why) => {
                tracing::warn!(
                    key_id = %self.key.key_id,
                    provider = provider.as_str(),
                    why,
                    "challenge not verified: the submission is stored as spam"
                );
                self.challenge_unverified = true;
                Ok(())
            }
        }
    }

    /// The key's window as it is, for the headers of a browser submission refused before
    /// it spent any of it (origin, challenge): looked at, not counted.
    async fn look_at_key_budget(&mut self, state: &ApiState) {
        let limit = self.key_limit(state);
        let key = Bucket::Key(self.key.key_id);
        self.decision = Some(state.limiter.peek(&key, limit, state.limits.window).await);
        self.policy = DEFAULT_POLICY;
    }

    /// Spends one call of the key's `me` allowance ([`KEY_INFO_PER_WINDOW`]), then looks
    /// at the key's own window without spending it; 429 past the allowance.
    async fn spend_info_allowance(&mut self, state: &ApiState) -> Result<(), HttpError> {
        let bucket = Bucket::KeyInfo(self.key.key_id);
        let decision = state
            .limiter
            .acquire(&bucket, KEY_INFO_PER_WINDOW, state.limits.window)
            .await;
        ciq_http::metrics::record_decision("me", decision.allowed);
        if !decision.allowed {
            self.decision = Some(decision);
            self.policy = KEY_INFO_POLICY;
            return Err(HttpError::rate_limited(
                KEY_INFO_PER_WINDOW,
                self.window_secs,
                decision.reset_after_secs(),
            ));
        }
        self.look_at_key_budget(state).await;
        Ok(())
    }

    /// The key's requests per window.
    pub fn key_limit(&self, state: &ApiState) -> u32 {
        self.key
            .rate_limit_per_minute
            .unwrap_or(state.limits.per_window)
    }

    /// Spends one request of the key's budget; 429 past it.
    async fn spend_key_budget(&mut self, state: &ApiState) -> Result<(), HttpError> {
        let limit = self.key_limit(state);
        let asked = std::time::Instant::now();
        let decision = state
            .limiter
            .acquire(&Bucket::Key(self.key.key_id), limit, state.limits.window)
            .await;
        ciq_http::metrics::record_decision_latency(asked.elapsed());
        ciq_http::metrics::record_decision("key", decision.allowed);
        self.decision = Some(decision);
        self.policy = DEFAULT_POLICY;
        if decision.allowed {
            Ok(())
        } else {
            Err(HttpError::rate_limited(
                limit,
                self.window_secs,
                decision.reset_after_secs(),
            ))
        }
    }

    /// `response` with this caller's rate-limit headers.
    pub fn answer<T: poem_openapi::ApiResponse>(
        &self,
        response: T,
    ) -> poem_openapi::payload::Response<T> {
        let resp = poem_openapi::payload::Response::new(response);
        match &self.decision {
            Some(decision) => rate_limit_headers(decision, self.window_secs, self.policy)
                .into_iter()
                .fold(resp, |resp, (name, value)| resp.header(name, value)),
            None => resp,
        }
    }

    /// Sets the rate-limit headers of this caller's decision (none before one was made).
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        if let Some(decision) = &self.decision {
            set_rate_limit_headers(headers, decision, self.window_secs, self.policy);
        }
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
    set_rate_limit_headers(headers, decision, window_secs, DEFAULT_POLICY);
}

/// When `decision`'s window next frees a slot, in unix seconds (`X-RateLimit-Reset`).
pub fn reset_at(decision: &Decision) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    now + decision.reset_after_secs()
}

/// [`apply_rate_limit_headers`] naming the policy `policy` in the IETF draft's headers.
fn set_rate_limit_headers(
    headers: &mut HeaderMap,
    decision: &Decision,
    window_secs: u64,
    policy: &str,
) {
    for (name, value) in rate_limit_headers(decision, window_secs, policy) {
        headers.insert(name, value);
    }
}

/// The rate-limit headers of `decision`: names made once (not parsed per request),
/// numbers written straight into their values (every create answers with them).
fn rate_limit_headers(
    decision: &Decision,
    window_secs: u64,
    policy: &str,
) -> [(HeaderName, HeaderValue); 5] {
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
    const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
    [
        (LIMIT, HeaderValue::from(decision.limit)),
        (REMAINING, HeaderValue::from(decision.remaining)),
        (RESET, HeaderValue::from(reset_at(decision))),
        (
            POLICY,
            ietf_value(policy, ("q", decision.limit.into()), ("w", window_secs)),
        ),
        (
            RATELIMIT,
            ietf_value(
                policy,
                ("r", decision.remaining.into()),
                ("t", decision.reset_after_secs()),
            ),
        ),
    ]
}

/// An IETF draft header's value, `"<policy>";<a>=<n>;<b>=<m>`, written without
/// `core::fmt` (two of them on every answer with a limit).
fn ietf_value(policy: &str, (a, n): (&str, u64), (b, m): (&str, u64)) -> HeaderValue {
    let (mut first, mut second) = (itoa::Buffer::new(), itoa::Buffer::new());
    let text = [
        "\"",
        policy,
        "\";",
        a,
        "=",
        first.format(n),
        ";",
        b,
        "=",
        second.format(m),
    ]
    .concat();
    HeaderValue::try_from(text).expect("header values are ASCII")
}
