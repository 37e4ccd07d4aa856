//! `Idempotency-Key` on create and batch, with Stripe's semantics: within 24 hours, the same key
//! and the same body replay the first answer (same lead); the same key with another
//! body is refused (422 `idempotency_key_reused`); a retry while the first request is
//! still running is refused (409 `idempotency_key_in_use`). Keys are per user. Only
//! requests that reached execution are remembered: a body that failed validation
//! leaves the key free.

use chrono::Utc;
use ciq_entity::AccountScoped;
use ciq_store::Db;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, SqlErr};
use uuid::Uuid;

use ciq_entity::{idempotency_key, idempotency_lead};

use crate::error::LeadError;
use crate::rules::Violation;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key is remembered by default (`CIQ_RETENTION_IDEMPOTENCY_SECS`).
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Name of the request header.
pub const HEADER: &str = "Idempotency-Key";

/// What an idempotency key says about this request.
pub enum Claim {
    /// First use: go ahead; the answer will be remembered.
    Fresh,
    /// Seen with the same body and answered: send this body again (status 201).
    Replay(String),
}

/// The key, if it is 1 to 255 printable ASCII characters. Takes the header's raw
/// bytes: a key the client sent must never be dropped silently for being unusual.
pub fn validate_key(raw: &[u8]) -> Result<String, Violation> {
    let ok =
        (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.iter().all(|b| (0x21..=0x7e).contains(b));
    if ok {
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err(Violation::new(
            format!("header.{HEADER}"),
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters without spaces"),
        ))
    }
}

/// The operation a key was used with: part of what the key remembers, so a key reused
/// on another operation with the same body is `idempotency_key_reused`, never a replay
/// of the other operation's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /leads/create`.
    Create,
    /// `POST /leads/batch`.
    Batch,
    /// `POST /leads/upsert` (its body has the create's shape).
    Upsert,
}

