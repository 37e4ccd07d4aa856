//! Key lifecycle: create (shown once), list (never a secret), revoke.

use chrono::{DateTime, Utc};
use ciq_entity::AccountScoped;
use ciq_store::Db;
use sea_orm::prelude::Uuid;
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;

use ciq_entity::key_event::{self, ActorSource, KeyEventKind};
use ciq_entity::{api_key, user, webhook_endpoint};

use crate::key::{self, PlaintextKey};
use crate::{AdminError, SecretHasher};

/// Longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 100;
/// Highest per-key limit accepted, requests per minute.
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = 1_000_000;
/// Most keys a user may hold that are not revoked or expired.
pub const MAX_ACTIVE_KEYS_PER_USER: usize = 20;
/// Longest overlap of a roll: the old key works at most this long after it.
pub const MAX_ROLL_OVERLAP_SECS: u64 = 7 * 24 * 3600;

/// Who made a change, for the key history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Where the change came from.
    pub source: ActorSource,
    /// Client address, when the change came over HTTP.
    pub address: Option<String>,
}

impl Actor {
    /// A change made with the command line.
    pub fn cli() -> Self {
        Self {
            source: ActorSource::Cli,
            address: None,
        }
    }
}

/// What the owner chooses when creating a key.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// A name to recognise the key by; empty means "API key".
    pub name: String,
    /// Per-key override of the requests-per-minute limit.
    pub rate_limit_per_minute: Option<u32>,
    /// When the key stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key may do.
    pub scopes: crate::Scopes,
    /// Web origins the key may be used from, as typed (checked and normalised when
    /// the key is made); only for a key whose only scope is `leads:create`.
    pub allowed_origins: Vec<String>,
    /// Per-key override of the visitor limit (browser submissions per client address
    /// per minute); only for a key with allowed origins.
    pub visitor_rate_limit_per_minute: Option<u32>,
    /// The challenge every browser submission must pass; only for a key with allowed
    /// origins, and only where the gateway has a secret key to seal its secret with.
    pub challenge: Option<crate::NewChallenge>,
}

/// A key as listed to its owner or an operator: never the secret, never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    /// Key id (for revoke).
    pub id: Uuid,
    /// The account that owns the key.
    pub user_id: Uuid,
    /// The owner's label for the key (not unique).
    pub name: String,
    /// `ciq_` + the first characters of the key.
    pub display_prefix: String,
    /// Whether the key works now.
    pub status: KeyStatus,
    /// Per-key limit, if overridden.
    pub rate_limit_per_minute: Option<i32>,
    /// When it was generated (a rolled key's successor: when it was rolled).
    pub created_at: DateTime<Utc>,
    /// Last authenticated request.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the key may do.
    pub scopes: crate::Scopes,
    /// Web origins the key may be used from (empty: servers and scripts only).
    pub allowed_origins: crate::AllowedOrigins,
    /// Per-key visitor limit, if overridden (browser keys only).
    pub visitor_rate_limit_per_minute: Option<i32>,
    /// The challenge provider its browser submissions must pass, if any (its secret is
    /// never listed).
    pub challenge: Option<String>,
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
            scopes: crate::Scopes::from_stored(&row.scopes),
            allowed_origins: crate::AllowedOrigins::from_stored(&row.allowed_origins),
            visitor_rate_limit_per_minute: row.visitor_rate_limit_per_minute,
            challenge: row.challenge_provider,
        }
    }
}

/// Whether a key works: computed from its revocation and expiry, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// It authenticates requests (a rolled key too, until its overlap ends).
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl KeyStatus {
    /// The name the CLI, the operator API and the pages show.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: `keys list` aligns it in a column.
        f.pad(self.as_str())
    }
}

/// The key's status at `now`: revoked beats expired beats active.
pub fn key_status(row: &api_key::Model, now: DateTime<Utc>) -> KeyStatus {
    if row.revoked_at.is_some() {
        KeyStatus::Revoked
    } else if row.expires_at.is_some_and(|at| at <= now) {
        KeyStatus::Expired
    } else {
        KeyStatus::Active
    }
}

