//! Headers every response carries, and the Settings pages' strict policy.

use base64::Engine;
use ciq_e2e::{Backend, TestApp};
use sha2::Digest;

fn between<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).expect(open) + open.len();
    let end = html[start..].find(close).expect(close) + start;
    &html[start..end]
}

fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_refuses_sniffing_and_framing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let created = app
        .post_lead(Some(&key), &ciq_e2e::reference_curl_body())
        .await;
    let refused = app.post_lead(None, &ciq_e2e::reference_curl_body()).await;
    let mut responses = vec![("create", created), ("401", refused)];
    for path in [
        "/docs",
        "/openapi.json",
        "/nope",
        "/settings/nope",
        "/healthz",
        "/",
    ] {
        responses.push((path, app.get(path).await));
    }
    for (what, resp) in responses {
        let headers = resp.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_allow_only_their_own_style_and_script_by_hash() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let resp = app.get("/login").await;
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = resp.text().await.unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        !html.contains(" style=\""),
        "an inline style attribute needs unsafe-inline"
    );
    let style = between(&html, "<style>", "</style>");
    let script = between(&html, "<script>", "</script>");
    assert!(
        csp.contains(&format!("style-src {}", csp_hash(style))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("script-src {}", csp_hash(script))),
        "{csp}"
    );
}
