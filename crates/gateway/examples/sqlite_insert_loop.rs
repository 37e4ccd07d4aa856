//! The embedded store's own limit: single-row-transaction INSERTs of a lead into
//! SQLite with the gateway's settings (WAL, synchronous=NORMAL, same pool), from N
//! concurrent tasks for a fixed time. Used by `bench/run` as the SQLite anchor.
//!
//! `cargo run --release -p ciq-gateway --example sqlite_insert_loop -- DB_FILE CONCURRENCY SECONDS`
//! Prints `CIQ_RESULT inserts=N seconds=S`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ciq_admin::keys::{Actor, NewKey};
use ciq_admin::{SecretHasher, keys, users};
use sea_orm::{ActiveModelTrait, Set};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).expect("DB_FILE");
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let db = ciq_gateway::database::connect_and_migrate(&format!("sqlite://{file}?mode=rwc"))
        .await
        .expect("database");
    let user = users::create_user(&db, "loop@example.com", None)
        .await
        .expect("user");
    let (key, _) = keys::create_key(
        &db,
        &SecretHasher::default(),
        user.id,
        NewKey::default(),
        &Actor::cli(),
    )
    .await
    .expect("key");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (db, done) = (db.clone(), done.clone());
            let (user_id, key_id) = (user.id, key.id);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    ciq_entity::lead::ActiveModel {
                        id: Set(uuid::Uuid::now_v7()),
                        user_id: Set(user_id),
                        api_key_id: Set(Some(key_id)),
                        name: Set("Jane Doe".into()),
                        email: Set("jane@example.com".into()),
                        phone: Set(Some("15551234567".into())),
                        source: Set("Website Form".into()),
                        industry: Set("Technology".into()),
                        score: Set(Some(7)),
                        status: Set(ciq_entity::lead::LeadStatus::Contacted),
                        monthly_revenue_cents: Set(Some(5_000_000)),
                        budget_cents: Set(Some(1_000_000)),
                        description: Set(Some("Interested in AI calling".into())),
                        created_at: Set(ciq_entity::now()),
                        updated_at: Set(Some(ciq_entity::now())),
                        // The other columns keep their defaults (empty).
                        ..Default::default()
                    }
                    .insert(&db)
                    .await
                    .expect("insert");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    println!(
        "CIQ_RESULT inserts={} seconds={:.3}",
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}
