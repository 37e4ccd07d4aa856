//! The operator API: token handling, every route, and its effects on every instance.

use std::time::{Duration, Instant};

use ciq_e2e::{Backend, TestApp, on_every_backend};
use serde_json::{Value, json};

const TOKEN: &str = "operator-token-0123456789";

async fn spawn_admin(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| s.admin_token = Some(TOKEN.into())).await
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_with_token(app, method, path, body, Some(TOKEN)).await
}

async fn admin_with_token(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let url = format!("{}/admin/v1{path}", app.base_url);
    let mut req = match method {
        "GET" => app.client.get(url),
        _ => app.client.post(url),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits up to `within` for `key` to get `status` on `app`; returns how long it took.
async fn until_status(app: &TestApp, key: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = app.create_status(Some(key)).await;
        if got == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "still {got} after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_is_off_without_a_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (status, body) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "a@acme.test"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_document_is_served_with_the_token_only() {
    let app = spawn_admin(Backend::Sqlite).await.unwrap();
    let (status, body) = admin_with_token(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_admin_token"))
    );
    let resp = app
        .client
        .get(format!("{}/admin/v1/openapi.json", app.base_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.text().await.unwrap(),
        ciq_admin::operator::document::document()
    );
    // The public document stays the integrators' alone.
    let public: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(public["paths"].get("/admin/v1/users").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_operator_body_is_413() {
    let app = spawn_admin(Backend::Sqlite).await.unwrap();
    let big = json!({"email": "a@acme.test", "name": "n".repeat(64 * 1024)});
    let (status, body) = admin(&app, "POST", "/users", Some(big)).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Without the token, no body is read at all: 401 first.
    let (status, _) =
        admin_with_token(&app, "POST", "/users", Some(json!({"email": "x"})), None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_401() {
    let app = spawn_admin(Backend::Sqlite).await.unwrap();
    let body = Some(json!({"email": "a@acme.test"}));
    let (status, resp) = admin_with_token(&app, "POST", "/users", body.clone(), None).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (401, Some("missing_admin_token"))
    );
    for wrong in ["operator-token-0123456788", "x", ""] {
        let (status, resp) =
            admin_with_token(&app, "POST", "/users", body.clone(), Some(wrong)).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(
            resp["error"]["code"]
                .as_str()
                .unwrap()
                .ends_with("_admin_token")
        );
        assert!(!resp.to_string().contains(TOKEN));
    }
    assert!(
        ciq_admin::users::find_user(&app.db, "a@acme.test")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_short_operator_token_is_refused_at_start() {
    let db = ciq_e2e::TestDatabase::create(Backend::Sqlite)
        .await
        .unwrap();
    let settings = ciq_gateway::Settings {
        listen: "127.0.0.1:0".into(),
        database_url: db.url.clone().into(),
        admin_token: Some("short".into()),
        ..ciq_gateway::Settings::default()
    };
    let err = ciq_gateway::Application::build(settings)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("at least 16"), "{err}");
}

on_every_backend!(
    users_and_keys_are_managed_end_to_end,
    rolling_keeps_the_old_key_for_the_overlap_only,
    mistakes_are_named_errors,
);

async fn users_and_keys_are_managed_end_to_end(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s| s.admin_token = Some(TOKEN.into()))
        .await
        .unwrap();
    let (status, user) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "Owner@Acme.test", "name": "Owner", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email"], "owner@acme.test");
    assert_eq!(user["has_password"], true);
    let user_id = user["id"].as_str().unwrap().to_owned();

    let (status, created) = admin(
        &app,
        "POST",
        &format!("/users/{user_id}/keys"),
        Some(json!({"name": "CRM", "rate_limit_per_minute": 50})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(ciq_admin::key::parse(&key).is_ok());
    assert_eq!(created["rate_limit_per_minute"], 50);
    let resp = app
        .post_lead(Some(&key), &ciq_e2e::reference_curl_body())
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-ratelimit-limit"], "50");

    let (status, listed) = admin(&app, "GET", &format!("/users/{user_id}/keys"), None).await;
    assert_eq!(status, 200);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["status"], "active");
    assert!(keys[0].get("key").is_none());
    let text = listed.to_string();
    assert!(
        !text.contains(&key[16..]) && !text.contains("argon2"),
        "{text}"
    );

    // last_used_at is written in batches, not per request: after a flush it is set.
    app.states.api.verifier.flush_last_used().await.unwrap();
    let (_, listed) = admin(&app, "GET", &format!("/users/{user_id}/keys"), None).await;
    assert!(listed["keys"][0]["last_used_at"].is_string(), "{listed}");

    let key_id = created["id"].as_str().unwrap();
    let (status, revoked) = admin(&app, "POST", &format!("/keys/{key_id}/revoke"), None).await;
    assert_eq!(status, 200);
    assert_eq!(revoked["status"], "revoked");
    until_status(&app, &key, 401, Duration::from_secs(1)).await;

    let history = ciq_admin::keys::key_history(&app.db, user_id.parse().unwrap(), 10)
        .await
        .unwrap();
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["revoked", "created"]);
    assert!(
        history
            .iter()
            .all(|e| e.source == ciq_entity::key_event::ActorSource::AdminApi)
    );
    assert_eq!(history[0].address.as_deref(), Some("127.0.0.1"));
}

async fn rolling_keeps_the_old_key_for_the_overlap_only(app: TestApp) {
    let a = TestApp::spawn_with(app.backend, |s| s.admin_token = Some(TOKEN.into()))
        .await
        .unwrap();
    let b = a.spawn_peer().await;
    let user = a.create_user("owner@acme.test").await;
    let (key_id, old) = a.create_key_with(user, Default::default()).await;
    assert_eq!(b.create_status(Some(&old)).await, 201, "cached on B");

    let (status, rolled) = admin(
        &a,
        "POST",
        &format!("/keys/{key_id}/roll"),
        Some(json!({"overlap_seconds": 2})),
    )
    .await;
    assert_eq!(status, 201, "{rolled}");
    let new = rolled["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // Both work during the overlap, on both instances.
    for instance in [&a, &b] {
        assert_eq!(instance.create_status(Some(&new)).await, 201);
        assert_eq!(instance.create_status(Some(&old)).await, 201);
    }
    // Then the old one stops everywhere, within a second of the overlap's end.
    let took = until_status(&b, &old, 401, Duration::from_secs(4)).await;
    assert!(took <= Duration::from_secs(3), "{took:?}");
    assert_eq!(b.create_status(Some(&new)).await, 201);

    // A roll with no overlap retires the key at once, on the other instance too.
    let new_id = rolled["id"].as_str().unwrap();
    let (status, again) = admin(
        &a,
        "POST",
        &format!("/keys/{new_id}/roll"),
        Some(json!({"overlap_seconds": 0})),
    )
    .await;
    assert_eq!(status, 201);
    until_status(&b, &new, 401, Duration::from_secs(1)).await;
    assert_eq!(
        b.create_status(Some(again["key"].as_str().unwrap())).await,
        201
    );
}

async fn mistakes_are_named_errors(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |s| s.admin_token = Some(TOKEN.into()))
        .await
        .unwrap();
    let (status, body) = admin(&app, "POST", "/users", Some(json!({"email": "nope"}))).await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("email"))
    );
    let (status, body) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "a@acme.test", "password": "short"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("password"))
    );
    // A string field takes a JSON string, nothing else: `"name": false` was stored as
    // the name "false" (the document says string); nothing is made.
    for body in [
        json!({"email": "a@acme.test", "name": false}),
        json!({"email": "a@acme.test", "name": 12}),
        json!({"email": true}),
    ] {
        let (status, answer) = admin(&app, "POST", "/users", Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{body}: {answer}"
        );
    }
    let (status, _) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "a@acme.test"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "A@acme.test"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("email_taken"))
    );

    let missing = uuid::Uuid::now_v7();
    let (status, body) = admin(&app, "GET", &format!("/users/{missing}/keys"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = admin(&app, "POST", &format!("/keys/{missing}/revoke"), None).await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &app,
        "POST",
        &format!("/keys/{missing}/roll"),
        Some(json!({"overlap_seconds": 0})),
    )
    .await;
    assert_eq!(status, 404);

    let user = ciq_admin::users::find_user(&app.db, "a@acme.test")
        .await
        .unwrap()
        .id;
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/users/{user}/keys"),
        Some(json!({"name": "k", "rate_limit_per_minute": 0})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("rate_limit_per_minute"))
    );
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/users/{user}/keys"),
        Some(json!({"name": "k", "expires_at": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("expires_at"))
    );
    for body in [
        json!({"name": "k", "scopes": ["leads:read"], "allowed_origins": ["https://shop.example"]}),
        json!({"name": "k", "allowed_origins": ["https://shop.example/form"]}),
    ] {
        let (status, body) = admin(&app, "POST", &format!("/users/{user}/keys"), Some(body)).await;
        assert_eq!(
            (status, body["error"]["details"][0]["field"].as_str()),
            (422, Some("allowed_origins"))
        );
    }
    let (status, web) = admin(
        &app,
        "POST",
        &format!("/users/{user}/keys"),
        Some(json!({"name": "web", "allowed_origins": ["https://Shop.example"]})),
    )
    .await;
    assert_eq!(
        (status, &web["allowed_origins"]),
        (201, &json!(["https://shop.example"]))
    );
    let (_, listed) = admin(&app, "GET", &format!("/users/{user}/keys"), None).await;
    assert_eq!(
        listed["keys"][0]["allowed_origins"],
        json!(["https://shop.example"])
    );
    admin(
        &app,
        "POST",
        &format!("/keys/{}/revoke", web["id"].as_str().unwrap()),
        None,
    )
    .await;

    let mut last = Value::Null;
    for _ in 0..ciq_admin::keys::MAX_ACTIVE_KEYS_PER_USER {
        let (status, body) = admin(
            &app,
            "POST",
            &format!("/users/{user}/keys"),
            Some(json!({"name": "k"})),
        )
        .await;
        assert_eq!(status, 201);
        last = body;
    }
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/users/{user}/keys"),
        Some(json!({"name": "k"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("too_many_keys"))
    );

    let last_id = last["id"].as_str().unwrap();
    admin(&app, "POST", &format!("/keys/{last_id}/revoke"), None).await;
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/keys/{last_id}/roll"),
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("key_id"))
    );
    let (status, body) = admin(
        &app,
        "POST",
        &format!("/keys/{}/roll", body_id(&app, user).await),
        Some(json!({"overlap_seconds": 700000})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (422, Some("overlap_seconds"))
    );
    // Not JSON at all: still our shape.
    let resp = app
        .client
        .post(format!("{}/admin/v1/users", app.base_url))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false);
}

