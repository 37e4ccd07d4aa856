//! A real streaming replica (a private primary, and a standby made from it with
//! `pg_basebackup -R`): lists are read there, a lead the replica does not have yet is
//! found on the primary, a browser that just wrote reads its lists from the primary, a
//! replica behind its bound or stopped is passed over, and nothing answers 5xx.

use std::time::{Duration, Instant};

use ciq_e2e::{Backend, PrivatePostgres, TestApp, reference_curl_body};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

use ciq_e2e::console::PASSWORD;

async fn wait_for_replica_state(app: &TestApp, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.readiness().await;
        assert_eq!(status, 200, "{body}");
        if body["database_replica"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica is not {state} within 20 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids of the API's first page of leads.
async fn listed(app: &TestApp, key: &str) -> Vec<String> {
    let resp = app
        .client
        .get(format!("{}/api/external/leads", app.base_url))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(app: &TestApp, key: &str) -> String {
    let resp = app.post_lead(Some(key), &reference_curl_body()).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["lead"]["id"].as_str().unwrap().to_owned()
}

/// The Settings leads page as a browser holding `cookies` sees it.
async fn leads_page(app: &TestApp, cookies: &str) -> String {
    let resp = app
        .client
        .get(format!("{}/settings/leads", app.base_url))
        .header("Cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_from_a_streaming_replica_and_from_the_primary_when_it_cannot_serve() {
    let Some(primary) = PrivatePostgres::start().await else {
        return;
    };
    let replica = PrivatePostgres::replica_of(&primary);
    let (primary_url, replica_url) = (primary.url(), replica.url());
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database_url = primary_url.into();
        s.database_read_url = Some(replica_url.clone().into());
        s.replica_max_lag = Duration::from_secs(60);
    })
    .await
    .unwrap();
    wait_for_replica_state(&app, "ok").await;

    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            ciq_admin::keys::NewKey {
                scopes: ciq_admin::Scopes::of(&ciq_admin::Scope::ALL),
                rate_limit_per_minute: Some(100_000),
                ..Default::default()
            },
        )
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&app, &key).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while listed(&app, &key).await.len() < 3 {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The replica stops replaying: what the primary writes now, it does not have.
    let standby = Database::connect(replica_url.as_str()).await.unwrap();
    standby
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let newest = create(&app, &key).await;
    // The list comes from the replica (within its 60 s bound): three leads, not four.
    let stale = listed(&app, &key).await;
    assert_eq!(stale.len(), 3, "{stale:?}");
    assert!(!stale.contains(&newest));
    // The lead itself is found: the replica misses it, the primary has it.
    let got = app
        .client
        .get(format!("{}/api/external/leads/{newest}", app.base_url))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("ciq_db_reads_total{on=\"replica\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ciq_db_replica_in_use 1"), "{metrics}");

    // Settings: a browser reads its lists from the replica, unless it just wrote.
    let user = ciq_admin::users::find_user(&app.db, "owner@acme.test")
        .await
        .unwrap();
    ciq_admin::users::set_password(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        user.id,
        &PASSWORD.into(),
    )
    .await
    .unwrap();
    let browser = ciq_e2e::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(format!("{}/login", app.base_url))
        .send()
        .await
        .unwrap();
    let login_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = ciq_e2e::console::hidden_csrf(&page.text().await.unwrap());
    let signed_in =
        ciq_e2e::console::post_sign_in(&app, &browser, &login_cookie, &csrf, false).await;
    assert_eq!(signed_in.status(), 303);
    let set: Vec<String> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let session = set.iter().find(|c| c.starts_with("ciq_session=")).unwrap();
    let wrote = set.iter().find(|c| c.starts_with("ciq_wrote=")).unwrap();
    assert!(
        signed_in.headers().get_all("set-cookie").iter().any(|v| v
            .to_str()
            .unwrap()
            .starts_with("ciq_wrote=1")
            && v.to_str().unwrap().contains("Max-Age=61")),
        "the mark lasts the lag bound and a check"
    );
    let from_replica = leads_page(&app, session).await;
    assert!(!from_replica.contains(&newest));
    assert!(from_replica.contains(&ids[0]));
    let after_a_write = leads_page(&app, &format!("{session}; {wrote}")).await;
    assert!(after_a_write.contains(&newest));

    // An instance with a 1 s bound passes the paused replica over once it is behind.
    let strict = app
        .spawn_peer_with(|s| s.replica_max_lag = Duration::from_secs(1))
        .await;
    wait_for_replica_state(&strict, "lagging").await;
    assert!(listed(&strict, &key).await.contains(&newest));
    let metrics = strict.metrics_text().await;
    assert!(metrics.contains("ciq_db_replica_in_use 0"), "{metrics}");

    // The replica stops: every list still answers, from the primary.
    standby
        .execute_unprepared("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    drop(standby);
    replica.kill();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        assert!(listed(&app, &key).await.len() >= 3);
    }
    wait_for_replica_state(&app, "unreachable").await;
    assert!(listed(&app, &key).await.contains(&newest));
    assert!(leads_page(&app, session).await.contains(&newest));
}
