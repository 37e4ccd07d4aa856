//! Webhooks end to end: a real receiver on 127.0.0.1, signatures verified by the
//! Standard Webhooks library (not ours), every kind of lead change, retries on the
//! (shortened) schedule, Retry-After, 410, redirects, slow receivers, rotation, two
//! instances, TLS, and the address check.

use std::time::{Duration, Instant};

use ciq_e2e::{Backend, Receiver, Reply, TestApp, reference_curl_body};
use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_leads::events::EventType;
use ciq_webhooks::endpoints;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

ciq_e2e::with_each_backend!(
    the_settings_pages_reach_only_the_owners_endpoints,
    an_owner_edits_an_endpoints_url_events_and_filter,
    the_guide_the_payloads_and_the_health_show_what_is_sent,
    outbox_rows_are_read_by_their_codec_and_an_unreadable_one_is_dropped,
    a_create_without_group_commit_is_delivered_too,
    a_created_lead_is_signed_and_its_payload_is_the_api_object,
    each_change_is_one_signed_request_with_its_own_webhook_id,
    an_endpoint_hears_only_the_types_it_chose_and_its_own_account,
    deliveries_are_logged_as_delivered_and_counted_in_the_metrics,
    failures_are_retried_on_the_schedule_with_the_same_webhook_id,
    two_instances_deliver_a_thousand_events_once_each,
    leases_left_by_a_store_failure_are_given_back_at_the_next_claim,
    an_attempt_whose_outcome_the_store_did_not_take_is_recorded_not_sent_again,
    a_backlog_follows_its_endpoints_new_url_and_stops_when_it_is_disabled,
    endpoints_on_one_host_share_kept_connections_and_each_hears_only_its_own,
    rounds_an_exchange_lost_go_out_again_and_later_ones_are_settled_without_it,
);

/// The schedule the tests run on: retries 1 s apart; the receiver on 127.0.0.1; a
/// webhook key (PostgreSQL has none of its own).
pub(crate) fn quick(s: &mut ciq_gateway::Settings) {
    s.webhook_key = Some(ciq_store::secret::new_key());
    s.webhooks.allow_private_networks = true;
    s.webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
}

/// A key that may create, read and write.
pub(crate) async fn owner_with_key(app: &TestApp, email: &str) -> (Uuid, String) {
    app.user_with_key_like(
        email,
        ciq_admin::keys::NewKey {
            scopes: ciq_admin::Scopes::of(&ciq_admin::Scope::ALL),
            rate_limit_per_minute: Some(100_000),
            ..Default::default()
        },
    )
    .await
}

/// An endpoint of `user` at `url`, for `events`; its secret.
pub(crate) async fn endpoint(
    app: &TestApp,
    user: Uuid,
    url: &str,
    events: &[EventType],
) -> (Uuid, SecretString) {
    let (row, secret) = endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        user,
        url,
        events,
        true,
    )
    .await
    .unwrap();
    (row.id, secret)
}

pub(crate) fn verify(secret: &SecretString, received: &ciq_e2e::receiver::Received) {
    standardwebhooks::Webhook::new(secret.expose_secret())
        .unwrap()
        .verify(received.body.as_bytes(), &received.header_map())
        .unwrap_or_else(|e| panic!("signature does not verify: {e:?} {received:?}"));
}

pub(crate) async fn send(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base_url))
        .header("X-API-Key", key);
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Posts a batch of `count` copies of the reference's lead with `key`; asserts every one
/// was created, and returns the answer's body.
pub(crate) async fn batch_of_reference_leads(app: &TestApp, key: &str, count: usize) -> Value {
    let lead = reference_curl_body()["lead"].clone();
    let (status, body) = send(
        app,
        key,
        reqwest::Method::POST,
        "/api/external/leads/batch",
        Some(json!({"leads": vec![lead; count]})),
    )
    .await;
    assert_eq!(
        (status, body["created"].as_u64()),
        (200, Some(count as u64)),
        "{body}"
    );
    body
}

pub(crate) async fn deliveries_of(app: &TestApp, endpoint: Uuid) -> Vec<webhook_delivery::Model> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
        .all(&app.db)
        .await
        .unwrap()
}

/// The one delivery row of an instance made by [`one_lead_to_announce`].
async fn the_delivery(app: &TestApp) -> webhook_delivery::Model {
    webhook_delivery::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("the lead's delivery")
}

/// An instance that sends nothing by itself (the test calls `deliver_due`), an endpoint at
/// a receiver, and one lead created for it to hear about.
async fn one_lead_to_announce(backend: Backend) -> Option<(TestApp, Receiver)> {
    let app = TestApp::spawn_with(backend, |s| {
        quick(s);
        s.webhooks.deliver = false;
    })
    .await?;
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    endpoint(&app, user, &receiver.url("/hook"), &[EventType::Created]).await;
    assert_eq!(
        app.post_lead(Some(&key), &reference_curl_body())
            .await
            .status(),
        201
    );
    Some((app, receiver))
}

/// A delivery this instance leased but lost track of when the store failed (its
/// attempt's outcome could not be written) goes out as soon as the store answers again,
/// not when its lease (60 s) runs out.
async fn leases_left_by_a_store_failure_are_given_back_at_the_next_claim(backend: Backend) {
    use sea_orm::{ActiveModelTrait, Set};
    let Some((app, receiver)) = one_lead_to_announce(backend).await else {
        return;
    };
    let worker = app.states.webhooks.clone();
    worker.fan_out().await.unwrap();
    // Leased by this instance for an hour, as a claim whose attempt was never recorded.
    let pending = the_delivery(&app).await;
    let mut leased: webhook_delivery::ActiveModel = pending.into();
    leased.lease_owner = Set(Some(worker.instance()));
    leased.lease_until = Set(Some(ciq_entity::now() + chrono::TimeDelta::hours(1)));
    leased.update(&app.db).await.unwrap();
    assert_eq!(worker.deliver_due().await.unwrap(), 0, "held by its lease");
    assert!(receiver.received("/hook").is_empty());

    worker.lost_the_store();
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    assert_eq!(receiver.received("/hook").len(), 1);
    let delivered = the_delivery(&app).await;
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.lease_owner, None);
}

