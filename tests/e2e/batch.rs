//! `POST /api/external/leads/batch`: per-item answers, external ids inside and across
//! batches, the request rules, idempotent replays (also after an erase), one count
//! against the limit, and browser keys.

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

on_every_backend!(
    each_item_is_answered_and_only_the_good_ones_are_stored,
    external_ids_are_unique_within_and_across_batches,
    the_request_rules_refuse_the_whole_batch,
    a_replay_is_the_same_answer_and_an_erased_item_is_gone,
    a_batch_counts_once_and_takes_its_own_body_limit,
    a_browser_key_may_post_a_batch_from_its_origin,
    every_value_is_stored_as_it_was_sent,
    a_batch_the_store_refuses_is_answered_503_and_stores_nothing,
);

const BATCH: &str = "/api/external/leads/batch";

fn lead(name: &str) -> Value {
    let mut lead = reference_curl_body()["lead"].clone();
    lead["name"] = json!(name);
    lead
}

pub(crate) async fn full_key(app: &TestApp, email: &str) -> (uuid::Uuid, String) {
    app.user_with_key_like(
        email,
        NewKey {
            scopes: Scopes::of(&Scope::ALL),
            rate_limit_per_minute: Some(10_000),
            ..NewKey::default()
        },
    )
    .await
}

async fn post(
    app: &TestApp,
    key: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}{BATCH}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

async fn stored(app: &TestApp) -> Vec<ciq_entity::lead::Model> {
    ciq_entity::Lead::find().all(&app.db).await.unwrap()
}

