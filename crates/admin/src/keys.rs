//! Key lifecycle: create (shown once), list (never a secret), revoke.

use chrono::{DateTime, Utc};
use sea_orm::prelude::Uuid;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use serde::Serialize;

use ciq_entity::api_key;

use crate::key::{self, PlaintextKey};
use crate::{AdminError, SecretHasher};

/// Longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 100;
/// Highest per-key limit accepted, requests per minute.
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = 1_000_000;

/// What the owner chooses when creating a key.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// A name to recognise the key by; empty means "API key".
    pub name: String,
    /// Per-key override of the requests-per-minute limit.
    pub rate_limit_per_minute: Option<u32>,
    /// When the key stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as listed to its owner or an operator: never the secret, never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    /// Key id (for revoke).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// `ciq_` + the first characters of the key.
    pub display_prefix: String,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// Per-key limit, if overridden.
    pub rate_limit_per_minute: Option<i32>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last authenticated request.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for KeySummary {
    fn from(row: api_key::Model) -> Self {
        let status = key_status(&row, Utc::now());
        Self {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            display_prefix: row.display_prefix,
            status,
            rate_limit_per_minute: row.rate_limit_per_minute,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// `revoked`, `expired` or `active` at `now`.
pub fn key_status(row: &api_key::Model, now: DateTime<Utc>) -> &'static str {
    if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

/// Creates a key for `user_id`. The plaintext key is returned this once; only the
/// argon2id hash of its secret is stored.
pub async fn create_key(
    db: &DatabaseConnection,
    hasher: &SecretHasher,
    user_id: Uuid,
    new: NewKey,
) -> Result<(api_key::Model, PlaintextKey), AdminError> {
    let name = match new.name.trim() {
        "" => "API key".to_owned(),
        n if n.chars().count() > MAX_KEY_NAME_LEN => {
            return Err(AdminError::Invalid {
                field: "name",
                rule: format!("must be at most {MAX_KEY_NAME_LEN} characters"),
            });
        }
        n => n.to_owned(),
    };
    if let Some(limit) = new.rate_limit_per_minute
        && !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&limit)
    {
        return Err(AdminError::Invalid {
            field: "rate_limit_per_minute",
            rule: format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"),
        });
    }
    let now = ciq_entity::now();
    if new.expires_at.is_some_and(|at| at <= now) {
        return Err(AdminError::Invalid {
            field: "expires_at",
            rule: "must be in the future".into(),
        });
    }
    // The owner must exist: a clear error rather than a foreign-key failure.
    ciq_entity::User::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| AdminError::UserNotFound(user_id.to_string()))?;

    let (plain, parts) = key::generate();
    let secret_hash = {
        let hasher = hasher.clone();
        let secret = parts.secret().to_owned();
        tokio::task::spawn_blocking(move || hasher.hash(&secret))
            .await
            .map_err(|e| AdminError::Hashing(e.to_string()))??
    };
    let row = api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        display_prefix: Set(key::display_prefix(&parts.lookup_id)),
        lookup_id: Set(parts.lookup_id),
        secret_hash: Set(secret_hash),
        name: Set(name),
        rate_limit_per_minute: Set(new.rate_limit_per_minute.map(|l| l as i32)),
        created_at: Set(now),
        updated_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
    };
    Ok((row.insert(db).await?, plain))
}

/// The user's keys, newest first.
pub async fn list_keys(
    db: &DatabaseConnection,
    user_id: Uuid,
) -> Result<Vec<KeySummary>, AdminError> {
    Ok(ciq_entity::ApiKey::find()
        .filter(api_key::Column::UserId.eq(user_id))
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(KeySummary::from)
        .collect())
}

/// Revokes a key. Revoking a revoked key changes nothing and succeeds. Running
/// instances see the change within a second (they poll `updated_at`).
pub async fn revoke_key(db: &DatabaseConnection, key_id: Uuid) -> Result<KeySummary, AdminError> {
    let row = ciq_entity::ApiKey::find_by_id(key_id)
        .one(db)
        .await?
        .ok_or(AdminError::KeyNotFound(key_id))?;
    if row.revoked_at.is_some() {
        return Ok(row.into());
    }
    let now = ciq_entity::now();
    let mut active = row.into_active_model();
    active.revoked_at = Set(Some(now));
    active.updated_at = Set(now);
    Ok(active.update(db).await?.into())
}