/// Creates a key for `user_id`. The plaintext key is returned this once; only the
/// argon2id hash of its secret is stored. A user holds at most
/// [`MAX_ACTIVE_KEYS_PER_USER`] active keys: the count is checked in the transaction
/// that inserts the key and its `created` event, with the owner's row locked, so two
/// concurrent creates cannot both take the last place.
pub async fn create_key(
    db: &Db,
    hasher: &SecretHasher,
    user_id: Uuid,
    new: NewKey,
    actor: &Actor,
) -> Result<(api_key::Model, PlaintextKey), AdminError> {
    create_key_sealing(db, hasher, None, user_id, new, actor).await
}

/// [`create_key`] where a challenge's secret can be sealed under `secrets` (the
/// gateway's secret key; without it a key with a challenge is refused).
pub async fn create_key_sealing(
    db: &Db,
    hasher: &SecretHasher,
    secrets: Option<&ciq_store::secret::SecretBox>,
    user_id: Uuid,
    new: NewKey,
    actor: &Actor,
) -> Result<(api_key::Model, PlaintextKey), AdminError> {
    let new = checked(new)?;
    // The owner must exist: a clear error rather than a foreign-key failure.
    ciq_entity::User::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| AdminError::UserNotFound(user_id.to_string()))?;
    // argon2 runs before the transaction: no lock is held while it works.
    let (row, plain) = new_key_row(hasher, secrets, user_id, new).await?;
    let actor = actor.clone();
    let created = db
        .transaction::<_, api_key::Model, AdminError>(move |txn| {
            Box::pin(async move {
                lock_owner(txn, user_id).await?;
                ensure_free_place(txn, user_id).await?;
                let created = row.insert(txn).await?;
                record_event(txn, &created, KeyEventKind::Created, &actor, None).await?;
                Ok(created)
            })
        })
        .await?;
    Ok((created, plain))
}

