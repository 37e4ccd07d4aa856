//! Writing leads.

use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, TransactionError, TransactionTrait};
use uuid::Uuid;

use ciq_admin::VerifiedKey;
use ciq_entity::lead;

use super::group_commit::{Announcement, LeadWriter};
use super::input::NewLead;
use super::money::Money;
use super::{Lead, LeadCreated, idempotency};
use crate::error::ApiError;

/// Stores `new` under the caller's account and returns it as the API shows it.
/// The tenant comes from the verified key, never from the body.
///
/// With an idempotency key, the answer is remembered in the same transaction as the
/// lead: both are written or neither is.
pub async fn insert_lead(
    db: &DatabaseConnection,
    writer: &LeadWriter,
    key: &VerifiedKey,
    new: NewLead,
    idempotency_key: Option<&str>,
    announcement: Option<&Announcement>,
) -> Result<Lead, ApiError> {
    let model = lead::Model {
        id: Uuid::now_v7(),
        user_id: key.user_id,
        api_key_id: key.key_id,
        name: new.name,
        email: new.email,
        phone: new.phone,
        source: new.source,
        industry: new.industry,
        score: new.score,
        status: new.status.to_owned(),
        monthly_revenue_cents: new.monthly_revenue.map(|m| m.cents),
        budget_cents: new.budget.map(|m| m.cents),
        description: new.description,
        created_at: ciq_entity::now(),
    };
    let stored = match idempotency_key {
        // The common case goes through group commit.
        None => match writer.write(model.clone(), announcement).await {
            Ok(()) => Ok(lead_view(model)),
            Err(cause) => Err(DbErr::Custom(cause)),
        },
        Some(idempotency_key) => {
            // Written in its own transaction, not through a batch.
            if let Some(announcement) = announcement {
                announcement.settle();
            }
            let user_id = key.user_id;
            let row: lead::ActiveModel = model.into();
            db.transaction::<_, Lead, DbErr>(|txn| {
                let idempotency_key = idempotency_key.to_owned();
                Box::pin(async move {
                    let lead = lead_view(row.insert(txn).await?);
                    let answer = LeadCreated {
                        success: true,
                        lead: lead.clone(),
                    };
                    let body = poem_openapi::types::ToJSON::to_json_string(&answer);
                    idempotency::complete(txn, user_id, &idempotency_key, &body).await?;
                    Ok(lead)
                })
            })
            .await
            .map_err(|err| match err {
                TransactionError::Connection(err) | TransactionError::Transaction(err) => err,
            })
        }
    };
    let stored = stored.map_err(|err| {
        tracing::error!(error = %err, "could not store lead");
        ApiError::service_unavailable()
    })?;
    metrics::counter!("ciq_leads_created_total").increment(1);
    Ok(stored)
}

/// The API's view of a stored row.
pub fn lead_view(row: lead::Model) -> Lead {
    Lead {
        id: row.id,
        user_id: row.user_id,
        name: row.name,
        email: row.email,
        phone: row.phone,
        source: row.source,
        industry: row.industry,
        score: row.score,
        status: row.status,
        monthly_revenue: row.monthly_revenue_cents.map(|cents| Money { cents }),
        budget: row.budget_cents.map(|cents| Money { cents }),
        description: row.description,
        created_at: row
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}
