//! Usage and the request log: every answer to a key is counted by outcome, with the
//! leads it stored, across instances sharing a database; the answers that were not 2xx
//! are logged (never a body or a key), at most 10 a second per key; reads are the
//! calling key's only, refused to public keys, and their parameters are named when
//! broken. Minutes roll up into hours and everything goes after its retention.

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::{Backend, TestApp, reference_curl_body};
use ciq_usage::{KeyRef, LogEntry};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

ciq_e2e::with_each_backend!(
    a_scripted_sequence_is_counted_exactly_across_two_instances,
    the_request_log_names_each_failure_and_pages,
    usage_is_the_calling_keys_and_refused_to_public_keys,
    broken_parameters_are_named,
    minutes_roll_up_into_hours_and_old_usage_goes,
);

const TOKEN: &str = "operator-token-0123456789";
const SHOP: &str = "https://shop.example";

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base_url))
        .header("X-API-Key", key)
        .header("User-Agent", "usage-test/1.0")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (u16, String) {
    let resp = app
        .client
        .post(format!("{}{path}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .header("User-Agent", "usage-test/1.0")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, request_id)
}

/// The sum of every bucket of a `usage` answer, field by field.
fn totals(answer: &Value) -> Value {
    let fields = [
        "success",
        "client_error",
        "rate_limited",
        "server_error",
        "leads_created",
        "spam",
        "dropped",
    ];
    let mut sums = serde_json::Map::new();
    for field in fields {
        let sum: u64 = answer["usage"]
            .as_array()
            .unwrap_or_else(|| panic!("not a usage answer: {answer}"))
            .iter()
            .map(|b| b[field].as_u64().unwrap())
            .sum();
        sums.insert(field.into(), json!(sum));
    }
    Value::Object(sums)
}

async fn flush(apps: &[&TestApp]) {
    for app in apps {
        app.states.usage.flush().await.expect("usage flushed");
    }
}

fn reader() -> NewKey {
    NewKey {
        name: "CRM".into(),
        scopes: Scopes::of(&[Scope::LeadsCreate, Scope::LeadsRead]),
        ..NewKey::default()
    }
}

/// Creates, a spam lead, a batch, a broken body, a broken query and a missing scope,
/// spread over two instances: each counted once by outcome, with the leads; the call
/// that reads usage is not in its own answer but is in the next. A key past its limit
/// counts its 429s; the operator API reads any key's and any account's usage.
async fn a_scripted_sequence_is_counted_exactly_across_two_instances(backend: Backend) {
    let Some(a) = TestApp::spawn_with(backend, |s| s.admin_token = Some(TOKEN.into())).await else {
        return;
    };
    let b = a.spawn_peer().await;
    let owner = a.create_user("owner@acme.test").await;
    let (key_id, key) = a.create_key_with(owner, reader()).await;
    let create = "/api/external/leads/create";
    assert_eq!(post(&a, &key, create, &reference_curl_body()).await.0, 201);
    assert_eq!(post(&b, &key, create, &reference_curl_body()).await.0, 201);
    let mut trapped = reference_curl_body();
    trapped["honeypot"] = json!("filled by a bot");
    assert_eq!(post(&b, &key, create, &trapped).await.0, 201);
    let mut broken = reference_curl_body();
    broken["lead"]["email"] = json!("not-an-email");
    assert_eq!(post(&a, &key, create, &broken).await.0, 422);
    let lead = reference_curl_body()["lead"].clone();
    let batch = json!({"leads": [lead, lead, lead]});
    assert_eq!(
        post(&b, &key, "/api/external/leads/batch", &batch).await.0,
        200
    );
    assert_eq!(
        get(&a, &key, "/api/external/leads?status=bogus").await.0,
        422
    );
    let (status, _, _) = get(&b, &key, "/api/external/webhooks").await;
    assert_eq!(status, 403);
    // A request whose key does not verify belongs to no key.
    assert_eq!(
        post(&a, "ciq_notarealkey", create, &reference_curl_body())
            .await
            .0,
        401
    );
    flush(&[&a, &b]).await;

    let (status, headers, first) = get(&a, &key, "/api/external/usage?interval=hour").await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.contains_key("x-ratelimit-remaining"));
    assert_eq!(first["success"], true);
    assert_eq!(first["interval"], "hour");
    assert_eq!(
        totals(&first),
        json!({"success": 4, "client_error": 3, "rate_limited": 0, "server_error": 0,
               "leads_created": 6, "spam": 1, "dropped": 0})
    );
    assert!(a.metrics_text().await.contains("ciq_usage_flushes_total"));
    let bucket = &first["usage"][0];
    assert!(
        bucket["start"].as_str().unwrap().ends_with(":00:00.000Z"),
        "{bucket}"
    );
    // The read above is in the next answer (it is written by the next flush).
    flush(&[&a, &b]).await;
    let (_, _, second) = get(&b, &key, "/api/external/usage?interval=day").await;
    assert_eq!(totals(&second)["success"], 5, "{second}");

    // A key past its limit: its 429s are counted.
    let (limited_id, limited) = a
        .create_key_with(
            owner,
            NewKey {
                rate_limit_per_minute: Some(1),
                ..NewKey::default()
            },
        )
        .await;
    assert_eq!(
        post(&a, &limited, create, &reference_curl_body()).await.0,
        201
    );
    // (Without Redis each instance limits alone: the 429s come from one.)
    assert_eq!(
        post(&a, &limited, create, &reference_curl_body()).await.0,
        429
    );
    assert_eq!(
        post(&a, &limited, create, &reference_curl_body()).await.0,
        429
    );
    flush(&[&a, &b]).await;
    let operator = |path: String| {
        let client = a.client.clone();
        let url = format!("{}{path}", a.base_url);
        async move {
            let resp = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, usage) = operator(format!("/admin/v1/keys/{limited_id}/usage")).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["key_id"], json!(limited_id));
    assert_eq!(usage["user_id"], json!(owner));
    assert_eq!(
        (
            totals(&usage)["success"].as_u64(),
            totals(&usage)["rate_limited"].as_u64()
        ),
        (Some(1), Some(2))
    );
    // The account: both keys together.
    let (status, account) = operator(format!("/admin/v1/users/{owner}/usage?interval=day")).await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["key_id"], Value::Null);
    assert_eq!(totals(&account)["success"], 4 + 2 + 1);
    assert_eq!(totals(&account)["leads_created"], 7);
    let (status, missing) = operator(format!("/admin/v1/keys/{}/usage", Uuid::now_v7())).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, broken) = operator(format!("/admin/v1/keys/{key_id}/usage?interval=week")).await;
    assert_eq!(status, 422);
    assert_eq!(broken["error"]["details"][0]["field"], "interval");
    b.stop().await;
    a.stop().await;
}