/// An event that reached its receiver while the store failed under the worker (the
/// outcome could not be written) is recorded when the store answers again, not sent a
/// second time: the lease stays held until then, and a failing store keeps it waiting.
async fn an_attempt_whose_outcome_the_store_did_not_take_is_recorded_not_sent_again(
    backend: Backend,
) {
    let Some((app, receiver)) = one_lead_to_announce(backend).await else {
        return;
    };
    let worker = app.states.webhooks.clone();
    // The record of the attempt fails, and so does the first try to write it later.
    worker.fail_next_records(2);
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    assert_eq!(receiver.received("/hook").len(), 1);
    let held = the_delivery(&app).await;
    assert_eq!(held.status, DeliveryStatus::Pending);
    assert_eq!(held.attempts, 0);
    assert_eq!(held.lease_owner, Some(worker.instance()), "still leased");

    assert!(
        worker.deliver_due().await.is_err(),
        "the store still fails: nothing is claimed"
    );
    assert_eq!(
        worker.deliver_due().await.unwrap(),
        0,
        "recorded, not claimed"
    );
    assert_eq!(receiver.received("/hook").len(), 1, "not sent again");
    let recorded = the_delivery(&app).await;
    assert_eq!(recorded.status, DeliveryStatus::Delivered);
    assert_eq!(recorded.attempts, 1);
    assert_eq!(recorded.last_status_code, Some(200));
    assert_eq!(recorded.lease_owner, None);
}

/// If the worker's exchange dies holding a round (a bug: its task panicked), the
/// round's outcomes are lost, not its events: the group gives its leases back, the next
/// claim sends the event again (same `webhook-id`, as after any lost outcome), and that
/// round, with the exchange gone, is settled by its own group.
async fn rounds_an_exchange_lost_go_out_again_and_later_ones_are_settled_without_it(
    backend: Backend,
) {
    let Some((app, receiver)) = one_lead_to_announce(backend).await else {
        return;
    };
    let worker = app.states.webhooks.clone();
    worker.break_the_exchange();
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    assert_eq!(receiver.received("/hook").len(), 1);
    let lost = the_delivery(&app).await;
    assert_eq!(
        (lost.status, lost.attempts),
        (DeliveryStatus::Pending, 0),
        "the outcome was lost with the exchange"
    );

    assert_eq!(
        worker.deliver_due().await.unwrap(),
        1,
        "its lease given back"
    );
    let got = receiver.received("/hook");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    let recorded = the_delivery(&app).await;
    assert_eq!(recorded.status, DeliveryStatus::Delivered);
    assert_eq!(recorded.attempts, 1);
    assert_eq!(recorded.lease_owner, None);
}

/// Group commit's batch rows (the form PostgreSQL's `json_agg` writes) become one
/// delivery per lead and subscribed endpoint, rendered from the lead; a row its codec
/// cannot read is dropped, not retried for ever; a row of a codec this instance does not
/// know (a newer instance's) is left for one that does.
async fn outbox_rows_are_read_by_their_codec_and_an_unreadable_one_is_dropped(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(app) = TestApp::spawn_with(backend, |s| {
        quick(s);
        // Nothing drains in the background: the test's own drain is the only one.
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let (user, _) = owner_with_key(&app, "owner@acme.test").await;
    let (hook, _) = endpoint(
        &app,
        user,
        "https://hooks.example.com/in",
        &[EventType::Created],
    )
    .await;
    let lead_id = Uuid::now_v7();
    let row = json!([{
        "id": lead_id, "user_id": user, "api_key_id": null, "name": "Jane Doe",
        "email": "jane@example.com", "phone": "15551234567", "source": "API",
        "industry": "Technology", "score": 8, "status": "new",
        "monthly_revenue_cents": 5_000_010, "budget_cents": null, "description": null,
        "created_at": "2026-12-04T10:00:00.123+00:00", "external_id": null,
        "updated_at": "2026-12-04T10:00:00.123+00:00"
    }]);
    let backend_of = app.db.get_database_backend();
    for (codec, events) in [
        ("lead.rows", row.to_string()),
        ("lead.rows", "not json".to_owned()),
        ("future.codec", "[]".to_owned()),
    ] {
        let sql = match backend_of {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO webhook_outbox (id, created_at, codec, events) VALUES ($1, $2, $3, $4)"
            }
            _ => "INSERT INTO webhook_outbox (id, created_at, codec, events) VALUES (?, ?, ?, ?)",
        };
        app.db
            .execute_raw(Statement::from_sql_and_values(
                backend_of,
                sql,
                [
                    Uuid::now_v7().into(),
                    ciq_entity::now().into(),
                    codec.into(),
                    events.into(),
                ],
            ))
            .await
            .unwrap();
    }
    let made = ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    assert_eq!(made, 1);
    let log = deliveries_of(&app, hook).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].event_type.as_str(), log[0].lead_id),
        ("lead.created", lead_id)
    );
    let body: Value = serde_json::from_str(&log[0].payload).unwrap();
    assert_eq!(body["type"], "lead.created");
    assert_eq!(body["timestamp"], "2026-12-04T10:00:00.123Z");
    assert_eq!(body["data"]["lead"]["monthly_revenue"], json!(50000.1));
    assert_eq!(body["data"]["lead"]["phone"], "15551234567");
    let left = app
        .db
        .query_all_raw(Statement::from_string(
            backend_of,
            "SELECT codec FROM webhook_outbox",
        ))
        .await
        .unwrap();
    let left: Vec<String> = left
        .iter()
        .map(|r| r.try_get("", "codec").unwrap())
        .collect();
    assert_eq!(left, ["future.codec"]);
}

/// With group commit off (`CIQ_LEAD_WRITERS=0`: one INSERT per request) a created lead
/// still has its event: the insert and its deliveries share one transaction.
async fn a_create_without_group_commit_is_delivered_too(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        quick(s);
        s.lead_writers = Some(0);
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    endpoint(&app, user, &receiver.url("/direct"), &[EventType::Created]).await;
    let (status, created) = send(
        &app,
        &key,
        reqwest::Method::POST,
        "/api/external/leads/create",
        Some(reference_curl_body()),
    )
    .await;
    assert_eq!(status, 201);
    let got = receiver
        .wait_for("/direct", 1, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 1);
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "lead.created");
    assert_eq!(event["data"]["lead"], created["lead"]);
}

