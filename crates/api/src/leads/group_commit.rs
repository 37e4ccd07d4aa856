//! Group commit: concurrent creates share one multi-row INSERT.
//!
//! Each request hands its row to a writer and waits; a writer takes every row that is
//! waiting (up to a batch limit, never waiting for more to arrive), inserts them in one
//! statement — one round trip, one commit — and only then answers each request. So a
//! 201 still means "this row is durably committed", while under load the store does a
//! fraction of the commits. A batch that fails is retried row by row, so one bad row
//! cannot fail its neighbours.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use ciq_entity::lead;

/// Most rows in one INSERT (14 columns each stays far below every parameter limit).
pub const MAX_BATCH: usize = 256;

struct Job {
    row: lead::Model,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle requests write through; cheap to clone.
#[derive(Clone)]
pub struct LeadWriter {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Batched(mpsc::Sender<Job>),
    /// Group commit off: one INSERT per request (for comparison, or by choice).
    Direct(DatabaseConnection),
}

impl LeadWriter {
    /// Starts `writers` writer tasks on `db` (1 for SQLite, which has one writer
    /// anyway; a few for PostgreSQL so batches overlap). They stop when the last
    /// handle is dropped, after finishing what was handed to them. `0` turns group
    /// commit off: every request inserts its own row.
    pub fn start(db: DatabaseConnection, writers: usize) -> Self {
        if writers == 0 {
            return Self {
                mode: Mode::Direct(db),
            };
        }
        let (jobs, queue) = mpsc::channel::<Job>(MAX_BATCH * writers * 4);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers {
            tokio::spawn(write_batches(db.clone(), queue.clone()));
        }
        Self {
            mode: Mode::Batched(jobs),
        }
    }

    /// Inserts `row`; returns once it is committed (or why it is not).
    pub async fn write(&self, row: lead::Model) -> Result<(), String> {
        let jobs = match &self.mode {
            Mode::Batched(jobs) => jobs,
            Mode::Direct(db) => {
                let row: lead::ActiveModel = row.into();
                return lead::Entity::insert(row)
                    .exec_without_returning(db)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
            }
        };
        let (done, answer) = oneshot::channel();
        jobs.send(Job { row, done })
            .await
            .map_err(|_| "the lead writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the lead writer has stopped".to_owned())?
    }
}

async fn write_batches(db: DatabaseConnection, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        metrics::histogram!("ciq_lead_batch_size").record(batch.len() as f64);
        let rows: Vec<lead::ActiveModel> = batch.iter().map(|j| j.row.clone().into()).collect();
        match lead::Entity::insert_many(rows)
            .exec_without_returning(&db)
            .await
        {
            Ok(_) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(err) if batch.len() == 1 => {
                let job = batch.pop().expect("one job");
                let _ = job.done.send(Err(err.to_string()));
            }
            Err(_) => {
                for job in batch {
                    let row: lead::ActiveModel = job.row.into();
                    let result = lead::Entity::insert(row)
                        .exec_without_returning(&db)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string());
                    let _ = job.done.send(result);
                }
            }
        }
    }
}
