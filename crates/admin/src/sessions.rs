//! Signing account owners in and keeping them signed in.
//!
//! Passwords are argon2id hashes like key secrets. An unknown email costs one
//! verification against a dummy hash, so timing does not tell which emails exist.
//! Sessions are random 190-bit tokens in an HttpOnly cookie; only their BLAKE2s
//! digest is stored.

use ciq_entity::AccountScoped;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ciq_store::Db;
use sea_orm::prelude::Uuid;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

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
    /// When it began (sessions that began before the owner's
    /// `sessions_valid_after` are over).
    pub started_at: DateTime<Utc>,
}

/// Checks an email and password. `Ok(None)` for a wrong email or password (the
/// caller must not say which); the work is the same either way. Only an email
/// signs in: a user id in its place is an unknown email.
pub async fn check_credentials(
    db: &Db,
    hasher: &SecretHasher,
    email: &str,
    password: &secrecy::SecretString,
) -> Result<Option<user::Model>, AdminError> {
    let user = users::find_by_email(db, email).await?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash(hasher).to_owned());
    let matches = hasher
        .verify_async(secrecy::ExposeSecret::expose_secret(password), &hash)
        .await?;
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
    crate::hashing::blake2s_hex(token.as_bytes())
}

/// Where sessions live: Redis when configured (shared by every instance, expired by
/// Redis itself), the database otherwise.
#[derive(Clone)]
pub enum SessionStore {
    /// The `sessions` table.
    Database(Db),
    /// One Redis hash per session, `<prefix><token digest>`, with the session's TTL
    /// (one key per session, so a cluster spreads them over its masters).
    Redis {
        /// Connection to one node or a cluster (re-made after failures).
        conn: ciq_redis::RedisLink,
        /// Key prefix, e.g. `ciq:session:`.
        prefix: String,
    },
}

impl SessionStore {
    /// A Redis store on `url`, one node or a cluster's comma-separated seed nodes
    /// (connected lazily: succeeds while Redis is down).
    pub fn redis(url: &str, prefix: &str) -> Result<Self, AdminError> {
        let conn =
            ciq_redis::RedisLink::open(url, Duration::from_millis(500)).map_err(redis_trouble)?;
        Ok(Self::Redis {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// `database` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Database(_) => "database",
            Self::Redis { .. } => "redis",
        }
    }

    /// Starts a session for `user_id` lasting `ttl`; returns the cookie token (given
    /// to the browser only) and the session.
    pub async fn start(
        &self,
        user_id: Uuid,
        ttl: Duration,
    ) -> Result<(String, Session), AdminError> {
        let token = new_token();
        let now = ciq_entity::now();
        let session = Session {
            user_id,
            csrf_token: new_token(),
            expires_at: now
                + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(12)),
            started_at: now,
        };
        match self {
            Self::Database(db) => {
                session::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    token_hash: Set(token_hash(&token)),
                    user_id: Set(user_id),
                    csrf_token: Set(session.csrf_token.clone()),
                    created_at: Set(session.started_at),
                    expires_at: Set(session.expires_at),
                }
                .insert(db)
                .await?;
            }
            Self::Redis { conn, prefix } => {
                let key = format!("{prefix}{}", token_hash(&token));
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut conn = conn.clone();
                redis::pipe()
                    .atomic()
                    .hset_multiple(
                        &key,
                        &[
                            ("user_id", user_id.to_string()),
                            ("csrf_token", session.csrf_token.clone()),
                            ("expires_at", session.expires_at.to_rfc3339()),
                            ("started_at", session.started_at.to_rfc3339()),
                        ],
                    )
                    .ignore()
                    .pexpire(&key, ttl_ms as i64)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(redis_trouble)?;
            }
        }
        Ok((token, session))
    }

    /// The live session of a cookie token; an expired one is not returned.
    pub async fn find(&self, token: &str) -> Result<Option<Session>, AdminError> {
        match self {
            Self::Database(db) => find_in_database(db, token).await,
            Self::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let hgetall = redis::cmd("HGETALL")
                    .arg(format!("{prefix}{}", token_hash(token)))
                    .clone();
                // A read is safe to repeat: after a failover the first command can
                // fail while the client finds the promoted replica; the second goes
                // there (the session was replicated), so the owner is not sent away.
                let fields: std::collections::HashMap<String, String> =
                    match hgetall.query_async(&mut conn).await {
                        Ok(fields) => fields,
                        Err(first) => {
                            tracing::debug!(error = %first, "session read failed; retrying once");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            hgetall
                                .query_async(&mut conn)
                                .await
                                .map_err(redis_trouble)?
                        }
                    };
                let session = (|| {
                    Some(Session {
                        user_id: fields.get("user_id")?.parse().ok()?,
                        csrf_token: fields.get("csrf_token")?.clone(),
                        expires_at: DateTime::parse_from_rfc3339(fields.get("expires_at")?)
                            .ok()?
                            .with_timezone(&Utc),
                        // Sessions written before this field existed began long ago.
                        started_at: fields
                            .get("started_at")
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc)),
                    })
                })();
                Ok(session.filter(|s| s.expires_at > Utc::now()))
            }
        }
    }

    /// Ends the session of a cookie token (signing out).
    pub async fn end(&self, token: &str) -> Result<(), AdminError> {
        match self {
            Self::Database(db) => {
                ciq_entity::Session::delete_many()
                    .filter(session::Column::TokenHash.eq(token_hash(token)))
                    .exec(db)
                    .await?;
            }
            Self::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                redis::cmd("DEL")
                    .arg(format!("{prefix}{}", token_hash(token)))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(redis_trouble)?;
            }
        }
        Ok(())
    }
}

fn redis_trouble(err: redis::RedisError) -> AdminError {
    AdminError::SessionStore(err.to_string())
}

async fn find_in_database(db: &Db, token: &str) -> Result<Option<Session>, AdminError> {
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
        started_at: row.created_at,
    }))
}

/// Deletes the database's expired sessions (Redis expires its own). Safe on any
/// number of instances at once.
pub async fn purge_expired(db: &Db) -> Result<u64, sea_orm::DbErr> {
    let deleted = ciq_entity::Session::delete_many()
        .filter(session::Column::ExpiresAt.lte(ciq_entity::now()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// The live session of a cookie token: found in `store`, not expired, and begun
/// after the owner's `sessions_valid_after` (a password change or "sign out
/// everywhere" ends every session at once, whichever store holds it).
pub async fn live(
    store: &SessionStore,
    db: &Db,
    token: &str,
) -> Result<Option<Session>, AdminError> {
    let Some(session) = store.find(token).await? else {
        return Ok(None);
    };
    let owner = ciq_entity::User::find_by_id(session.user_id)
        .one(db)
        .await?;
    let over = owner.is_none_or(|u| {
        u.sessions_valid_after
            .is_some_and(|after| session.started_at <= after)
    });
    if over {
        store.end(token).await?;
        return Ok(None);
    }
    Ok(Some(session))
}

/// Ends every session of `user_id`: sessions begun until now are over in every store
/// ([`live`] refuses them), and the database's rows go at once.
pub async fn end_all(db: &Db, user_id: Uuid) -> Result<(), AdminError> {
    ciq_entity::User::update_many()
        .col_expr(
            user::Column::SessionsValidAfter,
            sea_orm::sea_query::Expr::value(ciq_entity::now()),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    ciq_entity::Session::delete_in_account(user_id)
        .exec(db)
        .await?;
    Ok(())
}