/// The rules of a new key's fields, checked before any work: a name (default
/// "API key") of at most [`MAX_KEY_NAME_LEN`] characters without control characters
/// (it is printed in terminals by `keys list`), a limit in range, an expiry in the
/// future, origins only on a create-only key and each a web origin.
fn checked(new: NewKey) -> Result<NewKey, AdminError> {
    let name = match new.name.trim() {
        "" => "API key".to_owned(),
        n if n.chars().count() > MAX_KEY_NAME_LEN => {
            return Err(AdminError::Invalid {
                field: "name",
                rule: format!("must be at most {MAX_KEY_NAME_LEN} characters"),
            });
        }
        n if n.chars().any(char::is_control) => {
            return Err(AdminError::Invalid {
                field: "name",
                rule: "must not contain control characters".into(),
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
    if new.expires_at.is_some_and(|at| at <= ciq_entity::now()) {
        return Err(AdminError::Invalid {
            field: "expires_at",
            rule: "must be in the future".into(),
        });
    }
    let origins = crate::AllowedOrigins::parse(&new.allowed_origins)
        .and_then(|origins| {
            crate::origins::check_origins_allowed(new.scopes, &origins)?;
            Ok(origins)
        })
        .map_err(|rule| AdminError::Invalid {
            field: "allowed_origins",
            rule,
        })?;
    if let Some(limit) = new.visitor_rate_limit_per_minute {
        if !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&limit) {
            return Err(AdminError::Invalid {
                field: "visitor_rate_limit_per_minute",
                rule: format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"),
            });
        }
        if origins.is_empty() {
            return Err(AdminError::Invalid {
                field: "visitor_rate_limit_per_minute",
                rule: "applies only to a browser key: give the key allowed origins, or leave \
                       the visitor limit out"
                    .into(),
            });
        }
    }
    if new.challenge.is_some() && origins.is_empty() {
        return Err(AdminError::Invalid {
            field: "challenge",
            rule: "applies only to a browser key: give the key allowed origins, or leave the \
                   challenge out"
                .into(),
        });
    }
    Ok(NewKey {
        name,
        allowed_origins: origins.iter().map(str::to_owned).collect(),
        ..new
    })
}

/// Takes the owner's row for the rest of the transaction (a row lock on PostgreSQL,
/// the write lock on SQLite), so key changes of one owner happen one at a time.
async fn lock_owner(txn: &DatabaseTransaction, user_id: Uuid) -> Result<(), AdminError> {
    if !user::lock(txn, user_id).await? {
        return Err(AdminError::UserNotFound(user_id.to_string()));
    }
    Ok(())
}

/// Refuses when the owner already holds [`MAX_ACTIVE_KEYS_PER_USER`] active keys.
async fn ensure_free_place(txn: &DatabaseTransaction, user_id: Uuid) -> Result<(), AdminError> {
    let active = ciq_entity::ApiKey::in_account(user_id)
        .filter(api_key::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(api_key::Column::ExpiresAt.is_null())
                .add(api_key::Column::ExpiresAt.gt(ciq_entity::now())),
        )
        .count(txn)
        .await?;
    if active >= MAX_ACTIVE_KEYS_PER_USER as u64 {
        return Err(AdminError::TooManyKeys(MAX_ACTIVE_KEYS_PER_USER));
    }
    Ok(())
}

/// The user's keys, newest first.
pub async fn list_keys(db: &Db, user_id: Uuid) -> Result<Vec<KeySummary>, AdminError> {
    Ok(ciq_entity::ApiKey::in_account(user_id)
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(KeySummary::from)
        .collect())
}

/// One key by id.
pub async fn find_key(db: &Db, key_id: Uuid) -> Result<api_key::Model, AdminError> {
    ciq_entity::ApiKey::find_by_id(key_id)
        .one(db)
        .await?
        .ok_or(AdminError::KeyNotFound(key_id))
}

/// The key `key_id` if it belongs to `user_id`'s account: the account is in the query,
/// so another account's key is not found, exactly like a missing one.
pub async fn find_key_in_account(
    db: &Db,
    user_id: Uuid,
    key_id: Uuid,
) -> Result<Option<api_key::Model>, AdminError> {
    Ok(ciq_entity::ApiKey::find_in_account(user_id, key_id)
        .one(db)
        .await?)
}

/// Revokes a key, with its `revoked` event in the same transaction. Revoking a
/// revoked key changes nothing and succeeds. Running instances see the change within
/// a second (they poll for changed versions).
pub async fn revoke_key(db: &Db, key_id: Uuid, actor: &Actor) -> Result<KeySummary, AdminError> {
    revoke_key_at(db, key_id, actor, ciq_entity::now()).await
}

/// [`revoke_key`] with the writer's clock reading given (`now`, the revocation time
/// the key's history shows). A writer whose clock is wrong changes what the history
/// says, never whether or when instances see the revocation: that goes by the key's
/// version and the database's clock.
pub async fn revoke_key_at(
    db: &Db,
    key_id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<KeySummary, AdminError> {
    let row = find_key(db, key_id).await?;
    if row.revoked_at.is_some() {
        return Ok(row.into());
    }
    let actor = actor.clone();
    let revoked = db
        .transaction::<_, api_key::Model, AdminError>(move |txn| {
            Box::pin(async move {
                let revoked = change_key(
                    txn,
                    row.id,
                    vec![(api_key::Column::RevokedAt, Expr::value(now))],
                )
                .await?;
                record_event(txn, &revoked, KeyEventKind::Revoked, &actor, None).await?;
                disable_endpoints_of(txn, revoked.id).await?;
                Ok(revoked)
            })
        })
        .await?;
    Ok(revoked.into())
}

/// What an owner may change of a key after it is made (its secret, scopes and expiry
/// stay: roll or revoke it for those).
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    /// A name to recognise the key by; empty means "API key".
    pub name: String,
    /// Per-key requests-per-minute limit; `None`: the gateway's default.
    pub rate_limit_per_minute: Option<u32>,
    /// Web origins, as typed (a create-only key's only; empty: a server key).
    pub allowed_origins: Vec<String>,
    /// Per-key visitor limit (browser keys only); `None`: the default.
    pub visitor_rate_limit_per_minute: Option<u32>,
    /// What becomes of the key's challenge.
    pub challenge: ChallengeChange,
}

/// What a settings change does to a key's challenge.
#[derive(Debug, Clone, Default)]
pub enum ChallengeChange {
    /// It stays as it is (none, or the provider and its sealed secret).
    #[default]
    Keep,
    /// It is removed: browser submissions need no challenge any more.
    Remove,
    /// This one, its secret sealed for the key.
    Set(crate::NewChallenge),
}

/// The refusal of a change to a revoked key's settings.
pub fn revoked_key_unchangeable() -> AdminError {
    AdminError::Invalid {
        field: "key",
        rule: "is revoked: a revoked key cannot be changed".into(),
    }
}

/// Changes the settings of key `key_id` by the rules a new key follows (the key's own
/// scopes decide whether it may have origins; a visitor limit and a challenge need
/// origins), recording an `updated` event that names what changed; instances see the
/// change as they see a revocation (the key's version moves). A revoked key is not
/// changed. Returns the key's row as it is then.
pub async fn update_settings(
    db: &Db,
    secrets: Option<&ciq_store::secret::SecretBox>,
    key_id: Uuid,
    settings: KeySettings,
    actor: &Actor,
) -> Result<api_key::Model, AdminError> {
    let old = find_key(db, key_id).await?;
    if old.revoked_at.is_some() {
        return Err(revoked_key_unchangeable());
    }
    let checked = checked(NewKey {
        name: settings.name,
        rate_limit_per_minute: settings.rate_limit_per_minute,
        expires_at: None,
        scopes: crate::Scopes::from_stored(&old.scopes),
        allowed_origins: settings.allowed_origins,
        visitor_rate_limit_per_minute: settings.visitor_rate_limit_per_minute,
        challenge: match &settings.challenge {
            ChallengeChange::Set(challenge) => Some(challenge.clone()),
            _ => None,
        },
    })?;
    let keeps_challenge =
        matches!(settings.challenge, ChallengeChange::Keep) && old.challenge_provider.is_some();
    if keeps_challenge && checked.allowed_origins.is_empty() {
        return Err(AdminError::Invalid {
            field: "challenge",
            rule: "applies only to a browser key: remove the challenge too, or keep an \
                   allowed origin"
                .into(),
        });
    }
    let mut columns: Vec<(api_key::Column, SimpleExpr)> = vec![
        (api_key::Column::Name, Expr::value(checked.name.clone())),
        (
            api_key::Column::RateLimitPerMinute,
            Expr::value(checked.rate_limit_per_minute.map(|l| l as i32)),
        ),
        (
            api_key::Column::AllowedOrigins,
            Expr::value(checked.allowed_origins.join(" ")),
        ),
        (
            api_key::Column::VisitorRateLimitPerMinute,
            Expr::value(
                checked
                    .visitor_rate_limit_per_minute
                    .map(|l| i32::try_from(l).unwrap_or(i32::MAX)),
            ),
        ),
    ];
    match &settings.challenge {
        ChallengeChange::Keep => {}
        ChallengeChange::Remove => {
            columns.push((
                api_key::Column::ChallengeProvider,
                Expr::value(None::<String>),
            ));
            columns.push((
                api_key::Column::ChallengeSecret,
                Expr::value(None::<Vec<u8>>),
            ));
        }
        ChallengeChange::Set(challenge) => {
            let sealed = crate::challenge::seal(secrets, old.id, challenge)?;
            columns.push((
                api_key::Column::ChallengeProvider,
                Expr::value(challenge.provider.as_str().to_owned()),
            ));
            columns.push((api_key::Column::ChallengeSecret, Expr::value(sealed)));
        }
    }
    let actor = actor.clone();
    let changed = db
        .transaction::<_, api_key::Model, AdminError>(move |txn| {
            Box::pin(async move {
                lock_owner(txn, old.user_id).await?;
                let changed = change_key(txn, old.id, columns).await?;
                let detail = changes_in_words(&old, &changed);
                record_event(txn, &changed, KeyEventKind::Updated, &actor, Some(detail)).await?;
                Ok(changed)
            })
        })
        .await?;
    Ok(changed)
}

/// What a settings change changed, in words for the key's history ("name, rate limit").
fn changes_in_words(old: &api_key::Model, new: &api_key::Model) -> String {
    let mut changed = Vec::new();
    if old.name != new.name {
        changed.push("name");
    }
    if old.rate_limit_per_minute != new.rate_limit_per_minute {
        changed.push("rate limit");
    }
    if old.allowed_origins != new.allowed_origins {
        changed.push("allowed origins");
    }
    if old.visitor_rate_limit_per_minute != new.visitor_rate_limit_per_minute {
        changed.push("visitor limit");
    }
    if old.challenge_provider != new.challenge_provider
        || old.challenge_secret != new.challenge_secret
    {
        changed.push("challenge");
    }
    if changed.is_empty() {
        "settings saved unchanged".to_owned()
    } else {
        format!("changed: {}", changed.join(", "))
    }
}

/// Rolls a key: a new key with the same name and limit now, and the old one stops
/// working `overlap` from now (or at its own earlier expiry). Returns the new key,
/// shown this once. A revoked or expired key cannot be rolled.
pub async fn roll_key(
    db: &Db,
    hasher: &SecretHasher,
    secrets: Option<&ciq_store::secret::SecretBox>,
    key_id: Uuid,
    overlap: std::time::Duration,
    actor: &Actor,
) -> Result<(api_key::Model, PlaintextKey), AdminError> {
    if overlap.as_secs() > MAX_ROLL_OVERLAP_SECS {
        return Err(AdminError::Invalid {
            field: "overlap_seconds",
            rule: format!("must be between 0 and {MAX_ROLL_OVERLAP_SECS} (7 days)"),
        });
    }
    let old = find_key(db, key_id).await?;
    ensure_rollable(&old, ciq_entity::now())?;
    let new = NewKey {
        name: old.name.clone(),
        rate_limit_per_minute: old
            .rate_limit_per_minute
            .and_then(|l| u32::try_from(l).ok()),
        expires_at: old.expires_at,
        scopes: crate::Scopes::from_stored(&old.scopes),
        allowed_origins: crate::AllowedOrigins::from_stored(&old.allowed_origins)
            .iter()
            .map(str::to_owned)
            .collect(),
        visitor_rate_limit_per_minute: old
            .visitor_rate_limit_per_minute
            .and_then(|l| u32::try_from(l).ok()),
        challenge: inherited_challenge(secrets, &old)?,
    };
    let (row, plain) = new_key_row(hasher, secrets, old.user_id, new).await?;
    let actor = actor.clone();
    let created = db
        .transaction::<_, api_key::Model, AdminError>(move |txn| {
            Box::pin(async move {
                lock_owner(txn, old.user_id).await?;
                // Read again under the lock: a concurrent revoke or roll wins.
                let old = ciq_entity::ApiKey::find_by_id(old.id)
                    .one(txn)
                    .await?
                    .ok_or(AdminError::KeyNotFound(old.id))?;
                let now = ciq_entity::now();
                ensure_rollable(&old, now)?;
                let ends =
                    now + chrono::TimeDelta::from_std(overlap).expect("overlap is at most 7 days");
                let retired = change_key(
                    txn,
                    old.id,
                    vec![(
                        api_key::Column::ExpiresAt,
                        Expr::value(old.expires_at.map_or(ends, |at| Ord::min(at, ends))),
                    )],
                )
                .await?;
                // An immediate roll has just freed the old key's place; one with an
                // overlap needs a free place, since both keys work for a while.
                ensure_free_place(txn, old.user_id).await?;
                let created = row.insert(txn).await?;
                let detail = format!(
                    "replaced by {}; old key works until {}",
                    created.display_prefix,
                    retired.expires_at.map_or_else(String::new, |t| t
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                );
                record_event(txn, &retired, KeyEventKind::Rolled, &actor, Some(detail)).await?;
                record_event(
                    txn,
                    &created,
                    KeyEventKind::Created,
                    &actor,
                    Some(format!("rolled from {}", old.display_prefix)),
                )
                .await?;
                // The endpoints the old key subscribed are the new key's now.
                webhook_endpoint::Entity::update_many()
                    .col_expr(webhook_endpoint::Column::ApiKeyId, Expr::value(created.id))
                    .filter(webhook_endpoint::Column::ApiKeyId.eq(old.id))
                    .exec(txn)
                    .await?;
                Ok(created)
            })
        })
        .await?;
    Ok((created, plain))
}

/// Why an endpoint a revoked key subscribed is disabled.
pub const KEY_REVOKED: &str = "key_revoked";

/// Disables the webhook endpoints key `key_id` subscribed through the API (reason
/// [`KEY_REVOKED`]) and fails their pending deliveries, in the revocation's transaction:
/// a revoked key's integration stops receiving leads with it.
async fn disable_endpoints_of(
    txn: &DatabaseTransaction,
    key_id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    disable_endpoints_where(txn, webhook_endpoint::Column::ApiKeyId.eq(key_id))
        .await
        .map(drop)
}

/// Disables the enabled webhook endpoints of keys that have expired, as a revocation
/// would ([`KEY_REVOKED`], pending deliveries failed); how many. The retention purge
/// runs it, so an expired key's endpoints stop within one purge interval.
pub async fn disable_endpoints_of_expired_keys(db: &Db) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::sea_query::Query;
    let expired = Query::select()
        .column(api_key::Column::Id)
        .from(api_key::Entity)
        .and_where(api_key::Column::ExpiresAt.lte(Utc::now()))
        .to_owned();
    let txn = db.begin().await?;
    let disabled = disable_endpoints_where(
        &txn,
        webhook_endpoint::Column::ApiKeyId.in_subquery(expired),
    )
    .await?;
    txn.commit().await?;
    Ok(disabled)
}

/// Disables the enabled endpoints `which` selects (reason [`KEY_REVOKED`]) and fails
/// their pending deliveries; how many it disabled.
async fn disable_endpoints_where(
    txn: &DatabaseTransaction,
    which: SimpleExpr,
) -> Result<u64, sea_orm::DbErr> {
    use ciq_entity::webhook_delivery::{self, DeliveryStatus};
    let endpoints: Vec<Uuid> = webhook_endpoint::Entity::find()
        .select_only()
        .column(webhook_endpoint::Column::Id)
        .filter(which)
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .into_tuple()
        .all(txn)
        .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(false))
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(KEY_REVOKED),
        )
        .col_expr(
            webhook_endpoint::Column::UpdatedAt,
            Expr::value(ciq_entity::now()),
        )
        .filter(webhook_endpoint::Column::Id.is_in(endpoints.clone()))
        .exec(txn)
        .await?;
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value("the key that subscribed the endpoint was revoked"),
        )
        .filter(webhook_delivery::Column::EndpointId.is_in(endpoints.clone()))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .exec(txn)
        .await?;
    Ok(endpoints.len() as u64)
}

