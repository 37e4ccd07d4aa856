//! An account's webhook endpoints in the store. Every query names the account: another
//! account's endpoint is "not found" exactly like a missing one.

use ciq_entity::AccountScoped;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionSession, TransactionTrait,
};
use secrecy::SecretString;
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::webhook_endpoint;

use ciq_store::secret::SecretBox;

use crate::address::{Refused, check_url};
use crate::filter::Filter;
use crate::secret::new_secret;

/// Most endpoints per account.
pub const MAX_ENDPOINTS: u64 = 50;

/// What can go wrong managing endpoints.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL breaks a rule (the reason names it).
    #[error("url {0}")]
    Url(Refused),
    /// An event name that is not one of the domain's.
    #[error("{name:?} is not an event (events: {})", known.join(", "))]
    UnknownEvent {
        /// The name given.
        name: String,
        /// The names there are.
        known: &'static [&'static str],
    },
    /// The account has [`MAX_ENDPOINTS`] already.
    #[error("an account has at most {MAX_ENDPOINTS} webhook endpoints")]
    TooMany,
    /// No such endpoint in this account.
    #[error("no such webhook endpoint")]
    NotFound,
    /// The gateway has no webhook key (PostgreSQL without `CIQ_WEBHOOK_SECRET_KEY`).
    #[error(
        "webhooks need CIQ_WEBHOOK_SECRET_KEY (base64 of 32 bytes, e.g. `openssl rand -base64 32`) to encrypt their signing secrets"
    )]
    NoKey,
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] DbErr),
}

impl ciq_errors::Coded for EndpointError {
    /// A URL or event rule: 422 naming the field; too many: 409; not found: 404;
    /// no webhook key: 500 (the operator's to fix); the store: 503.
    fn code(&self) -> ciq_errors::ErrorCode {
        use ciq_errors::ErrorCode;
        match self {
            Self::Url(_) | Self::UnknownEvent { .. } => ErrorCode::ValidationFailed,
            Self::TooMany => ErrorCode::TooManyWebhooks,
            Self::NotFound => ErrorCode::WebhookNotFound,
            Self::NoKey => ErrorCode::InternalError,
            Self::Store(_) => ErrorCode::ServiceUnavailable,
        }
    }

    fn field(&self) -> Option<(&'static str, String)> {
        match self {
            Self::Url(why) => Some(("url", why.to_string())),
            Self::UnknownEvent { .. } => Some(("events", self.to_string())),
            _ => None,
        }
    }
}

/// The event types named by `names`, each one of `known` (the domain's; all of them
/// when none is named), in their order, without repeats.
pub fn parse_events(
    names: &[String],
    known: &'static [&'static str],
) -> Result<Vec<&'static str>, EndpointError> {
    if names.is_empty() {
        return Ok(known.to_vec());
    }
    let mut events = Vec::new();
    for name in names {
        let event = known
            .iter()
            .copied()
            .find(|k| *k == name.trim())
            .ok_or_else(|| EndpointError::UnknownEvent {
                name: name.clone(),
                known,
            })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// Longest description an endpoint takes, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// An endpoint's description as stored (trimmed; `None` when blank), or the rule `text`
/// breaks.
pub fn check_description(text: &str) -> Result<Option<String>, String> {
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!("must be at most {MAX_DESCRIPTION_LEN} characters"));
    }
    if text.trim().chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// The stored form of a subscription: the names, comma-separated.
pub fn events_column(events: &[impl AsRef<str>]) -> String {
    events
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds an endpoint for `user_id`: `url` checked ([`check_url`]), subscribed to
/// `events`, with a new signing secret — returned this once, stored only encrypted. The
/// cap of [`MAX_ENDPOINTS`] is counted under the account's row lock, as [`subscribe`]
/// counts it, so concurrent adds cannot pass it.
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    secrets: Option<&SecretBox>,
    user_id: Uuid,
    url: &str,
    events: &[impl AsRef<str>],
    allow_private: bool,
) -> Result<(webhook_endpoint::Model, SecretString), EndpointError> {
    let secrets = secrets.ok_or(EndpointError::NoKey)?;
    let url = check_url(url, allow_private).map_err(EndpointError::Url)?;
    let txn = db.begin().await?;
    if !ciq_entity::user::lock(&txn, user_id).await? {
        return Err(EndpointError::NotFound);
    }
    room_for_one(&txn, user_id).await?;
    let created = insert(&txn, secrets, user_id, &url, events, Made::default()).await?;
    txn.commit().await?;
    Ok(created)
}

