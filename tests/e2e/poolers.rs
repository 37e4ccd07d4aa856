//! PgBouncer in session mode in front of the gateway's PostgreSQL: nothing of the
//! gateway changes (transaction mode runs every scenario as `pgbouncer::…`).

use ciq_e2e::pgbouncer::{PgBouncer, PoolMode};
use ciq_e2e::{Backend, TestApp, postgres_admin_url};
use secrecy::ExposeSecret;

/// A gateway on a fresh database reached through `bouncer`, connecting directly
/// (no transaction pooling setting).
async fn through(bouncer: &PgBouncer) -> Option<TestApp> {
    let port = bouncer.port;
    TestApp::spawn_with(Backend::Postgres, move |s| {
        let direct = s.database_url.expose_secret().to_owned();
        let (_, name) = direct.rsplit_once('/').unwrap();
        let user = direct
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .map_or("postgres", |(u, _)| u)
            .to_owned();
        s.database_url = format!("postgres://{user}@127.0.0.1:{port}/{name}").into();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pooling_serves_creates_lists_updates_and_erasures_unchanged() {
    let Some(bouncer) = PgBouncer::start(&postgres_admin_url(), PoolMode::Session).await else {
        return;
    };
    let Some(app) = through(&bouncer).await else {
        return;
    };
    crate::manage::paging_returns_every_lead_that_existed_exactly_once(app).await;
    let app = through(&bouncer).await.unwrap();
    crate::manage::an_update_follows_the_create_rules_and_clears_with_null(app).await;
    let app = through(&bouncer).await.unwrap();
    crate::manage::an_erased_lead_leaves_no_trace_and_its_replay_is_gone(app).await;
}

/// Through PgBouncer in transaction mode with no reset query between clients (its four
/// server connections go from client to client as they are): three connections whose
/// transactions (sea-orm's, which name their statements) and lone statements interleave
/// never meet a statement name another left behind, and values reach the server as
/// written — quotes, backslashes, a would-be comment, a time to the microsecond — by the
/// inlined simple query and by the bound fallback (a value with no literal form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_needs_no_reset_query_between_clients() {
    use ciq_gateway::database::{Pooling, Waits, connect_with};
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};

    let Some(app) = TestApp::spawn(Backend::PgBouncer).await else {
        return;
    };
    let url = app.database.url.clone();
    let mut dbs = Vec::new();
    for _ in 0..3 {
        dbs.push(
            connect_with(&url, Waits::default(), Pooling::Transaction)
                .await
                .unwrap(),
        );
    }
    let tricky = r"O'Brien \' -- $1 /* ; DROP TABLE leads; E'\x'".to_owned();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let echo = |value: Value| {
        Statement::from_sql_and_values(DbBackend::Postgres, "SELECT $1 AS v", [value])
    };
    let mut tasks = Vec::new();
    for (n, db) in dbs.into_iter().enumerate() {
        let tricky = tricky.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25_i64 {
                // A transaction of three named statements.
                let txn = db.begin().await.unwrap();
                for k in 0..3_i64 {
                    let row = txn
                        .query_one_raw(echo(Value::BigInt(Some(round * 10 + k))))
                        .await
                        .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                        .unwrap();
                    assert_eq!(row.try_get::<i64>("", "v").unwrap(), round * 10 + k);
                }
                txn.commit().await.unwrap();
                // Lone statements: inlined, and bound (an i8 has no literal form here).
                let row = db
                    .query_one_raw(echo(Value::String(Some(tricky.clone()))))
                    .await
                    .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                    .unwrap();
                assert_eq!(row.try_get::<String>("", "v").unwrap(), tricky);
                let row = db
                    .query_one_raw(echo(Value::ChronoDateTimeUtc(Some(at))))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    row.try_get::<chrono::DateTime<chrono::Utc>>("", "v")
                        .unwrap(),
                    at
                );
                let row = db
                    .query_one_raw(echo(Value::TinyInt(Some(7))))
                    .await
                    .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                    .unwrap();
                assert_eq!(row.try_get::<i8>("", "v").unwrap(), 7);
            }
            db.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
