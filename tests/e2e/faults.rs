//! The store failing under a running gateway: 503 with Retry-After, quickly, then
//! recovery without a restart.

use std::time::{Duration, Instant};

use ciq_e2e::{Backend, PrivatePostgres, TestApp, reference_curl_body};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_gives_quick_503s_and_recovery() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let url = pg.url();
    let app = TestApp::spawn_with(Backend::Postgres, |s| s.database_url = url.clone().into())
        .await
        .unwrap();
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);

    pg.kill();
    let started = Instant::now();
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals in the answer: {body}"
    );
    assert!(
        took < Duration::from_secs(6),
        "answered only after {took:?}"
    );
    assert_eq!(app.readiness().await.0, 503);

    assert!(pg.restart());
    let started = Instant::now();
    loop {
        let status = app.create_status(Some(&key)).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503);
        assert!(started.elapsed() < Duration::from_secs(15), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.readiness().await.0, 200);
}
