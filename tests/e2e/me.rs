//! `GET /api/external/me`: the credentials test. It names the key and its account,
//! shows the key's window without spending it, has an allowance of its own, and is
//! refused to keys that are not valid and to public (browser) keys.

use ciq_admin::keys::{self, NewKey};
use ciq_admin::{Scope, Scopes};
use ciq_e2e::{Backend, TestApp, reference_curl_body};
use serde_json::Value;

ciq_e2e::with_each_backend!(
    me_names_the_key_and_account_and_spends_nothing,
    me_refuses_missing_invalid_revoked_and_public_keys,
);

async fn me(app: &TestApp, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.client.get(format!("{}/api/external/me", app.base_url));
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, key: &str) -> u16 {
    app.client
        .post(format!("{}/api/external/leads/create", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(reference_curl_body().to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The key (never its secret) and its account; its window as the creates left it, the
/// same after three calls of `me`, in the body and the headers.
async fn me_names_the_key_and_account_and_spends_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("crm@acme.test").await;
    let (key_id, key) = app
        .create_key_with(
            owner,
            NewKey {
                name: "CRM sync".into(),
                scopes: Scopes::of(&[Scope::LeadsCreate, Scope::LeadsRead]),
                rate_limit_per_minute: Some(5),
                ..NewKey::default()
            },
        )
        .await;
    assert_eq!(create(&app, &key).await, 201);
    assert_eq!(create(&app, &key).await, 201);
    for _ in 0..3 {
        let (status, headers, body) = me(&app, Some(&key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["key"]["id"], key_id.to_string());
        assert_eq!(body["key"]["name"], "CRM sync");
        assert!(key.starts_with(body["key"]["display_prefix"].as_str().unwrap()));
        assert_eq!(
            body["key"]["scopes"],
            serde_json::json!(["leads:create", "leads:read"])
        );
        assert_eq!(body["key"]["allowed_origins"], serde_json::json!([]));
        assert_eq!(body["key"]["rate_limit"], 5);
        assert_eq!(body["key"]["expires_at"], Value::Null);
        assert_eq!(body["account"]["id"], owner.to_string());
        assert_eq!(body["account"]["email"], "crm@acme.test");
        assert_eq!(body["rate_limit"]["limit"], 5);
        assert_eq!(body["rate_limit"]["remaining"], 3, "me spends nothing");
        assert_eq!(headers["x-ratelimit-remaining"], "3");
        assert_eq!(
            headers["x-ratelimit-reset"].to_str().unwrap(),
            body["rate_limit"]["reset"].to_string()
        );
        assert!(
            !body.to_string().contains(&key),
            "the secret is never shown"
        );
    }
    // The three calls left the key its three requests.
    for _ in 0..3 {
        assert_eq!(create(&app, &key).await, 201);
    }
    assert_eq!(create(&app, &key).await, 429);
    // Over its budget, the key still tests fine.
    let (status, _, body) = me(&app, Some(&key)).await;
    assert_eq!(status, 200);
    assert_eq!(body["rate_limit"]["remaining"], 0);
    app.stop().await;
}

async fn me_refuses_missing_invalid_revoked_and_public_keys(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("site@acme.test").await;
    let (status, _, body) = me(&app, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    let (status, _, body) = me(&app, Some("ciq_not_a_key")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (_, browser) = app
        .create_key_with(
            owner,
            NewKey {
                allowed_origins: vec!["https://shop.example".into()],
                ..NewKey::default()
            },
        )
        .await;
    let (status, _, body) = me(&app, Some(&browser)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_scope");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server key")
    );
    let (revoked_id, revoked) = app.create_key_with(owner, NewKey::default()).await;
    keys::revoke_key(&app.db, revoked_id, &keys::Actor::cli())
        .await
        .unwrap();
    // Instances see a revocation within a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, _, body) = me(&app, Some(&revoked)).await;
        if status == 401 {
            assert_eq!(body["error"]["code"], "invalid_api_key");
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}

/// 600 calls a minute per key, then 429 with the allowance's own policy; the key's own
/// budget is untouched by all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_has_an_allowance_of_its_own() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let owner = app.create_user("script@acme.test").await;
    let (_, key) = app.create_key_with(owner, NewKey::default()).await;
    let allowance = ciq_api::auth::KEY_INFO_PER_WINDOW;
    for _ in 0..allowance {
        let (status, _, _) = me(&app, Some(&key)).await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = me(&app, Some(&key)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        headers["ratelimit-policy"],
        format!("\"me\";q={allowance};w=60").as_str()
    );
    assert_eq!(
        create(&app, &key).await,
        201,
        "the key's own budget is whole"
    );
    app.stop().await;
}
