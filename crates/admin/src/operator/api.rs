//! The operator API's operations: users and keys. Every path is under `/admin/v1/`
//! and behind the operator token ([`guard`]).

use std::sync::Arc;
use std::time::Duration;

use poem::web::Data;
use poem::{Endpoint, Request};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use secrecy::ExposeSecret;
use uuid::Uuid;

use ciq_http::client::client_address;
use ciq_http::text::Text;
use ciq_http::{ErrorBody, ErrorCode, HttpError, Timestamp};

use super::state::OperatorState;
use super::tags::OperatorTags;
use crate::keys::{self, Actor, KeyStatus, KeySummary, NewKey};
use crate::{AdminError, SecretHasher, users};

/// The operator token, `Authorization: Bearer <CIQ_ADMIN_TOKEN>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "accept_checked_token")]
pub struct AdminToken(());

/// The token was already checked by [`guard`] for every `/admin/v1/` path; this only
/// ties the scheme to the operations in the document.
async fn accept_checked_token(_req: &Request, _bearer: poem_openapi::auth::Bearer) -> Option<()> {
    Some(())
}

/// 401 unless the bearer token matches the configured one (compared in constant
/// time); 404 when none is configured (the routes are then not mounted anyway).
pub fn guard(state: &OperatorState, req: &Request) -> Result<(), HttpError> {
    let Some(expected) = state.admin_token.as_ref() else {
        return Err(HttpError::new(ErrorCode::NotFound));
    };
    let presented = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => Err(HttpError::new(ErrorCode::MissingAdminToken)),
        Some(token) if !crate::hashing::secrets_equal(token, expected.expose_secret()) => {
            Err(HttpError::new(ErrorCode::InvalidAdminToken))
        }
        Some(_) => Ok(()),
    }
}

/// Runs [`guard`] in front of every operator route, the document included.
pub async fn guarded<E: Endpoint>(endpoint: Arc<E>, req: Request) -> poem::Result<poem::Response> {
    let state = req
        .data::<Arc<OperatorState>>()
        .expect("the operator state is attached")
        .clone();
    guard(&state, &req)?;
    // Every operation needs the store: no wait while it is gone.
    state
        .breaker
        .guard(endpoint.call(req))
        .await
        .map_err(HttpError::from)?
        .map(poem::IntoResponse::into_response)
}