/// [`EndpointError::TooMany`] when the account has [`MAX_ENDPOINTS`] already.
async fn room_for_one(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), EndpointError> {
    let count = webhook_endpoint::Entity::in_account(user_id)
        .count(db)
        .await?;
    if count >= MAX_ENDPOINTS {
        return Err(EndpointError::TooMany);
    }
    Ok(())
}

/// What an endpoint carries besides its URL and events (all empty for one made in
/// Settings or on the CLI).
#[derive(Debug, Default)]
struct Made {
    filter: Option<Filter>,
    description: Option<String>,
    api_key_id: Option<Uuid>,
}

/// Stores a new endpoint with a new signing secret (returned this once).
async fn insert(
    db: &impl ConnectionTrait,
    secrets: &SecretBox,
    user_id: Uuid,
    url: &url::Url,
    events: &[impl AsRef<str>],
    made: Made,
) -> Result<(webhook_endpoint::Model, SecretString), EndpointError> {
    let id = Uuid::now_v7();
    let secret = new_secret();
    let now = ciq_entity::now();
    let row = webhook_endpoint::Model {
        id,
        user_id,
        url: url.to_string(),
        events: events_column(events),
        secret: secrets.seal(id, &secret),
        previous_secret: None,
        previous_secret_until: None,
        enabled: true,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
        filter: made.filter.as_ref().map(Filter::canonical_text),
        description: made.description,
        api_key_id: made.api_key_id,
    };
    let row = webhook_endpoint::ActiveModel::from(row).insert(db).await?;
    Ok((row, secret))
}

/// A subscription asked for through the API.
#[derive(Debug)]
pub struct Subscription {
    /// Where to send (checked like Settings' URLs).
    pub url: String,
    /// The event types (see [`parse_events`]).
    pub events: Vec<&'static str>,
    /// Which of them, or `None`: all.
    pub filter: Option<Filter>,
    /// What it is for.
    pub description: Option<String>,
    /// The key asking.
    pub api_key_id: Uuid,
}

/// What [`subscribe`] did.
#[derive(Debug)]
pub enum Subscribed {
    /// A new endpoint, and its signing secret (shown this once).
    Created(Box<webhook_endpoint::Model>, SecretString),
    /// The account's endpoint with the same URL, events and filter (enabled again if it
    /// was disabled): a repeated subscription makes no second endpoint.
    Existing(Box<webhook_endpoint::Model>),
}

/// Subscribes `user_id`'s account as `subscription` says, once: an endpoint with the
/// same normalised URL, set of events and filter is answered instead of a new one (its
/// description aside), concurrent identical calls included (the account's row is locked
/// for the check and the insert). At most [`MAX_ENDPOINTS`] per account, however made.
pub async fn subscribe(
    db: &(impl ConnectionTrait + TransactionTrait),
    secrets: Option<&SecretBox>,
    user_id: Uuid,
    subscription: Subscription,
    allow_private: bool,
) -> Result<Subscribed, EndpointError> {
    let secrets = secrets.ok_or(EndpointError::NoKey)?;
    let url = check_url(&subscription.url, allow_private).map_err(EndpointError::Url)?;
    let txn = db.begin().await?;
    if !ciq_entity::user::lock(&txn, user_id).await? {
        return Err(EndpointError::NotFound);
    }
    let existing = webhook_endpoint::Entity::in_account(user_id)
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .all(&txn)
        .await?;
    let filter = subscription.filter.as_ref().map(Filter::canonical_text);
    let same = existing.into_iter().find(|row| {
        row.url == url.as_str()
            && same_events(&row.events, &subscription.events)
            && row.filter == filter
    });
    if let Some(row) = same {
        if !row.enabled {
            set_enabled(&txn, user_id, row.id, true, None).await?;
        }
        let row = find(&txn, user_id, row.id).await?;
        txn.commit().await?;
        return Ok(Subscribed::Existing(Box::new(row)));
    }
    room_for_one(&txn, user_id).await?;
    let made = Made {
        filter: subscription.filter,
        description: subscription.description,
        api_key_id: Some(subscription.api_key_id),
    };
    let (row, secret) = insert(&txn, secrets, user_id, &url, &subscription.events, made).await?;
    txn.commit().await?;
    Ok(Subscribed::Created(Box::new(row), secret))
}

