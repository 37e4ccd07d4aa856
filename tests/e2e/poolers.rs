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
