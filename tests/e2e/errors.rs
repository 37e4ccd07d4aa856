//! Every row of the error table, answered in the one JSON shape.

use ciq_admin::keys::NewKey;
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::Value;

on_every_backend!(
    a_missing_key_is_401_missing_api_key,
    a_malformed_key_is_401_invalid_api_key_without_any_argon2_work,
    an_unknown_well_formed_key_is_401_invalid_api_key,
    a_body_that_is_not_json_is_400_invalid_json,
    a_wrong_or_missing_content_type_is_415,
    an_oversized_body_is_413,
    the_limit_is_enforced_with_429_and_an_honest_retry_after,
    an_unavailable_store_is_503_with_retry_after,
    a_fault_of_ours_is_500_internal_error_without_retry_after,
    unknown_routes_and_methods_answer_in_json,
    invented_methods_do_not_grow_the_metrics,
    thousands_of_unknown_fields_answer_at_most_fifty_details,
);

/// Asserts the error shape and returns `(code, message)`.
async fn error_of(resp: reqwest::Response, status: u16) -> (String, String) {
    assert_eq!(resp.status(), status);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        resp.headers()
    );
    let body: Value = resp.json().await.expect("a JSON error body");
    assert_eq!(body["success"], false);
    assert!(body["error"]["details"].is_array());
    (
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

fn create_url(app: &TestApp) -> String {
    format!("{}/api/external/leads/create", app.base_url)
}

async fn a_missing_key_is_401_missing_api_key(app: TestApp) {
    let (code, _) = error_of(app.post_lead(None, &reference_curl_body()).await, 401).await;
    assert_eq!(code, "missing_api_key");
    let (code, _) = error_of(app.post_lead(Some("  "), &reference_curl_body()).await, 401).await;
    assert_eq!(code, "missing_api_key");
}

async fn a_malformed_key_is_401_invalid_api_key_without_any_argon2_work(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let mut typo: Vec<char> = key.chars().collect();
    typo[10] = if typo[10] == 'x' { 'y' } else { 'x' };
    let typo: String = typo.into_iter().collect();
    for presented in ["ciq_your_api_key_here", "sk_live_abc", typo.as_str()] {
        let resp = app.post_lead(Some(presented), &reference_curl_body()).await;
        assert!(resp.headers().get("x-ratelimit-limit").is_none());
        let (code, message) = error_of(resp, 401).await;
        assert_eq!(code, "invalid_api_key");
        assert!(!message.contains(presented), "the key is echoed: {message}");
    }
    assert_eq!(app.states.api.verifier.argon2_runs(), 0);
}

async fn an_unknown_well_formed_key_is_401_invalid_api_key(app: TestApp) {
    let (unknown, _) = ciq_admin::key::generate();
    let resp = app
        .post_lead(Some(unknown.expose()), &reference_curl_body())
        .await;
    let (code, message) = error_of(resp, 401).await;
    assert_eq!(code, "invalid_api_key");
    assert_eq!(message, "the API key is not valid");
}

async fn a_body_that_is_not_json_is_400_invalid_json(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    for body in ["{\"lead\": {", "", "lead=1"] {
        let resp = app
            .client
            .post(create_url(&app))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.headers().get("x-ratelimit-remaining").is_some());
        let (code, _) = error_of(resp, 400).await;
        assert_eq!(code, "invalid_json", "{body:?}");
    }
}