/// Whether the stored subscription `stored` (comma-separated) names exactly `events`.
fn same_events(stored: &str, events: &[&str]) -> bool {
    let mut a: Vec<&str> = stored.split(',').filter(|e| !e.is_empty()).collect();
    let mut b: Vec<&str> = events.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a.dedup();
    b.dedup();
    a == b
}

/// A change of an endpoint through the API: each part `None` is kept.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    /// A new URL, checked by the caller ([`check_url`]; Settings edits it, the API does
    /// not: a subscription's URL is what identifies it).
    pub url: Option<url::Url>,
    /// New event types.
    pub events: Option<Vec<&'static str>>,
    /// A new filter, or `Some(None)`: no filter.
    pub filter: Option<Option<Filter>>,
    /// Enable, or disable (its pending deliveries fail).
    pub enabled: Option<bool>,
    /// A new description, or `Some(None)`: none.
    pub description: Option<Option<String>>,
}

/// Applies `changes` to the endpoint `id` of `user_id`'s account; the endpoint as it is
/// then.
pub async fn update(
    db: &(impl ConnectionTrait + TransactionTrait),
    user_id: Uuid,
    id: Uuid,
    changes: EndpointChanges,
) -> Result<webhook_endpoint::Model, EndpointError> {
    // The transaction writes before it reads: on SQLite a deferred transaction that
    // read first fails (SQLITE_BUSY_SNAPSHOT, not waited for) when another writer
    // commits in between. The update itself says whether the endpoint is there.
    let txn = db.begin().await?;
    let mut update = webhook_endpoint::Entity::update_in_account(user_id)
        .col_expr(
            webhook_endpoint::Column::UpdatedAt,
            Expr::value(ciq_entity::now()),
        )
        .filter(webhook_endpoint::Column::Id.eq(id));
    if let Some(url) = &changes.url {
        update = update.col_expr(webhook_endpoint::Column::Url, Expr::value(url.to_string()));
    }
    if let Some(events) = &changes.events {
        update = update.col_expr(
            webhook_endpoint::Column::Events,
            Expr::value(events_column(events)),
        );
    }
    if let Some(filter) = &changes.filter {
        update = update.col_expr(
            webhook_endpoint::Column::Filter,
            Expr::value(filter.as_ref().map(Filter::canonical_text)),
        );
    }
    if let Some(description) = changes.description {
        update = update.col_expr(
            webhook_endpoint::Column::Description,
            Expr::value(description),
        );
    }
    if update.exec(&txn).await?.rows_affected == 0 {
        return Err(EndpointError::NotFound);
    }
    if let Some(enabled) = changes.enabled {
        set_enabled(&txn, user_id, id, enabled, Some("disabled through the API")).await?;
    }
    let row = find(&txn, user_id, id).await?;
    txn.commit().await?;
    Ok(row)
}

/// `user_id`'s endpoints, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Uuid,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::in_account(user_id)
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .all(db)
        .await
}