async fn body_id(app: &TestApp, user: uuid::Uuid) -> String {
    ciq_admin::keys::list_keys(&app.db, user)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.status == ciq_admin::keys::KeyStatus::Active)
        .unwrap()
        .id
        .to_string()
}

/// A browser key made by the operator API with a visitor limit and a challenge: the
/// answer and the listing name the provider, never the secret; the rules are named
/// errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_keys_take_a_visitor_limit_and_a_challenge() {
    let Some(app) = spawn_admin(Backend::Sqlite).await else {
        return;
    };
    let (_, user) = admin(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "forms@acme.test"})),
    )
    .await;
    let keys = format!("/users/{}/keys", user["id"].as_str().unwrap());
    let (status, made) = admin(
        &app,
        "POST",
        &keys,
        Some(json!({
            "name": "Website form",
            "allowed_origins": ["https://shop.example"],
            "visitor_rate_limit_per_minute": 4,
            "challenge": {"provider": "hcaptcha", "secret": "0xhcaptcha-secret"},
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["visitor_rate_limit_per_minute"], 4);
    assert_eq!(made["challenge"], "hcaptcha");
    assert!(!made.to_string().contains("0xhcaptcha-secret"));
    let (_, listed) = admin(&app, "GET", &keys, None).await;
    assert_eq!(listed["keys"][0]["challenge"], "hcaptcha");
    assert!(!listed.to_string().contains("0xhcaptcha-secret"));
    for (body, field) in [
        (
            json!({"name": "srv", "visitor_rate_limit_per_minute": 4}),
            "visitor_rate_limit_per_minute",
        ),
        (
            json!({"name": "srv", "challenge": {"provider": "turnstile", "secret": "s"}}),
            "challenge",
        ),
        (
            json!({"name": "web", "allowed_origins": ["https://shop.example"],
                   "challenge": {"provider": "turnstile", "secret": "two words"}}),
            "challenge_secret",
        ),
    ] {
        let (status, refused) = admin(&app, "POST", &keys, Some(body)).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["details"][0]["field"], field, "{refused}");
        assert!(!refused.to_string().contains("two words"));
    }
    app.stop().await;
}
