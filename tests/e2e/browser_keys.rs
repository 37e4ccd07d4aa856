//! Browser keys: a `leads:create`-only key with allowed origins, used by a web page on
//! another origin. CORS preflights, origin enforcement, and the HTML form of the docs
//! driven in Chromium.

use std::time::Duration;

use ciq_admin::keys::{self, NewKey};
use ciq_admin::{AdminError, Scope, Scopes, SecretHasher};
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

on_every_backend!(
    a_browser_key_serves_its_origins_and_refuses_others_readably,
    a_preflight_is_answered_for_any_origin_and_never_counted,
    keys_without_origins_refuse_foreign_pages_but_not_servers_or_our_own,
    origins_are_only_for_create_only_keys_and_must_be_origins,
);

const SHOP: &str = "https://shop.example";

async fn browser_key(app: &TestApp, email: &str, origins: &[&str]) -> (uuid::Uuid, String) {
    app.user_with_key_like(
        email,
        NewKey {
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..NewKey::default()
        },
    )
    .await
}

async fn post_from(
    app: &TestApp,
    key: &str,
    origin: Option<&str>,
    path: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(reference_curl_body().to_string());
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    req.send().await.unwrap()
}

const CREATE: &str = "/api/external/leads/create";

fn header<'r>(resp: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn leads_of(app: &TestApp) -> u64 {
    ciq_entity::Lead::find().count(&app.db).await.unwrap()
}

async fn a_browser_key_serves_its_origins_and_refuses_others_readably(app: TestApp) {
    let (_, key) = browser_key(&app, "web@acme.test", &[SHOP, "http://127.0.0.1:8080"]).await;
    // Twice each: the second answer comes from the verifier's cache.
    for _ in 0..2 {
        let resp = post_from(&app, &key, Some(SHOP), CREATE).await;
        assert_eq!(resp.status(), 201);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(SHOP));
        assert_eq!(header(&resp, "vary"), Some("Origin"));
        let exposed = header(&resp, "access-control-expose-headers").unwrap();
        assert!(exposed.contains("x-ratelimit-remaining") && exposed.contains("retry-after"));
        // The origin is compared in its normal form: a browser sends no default port.
        let resp = post_from(&app, &key, Some("http://127.0.0.1:8080"), CREATE).await;
        assert_eq!(resp.status(), 201);
    }
    assert_eq!(leads_of(&app).await, 4);
    for origin in [
        "https://evil.example",
        "http://shop.example",
        "https://shop.example:8443",
        "null",
    ] {
        let resp = post_from(&app, &key, Some(origin), CREATE).await;
        assert_eq!(resp.status(), 403, "{origin}");
        // The page can read the refusal: the CORS headers are on it too.
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin));
        // A refused origin spends nothing of the key's budget: 4 of 100 were used.
        assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("96"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(origin) && message.contains("Settings → API Key"),
            "{message}"
        );
        assert!(!message.contains(&key));
    }
    assert_eq!(
        leads_of(&app).await,
        4,
        "nothing written for a refused origin"
    );
    // A mistyped key on the page: the page reads the JSON refusal too.
    let resp = post_from(&app, "ciq_not_a_key", Some(SHOP), CREATE).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(SHOP));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    // Servers and scripts send no Origin: a browser key works for them as for any key.
    assert_eq!(post_from(&app, &key, None, CREATE).await.status(), 201);
}

