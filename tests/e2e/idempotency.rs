//! `Idempotency-Key` with Stripe's semantics.

use ciq_e2e::{TestApp, on_every_backend, reference_curl_body, reference_full_body};
use sea_orm::EntityTrait;
use serde_json::Value;

on_every_backend!(
    a_retry_with_the_same_key_and_body_replays_the_first_lead,
    the_same_key_with_another_body_is_refused,
    concurrent_duplicates_create_one_lead,
    keys_are_scoped_per_user_and_validated,
);

async fn post(app: &TestApp, key: &str, idem: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/api/external/leads/create", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .header("Idempotency-Key", idem)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn lead_count(app: &TestApp) -> usize {
    ciq_entity::Lead::find().all(&app.db).await.unwrap().len()
}

async fn a_retry_with_the_same_key_and_body_replays_the_first_lead(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let first = post(&app, &key, "order-1", &reference_full_body()).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    // Same body, keys in another order and other spacing: the same request.
    let reordered: Value = serde_json::from_str(
        r#"{"lead": {"industry": "Technology", "email": "jane@example.com", "name": "Jane Doe",
            "phone": "15551234567", "source": "Website Form", "score": 7, "status": "contacted",
            "monthly_revenue": 50000, "budget": 10000, "description": "Interested in AI calling"}}"#,
    )
    .unwrap();
    let again = post(&app, &key, "order-1", &reordered).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(again.headers().get("x-ratelimit-remaining").is_some());
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the original answer, replayed");
    assert_eq!(lead_count(&app).await, 1);
    // Another key is another lead.
    assert_eq!(
        post(&app, &key, "order-2", &reference_full_body())
            .await
            .status(),
        201
    );
    assert_eq!(lead_count(&app).await, 2);
}

async fn the_same_key_with_another_body_is_refused(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(
        post(&app, &key, "k1", &reference_curl_body())
            .await
            .status(),
        201
    );
    let resp = post(&app, &key, "k1", &reference_full_body()).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(lead_count(&app).await, 1);
    // A body that fails validation is not remembered: the key stays free.
    let invalid = serde_json::json!({"lead": {"name": "x"}});
    assert_eq!(post(&app, &key, "k2", &invalid).await.status(), 422);
    assert_eq!(
        post(&app, &key, "k2", &reference_curl_body())
            .await
            .status(),
        201
    );
}

async fn concurrent_duplicates_create_one_lead(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let body = reference_curl_body();
    let attempts = (0..12).map(|_| post(&app, &key, "burst", &body));
    let responses = futures_util::future::join_all(attempts).await;
    let mut ids = std::collections::HashSet::new();
    let mut in_use = 0;
    for resp in responses {
        match resp.status().as_u16() {
            201 => {
                let body: Value = resp.json().await.unwrap();
                ids.insert(body["lead"]["id"].as_str().unwrap().to_owned());
            }
            409 => {
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"]["code"], "idempotency_key_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "every 201 carries the same lead");
    assert!(in_use < 12);
    assert_eq!(lead_count(&app).await, 1);
}

async fn keys_are_scoped_per_user_and_validated(app: TestApp) {
    let (_, alice) = app.user_with_key("alice@acme.test").await;
    let (_, bob) = app.user_with_key("bob@acme.test").await;
    assert_eq!(
        post(&app, &alice, "shared", &reference_curl_body())
            .await
            .status(),
        201
    );
    assert_eq!(
        post(&app, &bob, "shared", &reference_curl_body())
            .await
            .status(),
        201
    );
    assert_eq!(lead_count(&app).await, 2);
    let resp = post(&app, &alice, &"k".repeat(256), &reference_curl_body()).await;
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["details"][0]["field"],
        "header.Idempotency-Key"
    );
    // A key that is not visible ASCII is refused, never silently ignored (which would
    // turn a retry into a duplicate).
    let resp = app
        .client
        .post(format!("{}/api/external/leads/create", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &alice)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        )
        .body(reference_curl_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(lead_count(&app).await, 2);
}