async fn each_item_is_answered_and_only_the_good_ones_are_stored(app: TestApp) {
    let (user, key) = full_key(&app, "crm@acme.test").await;
    let mut bad = lead("Bad");
    bad["email"] = json!("not-an-email");
    bad["score"] = json!(11);
    let body = json!({"leads": [lead("First"), bad, "not an object", lead("Last")]});
    let resp = post(&app, &key, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-ratelimit-remaining").is_some());
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            answer["success"].clone(),
            answer["created"].clone(),
            answer["failed"].clone()
        ),
        (json!(true), json!(2), json!(2))
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[0]["lead"]["name"], "First");
    assert_eq!(results[0]["lead"]["user_id"], user.to_string());
    assert_eq!(results[1]["status"], 422);
    assert_eq!(results[1]["error"]["code"], "validation_failed");
    let fields: Vec<&str> = results[1]["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["leads[1].email", "leads[1].score"]);
    assert_eq!(results[2]["error"]["details"][0]["field"], "leads[2]");
    assert_eq!(results[3]["status"], 201);
    assert!(results[1].get("lead").is_none() && results[0].get("error").is_none());
    let rows = stored(&app).await;
    let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["First", "Last"]);
    // The answer's leads are the stored ones.
    let first = rows.iter().find(|r| r.name == "First").unwrap();
    assert_eq!(results[0]["lead"]["id"], first.id.to_string());
    // Every item refused: still 200, nothing stored.
    let resp = post(&app, &key, &json!({"leads": [{"name": ""}]}), &[]).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        (answer["created"].clone(), answer["failed"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(stored(&app).await.len(), 2);
}

async fn external_ids_are_unique_within_and_across_batches(app: TestApp) {
    let (_, key) = full_key(&app, "crm@acme.test").await;
    let with_id = |name: &str, id: &str| {
        let mut l = lead(name);
        l["external_id"] = json!(id);
        l
    };
    let mut invalid_first = with_id("Invalid", "crm-1");
    invalid_first["email"] = json!("nope");
    let body = json!({"leads": [invalid_first, with_id("A", "crm-1"), with_id("B", "crm-1"), with_id("C", "crm-2")]});
    let answer: Value = post(&app, &key, &body, &[]).await.json().await.unwrap();
    let r = &answer["results"];
    // The first item that is created wins; later ones name it.
    assert_eq!(r[0]["status"], 422);
    assert_eq!(r[1]["status"], 201);
    assert_eq!(r[2]["status"], 409);
    assert_eq!(r[2]["error"]["code"], "duplicate_lead");
    assert_eq!(r[2]["error"]["lead_id"], r[1]["lead"]["id"]);
    assert_eq!(r[3]["status"], 201);
    // A second batch: the account already holds crm-1 and crm-2.
    let answer: Value = post(
        &app,
        &key,
        &json!({"leads": [with_id("D", "crm-2"), with_id("E", "crm-3"), with_id("F", "crm-2")]}),
        &[],
    )
    .await
    .json()
    .await
    .unwrap();
    let s = &answer["results"];
    assert_eq!(
        (
            s[0]["status"].clone(),
            s[1]["status"].clone(),
            s[2]["status"].clone()
        ),
        (json!(409), json!(201), json!(409))
    );
    assert_eq!(s[0]["error"]["lead_id"], r[3]["lead"]["id"]);
    assert_eq!(s[2]["error"]["lead_id"], r[3]["lead"]["id"]);
    // And a create with one of them.
    let resp = app
        .post_lead(Some(&key), &json!({"lead": with_id("G", "crm-3")}))
        .await;
    assert_eq!(resp.status(), 409);
    let names: Vec<String> = stored(&app).await.into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // 8 concurrent batches of the same external id: one lead, 7 answers naming it.
    let concurrent = (0..8).map(|i| {
        let body = json!({"leads": [with_id(&format!("Racer {i}"), "crm-race")]});
        let (app, key) = (&app, &key);
        async move {
            post(app, key, &body, &[])
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(concurrent).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|a| a["results"][0]["status"] == 201)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let winner = &created[0]["results"][0]["lead"]["id"];
    for a in &answers {
        if a["results"][0]["status"] != 201 {
            assert_eq!(a["results"][0]["status"], 409);
            assert_eq!(&a["results"][0]["error"]["lead_id"], winner);
        }
    }
    let racers = ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::ExternalId.eq("crm-race"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(racers, 1);
}

async fn the_request_rules_refuse_the_whole_batch(app: TestApp) {
    let (_, key) = full_key(&app, "crm@acme.test").await;
    let too_many: Vec<Value> = (0..101).map(|i| lead(&format!("L{i}"))).collect();
    for (body, field, said) in [
        (json!({"leads": too_many}), "leads", "(101 given)"),
        (json!({"leads": []}), "leads", "(0 given)"),
        (
            json!({"leads": {"name": "x"}}),
            "leads",
            "must be an array of 1 to 100 leads",
        ),
        (
            json!({"lead": lead("One")}),
            "lead",
            "is not a field of a batch",
        ),
    ] {
        let resp = post(&app, &key, &body, &[]).await;
        assert_eq!(resp.status(), 422, "{body}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "validation_failed");
        let detail = answer["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(
            detail["message"].as_str().unwrap().contains(said),
            "{answer}"
        );
    }
    let resp = app
        .client
        .post(format!("{}{BATCH}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &key)
        .body("{\"leads\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .client
        .post(format!("{}{BATCH}", app.base_url))
        .header("Content-Type", "text/plain")
        .header("X-API-Key", &key)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // A read-only key may not create.
    let user = app.create_user("reader@acme.test").await;
    let reader = app.read_only_key(user).await;
    let resp = post(&app, &reader, &json!({"leads": [lead("x")]}), &[]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_scope"
    );
    assert_eq!(stored(&app).await.len(), 0);
}

async fn a_replay_is_the_same_answer_and_an_erased_item_is_gone(app: TestApp) {
    let (_, key) = full_key(&app, "crm@acme.test").await;
    let mut bad = lead("Bad");
    bad["email"] = json!("nope");
    let body = json!({"leads": [lead("Kept"), bad, lead("Erased")]});
    let first = post(&app, &key, &body, &[("Idempotency-Key", "sync-42")]).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = post(&app, &key, &body, &[("Idempotency-Key", "sync-42")]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(stored(&app).await.len(), 2, "the replay created nothing");
    // Another body under the same key.
    let resp = post(
        &app,
        &key,
        &json!({"leads": [lead("Other")]}),
        &[("Idempotency-Key", "sync-42")],
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_key_reused"
    );
    // Erase one of the batch's leads: its item is gone from the remembered answer.
    let erased = first["results"][2]["lead"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .client
        .delete(format!("{}/api/external/leads/{erased}", app.base_url))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let remembered = ciq_entity::IdempotencyKey::find()
        .all(&app.db)
        .await
        .unwrap();
    assert!(remembered.iter().all(|r| {
        !r.response_body
            .clone()
            .unwrap_or_default()
            .contains(&erased)
    }));
    assert!(remembered.iter().all(|r| {
        !r.response_body
            .clone()
            .unwrap_or_default()
            .contains("\"Erased\"")
    }));
    let replay: Value = post(&app, &key, &body, &[("Idempotency-Key", "sync-42")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["results"][0], first["results"][0]);
    assert_eq!(replay["results"][1], first["results"][1]);
    assert_eq!(replay["results"][2]["status"], 410);
    assert_eq!(replay["results"][2]["error"]["code"], "lead_deleted");
    assert_eq!(
        (replay["created"].clone(), replay["failed"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(stored(&app).await.len(), 1, "never created again");
    assert_eq!(
        ciq_entity::IdempotencyLead::find()
            .count(&app.db)
            .await
            .unwrap(),
        1
    );
}

async fn a_batch_counts_once_and_takes_its_own_body_limit(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "crm@acme.test",
            NewKey {
                rate_limit_per_minute: Some(5),
                ..NewKey::default()
            },
        )
        .await;
    // 100 leads with long descriptions: far over create's 64 KiB, within the batch's.
    let leads: Vec<Value> = (0..100)
        .map(|i| {
            let mut l = lead(&format!("Bulk {i}"));
            l["description"] = json!("x".repeat(2000));
            l
        })
        .collect();
    let body = json!({ "leads": leads });
    assert!(body.to_string().len() > 64 * 1024);
    let resp = post(&app, &key, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-ratelimit-remaining"],
        "4",
        "100 leads, one request"
    );
    assert_eq!(resp.json::<Value>().await.unwrap()["created"], 100);
    assert_eq!(stored(&app).await.len(), 100);
    // Over the batch's own limit: 413 before any lead work.
    // Just over it (a client still sending is answered, not cut off).
    let huge = json!({"leads": [{"description": "x".repeat(100 * 64 * 1024)}]});
    let resp = post(&app, &key, &huge, &[]).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}

async fn a_browser_key_may_post_a_batch_from_its_origin(app: TestApp) {
    let (_, key) = app
        .user_with_key_like(
            "web@acme.test",
            NewKey {
                allowed_origins: vec!["https://shop.example".into()],
                ..NewKey::default()
            },
        )
        .await;
    let resp = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}{BATCH}", app.base_url))
        .header("Origin", "https://anyone.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://anyone.example"
    );
    let body = json!({"leads": [lead("Web")]});
    let resp = post(&app, &key, &body, &[("Origin", "https://shop.example")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let resp = post(&app, &key, &body, &[("Origin", "https://evil.example")]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "origin_not_allowed"
    );
    assert_eq!(stored(&app).await.len(), 1);
}

/// A batch the store refuses (here its table is renamed away for the moment) is
/// answered 503 without the store's reason, and none of its leads is stored (one
/// statement, all or none). It was no outage: once the table is back, the next batch is
/// stored at once.
async fn a_batch_the_store_refuses_is_answered_503_and_stores_nothing(app: TestApp) {
    let (user, key) = full_key(&app, "refused@acme.test").await;
    let first = post(&app, &key, &json!({"leads": [lead("Kept")]}), &[]).await;
    assert_eq!(first.status(), 200);
    app.db
        .execute_unprepared("ALTER TABLE leads RENAME TO leads_away")
        .await
        .unwrap();
    let body = json!({"leads": [lead("A"), lead("B"), lead("C")]});
    let refused = post(&app, &key, &body, &[]).await;
    app.db
        .execute_unprepared("ALTER TABLE leads_away RENAME TO leads")
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let text = refused.text().await.unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"]["code"], "service_unavailable", "{text}");
    assert!(
        !text.contains("leads"),
        "the store's reason stays in the log: {text}"
    );
    let names: Vec<String> = stored(&app).await.into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["Kept"], "nothing of the refused batch");
    let next = post(&app, &key, &body, &[]).await;
    assert_eq!(next.status(), 200);
    assert_eq!(next.json::<Value>().await.unwrap()["created"], 3);
    let stored_for_user = ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::UserId.eq(user))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored_for_user, 4);
}

/// A batch goes to PostgreSQL as one array per column: text with what the array syntax
/// uses (quotes, backslashes, braces, commas, the word NULL) and absent values arrive as
/// they were sent, next to a lead whose every optional field is set.
async fn every_value_is_stored_as_it_was_sent(app: TestApp) {
    let (user, key) = full_key(&app, "values@acme.test").await;
    let tricky = "Zoë \"Q\" O'Brien \\ {a,b} NULL";
    let text = "NULL\n{\"x\": [1, 2]}\t\\N ,}";
    let mut sparse = json!({
        "name": tricky, "email": "zoe@acme.test", "source": "CSV", "industry": "Retail",
        "description": text, "external_id": "ext \"1\", {NULL}"
    });
    sparse["phone"] = Value::Null;
    let full = lead("Full");
    let resp = post(&app, &key, &json!({"leads": [sparse, full]}), &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["created"], 2);
    let rows = stored(&app).await;
    let zoe = rows.iter().find(|r| r.email == "zoe@acme.test").unwrap();
    assert_eq!(
        (
            zoe.name.as_str(),
            zoe.description.as_deref(),
            zoe.external_id.as_deref(),
            zoe.phone.as_deref(),
            zoe.score,
            zoe.monthly_revenue_cents,
            zoe.user_id,
        ),
        (
            tricky,
            Some(text),
            Some("ext \"1\", {NULL}"),
            None,
            None,
            None,
            user
        )
    );
    let full = rows.iter().find(|r| r.name == "Full").unwrap();
    let sent = &reference_curl_body()["lead"];
    assert_eq!(full.phone.as_deref(), sent["phone"].as_str());
    assert_eq!(full.score.map(i64::from), sent["score"].as_i64());
    assert_eq!(
        full.monthly_revenue_cents,
        sent["monthly_revenue"].as_i64().map(|v| v * 100)
    );
    assert_eq!(full.description.as_deref(), sent["description"].as_str());
    assert!(full.created_at <= chrono::Utc::now() && zoe.api_key_id.is_some());
}
