//! The second security review's findings, each as the request that found it: out-of-range
//! owner input answered with the page's error (never a dropped connection), control
//! characters in filters refused naming the parameter, one `Idempotency-Key` never shared
//! between operations, the webhook endpoint cap, the own origin taken from configuration.

use ciq_admin::{NewKey, Scope, Scopes};
use ciq_e2e::console::{Session, expect_status, get_html, post_form, signed_in};
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

on_every_backend!(
    a_key_expiry_outside_the_offered_periods_is_refused_and_no_key_is_made,
    a_date_filter_out_of_range_is_named_on_the_leads_page_and_the_export,
    control_characters_in_a_filter_are_refused_naming_the_parameter,
    an_idempotency_key_used_on_create_is_refused_on_upsert_and_back,
    an_account_holds_fifty_webhook_endpoints_and_no_more,
);

async fn a_key_expiry_outside_the_offered_periods_is_refused_and_no_key_is_made(app: TestApp) {
    let Session { user, client, csrf } =
        signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    // 100 000 000 days overflowed the expiry's date and dropped the connection.
    for days in ["100000000", "7"] {
        let (status, html) = post_form(
            &client,
            &app,
            "/settings/api-keys",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Website form"),
                ("expires_in_days", days),
                ("scope_create", "on"),
            ],
        )
        .await;
        assert_eq!(status, 422, "{days}: {html}");
        assert!(html.contains("Expires: choose one of the periods offered."));
    }
    assert!(
        ciq_admin::keys::list_keys(&app.db, user)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_date_filter_out_of_range_is_named_on_the_leads_page_and_the_export(app: TestApp) {
    let Session { client, .. } = signed_in(&app, "owner@acme.test", "/settings/leads").await;
    // The day after +262142-12-31 does not exist: the handler panicked.
    for query in [
        "to=%2B262142-12-31",
        "from=%2B262142-12-31",
        "to=10000-01-01",
    ] {
        let (status, html) = get_html(&client, &app, &format!("/settings/leads?{query}")).await;
        assert_eq!(status, 422, "{query}: {html}");
        assert!(html.contains("years 1 to 9999"), "{query}: {html}");
        let (status, html) = get_html(
            &client,
            &app,
            &format!("/settings/leads/export.csv?{query}"),
        )
        .await;
        assert_eq!(status, 422, "{query}: {html}");
        assert!(html.contains("Export refused"), "{html}");
    }
    let (status, _) = get_html(&client, &app, "/settings/leads?to=9999-12-31").await;
    assert_eq!(status, 200, "the last day of year 9999 is a day");
}

async fn control_characters_in_a_filter_are_refused_naming_the_parameter(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            NewKey {
                scopes: Scopes::of(&[Scope::LeadsRead]),
                ..NewKey::default()
            },
        )
        .await;
    // PostgreSQL refuses a NUL outright: the client was told to retry (503).
    for (query, field) in [
        ("email=%00", "email"),
        ("source=a%01b", "source"),
        ("external_id=crm%00", "external_id"),
    ] {
        let resp = app
            .client
            .get(format!("{}/api/external/leads?{query}", app.base_url))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&expect_status(resp, 422).await).unwrap();
        assert_eq!(body["error"]["code"], "validation_failed", "{query}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
        assert_eq!(
            body["error"]["details"][0]["message"],
            "must not contain control characters"
        );
    }
    let Session { client, .. } = signed_in(&app, "other@acme.test", "/settings/leads").await;
    let (status, html) = get_html(&client, &app, "/settings/leads?source=%00").await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("must not contain control characters"),
        "{html}"
    );
}

async fn send(app: &TestApp, key: &str, path: &str, idem: &str, body: &Value) -> (u16, Value) {
    app.post_json(path, key, &[("Idempotency-Key", idem)], body)
        .await
}

async fn an_idempotency_key_used_on_create_is_refused_on_upsert_and_back(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    const CREATE: &str = "/api/external/leads/create";
    const UPSERT: &str = "/api/external/leads/upsert";
    let mut body = reference_curl_body();
    body["lead"]["external_id"] = json!("crm-1");
    assert_eq!(send(&app, &key, CREATE, "k-1", &body).await.0, 201);
    // The same key and body on upsert was a 500.
    let (status, answer) = send(&app, &key, UPSERT, "k-1", &body).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "idempotency_key_reused");
    // Upsert first, then create with its key: a replay of the upsert's lead before.
    body["lead"]["external_id"] = json!("crm-2");
    assert_eq!(send(&app, &key, UPSERT, "k-2", &body).await.0, 201);
    let (status, answer) = send(&app, &key, CREATE, "k-2", &body).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "idempotency_key_reused");
    // Each operation still replays its own.
    let (status, replay) = send(&app, &key, UPSERT, "k-2", &body).await;
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay["lead"]["external_id"], "crm-2");
    let leads = ciq_entity::Lead::find().all(&app.db).await.unwrap();
    assert_eq!(leads.len(), 2, "nothing was written twice");
}