/// Every answer of an operator operation.
#[derive(Debug, ApiResponse)]
pub enum AdminResponse<T: ParseFromJSON + ToJSON> {
    /// Done.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
    /// `bad_request`: a path parameter or the body could not be parsed (the message
    /// says which).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `missing_admin_token` / `invalid_admin_token`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `not_found`: no such user or key.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `email_taken` / `too_many_keys`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `payload_too_large`: the body is larger than 16 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: the body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: a field broke a rule; see `details`.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `internal_error`: a fault of ours (logged); retrying will not help by itself.
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

impl<T: ParseFromJSON + ToJSON> From<HttpError> for AdminResponse<T> {
    fn from(err: HttpError) -> Self {
        let body = Json(err.body());
        match err.code {
            ErrorCode::BadRequest | ErrorCode::InvalidJson => Self::BadRequest(body),
            ErrorCode::MissingAdminToken | ErrorCode::InvalidAdminToken => Self::Unauthorized(body),
            ErrorCode::NotFound => Self::NotFound(body),
            ErrorCode::EmailTaken | ErrorCode::TooManyKeys => Self::Conflict(body),
            ErrorCode::PayloadTooLarge => Self::PayloadTooLarge(body),
            ErrorCode::UnsupportedMediaType => Self::UnsupportedMediaType(body),
            ErrorCode::ValidationFailed => Self::ValidationFailed(body),
            ErrorCode::InternalError => Self::Internal(body),
            ErrorCode::ServiceUnavailable => Self::Unavailable(
                body,
                err.retry_after
                    .unwrap_or(ciq_http::error::UNAVAILABLE_RETRY_AFTER_SECS),
            ),
            ErrorCode::MissingApiKey
            | ErrorCode::InvalidApiKey
            | ErrorCode::MethodNotAllowed
            | ErrorCode::IdempotencyKeyInUse
            | ErrorCode::IdempotencyKeyReused
            | ErrorCode::InsufficientScope
            | ErrorCode::OriginNotAllowed
            | ErrorCode::ChallengeFailed
            | ErrorCode::LeadNotFound
            | ErrorCode::WebhookNotFound
            | ErrorCode::TooManyWebhooks
            | ErrorCode::DuplicateLead
            | ErrorCode::LeadDeleted
            | ErrorCode::RateLimited => Self::Other(err.code.status(), body),
        }
    }
}

fn answer<T: ParseFromJSON + ToJSON>(
    created: bool,
    result: Result<T, AdminError>,
) -> AdminResponse<T> {
    match result {
        Ok(value) if created => AdminResponse::Created(Json(value)),
        Ok(value) => AdminResponse::Ok(Json(value)),
        Err(err) => AdminResponse::from(HttpError::from(err)),
    }
}

/// A new account owner.
#[derive(Debug, Object)]
pub struct CreateUserRequest {
    /// Sign-in email (stored lower-cased; unique).
    #[oai(validator(max_length = 254))]
    pub email: Text,
    /// Display name.
    #[oai(validator(max_length = 200))]
    pub name: Option<Text>,
    /// Initial sign-in password (10 to 128 characters); without it the owner cannot
    /// sign in until one is set.
    pub password: Option<ciq_http::secret::SecretField>,
}

/// An account owner.
#[derive(Debug, Object)]
pub struct AdminUser {
    /// User id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether a sign-in password is set.
    pub has_password: bool,
    /// Created at.
    pub created_at: Timestamp,
}

/// A key as operators see it: never the secret, never the hash.
#[derive(Debug, Object)]
pub struct AdminKey {
    /// Key id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// `ciq_` + the first 8 characters of the key.
    pub display_prefix: String,
    /// `active`, `expired` or `revoked`.
    pub status: AdminKeyStatus,
    /// Per-key limit, requests per minute (null = the default).
    pub rate_limit_per_minute: Option<i32>,
    /// Created at.
    pub created_at: Timestamp,
    /// Last authenticated request (recorded within seconds).
    pub last_used_at: Option<Timestamp>,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Revocation time.
    pub revoked_at: Option<Timestamp>,
    /// What the key may do.
    pub scopes: Vec<KeyScope>,
    /// Web origins the key may be used from (empty: servers and scripts only).
    pub allowed_origins: Vec<String>,
    /// Browser submissions per client address per minute with this key (null = the
    /// gateway's default, `CIQ_VISITOR_RATE_LIMIT_PER_MINUTE`); browser keys only.
    pub visitor_rate_limit_per_minute: Option<i32>,
    /// The challenge provider its browser submissions must pass (null: none).
    pub challenge: Option<String>,
}

impl From<KeySummary> for AdminKey {
    fn from(k: KeySummary) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            name: k.name,
            display_prefix: k.display_prefix,
            status: k.status.into(),
            rate_limit_per_minute: k.rate_limit_per_minute,
            created_at: k.created_at.into(),
            last_used_at: k.last_used_at.map(Timestamp),
            expires_at: k.expires_at.map(Timestamp),
            revoked_at: k.revoked_at.map(Timestamp),
            scopes: scope_list(k.scopes),
            allowed_origins: k.allowed_origins.iter().map(str::to_owned).collect(),
            visitor_rate_limit_per_minute: k.visitor_rate_limit_per_minute,
            challenge: k.challenge,
        }
    }
}

/// Whether a key works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum AdminKeyStatus {
    /// It authenticates requests (a rolled key too, until its overlap ends).
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl From<KeyStatus> for AdminKeyStatus {
    fn from(status: KeyStatus) -> Self {
        match status {
            KeyStatus::Active => Self::Active,
            KeyStatus::Expired => Self::Expired,
            KeyStatus::Revoked => Self::Revoked,
        }
    }
}

/// A key's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
pub enum KeyScope {
    /// Create leads.
    #[oai(rename = "leads:create")]
    LeadsCreate,
    /// Read leads.
    #[oai(rename = "leads:read")]
    LeadsRead,
    /// Change and erase leads.
    #[oai(rename = "leads:write")]
    LeadsWrite,
    /// Subscribe, change and delete webhook endpoints through the API (with
    /// `leads:read`).
    #[oai(rename = "webhooks:manage")]
    WebhooksManage,
}

impl From<crate::Scope> for KeyScope {
    fn from(scope: crate::Scope) -> Self {
        match scope {
            crate::Scope::LeadsCreate => Self::LeadsCreate,
            crate::Scope::LeadsRead => Self::LeadsRead,
            crate::Scope::LeadsWrite => Self::LeadsWrite,
            crate::Scope::WebhooksManage => Self::WebhooksManage,
        }
    }
}