/// BLAKE2s (hex) of a request body in canonical form (object keys sorted), so that a
/// retry with the same `Idempotency-Key` is recognised whatever the key order or
/// spacing of its JSON; and of its operation. A create's and a batch's are the body's
/// alone, as before operations were told apart (their bodies never match: `lead` or
/// `leads`), so keys remembered then still replay; an upsert's text starts with its
/// name, as its body may be a create's.
pub fn fingerprint(operation: Operation, value: &serde_json::Value) -> String {
    fn canonical(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    use blake2::Digest;
    let mut text = String::new();
    if operation == Operation::Upsert {
        text.push_str("upsert ");
    }
    canonical(value, &mut text);
    blake2::Blake2s256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Claims `key` for `user_id` and a body with `fingerprint`.
pub async fn claim(
    db: &Db,
    user_id: Uuid,
    key: &str,
    fingerprint: &str,
    retention: std::time::Duration,
) -> Result<Claim, LeadError> {
    let retention = chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    for _ in 0..2 {
        let row = idempotency_key::ActiveModel {
            user_id: Set(user_id),
            key: Set(key.to_owned()),
            request_hash: Set(fingerprint.to_owned()),
            response_status: Set(None),
            response_body: Set(None),
            created_at: Set(ciq_entity::now()),
            lead_id: Set(None),
        };
        let inserted = idempotency_key::Entity::insert(row)
            .exec_without_returning(db)
            .await;
        match inserted {
            Ok(_) => return Ok(Claim::Fresh),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(err) => return Err(err.into()),
        }
        let Some(existing) = idempotency_key::Entity::find_by_id((user_id, key.to_owned()))
            .one(db)
            .await?
        else {
            continue; // released meanwhile: try again
        };
        if existing.created_at < Utc::now() - retention {
            // Forgotten after the retention period (the purge may not have run yet):
            // the key is new again.
            forget(db, user_id, key).await?;
            continue;
        }
        if existing.request_hash != fingerprint {
            return Err(LeadError::IdempotencyKeyReused);
        }
        return match (existing.response_body, existing.response_status) {
            (Some(body), _) => Ok(Claim::Replay(body)),
            // Answered, and the lead erased since: the answer is gone, not retried.
            (None, Some(ERASED_STATUS)) => Err(LeadError::LeadDeleted),
            (None, _) => Err(LeadError::IdempotencyKeyInUse),
        };
    }
    Err(LeadError::IdempotencyKeyInUse)
}

/// Whether `user_id`'s `key` holds an answer (remembered, or its lead erased since)
/// within `retention`: a retry that will be replayed, not run again. A browser
/// submission's retry skips its challenge on this: the token was spent on the first.
pub async fn answered(
    db: &Db,
    user_id: Uuid,
    key: &str,
    retention: std::time::Duration,
) -> Result<bool, LeadError> {
    let retention = chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    let row = idempotency_key::Entity::find_by_id((user_id, key.to_owned()))
        .one(db)
        .await?;
    Ok(row.is_some_and(|row| {
        row.created_at >= Utc::now() - retention && row.response_status.is_some()
    }))
}

/// Records the answer (`status`, `body`) of a claimed key, inside the transaction that stored the lead,
/// so that a lead and its remembered answer are written together or not at all.
pub async fn complete(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    key: &str,
    status: i32,
    body: &str,
    lead_id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    idempotency_key::Entity::update_in_account(user_id)
        .col_expr(
            idempotency_key::Column::ResponseStatus,
            sea_orm::sea_query::Expr::value(status),
        )
        .col_expr(
            idempotency_key::Column::ResponseBody,
            sea_orm::sea_query::Expr::value(body.to_owned()),
        )
        .col_expr(
            idempotency_key::Column::LeadId,
            sea_orm::sea_query::Expr::value(lead_id),
        )
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(txn)
        .await?;
    Ok(())
}

/// Records the answer of a claimed key for a batch, inside the transaction that stored
/// its leads: `items` is the answer's items as a JSON array, and `held` says which item
/// holds which lead, so that erasing a lead can empty its item (see [`forget_lead`]).
pub async fn complete_batch(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    key: &str,
    items: &str,
    held: &[(usize, Uuid)],
) -> Result<(), sea_orm::DbErr> {
    idempotency_key::Entity::update_in_account(user_id)
        .col_expr(
            idempotency_key::Column::ResponseStatus,
            sea_orm::sea_query::Expr::value(200),
        )
        .col_expr(
            idempotency_key::Column::ResponseBody,
            sea_orm::sea_query::Expr::value(items.to_owned()),
        )
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(txn)
        .await?;
    if held.is_empty() {
        return Ok(());
    }
    let now = ciq_entity::now();
    let rows = held
        .iter()
        .map(|&(item, lead_id)| idempotency_lead::ActiveModel {
            user_id: Set(user_id),
            lead_id: Set(lead_id),
            key: Set(key.to_owned()),
            item: Set(i32::try_from(item).unwrap_or(i32::MAX)),
            created_at: Set(now),
        });
    idempotency_lead::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Deletes the keys (and the answers, lead data included, that they remember) older
/// than `retention`. Safe on any number of instances at once: each deletes what is
/// still there.
pub async fn purge(db: &Db, retention: std::time::Duration) -> Result<u64, sea_orm::DbErr> {
    let cutoff = ciq_entity::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    let deleted = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    idempotency_lead::Entity::delete_many()
        .filter(idempotency_lead::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// The status an answer keeps when its lead is erased: its place stays (a replay must
/// not create the lead again), its body — the lead's data — goes.
pub const ERASED_STATUS: i32 = 410;

/// Empties the remembered answers that hold `lead_id` (inside the erasing transaction):
/// a create's answer keeps only its place ([`ERASED_STATUS`]); a batch's answer keeps
/// every other item, and the erased lead's item becomes `null` (replayed as 410).
pub async fn forget_lead(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    lead_id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    let held = idempotency_lead::Entity::in_account(user_id)
        .filter(idempotency_lead::Column::LeadId.eq(lead_id))
        .all(txn)
        .await?;
    for place in held {
        let answer = idempotency_key::Entity::find_by_id((user_id, place.key.clone()))
            .one(txn)
            .await?;
        if let Some(body) = answer.and_then(|a| a.response_body) {
            let mut items: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| sea_orm::DbErr::Custom(format!("a remembered batch answer: {e}")))?;
            if let Some(item) = items.get_mut(usize::try_from(place.item).unwrap_or(usize::MAX)) {
                *item = serde_json::Value::Null;
            }
            idempotency_key::Entity::update_in_account(user_id)
                .col_expr(
                    idempotency_key::Column::ResponseBody,
                    sea_orm::sea_query::Expr::value(items.to_string()),
                )
                .filter(idempotency_key::Column::Key.eq(place.key.as_str()))
                .exec(txn)
                .await?;
        }
        idempotency_lead::Entity::delete_by_id((user_id, lead_id, place.key))
            .exec(txn)
            .await?;
    }
    idempotency_key::Entity::update_in_account(user_id)
        .col_expr(
            idempotency_key::Column::ResponseStatus,
            sea_orm::sea_query::Expr::value(ERASED_STATUS),
        )
        .col_expr(
            idempotency_key::Column::ResponseBody,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .filter(idempotency_key::Column::LeadId.eq(lead_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Frees a claimed key whose request failed, so that a retry can run.
pub async fn forget(db: &Db, user_id: Uuid, key: &str) -> Result<(), LeadError> {
    idempotency_key::Entity::delete_by_id((user_id, key.to_owned()))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Operation, fingerprint, validate_key};

    #[test]
    fn fingerprints_ignore_key_order_and_spacing_but_not_values() {
        let a = serde_json::json!({"lead": {"name": "Jane", "email": "j@x.io"}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "lead" : { "email":"j@x.io",  "name":"Jane" } }"#).unwrap();
        let c = serde_json::json!({"lead": {"name": "Jane", "email": "k@x.io"}});
        let create = |v| fingerprint(Operation::Create, v);
        assert_eq!(create(&a), create(&b));
        assert_ne!(create(&a), create(&c));
    }

    #[test]
    fn an_upserts_fingerprint_is_never_a_creates_of_the_same_body() {
        let body = serde_json::json!({"lead": {"name": "Jane", "external_id": "crm-1"}});
        assert_ne!(
            fingerprint(Operation::Upsert, &body),
            fingerprint(Operation::Create, &body)
        );
    }

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(validate_key(b"order-123_ABC:x").is_ok());
        assert!(validate_key("k".repeat(255).as_bytes()).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256)] {
            let err = validate_key(bad.as_bytes()).unwrap_err();
            assert_eq!(err.field, "header.Idempotency-Key");
        }
    }
}
