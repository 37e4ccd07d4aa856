//! One-time links that let an owner choose a password, made by an operator
//! (`ciq-gateway users reset-link`) and sent by them — no mail server involved. The link
//! carries a random token; the store keeps only its digest, whose it is and until when
//! it works. A user has at most one: a new link replaces the last, and choosing a
//! password with it deletes it (two browsers racing on one link: one wins).

use chrono::{DateTime, Utc};
use ciq_store::Db;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use ciq_entity::{password_reset, user};

use crate::AdminError;

/// How long a link works.
pub const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where a link points, under the gateway's public URL.
pub const RESET_PATH: &str = "/reset-password";

/// The link `public_url` + [`RESET_PATH`] + `/` + `token`.
pub fn link(public_url: &str, token: &SecretString) -> String {
    format!(
        "{}{RESET_PATH}/{}",
        public_url.trim_end_matches('/'),
        token.expose_secret()
    )
}

fn digest(token: &str) -> String {
    crate::hashing::blake2s_hex(token.as_bytes())
}

/// A new link's token for `user_id` (replacing any earlier one), and until when it
/// works.
pub async fn issue(db: &Db, user_id: Uuid) -> Result<(SecretString, DateTime<Utc>), AdminError> {
    let token = crate::sessions::new_token();
    let now = ciq_entity::now();
    let expires_at = now + chrono::TimeDelta::from_std(LINK_TTL).expect("an hour fits");
    let row = password_reset::ActiveModel {
        token_hash: Set(digest(&token)),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
    };
    // The user's earlier link, if any, is replaced: only the newest works.
    ciq_entity::PasswordReset::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(password_reset::Column::UserId)
                .update_columns([
                    password_reset::Column::TokenHash,
                    password_reset::Column::CreatedAt,
                    password_reset::Column::ExpiresAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok((SecretString::from(token), expires_at))
}

/// The owner a link's `token` would set the password of, while it works (`None`: unknown,
/// used, replaced or expired — which one is not told).
pub async fn pending(db: &Db, token: &str) -> Result<Option<user::Model>, AdminError> {
    let Some(row) = ciq_entity::PasswordReset::find_by_id(digest(token))
        .filter(password_reset::Column::ExpiresAt.gt(ciq_entity::now()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(ciq_entity::User::find_by_id(row.user_id).one(db).await?)
}

/// Sets `password` (checked by the password rules first: a refused one leaves the link
/// working) for the owner of the link `token`, deletes the link and ends every session
/// of theirs. `Ok(None)`: the link does not work (any more).
pub async fn redeem(
    db: &Db,
    hasher: &crate::SecretHasher,
    token: &str,
    password: &SecretString,
) -> Result<Option<user::Model>, AdminError> {
    crate::users::check_password_rules(password)?;
    if pending(db, token).await?.is_none() {
        return Ok(None);
    }
    let hash = hasher.hash_async(password.expose_secret()).await?;
    // The delete decides: of two uses at once, one deletes the row and sets its password.
    let taken = ciq_entity::PasswordReset::delete_many()
        .filter(password_reset::Column::TokenHash.eq(digest(token)))
        .filter(password_reset::Column::ExpiresAt.gt(ciq_entity::now()))
        .exec_with_returning(db)
        .await?;
    let Some(row) = taken.into_iter().next() else {
        return Ok(None);
    };
    let Some(user) = ciq_entity::User::find_by_id(row.user_id).one(db).await? else {
        return Ok(None);
    };
    crate::users::store_password_hash(db, user.clone(), hash).await?;
    Ok(Some(user))
}

/// Deletes the links that expired (the retention purge); returns how many.
pub async fn purge_expired(db: &Db) -> Result<u64, sea_orm::DbErr> {
    Ok(ciq_entity::PasswordReset::delete_many()
        .filter(password_reset::Column::ExpiresAt.lte(ciq_entity::now()))
        .exec(db)
        .await?
        .rows_affected)
}
