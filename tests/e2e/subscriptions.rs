//! Webhook subscriptions through the API (what Zapier's REST hooks and n8n's trigger
//! nodes call): scopes, subscribe and re-subscribe without duplicates, lookup by URL,
//! changes, deletion, tenancy, the cap of 50, filters deciding which events make a
//! delivery, and deliveries signed with the secret the subscription returned.

use std::time::Duration;

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::receiver::{Receiver, Reply};
use ciq_e2e::{Backend, TestApp, reference_curl_body};
use ciq_leads::events::EventType;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::webhooks::{deliveries_of, owner_with_key, quick, send, verify};

ciq_e2e::with_each_backend!(
    subscribing_needs_webhooks_manage_and_leads_read,
    a_subscription_is_made_once_found_by_url_changed_and_deleted,
    filters_decide_which_events_make_a_delivery,
    another_accounts_endpoint_is_not_found_and_fifty_is_the_cap,
    a_roll_passes_endpoints_on_and_a_revocation_disables_them,
    an_expired_keys_endpoints_are_disabled_by_the_purge,
);

const HOOKS: &str = "/api/external/webhooks";

async fn no_delivery_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        quick(s);
        s.webhooks.deliver = false;
    })
    .await
}

async fn subscribe(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    send(app, key, Method::POST, HOOKS, Some(body)).await
}

async fn subscribing_needs_webhooks_manage_and_leads_read(backend: Backend) {
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let owner = app.create_user("zap@acme.test").await;
    let key_with = |scopes: &'static [Scope]| NewKey {
        scopes: Scopes::of(scopes),
        ..NewKey::default()
    };
    let (_, reader) = app
        .create_key_with(owner, key_with(&[Scope::LeadsRead]))
        .await;
    let (_, manager) = app
        .create_key_with(owner, key_with(&[Scope::WebhooksManage]))
        .await;
    let body = json!({"url": "https://hooks.example.com/in"});
    let (status, refused) = subscribe(&app, &reader, body.clone()).await;
    assert_eq!(status, 403);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhooks:manage")
    );
    let (status, refused) = subscribe(&app, &manager, body).await;
    assert_eq!(status, 403, "an endpoint receives leads: leads:read too");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leads:read")
    );
    let (status, listed) = send(&app, &manager, Method::GET, HOOKS, None).await;
    assert_eq!(status, 200, "listing needs webhooks:manage only");
    assert_eq!(listed["webhooks"], json!([]));
    let (status, _) = send(&app, &reader, Method::GET, HOOKS, None).await;
    assert_eq!(status, 403);
    app.stop().await;
}