impl From<KeyScope> for crate::Scope {
    fn from(scope: KeyScope) -> Self {
        match scope {
            KeyScope::LeadsCreate => Self::LeadsCreate,
            KeyScope::LeadsRead => Self::LeadsRead,
            KeyScope::LeadsWrite => Self::LeadsWrite,
            KeyScope::WebhooksManage => Self::WebhooksManage,
        }
    }
}

fn scope_list(scopes: crate::Scopes) -> Vec<KeyScope> {
    scopes.iter().map(KeyScope::from).collect()
}

/// A user's keys.
#[derive(Debug, Object)]
pub struct KeyList {
    /// Newest first.
    pub keys: Vec<AdminKey>,
}

/// A key to create.
#[derive(Debug, Object)]
pub struct CreateKeyRequest {
    /// Name to recognise the key by.
    #[oai(validator(max_length = 100))]
    pub name: Text,
    /// Per-key limit, requests per minute (1 to 1000000).
    pub rate_limit_per_minute: Option<u32>,
    /// When the key stops working (RFC 3339, in the future).
    pub expires_at: Option<Timestamp>,
    /// What the key may do; default `["leads:create"]`.
    pub scopes: Option<Vec<KeyScope>>,
    /// Web origins (`https://www.example.com`: scheme, host, optional port) the key may
    /// be used from by a page in a browser; only for a key whose only scope is
    /// `leads:create`. Default: none (servers and scripts only).
    pub allowed_origins: Option<Vec<Text>>,
    /// Browser submissions one client address may make per minute with this key (1 to
    /// 1000000; each lead of a batch counts); only for a key with allowed origins.
    /// Default: the gateway's `CIQ_VISITOR_RATE_LIMIT_PER_MINUTE` (10).
    pub visitor_rate_limit_per_minute: Option<u32>,
    /// A challenge every browser submission must pass (only for a key with allowed
    /// origins; needs the gateway's `CIQ_WEBHOOK_SECRET_KEY` to seal the secret).
    pub challenge: Option<ChallengeRequest>,
}

/// A challenge provider and its secret for a new browser key.
#[derive(Debug, Object)]
pub struct ChallengeRequest {
    /// `turnstile`, `hcaptcha` or `recaptcha`.
    pub provider: ChallengeName,
    /// The provider's secret key for the site: stored sealed, never shown again.
    #[oai(validator(max_length = 200))]
    pub secret: Text,
}

/// A challenge provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ChallengeName {
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    Hcaptcha,
    /// Google reCAPTCHA (v2, or v3 with a score of at least 0.5).
    Recaptcha,
}

impl From<ChallengeName> for crate::ChallengeProvider {
    fn from(name: ChallengeName) -> Self {
        match name {
            ChallengeName::Turnstile => Self::Turnstile,
            ChallengeName::Hcaptcha => Self::Hcaptcha,
            ChallengeName::Recaptcha => Self::Recaptcha,
        }
    }
}

/// A roll: how long the old key keeps working.
#[derive(Debug, Object)]
pub struct RollKeyRequest {
    /// Seconds the old key keeps working: 0 (stops now) to 604800 (7 days).
    pub overlap_seconds: u64,
}

/// A newly made key: `key` is the full `ciq_` key, shown this once.
#[derive(Debug, Object)]
pub struct CreatedKey {
    /// Key id.
    pub id: Uuid,
    /// The full key. Store it now: it is never shown again.
    pub key: String,
    /// Owner.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// `ciq_` + the first 8 characters.
    pub display_prefix: String,
    /// Per-key limit.
    pub rate_limit_per_minute: Option<i32>,
    /// Created at.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// What the key may do.
    pub scopes: Vec<KeyScope>,
    /// Web origins the key may be used from.
    pub allowed_origins: Vec<String>,
    /// Per-key visitor limit (null = the gateway's default).
    pub visitor_rate_limit_per_minute: Option<i32>,
    /// The challenge provider (null: none); its secret is never shown.
    pub challenge: Option<String>,
}

fn created_key(row: ciq_entity::api_key::Model, plain: crate::PlaintextKey) -> CreatedKey {
    CreatedKey {
        id: row.id,
        key: plain.expose().to_owned(),
        user_id: row.user_id,
        name: row.name,
        display_prefix: row.display_prefix,
        rate_limit_per_minute: row.rate_limit_per_minute,
        created_at: row.created_at.into(),
        expires_at: row.expires_at.map(Timestamp),
        scopes: scope_list(crate::Scopes::from_stored(&row.scopes)),
        allowed_origins: row
            .allowed_origins
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        visitor_rate_limit_per_minute: row.visitor_rate_limit_per_minute,
        challenge: row.challenge_provider,
    }
}