/// Only an active key can be rolled.
fn ensure_rollable(key: &api_key::Model, now: DateTime<Utc>) -> Result<(), AdminError> {
    match key_status(key, now) {
        KeyStatus::Active => Ok(()),
        status => Err(AdminError::Invalid {
            field: "key_id",
            rule: format!("the key is {status}; only an active key can be rolled"),
        }),
    }
}

/// Applies `columns` to one key and marks it changed: `version + 1`, and `updated_at`
/// on the database's clock (PostgreSQL's `CURRENT_TIMESTAMP`; an embedded SQLite
/// store's clock is this machine's, the one every writer to it shares). Returns the
/// row as changed.
async fn change_key(
    txn: &DatabaseTransaction,
    key_id: Uuid,
    columns: Vec<(api_key::Column, SimpleExpr)>,
) -> Result<api_key::Model, AdminError> {
    let now: SimpleExpr = match txn.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => Expr::current_timestamp(),
        _ => Expr::value(ciq_entity::now()),
    };
    let update = ciq_entity::ApiKey::update_many()
        .col_expr(
            api_key::Column::Version,
            Expr::col(api_key::Column::Version).add(1),
        )
        .col_expr(api_key::Column::UpdatedAt, now);
    columns
        .into_iter()
        .fold(update, |update, (column, value)| {
            update.col_expr(column, value)
        })
        .filter(api_key::Column::Id.eq(key_id))
        .exec(txn)
        .await?;
    ciq_entity::ApiKey::find_by_id(key_id)
        .one(txn)
        .await?
        .ok_or(AdminError::KeyNotFound(key_id))
}

