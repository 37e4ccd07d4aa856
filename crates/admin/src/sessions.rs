//! Signing account owners in and keeping them signed in.
//!
//! Passwords are argon2id hashes like key secrets. An unknown email costs one
//! verification against a dummy hash, so timing does not tell which emails exist.
//! Sessions are random 190-bit tokens in an HttpOnly cookie; only their BLAKE2s
//! digest is stored.

use std::sync::OnceLock;
use std::time::Duration;

use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Utc};
use sea_orm::prelude::Uuid;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use ciq_entity::{session, user};

use crate::{AdminError, SecretHasher, key, users};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is signed in.
    pub user_id: Uuid,
    /// The token every form must carry (CSRF protection).
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// Checks an email and password. `Ok(None)` for a wrong email or password (the
/// caller must not say which); the work is the same either way.
pub async fn check_credentials(
    db: &DatabaseConnection,
    hasher: &SecretHasher,
    email: &str,
    password: &str,
) -> Result<Option<user::Model>, AdminError> {
    let user = match users::find_user(db, email).await {
        Ok(user) => Some(user),
        Err(AdminError::UserNotFound(_)) => None,
        Err(err) => return Err(err),
    };
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash(hasher).to_owned());
    let hasher = hasher.clone();
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || hasher.verify(&password, &hash))
        .await
        .map_err(|e| AdminError::Hashing(e.to_string()))?;
    Ok(user.filter(|u| matches && u.password_hash.is_some()))
}

fn dummy_hash(hasher: &SecretHasher) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let (_, parts) = key::generate();
        hasher
            .hash(parts.secret())
            .expect("hashing a random secret")
    })
}

/// A fresh random token (190 bits, base62): session and CSRF tokens.
pub fn new_token() -> String {
    key::random_base62(32)
}

fn token_hash(token: &str) -> String {
    Blake2s256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts a session for `user_id` lasting `ttl`; returns the cookie token (shown to
/// the browser only) and the session.
pub async fn start_session(
    db: &DatabaseConnection,
    user_id: Uuid,
    ttl: Duration,
) -> Result<(String, Session), AdminError> {
    let token = new_token();
    let csrf_token = new_token();
    let now = ciq_entity::now();
    let expires_at = now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(12));
    session::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(token_hash(&token)),
        user_id: Set(user_id),
        csrf_token: Set(csrf_token.clone()),
        created_at: Set(now),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await?;
    Ok((
        token,
        Session {
            user_id,
            csrf_token,
            expires_at,
        },
    ))
}

/// The live session of a cookie token; an expired one is deleted and not returned.
pub async fn find_session(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Option<Session>, AdminError> {
    let Some(row) = ciq_entity::Session::find()
        .filter(session::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.expires_at <= Utc::now() {
        ciq_entity::Session::delete_by_id(row.id).exec(db).await?;
        return Ok(None);
    }
    Ok(Some(Session {
        user_id: row.user_id,
        csrf_token: row.csrf_token,
        expires_at: row.expires_at,
    }))
}

/// Ends the session of a cookie token (signing out).
pub async fn end_session(db: &DatabaseConnection, token: &str) -> Result<(), AdminError> {
    ciq_entity::Session::delete_many()
        .filter(session::Column::TokenHash.eq(token_hash(token)))
        .exec(db)
        .await?;
    Ok(())
}
