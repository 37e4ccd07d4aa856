//! Writing leads under the key owner's account.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, TransactionError, TransactionTrait};
use uuid::Uuid;

use ciq_entity::lead::{self, LeadStatus};

use crate::error::LeadError;
use crate::group_commit::{Announcement, LeadWriter};
use crate::idempotency;
use crate::money::Money;
use crate::rules::NewLead;

/// Who a lead is written for: the account and the key that authenticated the
/// request. It comes from the verified key, never from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadOwner {
    /// The tenant.
    pub user_id: Uuid,
    /// The key that creates the lead.
    pub api_key_id: Uuid,
}

/// A stored lead, as the domain sees it (each surface maps it to its own object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// Lead id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The account the lead belongs to.
    pub user_id: Uuid,
    /// The key that created it.
    pub api_key_id: Uuid,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// E.164 digits without `+`.
    pub phone: Option<String>,
    /// Source.
    pub source: String,
    /// Industry.
    pub industry: String,
    /// Score 1–10.
    pub score: Option<i32>,
    /// Pipeline status.
    pub status: LeadStatus,
    /// Monthly revenue.
    pub monthly_revenue: Option<Money>,
    /// Budget.
    pub budget: Option<Money>,
    /// Notes.
    pub description: Option<String>,
    /// When it was stored (millisecond precision).
    pub created_at: DateTime<Utc>,
}

impl From<lead::Model> for Lead {
    fn from(row: lead::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            api_key_id: row.api_key_id,
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
            created_at: row.created_at,
        }
    }
}

/// An idempotent create: its key, and how to render the answer that a retry with the
/// same key replays (the surface's own JSON, remembered as it was sent).
pub struct Remembered<'a> {
    /// The validated `Idempotency-Key`.
    pub key: &'a str,
    /// Renders the answer body for the stored lead.
    pub render: &'a (dyn Fn(&Lead) -> String + Sync),
}

/// Stores `new` for `owner`.
///
/// With an idempotency key, the answer is remembered in the same transaction as the
/// lead: both are written or neither is. Without one, the row goes through group
/// commit (`announcement` is this request's, if it announced itself).
pub async fn insert_lead(
    db: &DatabaseConnection,
    writer: &LeadWriter,
    owner: LeadOwner,
    new: NewLead,
    remembered: Option<Remembered<'_>>,
    announcement: Option<&Announcement>,
) -> Result<Lead, LeadError> {
    let model = lead::Model {
        id: Uuid::now_v7(),
        user_id: owner.user_id,
        api_key_id: owner.api_key_id,
        name: new.name,
        email: new.email,
        phone: new.phone,
        source: new.source,
        industry: new.industry,
        score: new.score,
        status: new.status,
        monthly_revenue_cents: new.monthly_revenue.map(|m| m.cents),
        budget_cents: new.budget.map(|m| m.cents),
        description: new.description,
        created_at: ciq_entity::now(),
    };
    let stored = match remembered {
        // The common case goes through group commit.
        None => writer
            .write(model.clone(), announcement)
            .await
            .map(|()| Lead::from(model))
            .map_err(LeadError::Unavailable),
        Some(remembered) => {
            // Written in its own transaction, not through a batch.
            if let Some(announcement) = announcement {
                announcement.settle();
            }
            let user_id = owner.user_id;
            // The row is written exactly as built, so its answer can be rendered now.
            let answer = (remembered.render)(&Lead::from(model.clone()));
            let row: lead::ActiveModel = model.into();
            let key = remembered.key.to_owned();
            db.transaction::<_, Lead, DbErr>(|txn| {
                Box::pin(async move {
                    let lead = Lead::from(row.insert(txn).await?);
                    idempotency::complete(txn, user_id, &key, &answer).await?;
                    Ok(lead)
                })
            })
            .await
            .map_err(|err| match err {
                TransactionError::Connection(err) | TransactionError::Transaction(err) => {
                    LeadError::from(err)
                }
            })
        }
    }?;
    metrics::counter!("ciq_leads_created_total").increment(1);
    Ok(stored)
}
