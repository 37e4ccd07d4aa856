//! The lead store as a surface uses it: one handle, and the one layer where the
//! instance's store breaker is consulted. The writes of [`crate::store`] check it inside
//! the group-commit writer; the other operations here (but forgetting a claimed
//! `Idempotency-Key`) run through
//! [`ciq_store::Breaker::guard`] — refused at once while the store is known to be gone,
//! given up as soon as it goes — so a handler never consults the breaker itself, and a
//! refusal is a [`LeadError::Unavailable`] like any other failure of the store.

use std::future::Future;
use std::time::Duration;

use ciq_store::{Db, Reads};
use uuid::Uuid;

use crate::error::LeadError;
use crate::group_commit::{Announcement, LeadWriter};
use crate::idempotency::{self, Claim};
use crate::lead::Lead;
use crate::rules::{LeadPatch, NewLead};
use crate::store::{
    self, After, BatchOutcome, LeadFilter, LeadOwner, Remembered, RememberedBatch,
    RememberedUpsert, Upserted,
};

/// The leads of every account, as one instance reaches them: writes on the primary
/// (through group commit where it applies), lists and single reads on a read replica
/// while it is fit. Cheap to clone.
#[derive(Clone)]
pub struct Leads {
    db: Db,
    reads: Reads,
    writer: LeadWriter,
}

impl Leads {
    /// The handle over `db` (the primary), `reads` and the instance's `writer`, whose
    /// breaker guards everything here.
    pub fn new(db: Db, reads: Reads, writer: LeadWriter) -> Self {
        Self { db, reads, writer }
    }

    /// The group-commit writer (for a request to announce its row early).
    pub fn writer(&self) -> &LeadWriter {
        &self.writer
    }

    /// Runs `operation` behind the breaker; its refusal is [`LeadError::Unavailable`].
    /// A combinator, not an `async fn` or block: those would hold `operation` (or the
    /// guard's future) twice, as what they captured and as what they await.
    fn guarded<T>(
        &self,
        operation: impl Future<Output = Result<T, LeadError>>,
    ) -> impl Future<Output = Result<T, LeadError>> {
        use futures_util::FutureExt;
        self.writer
            .breaker()
            .guard(operation)
            .map(|guarded| guarded?)
    }

    /// Stores one lead, its row made by [`store::prepare`] (see [`store::insert_lead`]).
    pub async fn insert_lead(
        &self,
        model: ciq_entity::lead::Model,
        remembered: Option<Remembered<'_>>,
        announcement: Option<&Announcement>,
    ) -> Result<Lead, LeadError> {
        store::insert_lead(&self.db, &self.writer, model, remembered, announcement).await
    }

    /// Stores a batch's valid items (see [`store::insert_batch`]).
    pub async fn insert_batch(
        &self,
        owner: LeadOwner,
        items: Vec<Option<NewLead>>,
        remembered: Option<RememberedBatch<'_>>,
    ) -> Result<Vec<BatchOutcome>, LeadError> {
        store::insert_batch(&self.db, &self.writer, owner, items, remembered).await
    }

    /// Creates or updates the lead with `external_id` (see [`store::upsert`]).
    pub async fn upsert(
        &self,
        owner: LeadOwner,
        external_id: &str,
        patch: LeadPatch,
        new: Option<NewLead>,
        remembered: Option<RememberedUpsert<'_>>,
    ) -> Result<Option<Upserted>, LeadError> {
        store::upsert(
            &self.db,
            &self.writer,
            owner,
            external_id,
            patch,
            new,
            remembered,
        )
        .await
    }

    /// A page of `user_id`'s leads, from the replica while it is fit (a list may be as
    /// stale as the replica is allowed to be).
    pub async fn list(
        &self,
        user_id: Uuid,
        filter: &LeadFilter,
        after: Option<After>,
        limit: u64,
    ) -> Result<(Vec<Lead>, bool), LeadError> {
        self.guarded(
            self.reads
                .read(|db| async move { store::list(&db, user_id, filter, after, limit).await }),
        )
        .await
    }

    /// One lead of `user_id`'s account: the replica first, what it does not have yet
    /// from the primary, so a create followed by a read never answers
    /// [`LeadError::NotFound`].
    pub async fn find(&self, user_id: Uuid, id: Uuid) -> Result<Lead, LeadError> {
        self.guarded(self.reads.read_fresh_one(|db| async move {
            match store::find(&db, user_id, id).await {
                Ok(lead) => Ok(Some(lead)),
                Err(LeadError::NotFound) => Ok(None),
                Err(err) => Err(err),
            }
        }))
        .await?
        .ok_or(LeadError::NotFound)
    }

    /// Applies `patch` to a lead of `user_id`'s account (see [`store::update`]).
    pub async fn update(
        &self,
        user_id: Uuid,
        id: Uuid,
        patch: LeadPatch,
    ) -> Result<Lead, LeadError> {
        self.guarded(store::update(&self.db, user_id, id, patch))
            .await
    }

    /// Erases a lead of `user_id`'s account (see [`store::erase`]).
    pub async fn erase(&self, user_id: Uuid, id: Uuid) -> Result<(), LeadError> {
        self.guarded(store::erase(&self.db, user_id, id)).await
    }

    /// Whether `user_id`'s idempotency `key` holds an answer a retry will replay
    /// ([`idempotency::answered`]); asked of the primary, behind the breaker.
    pub async fn answered(
        &self,
        user_id: Uuid,
        key: &str,
        retention: Duration,
    ) -> Result<bool, LeadError> {
        self.guarded(idempotency::answered(&self.db, user_id, key, retention))
            .await
    }

    /// Claims an `Idempotency-Key` (see [`idempotency::claim`]).
    pub async fn claim(
        &self,
        user_id: Uuid,
        key: &str,
        fingerprint: &str,
        retention: Duration,
    ) -> Result<Claim, LeadError> {
        self.guarded(idempotency::claim(
            &self.db,
            user_id,
            key,
            fingerprint,
            retention,
        ))
        .await
    }

    /// Lets go of a claimed key whose request wrote nothing (see
    /// [`idempotency::forget`]). Tried even while the breaker is open: a claimed key
    /// left behind would hold the client's retry off.
    pub async fn forget(&self, user_id: Uuid, key: &str) -> Result<(), LeadError> {
        idempotency::forget(&self.db, user_id, key).await
    }
}