async fn an_account_holds_fifty_webhook_endpoints_and_no_more(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    // The sealing key (a PostgreSQL test app has none of its own).
    let secrets = ciq_store::secret::SecretBox::from_base64(&ciq_store::secret::new_key()).unwrap();
    let add = |n: usize| {
        let (app, secrets) = (&app, &secrets);
        async move {
            ciq_webhooks::endpoints::create(
                &app.db,
                Some(secrets),
                user,
                &format!("https://hooks.example.com/{n}"),
                &["lead.created"],
                false,
            )
            .await
        }
    };
    for n in 0..50 {
        add(n).await.expect("fifty endpoints are allowed");
    }
    let refused = add(50).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "an account has at most 50 webhook endpoints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_is_sent_ten_test_events_and_replays_a_minute() {
    use ciq_entity::webhook_delivery;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let app = TestApp::spawn(ciq_e2e::Backend::Sqlite).await.unwrap();
    let Session { user, client, csrf } =
        signed_in(&app, "owner@acme.test", "/settings/webhooks").await;
    let (hook, _) = ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        user,
        "https://hooks.example.com/in",
        &["lead.created"],
        false,
    )
    .await
    .unwrap();
    let sent = || async {
        webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
            .count(&app.db)
            .await
            .unwrap()
    };
    let test = format!("/settings/webhooks/{}/test", hook.id);
    for _ in 0..ciq_console::webhooks::SENDS_PER_MINUTE {
        let (status, _) = post_form(&client, &app, &test, &[("csrf", csrf.as_str())]).await;
        assert_eq!(status, 303);
    }
    assert_eq!(sent().await, 10);
    // Thirty clicks sent thirty requests in three seconds.
    let resp = client
        .post(format!("{}{test}", app.base_url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let html = expect_status(resp, 429).await;
    assert!(
        html.contains("at most 10 test events and replays a minute"),
        "{html}"
    );
    // A replay counts the same.
    let delivery = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let (status, _) = post_form(
        &client,
        &app,
        &format!(
            "/settings/webhooks/{}/deliveries/{}/replay",
            hook.id, delivery.id
        ),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(sent().await, 10, "nothing more was queued");
}

/// The own-origin exemption (any key may be used from the gateway's own pages) follows
/// `CIQ_PUBLIC_URL`, never the `Host` or `X-Forwarded-Host` a DNS-rebinding page
/// controls: before, `Host: evil.example` with `Origin: http://evil.example` was served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_origin_is_the_configured_public_url_not_the_host_header() {
    const PUBLIC: &str = "https://api.acme.test";
    let app = TestApp::spawn_with(ciq_e2e::Backend::Sqlite, |s| {
        s.trust_forwarded_for = true;
        s.public_url = Some(format!("{PUBLIC}/"));
    })
    .await
    .unwrap();
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let create = |origin: &str, headers: &[(&str, &str)]| {
        let mut req = app
            .client
            .post(format!("{}/api/external/leads/create", app.base_url))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .header("Origin", origin)
            .body(reference_curl_body().to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = create(PUBLIC, &[]).await;
    assert_eq!(status, 201, "Swagger UI at the public URL: {body}");
    for (origin, headers) in [
        ("http://evil.example", vec![("Host", "evil.example")]),
        (
            "https://evil.example",
            vec![
                ("X-Forwarded-Host", "evil.example"),
                ("X-Forwarded-Proto", "https"),
            ],
        ),
        (
            "https://evil.example",
            vec![("Forwarded", "host=evil.example;proto=https")],
        ),
        // The bound address is not the public origin once one is configured.
        (app.base_url.as_str(), vec![]),
    ] {
        let (status, body) = create(origin, &headers).await;
        assert_eq!(status, 403, "{origin} with {headers:?}: {body}");
        assert_eq!(body["error"]["code"], "origin_not_allowed");
    }
    assert_eq!(
        ciq_entity::Lead::find().all(&app.db).await.unwrap().len(),
        1
    );
    assert_eq!(app.states.api.public_origin, PUBLIC);
}

#[tokio::test]
async fn a_public_url_that_is_not_an_origin_is_refused_at_start() {
    let db = ciq_e2e::TestDatabase::create(ciq_e2e::Backend::Sqlite)
        .await
        .unwrap();
    for (url, why) in [
        ("https://api.acme.test/ciq", "no path"),
        ("api.acme.test", "scheme://host"),
        ("ftp://api.acme.test", "only http:// and https://"),
    ] {
        let settings = ciq_gateway::Settings {
            listen: "127.0.0.1:0".into(),
            database_url: db.url.clone().into(),
            public_url: Some(url.into()),
            ..ciq_gateway::Settings::default()
        };
        let err = ciq_gateway::Application::build(settings)
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} was taken"));
        let text = err.to_string();
        assert!(text.starts_with("CIQ_PUBLIC_URL: "), "{text}");
        assert!(text.contains(why), "{url}: {text}");
    }
}