/// An owner with a key and two endpoints (every event at `/all`, creates only at
/// `/created-only`), and another owner with a key and an endpoint of its own (`/other`).
struct Hooked {
    app: TestApp,
    receiver: Receiver,
    user: Uuid,
    key: String,
    other_key: String,
    hook: Uuid,
    secret: SecretString,
}

async fn hooked(backend: Backend) -> Option<Hooked> {
    let app = TestApp::spawn_with(backend, quick).await?;
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let (hook, secret) = endpoint(&app, user, &receiver.url("/all"), &EventType::ALL).await;
    endpoint(
        &app,
        user,
        &receiver.url("/created-only"),
        &[EventType::Created],
    )
    .await;
    // Another account's endpoint hears nothing of this one's leads.
    let (other, other_key) = owner_with_key(&app, "other@acme.test").await;
    endpoint(&app, other, &receiver.url("/other"), &EventType::ALL).await;
    Some(Hooked {
        app,
        receiver,
        user,
        key,
        other_key,
        hook,
        secret,
    })
}

/// Creates a lead (money with cents, a note with a quote and a line break); its id
/// and the API's answer.
async fn create_first(app: &TestApp, key: &str) -> (String, Value) {
    let mut first = reference_curl_body();
    first["lead"]["monthly_revenue"] = json!(50000.1);
    first["lead"]["budget"] = json!(10000);
    first["lead"]["description"] = "said \"hi\"\nüber".into();
    let (status, created) = send(
        app,
        key,
        reqwest::Method::POST,
        "/api/external/leads/create",
        Some(first),
    )
    .await;
    assert_eq!(status, 201);
    (created["lead"]["id"].as_str().unwrap().to_owned(), created)
}