async fn a_wrong_or_missing_content_type_is_415(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let body = reference_curl_body().to_string();
    let wrong = app
        .client
        .post(create_url(&app))
        .header("Content-Type", "text/plain")
        .header("X-API-Key", &key)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (code, message) = error_of(wrong, 415).await;
    assert_eq!(code, "unsupported_media_type");
    assert!(message.contains("text/plain"));
    let missing = app
        .client
        .post(create_url(&app))
        .header("X-API-Key", &key)
        .body(body)
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(missing, 415).await;
    assert_eq!(code, "unsupported_media_type");
    assert!(
        ciq_entity::Lead::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_oversized_body_is_413(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let mut body = reference_curl_body();
    body["lead"]["description"] = Value::String("x".repeat(70 * 1024));
    let resp = app.post_lead(Some(&key), &body).await;
    let (code, _) = error_of(resp, 413).await;
    assert_eq!(code, "payload_too_large");
    // Without a Content-Length (chunked), the limit still holds while reading.
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok("{\"lead\": {\"description\": \"".into()),
        Ok("y".repeat(70 * 1024)),
        Ok("\"}}".into()),
    ];
    let resp = app
        .client
        .post(create_url(&app))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &key)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(resp, 413).await;
    assert_eq!(code, "payload_too_large");
}

async fn the_limit_is_enforced_with_429_and_an_honest_retry_after(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            NewKey {
                rate_limit_per_minute: Some(3),
                ..NewKey::default()
            },
        )
        .await;
    for remaining in ["2", "1", "0"] {
        let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "3");
        assert_eq!(resp.headers()["x-ratelimit-remaining"], remaining);
    }
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(resp.headers()["ratelimit-policy"], "\"default\";q=3;w=60");
    let (code, _) = error_of(resp, 429).await;
    assert_eq!(code, "rate_limited");
    assert_eq!(
        ciq_entity::Lead::find().all(&app.db).await.unwrap().len(),
        3
    );
}

async fn an_unavailable_store_is_503_with_retry_after(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    // The store goes away under the running gateway.
    app.states.api.db.close().await.unwrap();
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    assert_eq!(resp.headers()["retry-after"], "5");
    assert!(resp.headers().get("x-ratelimit-limit").is_some());
    let (code, _) = error_of(resp, 503).await;
    assert_eq!(code, "service_unavailable");
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "unreachable");
}

async fn unknown_routes_and_methods_answer_in_json(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/nope", app.base_url))
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(resp, 404).await;
    assert_eq!(code, "not_found");
    let resp = app.client.get(create_url(&app)).send().await.unwrap();
    let (code, _) = error_of(resp, 405).await;
    assert_eq!(code, "method_not_allowed");
}

async fn a_fault_of_ours_is_500_internal_error_without_retry_after(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let send = || {
        app.client
            .post(create_url(&app))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .header("Idempotency-Key", "order-1")
            .body(reference_curl_body().to_string())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 201);
    // The remembered answer is damaged: replaying it is our fault, not the store's.
    app.db
        .execute_unprepared("UPDATE idempotency_keys SET response_body = 'not json'")
        .await
        .unwrap();
    let resp = send().await.unwrap();
    assert!(resp.headers().get("retry-after").is_none());
    let (code, message) = error_of(resp, 500).await;
    assert_eq!(code, "internal_error");
    assert!(!message.contains("not json"), "{message}");
}

async fn invented_methods_do_not_grow_the_metrics(app: TestApp) {
    for i in 0..1000 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let resp = app
            .client
            .request(method, format!("{}/", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
    }
    let text = app.metrics_text().await;
    assert!(!text.contains("FOO"), "an invented method became a label");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ciq_http_requests_total") && l.contains("method=\"other\"")),
        "invented methods are counted as other"
    );
}

async fn thousands_of_unknown_fields_answer_at_most_fifty_details(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let mut lead = reference_curl_body()["lead"].clone();
    for i in 0..3000 {
        lead[format!("f{i}")] = Value::from(1);
    }
    let body = serde_json::json!({ "lead": lead });
    assert!(body.to_string().len() < 64 * 1024);
    let resp = app.post_lead(Some(&key), &body).await;
    let text = resp.text().await.unwrap();
    assert!(text.len() < 16 * 1024, "{} bytes of error", text.len());
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["code"], "validation_failed");
    assert_eq!(error["error"]["details"].as_array().unwrap().len(), 50);
    assert_eq!(error["error"]["details_truncated"], 3000 - 50);
    assert_eq!(
        ciq_entity::Lead::find().all(&app.db).await.unwrap().len(),
        0
    );
}