fn actor(req: &Request, state: &OperatorState) -> Actor {
    Actor {
        source: ciq_entity::key_event::ActorSource::AdminApi,
        address: Some(client_address(req, state.trust_forwarded_for)),
    }
}

/// A key's or a whole account's usage over a window.
#[derive(Debug, Object)]
pub struct AdminUsage {
    /// The account.
    pub user_id: Uuid,
    /// The key, or null for every key of the account together.
    pub key_id: Option<Uuid>,
    /// `minute`, `hour` or `day`.
    pub interval: String,
    /// The window's first instant (inclusive).
    pub from: Timestamp,
    /// The window's end (exclusive).
    pub to: Timestamp,
    /// The non-empty buckets, oldest first.
    pub usage: Vec<crate::usage::UsageBucket>,
}

/// Reads `of`'s buckets over the window the parameters ask for.
async fn usage_of(
    state: &OperatorState,
    of: ciq_usage::query::Of,
    window: Result<ciq_usage::query::Window, HttpError>,
) -> Result<AdminUsage, HttpError> {
    let window = window?;
    let buckets = ciq_usage::query::buckets(&state.db, of, &window)
        .await
        .map_err(ciq_usage::UsageError::from)?;
    let (user_id, key_id) = match of {
        ciq_usage::query::Of::Key(key) => (key.user_id, Some(key.key_id)),
        ciq_usage::query::Of::Account(user_id) => (user_id, None),
    };
    Ok(AdminUsage {
        user_id,
        key_id,
        interval: window.interval.as_str().to_owned(),
        from: window.from.into(),
        to: window.to.into(),
        usage: crate::usage::UsageBucket::list(buckets),
    })
}

/// The operator API.
pub struct AdminApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "OperatorTags::Admin")]
impl AdminApi {
    /// Create a user
    #[oai(path = "/users", method = "post", operation_id = "adminCreateUser")]
    async fn create_user(
        &self,
        _auth: AdminToken,
        body: Json<CreateUserRequest>,
        state: Data<&Arc<OperatorState>>,
    ) -> AdminResponse<AdminUser> {
        let result = async {
            if let Some(password) = &body.password {
                users::check_password_rules(&password.0)?;
            }
            let user = users::create_user(
                &state.db,
                &body.email.0,
                body.name.as_ref().map(|n| n.0.as_str()),
            )
            .await?;
            if let Some(password) = &body.password {
                users::set_password(&state.db, &SecretHasher::default(), user.id, &password.0)
                    .await?;
            }
            Ok(AdminUser {
                id: user.id,
                email: user.email,
                name: user.name,
                has_password: body.password.is_some(),
                created_at: user.created_at.into(),
            })
        }
        .await;
        answer(true, result)
    }

