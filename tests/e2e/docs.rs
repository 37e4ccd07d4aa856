//! The document, Swagger UI and health probes.

use ciq_e2e::{TestApp, on_both_backends};
use serde_json::Value;

on_both_backends!(
    the_served_document_is_the_generated_one,
    swagger_ui_is_served_with_the_document,
    health_and_readiness_report_ok,
);

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
    // No absolute server: Try it out calls the server that served the page.
    let doc: Value = serde_json::from_str(&ciq_api::openapi::document()).unwrap();
    assert!(
        doc.get("servers")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{:?}",
        doc.get("servers")
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