/// Each failure is logged with what a developer needs (status, code, the first
/// detail, the request id they got, the client's network, the user agent) and nothing
/// of the body or the key; pages go newest first and filter by status.
async fn the_request_log_names_each_failure_and_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("owner@acme.test").await;
    let (key_id, key) = app.create_key_with(owner, reader()).await;
    let create = "/api/external/leads/create";
    assert_eq!(
        post(&app, &key, create, &reference_curl_body()).await.0,
        201
    );
    let mut broken = reference_curl_body();
    broken["lead"]["email"] = json!("jane-at-example");
    let (status, email_id) = post(&app, &key, create, &broken).await;
    assert_eq!(status, 422);
    let (status, headers, _) = get(&app, &key, "/api/external/leads?limit=1000").await;
    assert_eq!(status, 422);
    let list_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let (status, scope_id) = post(
        &app,
        &key,
        "/api/external/webhooks",
        &json!({"url": "https://hooks.example/x"}),
    )
    .await;
    assert_eq!(status, 403);
    app.states.usage.flush().await.unwrap();

    let (status, _, page) = get(&app, &key, "/api/external/requests").await;
    assert_eq!(status, 200, "{page}");
    let rows = page["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    // Newest first.
    assert_eq!(rows[0]["request_id"], scope_id.as_str());
    assert_eq!(rows[0]["status"], 403);
    assert_eq!(rows[0]["code"], "insufficient_scope");
    assert_eq!(rows[0]["method"], "POST");
    assert_eq!(rows[0]["path"], "/api/external/webhooks");
    assert_eq!(rows[1]["request_id"], list_id.as_str());
    assert_eq!(rows[1]["path"], "/api/external/leads", "no query string");
    assert_eq!(rows[1]["field"], "limit");
    let email = &rows[2];
    assert_eq!(email["request_id"], email_id.as_str());
    assert_eq!(
        (
            email["status"].as_u64(),
            email["code"].as_str(),
            email["field"].as_str()
        ),
        (Some(422), Some("validation_failed"), Some("lead.email"))
    );
    assert!(
        email["message"].as_str().unwrap().contains("email"),
        "{email}"
    );
    assert_eq!(email["client"], "127.0.0.0/24");
    assert_eq!(email["user_agent"], "usage-test/1.0");
    assert_eq!(email["origin"], Value::Null);
    assert!(email["at"].as_str().unwrap().ends_with('Z'));
    let everything = page.to_string();
    assert!(!everything.contains(&key), "the key is never logged");
    assert!(!everything.contains("jane-at-example"), "nor the body");

    // Paging and filtering.
    let (_, _, first) = get(&app, &key, "/api/external/requests?limit=2").await;
    assert_eq!(first["requests"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, _, rest) = get(
        &app,
        &key,
        &format!("/api/external/requests?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(rest["requests"][0]["request_id"], email_id.as_str());
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, _, only) = get(&app, &key, "/api/external/requests?status=403").await;
    assert_eq!(only["requests"].as_array().unwrap().len(), 1);
    let (_, _, four) = get(&app, &key, "/api/external/requests?status=4xx").await;
    assert_eq!(four["requests"].as_array().unwrap().len(), 3);
    let (_, _, five) = get(&app, &key, "/api/external/requests?status=5xx").await;
    assert_eq!(five["requests"].as_array().unwrap().len(), 0);

    // A flood: 25 failures at once are counted; at most 10 a second are logged and
    // the rest counted as dropped.
    let floods = (0..25).map(|_| post(&app, &key, create, &broken));
    futures_util::future::join_all(floods).await;
    app.states.usage.flush().await.unwrap();
    let (_, _, usage) = get(&app, &key, "/api/external/usage").await;
    let dropped = totals(&usage)["dropped"].as_u64().unwrap();
    let logged = ciq_usage::query::requests(
        &app.db,
        KeyRef {
            key_id,
            user_id: owner,
        },
        100,
        None,
        None,
    )
    .await
    .unwrap()
    .rows
    .len() as u64
        - 3;
    assert_eq!(logged + dropped, 25, "logged {logged}, dropped {dropped}");
    assert!(
        logged <= 20 && dropped >= 5,
        "at most 10 a second (the three above may share one), over one or two seconds: \
         logged {logged}"
    );
    app.stop().await;
}

/// A browser submission of `browser` from the shop's page, by one visitor.
async fn visit(app: &TestApp, browser: &str) -> u16 {
    app.client
        .post(format!("{}/api/external/leads/create", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", browser)
        .header("Origin", SHOP)
        .header("X-Forwarded-For", "198.51.100.7")
        .body(reference_curl_body().to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A key reads its own usage and log only; another account's key sees none of it; a
/// public (browser) key may read neither; a visitor limit's 429 is counted, not logged.
async fn usage_is_the_calling_keys_and_refused_to_public_keys(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.trust_forwarded_for = true).await else {
        return;
    };
    let owner = app.create_user("owner@acme.test").await;
    let (_, key) = app.create_key_with(owner, reader()).await;
    let other = app.create_user("other@else.test").await;
    let (_, stranger) = app.create_key_with(other, reader()).await;
    let (browser_id, browser) = app
        .create_key_with(
            owner,
            NewKey {
                allowed_origins: vec![SHOP.into()],
                visitor_rate_limit_per_minute: Some(1),
                ..NewKey::default()
            },
        )
        .await;
    let mut broken = reference_curl_body();
    broken["lead"]["email"] = json!("nope");
    assert_eq!(
        post(&app, &key, "/api/external/leads/create", &broken)
            .await
            .0,
        422
    );
    assert_eq!(visit(&app, &browser).await, 201);
    assert_eq!(visit(&app, &browser).await, 429, "the visitor limit");
    app.states.usage.flush().await.unwrap();

    let (_, _, mine) = get(&app, &key, "/api/external/usage").await;
    assert_eq!(totals(&mine)["client_error"], 1);
    let (status, _, theirs) = get(&app, &stranger, "/api/external/usage").await;
    assert_eq!(status, 200);
    assert_eq!(theirs["usage"], json!([]), "{theirs}");
    let (_, _, log) = get(&app, &stranger, "/api/external/requests").await;
    assert_eq!(log["requests"], json!([]));
    for path in ["/api/external/usage", "/api/external/requests"] {
        let (status, _, refused) = get(&app, &browser, path).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(refused["error"]["code"], "insufficient_scope");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("server key")
        );
    }
    app.states.usage.flush().await.unwrap();
    let browser_key = KeyRef {
        key_id: browser_id,
        user_id: owner,
    };
    let window =
        ciq_usage::query::Window::new(ciq_usage::Interval::Day, None, None, chrono::Utc::now())
            .unwrap();
    let counted: ciq_usage::Counts =
        ciq_usage::query::buckets(&app.db, ciq_usage::query::Of::Key(browser_key), &window)
            .await
            .unwrap()
            .into_iter()
            .fold(Default::default(), |mut sum, (_, c)| {
                sum.add(&c);
                sum
            });
    assert_eq!(
        (
            counted.success,
            counted.rate_limited,
            counted.client_error,
            counted.leads_created
        ),
        (1, 1, 2, 1),
        "the two 403 reads count as client errors"
    );
    let logged = ciq_usage::query::requests(&app.db, browser_key, 100, None, None)
        .await
        .unwrap();
    let statuses: Vec<i32> = logged.rows.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 403], "the visitor's 429 is not logged");
    assert_eq!(logged.rows[0].client.as_deref(), Some("127.0.0.0/24"));
    app.stop().await;
}

/// Every broken parameter is a 422 naming it, with the rule.
async fn broken_parameters_are_named(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("owner@acme.test").await;
    let (_, key) = app.create_key_with(owner, reader()).await;
    let three_days_ago = (chrono::Utc::now() - chrono::TimeDelta::days(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let cases = [
        ("/api/external/usage?interval=week", "interval"),
        ("/api/external/usage?from=yesterday", "from"),
        ("/api/external/usage?to=soon", "to"),
        (
            "/api/external/usage?from=2026-12-05T10:00:00Z&to=2026-12-05T09:00:00Z",
            "from",
        ),
        (
            &format!("/api/external/usage?from={three_days_ago}"),
            "from",
        ),
        ("/api/external/requests?status=200", "status"),
        ("/api/external/requests?limit=0", "limit"),
        ("/api/external/requests?limit=101", "limit"),
        ("/api/external/requests?cursor=abc", "cursor"),
    ];
    for (path, field) in cases {
        let (status, _, body) = get(&app, &key, path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{path}: {body}"
        );
    }
    // Hours reach back further than minutes.
    let (status, _, _) = get(
        &app,
        &key,
        &format!("/api/external/usage?interval=hour&from={three_days_ago}"),
    )
    .await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// Minutes older than 48 h become hours (every count kept, none twice even when two
/// instances purge at once); buckets past the usage retention and log rows past theirs
/// go; a key keeps its newest 1 000 log rows.
async fn minutes_roll_up_into_hours_and_old_usage_goes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("owner@acme.test").await;
    let (key_id, key) = app.create_key_with(owner, reader()).await;
    let me = KeyRef {
        key_id,
        user_id: owner,
    };
    let recorder = app.states.usage.recorder();
    let now = chrono::Utc::now();
    let hour = ciq_usage::Interval::Hour.floor(now - chrono::TimeDelta::days(3));
    // Three minutes of one hour three days ago, and a minute 100 days ago.
    for minute in [1, 2, 30] {
        let at = hour + chrono::TimeDelta::minutes(minute);
        recorder.answered(me, at, 201, false);
        recorder.answered(me, at, 422, false);
        recorder.leads(me, at, 2, 1);
    }
    recorder.answered(me, now - chrono::TimeDelta::days(100), 201, false);
    // An old log row, and 1 005 recent ones.
    let entry = |at| LogEntry {
        at,
        method: "POST".into(),
        path: "/api/external/leads/create".into(),
        status: 422,
        code: Some("validation_failed".into()),
        field: None,
        message: None,
        request_id: None,
        client: None,
        origin: None,
        user_agent: None,
    };
    recorder.log(me, entry(now - chrono::TimeDelta::days(8)));
    app.states.usage.flush().await.unwrap();
    for i in 0..1_005 {
        recorder.log(me, entry(now - chrono::TimeDelta::seconds(1_005 - i)));
    }
    app.states.usage.flush().await.unwrap();
    let log = ciq_usage::query::requests(&app.db, me, 100, None, None)
        .await
        .unwrap();
    let mut rows = log.rows.len();
    let mut cursor = log.next_cursor;
    while let Some(after) = cursor {
        let page = ciq_usage::query::requests(&app.db, me, 100, Some(after), None)
            .await
            .unwrap();
        rows += page.rows.len();
        cursor = page.next_cursor;
    }
    assert_eq!(rows, 1_000, "a key keeps its newest 1 000 rows");

    // Two instances purging at once count nothing twice.
    let peer = app.spawn_peer().await;
    let (first, second) = tokio::join!(
        ciq_gateway::retention::purge_once(&app.db, Default::default()),
        ciq_gateway::retention::purge_once(&peer.db, Default::default()),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.usage.minutes_rolled_up + second.usage.minutes_rolled_up,
        4,
        "three minutes of one hour, and the 100-day-old one"
    );
    assert_eq!(
        first.usage.buckets + second.usage.buckets,
        1,
        "the 100-day-old hour"
    );
    assert_eq!(
        first.usage.log_rows + second.usage.log_rows,
        0,
        "trimmed already"
    );

    let from =
        (hour - chrono::TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, _, hours) = get(
        &app,
        &key,
        &format!("/api/external/usage?interval=hour&from={from}"),
    )
    .await;
    assert_eq!(status, 200, "{hours}");
    assert_eq!(
        hours["usage"][0],
        json!({"start": hour.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
               "success": 3, "client_error": 3, "rate_limited": 0, "server_error": 0,
               "leads_created": 6, "spam": 3, "dropped": 0})
    );
    let stored: Vec<String> = ciq_entity::KeyUsage::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.granularity)
        .collect();
    assert_eq!(stored, ["hour"], "the minutes are gone, the hour stays");
    peer.stop().await;
    app.stop().await;
}