/// The challenge of `old`, opened to be sealed again for its successor.
fn inherited_challenge(
    secrets: Option<&ciq_store::secret::SecretBox>,
    old: &api_key::Model,
) -> Result<Option<crate::NewChallenge>, AdminError> {
    let Some(challenge) = crate::KeyChallenge::of_row(
        old.challenge_provider.as_deref(),
        old.challenge_secret.as_deref(),
    ) else {
        return Ok(None);
    };
    let unsealable = |why: String| AdminError::Invalid {
        field: "challenge",
        rule: format!("the key's challenge secret cannot be carried over: {why}"),
    };
    let secrets = secrets.ok_or_else(|| {
        unsealable("the gateway has no secret key (CIQ_WEBHOOK_SECRET_KEY)".into())
    })?;
    let secret = challenge
        .secret(secrets, old.id)
        .map_err(|err| unsealable(err.to_string()))?;
    Ok(Some(crate::NewChallenge {
        provider: challenge.provider,
        secret,
    }))
}

/// A new key's row, ready to insert, with its plaintext (shown once). The argon2id
/// hash is made here, outside any transaction; a challenge's secret is sealed for the
/// row's id.
async fn new_key_row(
    hasher: &SecretHasher,
    secrets: Option<&ciq_store::secret::SecretBox>,
    user_id: Uuid,
    new: NewKey,
) -> Result<(api_key::ActiveModel, PlaintextKey), AdminError> {
    let id = Uuid::now_v7();
    let sealed = match &new.challenge {
        Some(challenge) => Some(crate::challenge::seal(secrets, id, challenge)?),
        None => None,
    };
    let (plain, parts) = key::generate();
    let secret_hash = hasher.hash_async(parts.secret()).await?;
    let now = ciq_entity::now();
    let row = api_key::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        display_prefix: Set(key::display_prefix(&parts.lookup_id)),
        lookup_id: Set(parts.lookup_id),
        secret_hash: Set(secret_hash),
        name: Set(new.name),
        rate_limit_per_minute: Set(new.rate_limit_per_minute.map(|l| l as i32)),
        created_at: Set(now),
        updated_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        version: Set(0),
        scopes: Set(new.scopes.to_stored()),
        allowed_origins: Set(new.allowed_origins.join(" ")),
        visitor_rate_limit_per_minute: Set(new
            .visitor_rate_limit_per_minute
            .map(|l| i32::try_from(l).unwrap_or(i32::MAX))),
        challenge_provider: Set(new
            .challenge
            .as_ref()
            .map(|c| c.provider.as_str().to_owned())),
        challenge_secret: Set(sealed),
    };
    Ok((row, plain))
}

/// One entry of a user's key history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEventView {
    /// The key.
    pub key_id: Uuid,
    /// What happened.
    pub kind: KeyEventKind,
    /// Where the change came from.
    pub source: ActorSource,
    /// Client address, if the change came over HTTP.
    pub address: Option<String>,
    /// Extra words.
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

async fn record_event(
    db: &impl ConnectionTrait,
    key: &api_key::Model,
    kind: KeyEventKind,
    actor: &Actor,
    detail: Option<String>,
) -> Result<(), AdminError> {
    key_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(key.user_id),
        key_id: Set(key.id),
        kind: Set(kind),
        source: Set(actor.source),
        address: Set(actor.address.clone()),
        detail: Set(detail),
        at: Set(ciq_entity::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The user's most recent key events, newest first.
pub async fn key_history(
    db: &Db,
    user_id: Uuid,
    limit: u64,
) -> Result<Vec<KeyEventView>, AdminError> {
    Ok(ciq_entity::KeyEvent::in_account(user_id)
        .order_by_desc(key_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|e| KeyEventView {
            key_id: e.key_id,
            kind: e.kind,
            source: e.source,
            address: e.address,
            detail: e.detail,
            at: e.at,
        })
        .collect())
}
