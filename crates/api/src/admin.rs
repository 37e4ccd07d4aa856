//! The operator API under `/admin/v1`, behind `Authorization: Bearer $CIQ_ADMIN_TOKEN`.
//!
//! With no token configured the whole API is off and answers 404, as if it were not
//! there. Scripts depend on these routes and shapes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem::{Endpoint, Request};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use uuid::Uuid;

use ciq_admin::keys::{self, Actor, KeySummary, NewKey};
use ciq_admin::{AdminError, SecretHasher, users};

use crate::ApiTags;
use crate::auth::client_address;
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::state::AppState;

/// Path prefix of the operator API.
pub const PREFIX: &str = "/admin/v1/";

/// The operator token, `Authorization: Bearer <CIQ_ADMIN_TOKEN>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "accept_checked_token")]
pub struct AdminToken(());

/// The token was already checked by [`guard`] for every `/admin/v1/` path; this only
/// ties the scheme to the operations in the document.
async fn accept_checked_token(_req: &Request, _bearer: poem_openapi::auth::Bearer) -> Option<()> {
    Some(())
}

/// Middleware for every `/admin/v1/` path: 404 when the API is off, 401 unless the
/// bearer token matches (compared in constant time).
pub async fn guard(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let Some(expected) = state.admin_token.as_deref() else {
        return Err(ApiError::not_found());
    };
    let presented = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => Err(ApiError::unauthorized(
            "missing_admin_token",
            "send the operator token as Authorization: Bearer <CIQ_ADMIN_TOKEN>",
        )),
        Some(token) if !ciq_admin::hashing::secrets_equal(token, expected) => Err(
            ApiError::unauthorized("invalid_admin_token", "the operator token is not valid"),
        ),
        Some(_) => Ok(()),
    }
}

/// Runs [`guard`] in front of the operator routes.
pub async fn guarded<E: Endpoint>(endpoint: Arc<E>, req: Request) -> poem::Result<poem::Response> {
    if req.uri().path().starts_with(PREFIX) {
        let state = req
            .data::<Arc<AppState>>()
            .expect("the application state is attached")
            .clone();
        guard(&state, &req).await?;
    }
    endpoint
        .call(req)
        .await
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
    /// `not_found`: no such user or key (or the operator API is off).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `email_taken` / `too_many_keys`.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `unsupported_media_type`: the body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `validation_failed`: a field broke a rule; see `details`.
    #[oai(status = 422)]
    ValidationFailed(Json<ErrorBody>),
    /// `service_unavailable`: the store cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl<T: ParseFromJSON + ToJSON> From<ApiError> for AdminResponse<T> {
    fn from(err: ApiError) -> Self {
        let body = Json(err.body());
        match err.status.as_u16() {
            400 => Self::BadRequest(body),
            401 => Self::Unauthorized(body),
            404 => Self::NotFound(body),
            409 => Self::Conflict(body),
            415 => Self::UnsupportedMediaType(body),
            422 => Self::ValidationFailed(body),
            _ => Self::Unavailable(body),
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
        Err(err) => AdminResponse::from(admin_error(err)),
    }
}

/// The HTTP face of a management error.
pub fn admin_error(err: AdminError) -> ApiError {
    match err {
        AdminError::UserNotFound(_) => ApiError::not_found_with("no such user"),
        AdminError::KeyNotFound(_) => ApiError::not_found_with("no such API key"),
        AdminError::EmailTaken(_) => {
            ApiError::conflict("email_taken", "a user with this email already exists")
        }
        err @ AdminError::TooManyKeys(_) => ApiError::conflict("too_many_keys", err.to_string()),
        AdminError::Invalid { field, rule } => {
            ApiError::validation_failed(vec![FieldError::new(field, rule)])
        }
        AdminError::Hashing(cause) => {
            tracing::error!(%cause, "hashing failed");
            ApiError::internal()
        }
        err @ (AdminError::SessionStore(_) | AdminError::Database(_)) => {
            let cause = err.to_string();
            tracing::error!(%cause, "store unavailable");
            ApiError::service_unavailable()
        }
    }
}

/// A new account owner.
#[derive(Debug, Object)]
pub struct CreateUserRequest {
    /// Sign-in email (stored lower-cased; unique).
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Display name.
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    /// Initial sign-in password (10 to 128 characters); without it the owner cannot
    /// sign in until one is set.
    #[oai(validator(max_length = 128))]
    pub password: Option<String>,
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
    pub created_at: DateTime<Utc>,
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
    pub status: String,
    /// Per-key limit, requests per minute (null = the default).
    pub rate_limit_per_minute: Option<i32>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last authenticated request (recorded within seconds).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<KeySummary> for AdminKey {
    fn from(k: KeySummary) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            name: k.name,
            display_prefix: k.display_prefix,
            status: k.status.to_owned(),
            rate_limit_per_minute: k.rate_limit_per_minute,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
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
    pub name: String,
    /// Per-key limit, requests per minute (1 to 1000000).
    pub rate_limit_per_minute: Option<u32>,
    /// When the key stops working (RFC 3339, in the future).
    pub expires_at: Option<DateTime<Utc>>,
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
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

fn created_key(row: ciq_entity::api_key::Model, plain: ciq_admin::PlaintextKey) -> CreatedKey {
    CreatedKey {
        id: row.id,
        key: plain.expose().to_owned(),
        user_id: row.user_id,
        name: row.name,
        display_prefix: row.display_prefix,
        rate_limit_per_minute: row.rate_limit_per_minute,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

fn actor(req: &Request, state: &AppState) -> Actor {
    Actor {
        source: "admin_api",
        address: Some(client_address(req, state.limits.trust_forwarded_for)),
    }
}

/// The operator API.
pub struct AdminApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Create a user
    #[oai(path = "/users", method = "post", operation_id = "adminCreateUser")]
    async fn create_user(
        &self,
        _auth: AdminToken,
        body: Json<CreateUserRequest>,
        state: Data<&Arc<AppState>>,
    ) -> AdminResponse<AdminUser> {
        let result = async {
            if let Some(password) = &body.password {
                users::check_password_rules(password)?;
            }
            let user = users::create_user(&state.db, &body.email, body.name.as_deref()).await?;
            if let Some(password) = &body.password {
                users::set_password(&state.db, &SecretHasher::default(), user.id, password).await?;
            }
            Ok(AdminUser {
                id: user.id,
                email: user.email,
                name: user.name,
                has_password: body.password.is_some(),
                created_at: user.created_at,
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
        state: Data<&Arc<AppState>>,
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
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> AdminResponse<CreatedKey> {
        let body = body.0;
        let new = NewKey {
            name: body.name,
            rate_limit_per_minute: body.rate_limit_per_minute,
            expires_at: body.expires_at,
        };
        let result = keys::create_key(
            &state.db,
            &SecretHasher::default(),
            user_id.0,
            new,
            &actor(req, &state),
        )
        .await
        .map(|(row, plain)| created_key(row, plain));
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
        state: Data<&Arc<AppState>>,
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
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> AdminResponse<CreatedKey> {
        let result = keys::roll_key(
            &state.db,
            &SecretHasher::default(),
            key_id.0,
            Duration::from_secs(body.overlap_seconds),
            &actor(req, &state),
        )
        .await
        .map(|(row, plain)| created_key(row, plain));
        answer(true, result)
    }
}