async fn a_preflight_is_answered_for_any_origin_and_never_counted(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "web@acme.test",
            NewKey {
                allowed_origins: vec![SHOP.into()],
                rate_limit_per_minute: Some(3),
                ..NewKey::default()
            },
        )
        .await;
    for origin in [SHOP, "https://anyone.example"] {
        for _ in 0..5 {
            let resp = app
                .client
                .request(
                    reqwest::Method::OPTIONS,
                    format!("{}{CREATE}", app.base_url),
                )
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type,x-api-key")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
            assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin));
            assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST"));
            assert_eq!(
                header(&resp, "access-control-allow-headers"),
                Some("content-type, x-api-key, idempotency-key, x-challenge-token, prefer")
            );
            assert_eq!(header(&resp, "access-control-max-age"), Some("7200"));
            assert_eq!(header(&resp, "vary"), Some("Origin"));
            assert!(header(&resp, "x-ratelimit-remaining").is_none());
        }
    }
    // Ten preflights later the key still has its whole allowance of 3, and the
    // address its allowance of keyless requests.
    let resp = post_from(&app, &key, Some(SHOP), CREATE).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("2"));
    // Paths browser keys do not use answer no preflight.
    let resp = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/external/leads", app.base_url),
        )
        .header("Origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(header(&resp, "access-control-allow-origin").is_none());
}

async fn keys_without_origins_refuse_foreign_pages_but_not_servers_or_our_own(app: TestApp) {
    let (_, server_key) = app
        .user_with_key_like(
            "crm@acme.test",
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    let resp = post_from(&app, &server_key, Some(SHOP), CREATE).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not be used from a web page")
    );
    // Reads too: a page elsewhere never gets a full key's leads.
    let resp = app
        .client
        .get(format!("{}/api/external/leads", app.base_url))
        .header("X-API-Key", &server_key)
        .header("Origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(header(&resp, "access-control-allow-origin").is_none());
    // Swagger UI's Try it out runs on the gateway's own origin.
    let own = app.base_url.clone();
    assert_eq!(
        post_from(&app, &server_key, Some(&own), CREATE)
            .await
            .status(),
        201
    );
    assert_eq!(
        post_from(&app, &server_key, None, CREATE).await.status(),
        201
    );
    // The scope is checked before the origin: a read-only key on a foreign page is
    // told what it lacks.
    let user = app.create_user("reader@acme.test").await;
    let reader = app.read_only_key(user).await;
    let resp = post_from(&app, &reader, Some(SHOP), CREATE).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_scope");
}

async fn origins_are_only_for_create_only_keys_and_must_be_origins(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let attempt = |scopes: Scopes, origins: &[&str]| {
        let new = NewKey {
            scopes,
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..NewKey::default()
        };
        let db = app.db.clone();
        async move {
            keys::create_key(
                &db,
                &SecretHasher::default(),
                user,
                new,
                &keys::Actor::cli(),
            )
            .await
        }
    };
    let invalid = |result: Result<_, AdminError>| match result {
        Err(AdminError::Invalid { field, rule }) => {
            assert_eq!(field, "allowed_origins");
            rule
        }
        other => panic!("not refused: {other:?}"),
    };
    let rule = invalid(attempt(Scopes::of(&[Scope::LeadsCreate, Scope::LeadsRead]), &[SHOP]).await);
    assert!(rule.contains("only scope is leads:create"), "{rule}");
    for (bad, why) in [
        ("https://shop.example/contact", "no path"),
        ("https://*.shop.example", "wildcards"),
        ("ftp://shop.example", "only http:// and https://"),
    ] {
        let rule = invalid(attempt(Scopes::default(), &[bad]).await);
        assert!(rule.contains(why) && rule.contains(bad), "{rule}");
    }
    let keys_made = ciq_entity::ApiKey::find().count(&app.db).await.unwrap();
    assert_eq!(keys_made, 0, "no refused key was stored");
    // Stored in normal form, and what a listing shows.
    let (row, _) = attempt(Scopes::default(), &["https://Shop.Example:443/", SHOP])
        .await
        .unwrap();
    assert_eq!(row.allowed_origins, SHOP);
    let listed = keys::list_keys(&app.db, user).await.unwrap();
    assert_eq!(
        serde_json::to_value(&listed[0]).unwrap()["allowed_origins"],
        json!([SHOP])
    );
    // A rolled key keeps its origins.
    let (rolled, _) = keys::roll_key(
        &app.db,
        &SecretHasher::default(),
        None,
        row.id,
        Duration::ZERO,
        &keys::Actor::cli(),
    )
    .await
    .unwrap();
    assert_eq!(rolled.allowed_origins, SHOP);
}