    /// List a user's keys
    #[oai(
        path = "/users/:user_id/keys",
        method = "get",
        operation_id = "adminListKeys"
    )]
    async fn list_keys(
        &self,
        _auth: AdminToken,
        user_id: Path<Uuid>,
        state: Data<&Arc<OperatorState>>,
    ) -> AdminResponse<KeyList> {
        let result = async {
            let user = users::find_user(&state.db, &user_id.0.to_string()).await?;
            let listed = keys::list_keys(&state.db, user.id).await?;
            Ok(KeyList {
                keys: listed.into_iter().map(AdminKey::from).collect(),
            })
        }
        .await;
        answer(false, result)
    }

    /// Create a key for a user
    ///
    /// The response's `key` is the full key, shown this once.
    #[oai(
        path = "/users/:user_id/keys",
        method = "post",
        operation_id = "adminCreateKey"
    )]
    async fn create_key(
        &self,
        _auth: AdminToken,
        user_id: Path<Uuid>,
        body: Json<CreateKeyRequest>,
        state: Data<&Arc<OperatorState>>,
        req: &Request,
    ) -> AdminResponse<CreatedKey> {
        let body = body.0;
        let new = NewKey {
            name: body.name.0,
            rate_limit_per_minute: body.rate_limit_per_minute,
            expires_at: body.expires_at.map(|t| t.0),
            scopes: crate::Scopes::of(
                &body
                    .scopes
                    .unwrap_or_default()
                    .into_iter()
                    .map(crate::Scope::from)
                    .collect::<Vec<_>>(),
            ),
            allowed_origins: body
                .allowed_origins
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.0)
                .collect(),
            visitor_rate_limit_per_minute: body.visitor_rate_limit_per_minute,
            challenge: None,
        };
        let challenge = body
            .challenge
            .map(|c| crate::NewChallenge::checked(c.provider.into(), &c.secret.0))
            .transpose();
        let result = match challenge {
            Ok(challenge) => {
                keys::create_key_sealing(
                    &state.db,
                    &SecretHasher::default(),
                    state.secrets.as_ref(),
                    user_id.0,
                    NewKey { challenge, ..new },
                    &actor(req, &state),
                )
                .await
            }
            Err(err) => Err(err),
        };
        let result = result.map(|(row, plain)| created_key(row, plain));
        answer(true, result)
    }

    /// Revoke a key
    ///
    /// Every instance refuses the key within a second. Revoking a revoked key succeeds.
    #[oai(
        path = "/keys/:key_id/revoke",
        method = "post",
        operation_id = "adminRevokeKey"
    )]
    async fn revoke_key(
        &self,
        _auth: AdminToken,
        key_id: Path<Uuid>,
        state: Data<&Arc<OperatorState>>,
        req: &Request,
    ) -> AdminResponse<AdminKey> {
        let result = keys::revoke_key(&state.db, key_id.0, &actor(req, &state))
            .await
            .map(AdminKey::from);
        answer(false, result)
    }

    /// Roll a key
    ///
    /// Makes a new key (same name and limit) now; the old key keeps working for
    /// `overlap_seconds`, then every instance refuses it.
    #[oai(
        path = "/keys/:key_id/roll",
        method = "post",
        operation_id = "adminRollKey"
    )]
    async fn roll_key(
        &self,
        _auth: AdminToken,
        key_id: Path<Uuid>,
        body: Json<RollKeyRequest>,
        state: Data<&Arc<OperatorState>>,
        req: &Request,
    ) -> AdminResponse<CreatedKey> {
        let result = keys::roll_key(
            &state.db,
            &SecretHasher::default(),
            state.secrets.as_ref(),
            key_id.0,
            Duration::from_secs(body.overlap_seconds),
            &actor(req, &state),
        )
        .await
        .map(|(row, plain)| created_key(row, plain));
        answer(true, result)
    }

    /// A key's usage
    ///
    /// The key's answers by outcome and the leads it stored, in buckets of `interval`
    /// (`minute`, `hour`, `day`; UTC) over `[from, to)` (default the last 24 hours), as
    /// the key itself reads them at `GET /api/external/usage`.
    #[oai(
        path = "/keys/:key_id/usage",
        method = "get",
        operation_id = "adminKeyUsage"
    )]
    async fn key_usage(
        &self,
        _auth: AdminToken,
        key_id: Path<Uuid>,
        /// `minute` (default), `hour` or `day`.
        interval: Query<Option<String>>,
        /// First instant counted (RFC 3339, inclusive).
        from: Query<Option<String>>,
        /// End of the window (RFC 3339, exclusive).
        to: Query<Option<String>>,
        state: Data<&Arc<OperatorState>>,
    ) -> AdminResponse<AdminUsage> {
        let result = async {
            let key = keys::find_key(&state.db, key_id.0).await?;
            let of = ciq_usage::query::Of::Key(ciq_usage::KeyRef {
                key_id: key.id,
                user_id: key.user_id,
            });
            usage_of(&state, of, crate::usage::window(interval.0, from.0, to.0)).await
        }
        .await;
        match result {
            Ok(usage) => AdminResponse::Ok(Json(usage)),
            Err(err) => AdminResponse::from(err),
        }
    }

    /// An account's usage
    ///
    /// Every key of the account together (revoked and expired keys included), in
    /// buckets as for one key.
    #[oai(
        path = "/users/:user_id/usage",
        method = "get",
        operation_id = "adminAccountUsage"
    )]
    async fn account_usage(
        &self,
        _auth: AdminToken,
        user_id: Path<Uuid>,
        /// `minute` (default), `hour` or `day`.
        interval: Query<Option<String>>,
        /// First instant counted (RFC 3339, inclusive).
        from: Query<Option<String>>,
        /// End of the window (RFC 3339, exclusive).
        to: Query<Option<String>>,
        state: Data<&Arc<OperatorState>>,
    ) -> AdminResponse<AdminUsage> {
        let result = async {
            let user = users::find_user(&state.db, &user_id.0.to_string()).await?;
            let of = ciq_usage::query::Of::Account(user.id);
            usage_of(&state, of, crate::usage::window(interval.0, from.0, to.0)).await
        }
        .await;
        match result {
            Ok(usage) => AdminResponse::Ok(Json(usage)),
            Err(err) => AdminResponse::from(err),
        }
    }
}
