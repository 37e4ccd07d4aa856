//! An account's webhook endpoints in the store. Every query names the account: another
//! account's endpoint is "not found" exactly like a missing one.

use ciq_entity::AccountScoped;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use secrecy::SecretString;
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::webhook_endpoint;

use ciq_store::secret::SecretBox;

use crate::address::{Refused, check_url};
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

/// The stored form of a subscription: the names, comma-separated.
pub fn events_column(events: &[impl AsRef<str>]) -> String {
    events
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds an endpoint for `user_id`: `url` checked ([`check_url`]), subscribed to
/// `events`, with a new signing secret — returned this once, stored only encrypted.
pub async fn create(
    db: &impl ConnectionTrait,
    secrets: Option<&SecretBox>,
    user_id: Uuid,
    url: &str,
    events: &[impl AsRef<str>],
    allow_private: bool,
) -> Result<(webhook_endpoint::Model, SecretString), EndpointError> {
    let secrets = secrets.ok_or(EndpointError::NoKey)?;
    let url = check_url(url, allow_private).map_err(EndpointError::Url)?;
    let existing = webhook_endpoint::Entity::in_account(user_id)
        .all(db)
        .await?;
    if existing.len() as u64 >= MAX_ENDPOINTS {
        return Err(EndpointError::TooMany);
    }
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
    };
    let row = webhook_endpoint::ActiveModel::from(row).insert(db).await?;
    Ok((row, secret))
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