async fn a_subscription_is_made_once_found_by_url_changed_and_deleted(backend: Backend) {
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let (_, key) = owner_with_key(&app, "zap@acme.test").await;
    let body = json!({"url": "https://Hooks.Example.com/zap#frag", "events": ["lead.created"],
        "filter": {"status": {"in": ["new", "Qualified"]}, "score": {"gte": 5}},
        "description": "Zapier: good leads"});
    let (status, created) = subscribe(&app, &key, body).await;
    assert_eq!(status, 201, "{created}");
    let hook = created["webhook"].clone();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(hook["url"], "https://hooks.example.com/zap");
    assert_eq!(hook["events"], json!(["lead.created"]));
    assert_eq!(
        hook["filter"],
        json!({"score": {"gte": 5}, "status": {"in": ["new", "qualified"]}})
    );
    assert_eq!(hook["enabled"], true);
    assert_eq!(hook["description"], "Zapier: good leads");
    // The same URL, events and filter (written otherwise): the same endpoint, no secret.
    let again = json!({"url": "https://hooks.example.com/zap", "events": ["lead.created"],
        "filter": {"score": {"gte": 5.0}, "status": {"in": ["qualified", "new", "new"]}},
        "description": "another description"});
    let (status, existing) = subscribe(&app, &key, again.clone()).await;
    assert_eq!(status, 200, "{existing}");
    assert_eq!(existing["webhook"]["id"], hook["id"]);
    assert!(existing.get("secret").is_none());
    // Another filter or other events: another endpoint.
    let (status, other) = subscribe(
        &app,
        &key,
        json!({"url": "https://hooks.example.com/zap", "events": ["lead.created"]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_ne!(other["webhook"]["id"], hook["id"]);
    // Concurrent identical subscriptions make one endpoint.
    let racing = json!({"url": "https://hooks.example.com/race"});
    let answers =
        futures_util::future::join_all((0..8).map(|_| subscribe(&app, &key, racing.clone()))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201]);
    let (_, found) = send(
        &app,
        &key,
        Method::GET,
        &format!("{HOOKS}?url=https://hooks.example.com/race"),
        None,
    )
    .await;
    assert_eq!(found["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(found["webhooks"][0]["events"].as_array().unwrap().len(), 3);
    // Listing: oldest first, no secrets; by URL.
    let (_, all) = send(&app, &key, Method::GET, HOOKS, None).await;
    assert_eq!(all["webhooks"].as_array().unwrap().len(), 3);
    assert_eq!(all["webhooks"][0]["id"], hook["id"]);
    assert!(!all.to_string().contains("whsec_"));
    let (_, by_url) = send(
        &app,
        &key,
        Method::GET,
        &format!("{HOOKS}?url=https%3A%2F%2Fhooks.example.com%2Fzap"),
        None,
    )
    .await;
    assert_eq!(by_url["webhooks"].as_array().unwrap().len(), 2);
    // Changes: disabling, and a subscription of the same enables it again.
    let path = format!("{HOOKS}/{}", hook["id"].as_str().unwrap());
    let (status, changed) = send(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"enabled": false, "description": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["webhook"]["enabled"], false);
    assert_eq!(
        changed["webhook"]["disabled_reason"],
        "disabled through the API"
    );
    assert_eq!(changed["webhook"]["description"], Value::Null);
    let (status, revived) = subscribe(&app, &key, again).await;
    assert_eq!(status, 200);
    assert_eq!(revived["webhook"]["enabled"], true);
    let (status, changed) = send(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"filter": null, "events": ["lead.created", "lead.deleted"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(changed["webhook"]["filter"], Value::Null);
    assert_eq!(
        changed["webhook"]["events"],
        json!(["lead.created", "lead.deleted"])
    );
    let (status, refused) = send(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"url": "https://elsewhere.example.com", "filter": {"score": {"gte": "high"}}})),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = refused["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "filter.score.gte"]);
    // Deleted: gone.
    let (status, _) = send(&app, &key, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, gone) = send(&app, &key, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    assert_eq!(gone["error"]["code"], "webhook_not_found");
    app.stop().await;
}

/// Five endpoints, four with a filter: each event makes a delivery only where it
/// matches; a deletion (no attributes) reaches only the endpoint without a filter.
async fn filters_decide_which_events_make_a_delivery(backend: Backend) {
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let (_, key) = owner_with_key(&app, "zap@acme.test").await;
    let mut ids = Vec::new();
    for filter in [
        json!({"score": {"gte": 5}}),
        json!({"source": {"eq": "website form"}}),
        json!({"attribution.utm_source": {"in": ["google", "bing"]}}),
        json!({"external_id": {"exists": true}, "email_domain": {"eq": "acme.example"}}),
        Value::Null,
    ] {
        let (status, made) = subscribe(
            &app,
            &key,
            json!({"url": format!("https://hooks.example.com/{}", ids.len()), "filter": filter}),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        ids.push(
            made["webhook"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let mut first = reference_curl_body();
    first["lead"]["score"] = json!(7);
    first["lead"]["source"] = json!("Website Form");
    first["lead"]["attribution"] = json!({"utm_source": "Google"});
    let (_, one) = send(
        &app,
        &key,
        Method::POST,
        "/api/external/leads/create",
        Some(first),
    )
    .await;
    let mut second = reference_curl_body();
    second["lead"]["source"] = json!("API");
    second["lead"]["score"] = json!(2);
    second["lead"]["email"] = json!("ops@acme.example");
    second["lead"]["external_id"] = json!("crm-1");
    let (_, two) = send(
        &app,
        &key,
        Method::POST,
        "/api/external/leads/create",
        Some(second),
    )
    .await;
    let two_path = format!(
        "/api/external/leads/{}",
        two["lead"]["id"].as_str().unwrap()
    );
    let (status, _) = send(
        &app,
        &key,
        Method::PATCH,
        &two_path,
        Some(json!({"lead": {"score": 9}})),
    )
    .await;
    assert_eq!(status, 200);
    let one_path = format!(
        "/api/external/leads/{}",
        one["lead"]["id"].as_str().unwrap()
    );
    let (status, _) = send(&app, &key, Method::DELETE, &one_path, None).await;
    assert_eq!(status, 204);
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let (one_id, two_id) = (
        one["lead"]["id"].as_str().unwrap(),
        two["lead"]["id"].as_str().unwrap(),
    );
    let mut seen = Vec::new();
    for id in &ids {
        let mut got: Vec<String> = deliveries_of(&app, *id)
            .await
            .into_iter()
            .map(|d| {
                let which = if d.lead_id.to_string() == one_id {
                    "one"
                } else if d.lead_id.to_string() == two_id {
                    "two"
                } else {
                    "?"
                };
                format!("{} {which}", d.event_type)
            })
            .collect();
        got.sort();
        seen.push(got);
    }
    assert_eq!(
        seen,
        [
            // score ≥ 5: the first lead, and the second once it was updated to 9.
            vec!["lead.created one", "lead.updated two"],
            // source is website form (any case): the first lead only.
            vec!["lead.created one"],
            // utm_source in google, bing (any case).
            vec!["lead.created one"],
            // an external id, at acme.example.
            vec!["lead.created two", "lead.updated two"],
            // no filter: everything, the deletion included.
            vec![
                "lead.created one",
                "lead.created two",
                "lead.deleted one",
                "lead.updated two"
            ],
        ]
    );
    app.stop().await;
}

async fn another_accounts_endpoint_is_not_found_and_fifty_is_the_cap(backend: Backend) {
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let (alice, alice_key) = owner_with_key(&app, "alice@acme.test").await;
    let (_, bob_key) = owner_with_key(&app, "bob@acme.test").await;
    let (_, made) = subscribe(
        &app,
        &alice_key,
        json!({"url": "https://hooks.example.com/a"}),
    )
    .await;
    let path = format!("{HOOKS}/{}", made["webhook"]["id"].as_str().unwrap());
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let (status, refused) = send(&app, &bob_key, method.clone(), &path, body).await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (404, Some("webhook_not_found")),
            "{method}"
        );
    }
    let (_, bobs) = send(&app, &bob_key, Method::GET, HOOKS, None).await;
    assert_eq!(bobs["webhooks"], json!([]));
    let (_, still) = send(&app, &alice_key, Method::GET, &path, None).await;
    assert_eq!(still["webhook"]["enabled"], true);
    let (status, _) = send(
        &app,
        &alice_key,
        Method::GET,
        &format!("{HOOKS}/not-an-id"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // 50 however made: 49 more from Settings' store function, then the API is refused.
    for i in 0..49 {
        ciq_webhooks::endpoints::create(
            &app.db,
            app.states.webhook_key.as_ref(),
            alice,
            &format!("https://hooks.example.com/s{i}"),
            &EventType::ALL,
            true,
        )
        .await
        .unwrap();
    }
    let (status, refused) = subscribe(
        &app,
        &alice_key,
        json!({"url": "https://hooks.example.com/51"}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "too_many_webhooks");
    // Re-subscribing an existing one is still answered.
    let (status, _) = subscribe(
        &app,
        &alice_key,
        json!({"url": "https://hooks.example.com/a"}),
    )
    .await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// A subscription's deliveries are signed with the secret it returned (verified with
/// the Standard Webhooks library) and carry only the events its filter lets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_with_the_returned_secret() {
    let app = TestApp::spawn_with(Backend::Sqlite, quick)
        .await
        .expect("sqlite");
    let receiver = Receiver::start().await;
    receiver.always("/zap", Reply::status(200));
    let (_, key) = owner_with_key(&app, "zap@acme.test").await;
    let (status, made) = subscribe(
        &app,
        &key,
        json!({"url": receiver.url("/zap"), "events": ["lead.created"],
            "filter": {"score": {"gte": 5}}}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let secret = SecretString::from(made["secret"].as_str().unwrap().to_owned());
    for score in [2, 8] {
        let mut body = reference_curl_body();
        body["lead"]["score"] = json!(score);
        let (status, _) = send(
            &app,
            &key,
            Method::POST,
            "/api/external/leads/create",
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
    }
    let got = receiver.wait_for("/zap", 1, Duration::from_secs(10)).await;
    verify(&secret, &got[0]);
    assert_eq!(got[0].json()["data"]["lead"]["score"], 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received("/zap").len(),
        1,
        "the score-2 lead was filtered out"
    );
    app.stop().await;
}

/// The endpoints a key subscribed pass to its successor on a roll, and are disabled
/// (`key_revoked`, pending deliveries failed) when the key holding them is revoked; an
/// endpoint made in Settings is untouched.
async fn a_roll_passes_endpoints_on_and_a_revocation_disables_them(backend: Backend) {
    use ciq_entity::webhook_endpoint;
    use sea_orm::EntityTrait;
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let (owner, key) = owner_with_key(&app, "zap@acme.test").await;
    let (_, made) = subscribe(&app, &key, json!({"url": "https://hooks.example.com/zap"})).await;
    let hook: Uuid = made["webhook"]["id"].as_str().unwrap().parse().unwrap();
    let (settings_hook, _) = ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        owner,
        "https://hooks.example.com/settings",
        &EventType::ALL,
        true,
    )
    .await
    .unwrap();
    let row = |id: Uuid| {
        let db = app.db.clone();
        async move {
            webhook_endpoint::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let key_id = row(hook).await.api_key_id.expect("made by the key");
    let (successor, _) = ciq_admin::keys::roll_key(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        app.states.webhook_key.as_ref(),
        key_id,
        Duration::ZERO,
        &ciq_admin::keys::Actor::cli(),
    )
    .await
    .unwrap();
    assert_eq!(row(hook).await.api_key_id, Some(successor.id));
    // A lead event waits for delivery; the revocation fails it.
    let (status, _) = send(
        &app,
        &key,
        Method::POST,
        "/api/external/leads/create",
        Some(reference_curl_body()),
    )
    .await;
    assert!(
        status == 201 || status == 401,
        "the old key may still be cached"
    );
    ciq_admin::keys::revoke_key(&app.db, successor.id, &ciq_admin::keys::Actor::cli())
        .await
        .unwrap();
    let revoked = row(hook).await;
    assert!(!revoked.enabled);
    assert_eq!(revoked.disabled_reason.as_deref(), Some("key_revoked"));
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    assert!(
        deliveries_of(&app, hook)
            .await
            .iter()
            .all(|d| d.status != ciq_entity::webhook_delivery::DeliveryStatus::Pending),
        "nothing waits to be sent to a revoked key's endpoint"
    );
    let untouched = row(settings_hook.id).await;
    assert!(
        untouched.enabled,
        "an endpoint made in Settings is not the key's"
    );
    app.stop().await;
}

/// A key that expires is treated like a revoked one: the retention purge disables the
/// endpoints it subscribed (once; a second purge finds nothing), and leaves the rest.
async fn an_expired_keys_endpoints_are_disabled_by_the_purge(backend: Backend) {
    use ciq_entity::{api_key, webhook_endpoint};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let Some(app) = no_delivery_app(backend).await else {
        return;
    };
    let (owner, key) = owner_with_key(&app, "zap@acme.test").await;
    let (_, made) = subscribe(&app, &key, json!({"url": "https://hooks.example.com/zap"})).await;
    let hook: Uuid = made["webhook"]["id"].as_str().unwrap().parse().unwrap();
    let (_, other_key) = owner_with_key(&app, "other@acme.test").await;
    let (_, other) = subscribe(
        &app,
        &other_key,
        json!({"url": "https://hooks.example.com/o"}),
    )
    .await;
    let other: Uuid = other["webhook"]["id"].as_str().unwrap().parse().unwrap();
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.expired_keys_endpoints, 0, "no key has expired yet");
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        )
        .filter(api_key::Column::UserId.eq(owner))
        .exec(&app.db)
        .await
        .unwrap();
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.expired_keys_endpoints, 1);
    let row = |id: Uuid| {
        let db = app.db.clone();
        async move {
            webhook_endpoint::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let expired = row(hook).await;
    assert!(!expired.enabled);
    assert_eq!(expired.disabled_reason.as_deref(), Some("key_revoked"));
    assert!(
        row(other).await.enabled,
        "another key's endpoint is untouched"
    );
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.expired_keys_endpoints, 0);
    app.stop().await;
}