/// The endpoint `id` of `user_id`'s account.
pub async fn find(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<webhook_endpoint::Model, EndpointError> {
    webhook_endpoint::Entity::find_in_account(user_id, id)
        .one(db)
        .await?
        .ok_or(EndpointError::NotFound)
}

/// The endpoint `id`, whoever owns it (the operator's CLI).
pub async fn find_any(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<webhook_endpoint::Model, EndpointError> {
    webhook_endpoint::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(EndpointError::NotFound)
}

/// Deletes the endpoint `id` of `user_id`'s account with its delivery log.
pub async fn delete(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<(), EndpointError> {
    // The log first, so the delete does not lean on the foreign key's cascade.
    webhook_delivery::Entity::delete_in_account(user_id)
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .exec(db)
        .await?;
    let deleted = webhook_endpoint::Entity::delete_in_account(user_id)
        .filter(webhook_endpoint::Column::Id.eq(id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 1 {
        Ok(())
    } else {
        Err(EndpointError::NotFound)
    }
}

/// Disables (with `reason`) or enables the endpoint `id` of `user_id`'s account.
/// Disabling fails its pending deliveries (they would never be sent); enabling clears
/// the reason and the failure run.
pub async fn set_enabled(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
    enabled: bool,
    reason: Option<&str>,
) -> Result<(), EndpointError> {
    let now = ciq_entity::now();
    let changed = webhook_endpoint::Entity::update_in_account(user_id)
        .col_expr(webhook_endpoint::Column::Enabled, Expr::value(enabled))
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(if enabled {
                None
            } else {
                reason.map(str::to_owned)
            }),
        )
        .col_expr(
            webhook_endpoint::Column::FailingSince,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(id))
        .exec(db)
        .await?;
    if changed.rows_affected != 1 {
        return Err(EndpointError::NotFound);
    }
    if !enabled {
        fail_pending(db, id, reason.unwrap_or("the endpoint was disabled")).await?;
    }
    Ok(())
}

/// Marks every pending delivery of endpoint `id` failed, with `why`.
pub(crate) async fn fail_pending(
    db: &impl ConnectionTrait,
    id: Uuid,
    why: &str,
) -> Result<u64, DbErr> {
    Ok(webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(webhook_delivery::Column::LastError, Expr::value(why))
        .filter(webhook_delivery::Column::EndpointId.eq(id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .exec(db)
        .await?
        .rows_affected)
}

/// Gives the endpoint `id` of `user_id`'s account a new signing secret (returned this
/// once); the old one keeps signing beside it for `overlap`, so receivers can switch
/// without missing a delivery.
pub async fn rotate(
    db: &impl ConnectionTrait,
    secrets: Option<&SecretBox>,
    user_id: Uuid,
    id: Uuid,
    overlap: std::time::Duration,
) -> Result<SecretString, EndpointError> {
    let secrets = secrets.ok_or(EndpointError::NoKey)?;
    let endpoint = find(db, user_id, id).await?;
    let secret = new_secret();
    let now = ciq_entity::now();
    let until = now + chrono::TimeDelta::from_std(overlap).unwrap_or_default();
    let (previous, previous_until) = if overlap.is_zero() {
        (None, None)
    } else {
        (Some(endpoint.secret.clone()), Some(until))
    };
    let mut row = webhook_endpoint::ActiveModel::from(endpoint);
    row.secret = sea_orm::ActiveValue::Set(secrets.seal(id, &secret));
    row.previous_secret = sea_orm::ActiveValue::Set(previous);
    row.previous_secret_until = sea_orm::ActiveValue::Set(previous_until);
    row.updated_at = sea_orm::ActiveValue::Set(now);
    row.update(db).await?;
    Ok(secret)
}

/// The secrets that sign for `endpoint` now: its own, and its previous one while the
/// rotation's overlap lasts.
pub fn signing_secrets(
    secrets: &SecretBox,
    endpoint: &webhook_endpoint::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<SecretString>, ciq_store::secret::SecretError> {
    let mut signing = vec![secrets.open(endpoint.id, &endpoint.secret)?];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        signing.push(secrets.open(endpoint.id, previous)?);
    }
    Ok(signing)
}
