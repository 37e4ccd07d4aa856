//! Account owners.

use ciq_store::Db;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sea_orm::{SqlErr, prelude::Uuid};
use secrecy::{ExposeSecret, SecretString};

use ciq_entity::user;

use crate::AdminError;
use ciq_entity::email::is_valid_email;

/// Longest display name accepted.
pub const MAX_NAME_LEN: usize = 200;

/// Creates a user. The email is trimmed and lower-cased, and must be unique.
pub async fn create_user(
    db: &Db,
    email: &str,
    name: Option<&str>,
) -> Result<user::Model, AdminError> {
    let email = email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(AdminError::Invalid {
            field: "email",
            rule: "must be a valid email address".into(),
        });
    }
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_LEN) {
        return Err(AdminError::Invalid {
            field: "name",
            rule: format!("must be at most {MAX_NAME_LEN} characters"),
        });
    }
    let row = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.clone()),
        name: Set(name.map(str::to_owned)),
        password_hash: Set(None),
        created_at: Set(ciq_entity::now()),
        sessions_valid_after: Set(None),
    };
    row.insert(db).await.map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AdminError::EmailTaken(email),
        _ => AdminError::Database(err),
    })
}

/// Finds a user by id (a UUID) or by email (case-insensitive).
pub async fn find_user(db: &Db, email_or_id: &str) -> Result<user::Model, AdminError> {
    let query = match Uuid::parse_str(email_or_id.trim()) {
        Ok(id) => ciq_entity::User::find_by_id(id),
        Err(_) => ciq_entity::User::find()
            .filter(user::Column::Email.eq(email_or_id.trim().to_lowercase())),
    };
    query
        .one(db)
        .await?
        .ok_or_else(|| AdminError::UserNotFound(email_or_id.to_owned()))
}

/// The user signed in as `email` (never an id: sign-in takes an email only), if any.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<user::Model>, AdminError> {
    Ok(ciq_entity::User::find()
        .filter(user::Column::Email.eq(email.trim().to_lowercase()))
        .one(db)
        .await?)
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (argon2 input stays small).
pub const MAX_PASSWORD_LEN: usize = 128;

/// Checks the password rules.
pub fn check_password_rules(password: &SecretString) -> Result<(), AdminError> {
    let len = password.expose_secret().chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        return Err(AdminError::Invalid {
            field: "password",
            rule: format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        });
    }
    Ok(())
}

/// Sets (or replaces) a user's sign-in password, stored as an argon2id hash, and
/// ends every session of that user (in whichever store: see
/// [`crate::sessions::live`]).
pub async fn set_password(
    db: &Db,
    hasher: &crate::SecretHasher,
    user_id: Uuid,
    password: &SecretString,
) -> Result<(), AdminError> {
    check_password_rules(password)?;
    let user = ciq_entity::User::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| AdminError::UserNotFound(user_id.to_string()))?;
    let hash = hasher.hash_async(password.expose_secret()).await?;
    store_password_hash(db, user, hash).await
}

/// Stores `hash` (argon2id, PHC) as `user`'s password and ends every session of theirs.
pub(crate) async fn store_password_hash(
    db: &Db,
    user: user::Model,
    hash: String,
) -> Result<(), AdminError> {
    let user_id = user.id;
    let mut active: user::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.update(db).await?;
    crate::sessions::end_all(db, user_id).await
}
