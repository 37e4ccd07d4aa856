//! The document, Swagger UI and health probes.

use ciq_e2e::{TestApp, on_every_backend};
use serde_json::Value;

on_every_backend!(
    the_served_document_is_the_generated_one,
    swagger_ui_is_served_with_the_document,
    health_and_readiness_report_ok,
    metrics_count_requests_decisions_and_leads,
    request_ids_are_echoed_or_generated,
    the_home_page_points_to_the_docs_and_the_settings,
    the_public_document_holds_no_operator_paths,
);

async fn the_home_page_points_to_the_docs_and_the_settings(app: TestApp) {
    let resp = app.get("/").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("href=\"/docs\""), "{html}");
    for link in [
        "/settings/api-keys",
        "/settings/leads",
        "/settings/webhooks",
        "/embed/v1/form.js",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}: {html}");
    }
    let no_redirects = ciq_e2e::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(format!("{}/settings", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "Settings needs a sign-in"
    );
    // A signed-in owner opening the home page goes on to the overview.
    let owner = ciq_e2e::console::signed_in(&app, "owner@acme.test", "/settings").await;
    let resp = owner
        .client
        .get(format!("{}/", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/settings");
}

async fn the_public_document_holds_no_operator_paths(app: TestApp) {
    // The operator API is off here (no token): not in the document, no document of its own.
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.keys().all(|p| p.starts_with("/api/external/")),
        "{paths:?}"
    );
    assert_eq!(app.get("/admin/v1/openapi.json").await.status(), 404);
}

async fn the_served_document_is_the_generated_one(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/openapi.json", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), ciq_api::openapi::document());
}

async fn swagger_ui_is_served_with_the_document(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/docs", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"));
    assert!(html.contains("/api/external/leads/create"));
    assert!(html.contains("X-API-Key"));
    // A relative server: Try it out calls the server that served the page.
    let doc: Value = serde_json::from_str(&ciq_api::openapi::document()).unwrap();
    assert_eq!(
        doc["servers"],
        serde_json::json!([{"url": "/", "description": "The gateway serving this document"}])
    );
}

async fn health_and_readiness_report_ok(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");
    let resp = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["rate_limiter"], "in_process");
}

async fn metrics_count_requests_decisions_and_leads(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    assert_eq!(app.create_status(Some(&key)).await, 201);
    assert_eq!(app.create_status(None).await, 401);
    let resp = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    // The recorder is shared by every gateway in this test process: assert presence
    // and shape, not exact totals.
    let has = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
    assert!(
        has(
            "ciq_http_requests_total{route=\"/api/external/leads/create\",method=\"POST\",status=\"201\"}"
        ),
        "{text}"
    );
    assert!(has(
        "ciq_http_requests_total{route=\"/api/external/leads/create\",method=\"POST\",status=\"401\"}"
    ));
    assert!(has(
        "ciq_http_request_duration_seconds_bucket{route=\"/api/external/leads/create\",le=\"0.001\"}"
    ));
    assert!(has(
        "ciq_rate_limit_decisions_total{scope=\"key\",outcome=\"admitted\"}"
    ));
    assert!(has(
        "ciq_rate_limit_decisions_total{scope=\"address\",outcome=\"admitted\"}"
    ));
    assert!(has("ciq_leads_created_total "));
    assert!(has("ciq_rate_limiter_degraded 0"));
    assert!(has("ciq_key_cache_hits_total "));
    assert!(has("ciq_argon2_verifications_total "));
    assert!(has("ciq_db_pool_connections "));
    assert!(has("ciq_db_pool_idle_connections "));
    assert!(has("ciq_lead_batch_size_count"));
    assert!(has("ciq_rate_limit_decision_seconds_count"));
}

async fn request_ids_are_echoed_or_generated(app: TestApp) {
    let resp = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .header("X-Request-Id", "lb-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "lb-abc-123");
    // Errors carry it too, and a missing or unusable id is replaced by a fresh one.
    for sent in [None, Some("has spaces in it")] {
        let mut req = app.client.get(format!("{}/nope", app.base_url));
        if let Some(id) = sent {
            req = req.header("X-Request-Id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}