/// Every kind of change: the first lead created, updated and deleted; a batch of one
/// good and two refused items; a refused duplicate; an upsert that updates and one that
/// creates; and one create by the other account. Six events for the owner's `/all`
/// (three created, two updated, one deleted), one for `/other`. The first lead's id.
async fn change_every_way(hooked: &Hooked) -> String {
    use reqwest::Method;
    let Hooked {
        app,
        key,
        other_key,
        ..
    } = hooked;
    let (lead_id, _) = create_first(app, key).await;
    let (status, _) = send(
        app,
        key,
        Method::PATCH,
        &format!("/api/external/leads/{lead_id}"),
        Some(json!({"lead": {"status": "qualified"}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        app,
        key,
        Method::DELETE,
        &format!("/api/external/leads/{lead_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let mut batch = reference_curl_body()["lead"].clone();
    batch["external_id"] = "crm-1".into();
    let mut invalid = batch.clone();
    invalid["email"] = "not-an-email".into();
    let (status, _) = send(
        app,
        key,
        Method::POST,
        "/api/external/leads/batch",
        Some(json!({"leads": [batch, invalid, {"name": "x"}]})),
    )
    .await;
    assert_eq!(status, 200);
    // The same external id again: refused (409), so nothing is told.
    let mut dup = reference_curl_body();
    dup["lead"]["external_id"] = "crm-1".into();
    assert_eq!(
        send(
            app,
            key,
            Method::POST,
            "/api/external/leads/create",
            Some(dup.clone())
        )
        .await
        .0,
        409
    );
    // Upsert: an update of crm-1, then a new crm-2.
    dup["lead"]["name"] = "Renamed".into();
    assert_eq!(
        send(
            app,
            key,
            Method::POST,
            "/api/external/leads/upsert",
            Some(dup.clone())
        )
        .await
        .0,
        200
    );
    dup["lead"]["external_id"] = "crm-2".into();
    assert_eq!(
        send(
            app,
            key,
            Method::POST,
            "/api/external/leads/upsert",
            Some(dup)
        )
        .await
        .0,
        201
    );
    // The other account's lead goes to its own endpoint only.
    assert_eq!(
        send(
            app,
            other_key,
            Method::POST,
            "/api/external/leads/create",
            Some(reference_curl_body())
        )
        .await
        .0,
        201
    );
    lead_id
}

async fn a_created_lead_is_signed_and_its_payload_is_the_api_object(backend: Backend) {
    let Some(Hooked {
        app,
        receiver,
        key,
        secret,
        ..
    }) = hooked(backend).await
    else {
        return;
    };
    // Money with cents and a note with a quote and a line break: the payload's lead must
    // still be the API's object, field for field.
    let (_, created) = create_first(&app, &key).await;
    let got = receiver.wait_for("/all", 1, Duration::from_secs(10)).await;
    verify(&secret, &got[0]);
    let event = got[0].json();
    assert_eq!(event["type"], "lead.created");
    // The payload's lead is the API's lead object, field for field.
    assert_eq!(event["data"]["lead"], created["lead"]);
    assert_eq!(got[0].headers["content-type"], "application/json");
    let sent_at: i64 = got[0].headers["webhook-timestamp"].parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 30);
}

/// The six events of [`change_every_way`] at `/all`, checked to be six and no more.
async fn all_six(hooked: &Hooked) -> Vec<ciq_e2e::receiver::Received> {
    let receiver = &hooked.receiver;
    let got = receiver.wait_for("/all", 6, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = receiver.received("/all");
    assert_eq!(
        got_all.len(),
        6,
        "exactly one request per change: {got_all:?}"
    );
    got
}

async fn each_change_is_one_signed_request_with_its_own_webhook_id(backend: Backend) {
    let Some(hooked) = hooked(backend).await else {
        return;
    };
    let lead_id = change_every_way(&hooked).await;
    let got = all_six(&hooked).await;
    let (secret, user) = (&hooked.secret, hooked.user);
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "lead.created",
            "lead.created",
            "lead.created",
            "lead.deleted",
            "lead.updated",
            "lead.updated"
        ],
        "{types:?}"
    );
    for r in &got {
        verify(secret, r);
    }
    let deleted = got
        .iter()
        .find(|r| r.json()["type"] == "lead.deleted")
        .unwrap()
        .json();
    assert_eq!(
        deleted["data"]["lead"],
        json!({"id": lead_id, "user_id": user.to_string()})
    );
    let updated = got
        .iter()
        .find(|r| r.json()["type"] == "lead.updated")
        .unwrap()
        .json();
    assert!(["qualified", "new"].contains(&updated["data"]["lead"]["status"].as_str().unwrap()));
    let ids: std::collections::HashSet<&String> =
        got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 6, "one webhook-id per event");
}

async fn an_endpoint_hears_only_the_types_it_chose_and_its_own_account(backend: Backend) {
    let Some(hooked) = hooked(backend).await else {
        return;
    };
    change_every_way(&hooked).await;
    let got = all_six(&hooked).await;
    let ids: std::collections::HashSet<&String> =
        got.iter().map(|r| &r.headers["webhook-id"]).collect();
    let receiver = &hooked.receiver;
    // The created-only endpoint heard the three creates, with the same webhook-ids.
    let created_only = receiver
        .wait_for("/created-only", 3, Duration::from_secs(10))
        .await;
    assert!(
        created_only
            .iter()
            .all(|r| r.json()["type"] == "lead.created")
    );
    for r in &created_only {
        assert!(ids.contains(&r.headers["webhook-id"]));
    }
    assert_eq!(
        receiver
            .wait_for("/other", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
}

async fn deliveries_are_logged_as_delivered_and_counted_in_the_metrics(backend: Backend) {
    let Some(hooked) = hooked(backend).await else {
        return;
    };
    change_every_way(&hooked).await;
    all_six(&hooked).await;
    let (app, hook) = (&hooked.app, hooked.hook);
    // The log: delivered on the first attempt, the receiver's answer kept.
    let log = deliveries_of(app, hook).await;
    assert_eq!(log.len(), 6);
    for d in &log {
        assert_eq!(
            (d.status, d.attempts, d.last_status_code),
            (DeliveryStatus::Delivered, 1, Some(200)),
            "{d:?}"
        );
        assert_eq!(d.last_response.as_deref(), Some("answered 200"));
    }
    // The metrics say so.
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("ciq_webhook_deliveries_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ciq_webhook_attempt_seconds"));
    assert!(metrics.contains("ciq_webhook_pending_deliveries"));
    assert!(metrics.contains("ciq_webhook_oldest_pending_seconds"));
}

async fn failures_are_retried_on_the_schedule_with_the_same_webhook_id(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script("/flaky", vec![Reply::status(500), Reply::status(503)]);
    receiver.script(
        "/limited",
        vec![Reply::status(429).header("Retry-After", "3")],
    );
    receiver.always("/gone", Reply::status(410));
    receiver.always(
        "/moved",
        Reply::status(302).header("Location", receiver.url("/elsewhere")),
    );
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let mut hooks = std::collections::HashMap::new();
    for path in ["/flaky", "/limited", "/gone", "/moved"] {
        hooks.insert(
            path,
            endpoint(&app, user, &receiver.url(path), &EventType::ALL).await,
        );
    }
    assert_eq!(app.create_status(Some(&key)).await, 201);

    // 500, 503, then 200: three attempts of one event, a second apart.
    let flaky = receiver
        .wait_for("/flaky", 3, Duration::from_secs(15))
        .await;
    let ids: std::collections::HashSet<&String> =
        flaky.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 1, "the same webhook-id on every attempt");
    for pair in flaky.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    }
    for r in &flaky {
        verify(&hooks["/flaky"].1, r);
    }
    // 429 with Retry-After: 3 waits three seconds, not the schedule's one.
    let limited = receiver
        .wait_for("/limited", 2, Duration::from_secs(15))
        .await;
    let gap = limited[1].at - limited[0].at;
    assert!(
        gap >= Duration::from_millis(2900),
        "Retry-After not honoured: {gap:?}"
    );
    // 410: the endpoint is disabled, once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let row = endpoints::find(&app.db, user, hooks["/gone"].0)
            .await
            .unwrap();
        if !row.enabled {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "a 410 did not disable the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        gone.disabled_reason.as_deref(),
        Some("the receiver answered 410 Gone")
    );
    // 302: never followed; a failed attempt, retried, then failed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = deliveries_of(&app, hooks["/moved"].0).await;
        if log[0].status == DeliveryStatus::Failed {
            assert_eq!((log[0].attempts, log[0].last_status_code), (4, Some(302)));
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receiver.received("/elsewhere").is_empty(),
        "a redirect was followed"
    );
    assert_eq!(receiver.received("/gone").len(), 1);
    let flaky_log = deliveries_of(&app, hooks["/flaky"].0).await;
    assert_eq!(
        (flaky_log[0].status, flaky_log[0].attempts),
        (DeliveryStatus::Delivered, 3)
    );
    let gone_log = deliveries_of(&app, hooks["/gone"].0).await;
    assert_eq!(
        (gone_log[0].status, gone_log[0].last_status_code),
        (DeliveryStatus::Failed, Some(410))
    );
    // A disabled endpoint gets no new deliveries.
    assert_eq!(app.create_status(Some(&key)).await, 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deliveries_of(&app, hooks["/gone"].0).await.len(), 1);
}

async fn two_instances_deliver_a_thousand_events_once_each(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let peer = app.spawn_peer().await;
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    endpoint(&app, user, &receiver.url("/hook"), &[EventType::Created]).await;
    for round in 0..10 {
        let target = if round % 2 == 0 { &app } else { &peer };
        batch_of_reference_leads(target, &key, 100).await;
    }
    let got = receiver
        .wait_for("/hook", 1000, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received("/hook").len().max(got.len());
    assert_eq!(got, 1000, "every event once, none twice");
    let ids: std::collections::HashSet<String> = receiver
        .received("/hook")
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1000);
    peer.stop().await;
}

/// A backlog is sent round after round by the group that holds its endpoint (claiming
/// the next round while the last one's outcomes are written): a new URL is used while
/// the backlog is still being sent (the group reads its endpoint again after a second,
/// and gives its slots back after eight rounds), every event reaching one URL or the
/// other once; a disabled endpoint gets nothing beyond the rounds already claimed.
async fn a_backlog_follows_its_endpoints_new_url_and_stops_when_it_is_disabled(backend: Backend) {
    use ciq_entity::webhook_endpoint;
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let receiver = Receiver::start().await;
    for path in ["/a", "/b"] {
        receiver.always(path, Reply::status(200).after(Duration::from_millis(100)));
    }
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let (hook, _) = endpoint(&app, user, &receiver.url("/a"), &[EventType::Created]).await;
    batch_of_reference_leads(&app, &key, 100).await;
    receiver.wait_for("/a", 8, Duration::from_secs(10)).await;
    webhook_endpoint::Entity::update_many()
        .col_expr(
            webhook_endpoint::Column::Url,
            sea_orm::sea_query::Expr::value(receiver.url("/b")),
        )
        .filter(webhook_endpoint::Column::Id.eq(hook))
        .exec(&app.db)
        .await
        .unwrap();
    receiver.wait_for("/b", 1, Duration::from_secs(5)).await;
    let b_before_disable = receiver.received("/b").len();
    ciq_webhooks::endpoints::set_enabled(&app.db, user, hook, false, None)
        .await
        .unwrap();
    let at_disable = receiver.received("/a").len() + receiver.received("/b").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received: Vec<_> = receiver
        .received("/a")
        .into_iter()
        .chain(receiver.received("/b"))
        .collect();
    assert!(
        received.len() <= at_disable + 2 * ciq_webhooks::delivery::PER_ENDPOINT,
        "{} received after the disable, {at_disable} before",
        received.len()
    );
    assert!(received.len() < 100, "the disable stopped the backlog");
    assert!(b_before_disable >= 1);
    let ids: std::collections::HashSet<_> = received
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), received.len(), "no event twice");
    // And nothing more comes: the rest failed with the disable.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received("/a").len() + receiver.received("/b").len(),
        received.len()
    );
}

/// Eight endpoints on one host (as many accounts' endpoints share an automation
/// platform's), each with a backlog of 40: their rounds are settled together by the
/// worker's exchange, yet each endpoint hears exactly its own events, once each, signed
/// with its own secret; and they go out over connections kept between rounds — at most
/// what the worker has in flight (with a margin for a connection still on its way back
/// to the pool), where a pool keeping one endpoint's share reopened most every round.
async fn endpoints_on_one_host_share_kept_connections_and_each_hears_only_its_own(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let mut hooks = Vec::new();
    for n in 0..8 {
        let path = format!("/hook-{n}");
        // Slow enough that every endpoint's four are in flight together.
        receiver.always(&path, Reply::status(204).after(Duration::from_millis(20)));
        let (_, secret) = endpoint(&app, user, &receiver.url(&path), &[EventType::Created]).await;
        hooks.push((path, secret));
    }
    let body = batch_of_reference_leads(&app, &key, 40).await;
    let created: std::collections::HashSet<String> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lead"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), 40);
    for (path, _) in &hooks {
        receiver.wait_for(path, 40, Duration::from_secs(60)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut peers = std::collections::HashSet::new();
    for (path, secret) in &hooks {
        let got = receiver.received(path);
        assert_eq!(got.len(), 40, "{path}: each event once");
        let mut leads = std::collections::HashSet::new();
        for received in &got {
            verify(secret, received);
            leads.insert(
                received.json()["data"]["lead"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            peers.insert(received.peer.clone());
        }
        assert_eq!(leads, created, "{path} heard every lead, once");
    }
    let bound = 2 * ciq_webhooks::delivery::MAX_IN_FLIGHT;
    assert!(
        peers.len() <= bound,
        "320 deliveries came over {} connections (at most {bound})",
        peers.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_hold_up_another_endpoint() {
    let app = TestApp::spawn_with(Backend::Sqlite, quick).await.unwrap();
    let receiver = Receiver::start().await;
    receiver.always("/slow", Reply::status(200).after(Duration::from_secs(4)));
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    endpoint(&app, user, &receiver.url("/slow"), &EventType::ALL).await;
    endpoint(&app, user, &receiver.url("/fast"), &EventType::ALL).await;
    let started = Instant::now();
    for _ in 0..12 {
        assert_eq!(app.create_status(Some(&key)).await, 201);
    }
    receiver.wait_for("/fast", 12, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the fast endpoint waited for the slow one"
    );
    // The slow one has at most 4 in flight at a time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received("/slow").len() <= ciq_webhooks::delivery::PER_ENDPOINT);
}

/// Waits (up to 10 s) until every delivery of `endpoint` has had an attempt.
async fn attempted(app: &TestApp, endpoint: Uuid, count: usize) -> Vec<webhook_delivery::Model> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries_of(app, endpoint).await;
        if log.len() >= count && log.iter().all(|d| d.attempts > 0) {
            return log;
        }
        assert!(Instant::now() < deadline, "no attempt within 10 s: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_receivers_must_present_a_certificate_the_gateway_trusts() {
    let receiver = Receiver::start_tls().await;
    let ca = receiver.certificate.clone().unwrap();
    // Trusted through CIQ_WEBHOOK_CA_FILE's setting: delivered over TLS, and signed.
    let trusting = TestApp::spawn_with(Backend::Sqlite, |s| {
        quick(s);
        s.webhooks.extra_roots = vec![ca];
    })
    .await
    .unwrap();
    let (user, key) = owner_with_key(&trusting, "owner@acme.test").await;
    let (hook, secret) = endpoint(&trusting, user, &receiver.url("/tls"), &EventType::ALL).await;
    assert_eq!(trusting.create_status(Some(&key)).await, 201);
    let got = receiver.wait_for("/tls", 1, Duration::from_secs(10)).await;
    verify(&secret, &got[0]);
    assert_eq!(got[0].json()["type"], "lead.created");
    let log = attempted(&trusting, hook, 1).await;
    assert_eq!(
        (log[0].status, log[0].last_status_code),
        (DeliveryStatus::Delivered, Some(200))
    );

    // The system's roots alone do not know a self-signed certificate: nothing reaches
    // the receiver, the attempt fails as a certificate error (retried like any failure),
    // and the log names no URL.
    let doubting = TestApp::spawn_with(Backend::Sqlite, quick).await.unwrap();
    let (user, key) = owner_with_key(&doubting, "owner@acme.test").await;
    let (hook, _) = endpoint(
        &doubting,
        user,
        &receiver.url("/untrusted"),
        &EventType::ALL,
    )
    .await;
    assert_eq!(doubting.create_status(Some(&key)).await, 201);
    let log = attempted(&doubting, hook, 1).await;
    let d = &log[0];
    assert_eq!(
        (d.status, d.last_status_code),
        (DeliveryStatus::Pending, None)
    );
    let why = d.last_error.as_deref().unwrap();
    assert!(why.contains("certificate"), "{why}");
    assert!(!why.contains("localhost"), "{why}");
    assert!(receiver.received("/untrusted").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    let app = TestApp::spawn_with(Backend::Sqlite, quick).await.unwrap();
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let (hook, old) = endpoint(&app, user, &receiver.url("/hook"), &EventType::ALL).await;
    let new = endpoints::rotate(
        &app.db,
        app.states.webhook_key.as_ref(),
        user,
        hook,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let during = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(during[0].headers["webhook-signature"].split(' ').count(), 2);
    verify(&old, &during[0]);
    verify(&new, &during[0]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let after = receiver.wait_for("/hook", 2, Duration::from_secs(10)).await;
    assert_eq!(after[1].headers["webhook-signature"].split(' ').count(), 1);
    verify(&new, &after[1]);
    assert!(
        standardwebhooks::Webhook::new(old.expose_secret())
            .unwrap()
            .verify(after[1].body.as_bytes(), &after[1].header_map())
            .is_err(),
        "the old secret still signs after the overlap"
    );
    // The stored secrets are sealed: neither is in the row as text.
    let row = endpoints::find(&app.db, user, hook).await.unwrap();
    for secret in [&old, &new] {
        let plain = secret.expose_secret().as_bytes();
        assert!(!row.secret.windows(plain.len()).any(|w| w == plain));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_the_configured_time_is_disabled() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        quick(s);
        s.webhooks.retry_schedule = vec![Duration::from_secs(1); 10];
        s.webhooks.disable_after = Duration::from_secs(2);
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    receiver.always("/down", Reply::status(500));
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    let (hook, _) = endpoint(&app, user, &receiver.url("/down"), &EventType::ALL).await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let deadline = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let row = endpoints::find(&app.db, user, hook).await.unwrap();
        if !row.enabled {
            break row;
        }
        assert!(Instant::now() < deadline, "never disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        row.disabled_reason.as_deref(),
        Some("every delivery failed for 2 seconds")
    );
    let attempts = receiver.received("/down").len();
    assert!(
        (3..=4).contains(&attempts),
        "{attempts} attempts in about 2 s"
    );
    let log = deliveries_of(&app, hook).await;
    assert_eq!(
        log[0].status,
        DeliveryStatus::Failed,
        "its pending delivery fails with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_that_are_not_public_are_refused_before_any_connection() {
    use ciq_webhooks::address::{GuardedResolver, Lookup};
    use std::net::IpAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    // Without the switch: no http://, no loopback.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let user = app.create_user("owner@acme.test").await;
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "must start with https://"),
        ("https://127.0.0.1:9/hook", "not a public address"),
        ("https://10.0.0.1/hook", "not a public address"),
        ("https://[fd00:ec2::254]/", "not a public address"),
    ] {
        let refused = endpoints::create(
            &app.db,
            app.states.webhook_key.as_ref(),
            user,
            url,
            &EventType::ALL,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(refused.contains(why), "{url}: {refused}");
    }
    // A name that resolves to a private or metadata address: refused at the address
    // check, before a connection (a resolver of the test's answers it).
    struct Answers(IpAddr);
    impl Lookup for Answers {
        fn lookup(
            &self,
            _: String,
        ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>
        {
            let ip = self.0;
            Box::pin(async move { Ok(vec![ip]) })
        }
    }
    for ip in ["10.0.0.1", "169.254.169.254"] {
        let settings = ciq_webhooks::WebhookSettings::default();
        let client = ciq_webhooks::delivery::client(
            &settings,
            GuardedResolver {
                lookup: Arc::new(Answers(ip.parse().unwrap())),
                allow_private: false,
            },
        );
        // A worker of the test's own, on a store that the gateway's worker does not see.
        let store = ciq_e2e::TestDatabase::create(Backend::Sqlite)
            .await
            .unwrap();
        let db = ciq_gateway::database::connect_and_migrate(&store.url)
            .await
            .unwrap();
        let owner = ciq_admin::users::create_user(&db, "o@acme.test", None)
            .await
            .unwrap();
        let key = ciq_store::secret::SecretBox::from_base64(&ciq_store::secret::new_key()).unwrap();
        let (hook, _) = endpoints::create(
            &db,
            Some(&key),
            owner.id,
            "https://hooks.example.com/in",
            &EventType::ALL,
            false,
        )
        .await
        .unwrap();
        let lead = ciq_leads::Lead::example(ciq_leads::LeadOwner {
            user_id: owner.id,
            api_key_id: None,
        });
        let event = ciq_leads::events::event(EventType::Created, &lead).expect("not spam");
        ciq_webhooks::outbox::fan_out(&db, &[event]).await.unwrap();
        let breaker = ciq_store::Breaker::new(db.clone(), Duration::from_secs(5));
        let worker = ciq_webhooks::delivery::DeliveryWorker::with_client(
            db.clone(),
            breaker,
            Some(key),
            settings,
            client,
            ciq_leads::events::CODECS,
        );
        assert_eq!(worker.deliver_due().await.unwrap(), 1);
        let log = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
            .all(&db)
            .await
            .unwrap();
        let error = log[0].last_error.clone().unwrap_or_default();
        // The owner reads that the host is not public, never which address it has
        // (a delivery log must not map the gateway's network).
        assert!(
            error.contains("does not resolve to a public address"),
            "{error}"
        );
        assert!(!error.contains(&ip.to_string()), "{error}");
        assert_eq!(
            (log[0].status, log[0].last_status_code),
            (DeliveryStatus::Pending, None)
        );
    }
}

async fn the_settings_pages_reach_only_the_owners_endpoints(backend: Backend) {
    use ciq_e2e::console::{PASSWORD, browser_like_client, owner, post_form, sign_in};
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let alice = owner(&app, "alice@acme.test").await;
    owner(&app, "bob@acme.test").await;
    let (hook, _) = endpoint(&app, alice, &receiver.url("/hook"), &EventType::ALL).await;
    let csrf_of = ciq_e2e::console::hidden_csrf;
    // Alice's page lists it; a URL that is not one is named, nothing is added.
    let client = browser_like_client();
    sign_in(&app, &client, "alice@acme.test", PASSWORD).await;
    let (status, html) = ciq_e2e::console::get_html(&client, &app, "/settings/webhooks").await;
    assert_eq!(status, 200);
    assert!(html.contains(&receiver.url("/hook")));
    let csrf = csrf_of(&html);
    let form = [
        ("csrf", csrf.as_str()),
        ("url", "ftp://nope"),
        ("event_lead_created", "on"),
    ];
    let (status, html) = post_form(&client, &app, "/settings/webhooks", &form).await;
    assert_eq!(status, 422);
    assert!(html.contains("URL: must start with https://"));
    let form = [("csrf", csrf.as_str()), ("url", &receiver.url("/x"))];
    let (status, _) = post_form(&client, &app, "/settings/webhooks", &form).await;
    assert_eq!(status, 422, "no event ticked");
    // A forged form changes nothing.
    let disable = format!("/settings/webhooks/{hook}/disable");
    let (status, _) = post_form(&client, &app, &disable, &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    assert!(endpoints::find(&app.db, alice, hook).await.unwrap().enabled);
    // Disable, then enable again, from the page.
    for (action, enabled) in [("disable", false), ("enable", true)] {
        let resp = client
            .post(format!(
                "{}/settings/webhooks/{hook}/{action}",
                app.base_url
            ))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            endpoints::find(&app.db, alice, hook).await.unwrap().enabled,
            enabled
        );
    }
    // Bob reaches none of it.
    let bob = browser_like_client();
    sign_in(&app, &bob, "bob@acme.test", PASSWORD).await;
    let (_, html) = ciq_e2e::console::get_html(&bob, &app, "/settings/webhooks").await;
    assert!(!html.contains(&receiver.url("/hook")));
    let bob_csrf = csrf_of(&html);
    let (status, _) =
        ciq_e2e::console::get_html(&bob, &app, &format!("/settings/webhooks/{hook}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        ciq_e2e::console::get_html(&bob, &app, &format!("/settings/webhooks/{hook}/delete"))
            .await
            .0,
        404
    );
    for action in ["disable", "test", "rotate", "delete"] {
        let resp = bob
            .post(format!(
                "{}/settings/webhooks/{hook}/{action}",
                app.base_url
            ))
            .form(&[("csrf", bob_csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{action}");
    }
    assert!(endpoints::find(&app.db, alice, hook).await.unwrap().enabled);
    assert!(
        receiver.received("/hook").is_empty(),
        "bob's test event went nowhere"
    );
    // Alice deletes it: asked first, then it and its log are gone.
    let delete = format!("/settings/webhooks/{hook}/delete");
    let (status, html) = ciq_e2e::console::get_html(&client, &app, &delete).await;
    assert_eq!(status, 200);
    assert!(html.contains("Delete this endpoint?") && html.contains(&receiver.url("/hook")));
    assert!(
        endpoints::find(&app.db, alice, hook).await.is_ok(),
        "asking deletes nothing"
    );
    let (status, _) = post_form(&client, &app, &delete, &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    let (status, html) = post_form(&client, &app, &delete, &[("csrf", csrf.as_str())]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Deleted the endpoint") && html.contains("and its delivery log."));
    assert!(matches!(
        endpoints::find(&app.db, alice, hook).await,
        Err(endpoints::EndpointError::NotFound)
    ));
    assert!(deliveries_of(&app, hook).await.is_empty());
    assert_eq!(
        ciq_e2e::console::get_html(&client, &app, &format!("/settings/webhooks/{hook}"))
            .await
            .0,
        404
    );
}

/// Settings → Webhooks → Edit: URL, events, description and filter change together,
/// checked as the add form and the API check them (every problem named, the form kept,
/// nothing saved); the saved filter comes back into the form; another owner's endpoint
/// is not found, and a forged form changes nothing.
async fn an_owner_edits_an_endpoints_url_events_and_filter(backend: Backend) {
    use ciq_e2e::console::{get_html, post_form, signed_in};
    let Some(app) = TestApp::spawn_with(backend, quick).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let alice = signed_in(&app, "alice@acme.test", "/settings/webhooks").await;
    let (hook, _) = endpoint(&app, alice.user, &receiver.url("/old"), &EventType::ALL).await;
    let edit = format!("/settings/webhooks/{hook}/edit");
    let (status, page) = get_html(&alice.client, &app, &edit).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&receiver.url("/old")) && page.contains("every event of the types ticked")
    );
    let csrf = alice.csrf.as_str();
    let new_url = receiver.url("/new");
    let mut form = vec![
        ("csrf", csrf),
        ("url", "ftp://nope.example"),
        ("description", "New leads to the CRM"),
        ("f0_field", "source"),
        ("f0_op", "eq"),
        ("f0_value", "Website Form"),
        ("f1_field", "score"),
        ("f1_op", "gte"),
        ("f1_value", "five"),
    ];
    let (status, page) = post_form(&alice.client, &app, &edit, &form).await;
    assert_eq!(status, 422, "{page}");
    for said in [
        "URL: must start with https://",
        "Events: choose at least one event to send.",
        "Filter score gte: must be a number",
    ] {
        assert!(page.contains(said), "{said}: {page}");
    }
    assert!(page.contains("value=\"five\"") && page.contains("value=\"New leads to the CRM\""));
    let stored = endpoints::find(&app.db, alice.user, hook).await.unwrap();
    assert_eq!(
        (stored.url.as_str(), stored.filter.as_deref()),
        (receiver.url("/old").as_str(), None)
    );

    form[1].1 = &new_url;
    form[8].1 = "5";
    form.push(("event_lead_created", "on"));
    let mut forged = form.clone();
    forged[0].1 = "forged";
    assert_eq!(post_form(&alice.client, &app, &edit, &forged).await.0, 403);
    let (status, page) = post_form(&alice.client, &app, &edit, &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("Saved {new_url}")), "{page}");
    let stored = endpoints::find(&app.db, alice.user, hook).await.unwrap();
    assert_eq!(stored.url, new_url);
    assert_eq!(stored.events, "lead.created");
    assert_eq!(stored.description.as_deref(), Some("New leads to the CRM"));
    assert_eq!(
        serde_json::from_str::<Value>(stored.filter.as_deref().unwrap()).unwrap(),
        json!({"score": {"gte": 5}, "source": {"eq": "website form"}}),
        "stored canonical: text compares ignoring case"
    );
    // The page lists it in words; the form comes back with the conditions.
    let (_, list) = get_html(&alice.client, &app, "/settings/webhooks").await;
    assert!(
        list.contains("score ≥ 5 and source is website form"),
        "{list}"
    );
    let (_, page) = get_html(&alice.client, &app, &edit).await;
    assert!(page.contains("<option value=\"source\" selected"));
    assert!(page.contains("value=\"website form\""));
    // Emptying every condition removes the filter.
    let cleared: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .filter(|(name, _)| !name.starts_with('f'))
        .collect();
    assert_eq!(post_form(&alice.client, &app, &edit, &cleared).await.0, 200);
    assert_eq!(
        endpoints::find(&app.db, alice.user, hook)
            .await
            .unwrap()
            .filter,
        None
    );

    let bob = signed_in(&app, "bob@acme.test", "/settings/webhooks").await;
    assert_eq!(get_html(&bob.client, &app, &edit).await.0, 404);
    let mut bobs = form.clone();
    bobs[0].1 = bob.csrf.as_str();
    assert_eq!(post_form(&bob.client, &app, &edit, &bobs).await.0, 404);
    assert_eq!(
        endpoints::find(&app.db, alice.user, hook)
            .await
            .unwrap()
            .url,
        new_url
    );
}

/// The guide shows each event's payload as this server makes them (for a lead of the
/// owner's account) and this server's retry schedule; an endpoint's log shows what each
/// delivery carried; the endpoints page shows each endpoint's health.
async fn the_guide_the_payloads_and_the_health_show_what_is_sent(backend: Backend) {
    use ciq_e2e::console::{get_html, signed_in};
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.webhooks.allow_private_networks = true;
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/webhooks").await;
    let (guide_status, guide) = get_html(&owner.client, &app, "/settings/webhooks/guide").await;
    assert_eq!(guide_status, 200);
    for said in [
        "lead.created",
        "lead.updated",
        "lead.deleted",
        &format!("&quot;user_id&quot;: &quot;{}&quot;", owner.user),
        "&quot;status&quot;: &quot;contacted&quot;",
        "5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h",
        "failed for 5 days",
        "webhook-signature",
    ] {
        assert!(guide.contains(said), "{said}: {guide}");
    }
    let (_, page) = get_html(&owner.client, &app, "/settings/webhooks").await;
    assert!(
        page.contains("href=\"/settings/webhooks/guide\""),
        "the lead paragraph links it"
    );

    let (hook, _) = endpoint(
        &app,
        owner.user,
        "https://hooks.example.com/in",
        &EventType::ALL,
    )
    .await;
    let (_, key) = app.create_key_with(owner.user, Default::default()).await;
    let mut body = reference_curl_body();
    body["lead"]["name"] = json!("Payload Person");
    let (status, _) = app
        .post_json("/api/external/leads/create", &key, &[], &body)
        .await;
    assert_eq!(status, 201);
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let (_, log) = get_html(&owner.client, &app, &format!("/settings/webhooks/{hook}")).await;
    assert!(log.contains("<summary>Payload"), "{log}");
    assert!(
        log.contains("&quot;name&quot;: &quot;Payload Person&quot;"),
        "indented JSON: {log}"
    );
    let (_, page) = get_html(&owner.client, &app, "/settings/webhooks").await;
    assert!(
        page.contains(">Health<") && page.contains(">healthy<"),
        "{page}"
    );
    // A failing endpoint says since when.
    let since = chrono::Utc::now() - chrono::TimeDelta::hours(3);
    ciq_entity::WebhookEndpoint::update_many()
        .col_expr(
            ciq_entity::webhook_endpoint::Column::FailingSince,
            sea_orm::sea_query::Expr::value(since),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let (_, page) = get_html(&owner.client, &app, "/settings/webhooks").await;
    assert!(
        page.contains(&format!("since {}", since.format("%Y-%m-%d %H:%M UTC"))),
        "{page}"
    );
}

/// On PostgreSQL the claim's index (migration 000026) holds pending deliveries only: 200
/// deliveries sent, the table vacuumed, it holds no entry, while the deliveries' log
/// index holds all 200 (the index it replaced held every settled delivery too, and each
/// outcome written added one to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_index_holds_pending_deliveries_only() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |s| {
        quick(s);
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let (user, key) = owner_with_key(&app, "owner@acme.test").await;
    endpoint(&app, user, &receiver.url("/hook"), &[EventType::Created]).await;
    for _ in 0..2 {
        batch_of_reference_leads(&app, &key, 100).await;
    }
    let worker = app.states.webhooks.clone();
    let mut sent = 0;
    while sent < 200 {
        let claimed = worker.deliver_due().await.unwrap();
        assert!(claimed > 0, "{sent} of 200 sent, nothing more due");
        sent += claimed;
    }
    assert_eq!(receiver.received("/hook").len(), 200);

    use sea_orm::ConnectionTrait;
    let one = |sql: &'static str| ciq_e2e::count(&app.db, sql);
    assert_eq!(
        one("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'").await,
        200
    );
    // VACUUM counts each index's live entries (`reltuples`).
    app.db
        .execute_unprepared("VACUUM webhook_deliveries")
        .await
        .unwrap();
    assert_eq!(
        one("SELECT COALESCE((SELECT reltuples::bigint FROM pg_class \
             WHERE relname = 'idx_webhook_deliveries_due'), -1)")
        .await,
        0,
        "no entry for a settled delivery (-1: no such index)"
    );
    assert_eq!(
        one("SELECT reltuples::bigint FROM pg_class \
             WHERE relname = 'idx_webhook_deliveries_endpoint'")
        .await,
        200
    );
    assert_eq!(
        one("SELECT count(*) FROM pg_indexes \
             WHERE indexname = 'idx_webhook_deliveries_endpoint_due'")
        .await,
        0,
        "the index it replaced is gone"
    );
}
