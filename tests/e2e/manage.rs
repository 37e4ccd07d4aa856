//! Managing leads through the API: read, page, filter, erase; scopes; external ids;
//! and one account never reaching another's leads.

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

on_every_backend!(
    one_account_never_reaches_anothers_leads,
    each_operation_needs_its_scope,
    paging_returns_every_lead_that_existed_exactly_once,
    every_filter_narrows_the_listing,
    concurrent_creates_of_one_external_id_make_one_lead,
    an_erased_lead_leaves_no_trace_and_its_replay_is_gone,
    broken_queries_name_their_parameter,
    an_update_follows_the_create_rules_and_clears_with_null,
    a_listed_lead_is_the_stored_lead_field_for_field,
    a_row_the_gateway_cannot_read_fails_the_page_plainly,
);

/// A user whose key has every scope: `(user id, key)`.
async fn manager(app: &TestApp, email: &str) -> (uuid::Uuid, String) {
    app.user_with_key_like(
        email,
        NewKey {
            scopes: Scopes::of(&Scope::ALL),
            rate_limit_per_minute: Some(100_000),
            ..NewKey::default()
        },
    )
    .await
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, key: &str) -> (u16, Value) {
    let resp = app
        .client
        .request(method, format!("{}{path}", app.base_url))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, key).await
}

async fn create(app: &TestApp, key: &str, lead: Value) -> Value {
    let resp = app.post_lead(Some(key), &json!({ "lead": lead })).await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["lead"].clone()
}

fn lead(name: &str) -> Value {
    let mut lead = reference_curl_body()["lead"].clone();
    lead["name"] = json!(name);
    lead
}

async fn one_account_never_reaches_anothers_leads(app: TestApp) {
    let (_, alice) = manager(&app, "alice@acme.test").await;
    let (_, bob) = manager(&app, "bob@acme.test").await;
    let hers = create(&app, &alice, lead("Hers")).await;
    let id = hers["id"].as_str().unwrap();
    assert!(hers["api_key_id"].is_string());
    assert_eq!(hers["updated_at"], hers["created_at"]);
    let (status, body) = get(&app, &format!("/api/external/leads/{id}"), &alice).await;
    assert_eq!((status, &body["lead"]["id"]), (200, &json!(id)));
    for (method, expected) in [(reqwest::Method::GET, 404), (reqwest::Method::DELETE, 404)] {
        let (status, body) = call(&app, method, &format!("/api/external/leads/{id}"), &bob).await;
        assert_eq!(status, expected);
        assert_eq!(body["error"]["code"], "lead_not_found");
    }
    // Exactly what a missing id (or one that is not an id) answers.
    let missing = uuid::Uuid::now_v7();
    let (_, for_missing) = get(&app, &format!("/api/external/leads/{missing}"), &bob).await;
    let (_, for_hers) = get(&app, &format!("/api/external/leads/{id}"), &bob).await;
    assert_eq!(for_missing, for_hers);
    assert_eq!(
        get(&app, "/api/external/leads/not-an-id", &bob).await.0,
        404
    );
    let (status, page) = get(&app, "/api/external/leads", &bob).await;
    assert_eq!(status, 200);
    assert_eq!(page["leads"], json!([]));
    assert_eq!(
        get(&app, &format!("/api/external/leads/{id}"), &alice)
            .await
            .0,
        200
    );
}

async fn each_operation_needs_its_scope(app: TestApp) {
    let (user, create_only) = app.user_with_key("owner@acme.test").await;
    let read_only = app.read_only_key(user).await;
    let created = create(&app, &create_only, lead("Jane")).await;
    let id = created["id"].as_str().unwrap();
    for (method, path, key, scope) in [
        (
            reqwest::Method::GET,
            "/api/external/leads".to_owned(),
            &create_only,
            "leads:read",
        ),
        (
            reqwest::Method::GET,
            format!("/api/external/leads/{id}"),
            &create_only,
            "leads:read",
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/external/leads/{id}"),
            &read_only,
            "leads:write",
        ),
    ] {
        let (status, body) = call(&app, method.clone(), &path, key).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(body["error"]["code"], "insufficient_scope");
        assert!(body["error"]["message"].as_str().unwrap().contains(scope));
    }
    let resp = app
        .post_lead(Some(&read_only), &reference_curl_body())
        .await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("x-ratelimit-remaining").is_some());
    assert_eq!(
        get(&app, &format!("/api/external/leads/{id}"), &read_only)
            .await
            .0,
        200
    );
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 1);
}

pub(crate) async fn paging_returns_every_lead_that_existed_exactly_once(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    let mut existing = std::collections::HashSet::new();
    for i in 0..250 {
        existing.insert(
            create(&app, &key, lead(&format!("Lead {i}"))).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Another client keeps creating while the walk goes on.
    let writer = {
        let (client, url, key) = (app.client.clone(), app.base_url.clone(), key.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                let mut body = reference_curl_body();
                body["lead"]["name"] = json!(format!("Meanwhile {i}"));
                client
                    .post(format!("{url}/api/external/leads/create"))
                    .header("Content-Type", "application/json")
                    .header("X-API-Key", &key)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut cursor: Option<String> = None;
    let mut previous: Option<(String, String)> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/external/leads?limit=37&cursor={c}"),
            None => "/api/external/leads?limit=37".to_owned(),
        };
        let (status, page) = get(&app, &path, &key).await;
        assert_eq!(status, 200, "{page}");
        for lead in page["leads"].as_array().unwrap() {
            let here = (
                lead["created_at"].as_str().unwrap().to_owned(),
                lead["id"].as_str().unwrap().to_owned(),
            );
            if let Some(before) = &previous {
                assert!(
                    here < *before,
                    "not newest first: {here:?} after {before:?}"
                );
            }
            previous = Some(here);
            *seen
                .entry(lead["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    writer.await.unwrap();
    for id in &existing {
        assert_eq!(seen.get(id), Some(&1), "lead {id}");
    }
    assert!(seen.values().all(|&n| n == 1));
}

async fn every_filter_narrows_the_listing(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    let mut first = lead("First");
    first["status"] = json!("qualified");
    first["source"] = json!("Referral");
    first["email"] = json!("First.Person@Example.com");
    first["external_id"] = json!("crm-1");
    let first = create(&app, &key, first).await;
    create(&app, &key, lead("Second")).await;
    let names = |page: &Value| ciq_e2e::leads_field(page, "name");
    let between = first["created_at"].as_str().unwrap();
    for (query, expected) in [
        ("status=qualified", vec!["First"]),
        ("status=new", vec!["Second"]),
        ("source=Referral", vec!["First"]),
        ("email=first.person@example.com", vec!["First"]),
        ("external_id=crm-1", vec!["First"]),
        ("external_id=crm-2", vec![]),
        ("", vec!["Second", "First"]),
    ] {
        let (status, page) = get(&app, &format!("/api/external/leads?{query}"), &key).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(names(&page), expected, "{query}");
    }
    let (_, page) = get(
        &app,
        &format!("/api/external/leads?created_after={between}"),
        &key,
    )
    .await;
    // Inclusive: the first lead's own time lets it in.
    assert_eq!(names(&page), ["Second", "First"]);
    let (_, page) = get(
        &app,
        &format!("/api/external/leads?created_before={between}"),
        &key,
    )
    .await;
    assert_eq!(names(&page), Vec::<String>::new());
}

async fn concurrent_creates_of_one_external_id_make_one_lead(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    let mut body = lead("Jane");
    body["external_id"] = json!("crm-4711");
    let request = json!({ "lead": body.clone() });
    let attempts = (0..16).map(|_| app.post_lead(Some(&key), &request));
    let answers = futures_util::future::join_all(attempts).await;
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for resp in answers {
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        match status {
            201 => created.push(body["lead"]["id"].as_str().unwrap().to_owned()),
            409 => {
                assert_eq!(body["error"]["code"], "duplicate_lead");
                duplicates.push(body["error"]["lead_id"].as_str().unwrap().to_owned());
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((created.len(), duplicates.len()), (1, 15));
    assert!(duplicates.iter().all(|id| *id == created[0]));
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 1);
    // Another account may use the same external id.
    let (_, other) = manager(&app, "other@acme.test").await;
    create(&app, &other, body).await;
}

pub(crate) async fn an_erased_lead_leaves_no_trace_and_its_replay_is_gone(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    let send = || {
        app.client
            .post(format!("{}/api/external/leads/create", app.base_url))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .header("Idempotency-Key", "order-1")
            .body(reference_curl_body().to_string())
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let id = first["lead"]["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/external/leads/{id}"),
        &key,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 0);
    let remembered = ciq_entity::IdempotencyKey::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(remembered.len(), 1);
    assert!(
        remembered[0].response_body.is_none(),
        "the lead's data stayed behind"
    );
    // The replay neither creates the lead again nor shows it.
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 410);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"]["code"], "lead_deleted");
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(
        get(&app, &format!("/api/external/leads/{id}"), &key)
            .await
            .0,
        404
    );
    let (status, body) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/external/leads/{id}"),
        &key,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("lead_not_found"))
    );
}

async fn broken_queries_name_their_parameter(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("status=won", "status"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01", "created_before"),
    ] {
        let (status, body) = get(&app, &format!("/api/external/leads?{query}"), &key).await;
        assert_eq!(status, 422, "{query}");
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
}

async fn patch(app: &TestApp, key: &str, id: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .patch(format!("{}/api/external/leads/{id}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn an_update_follows_the_create_rules_and_clears_with_null(app: TestApp) {
    let (_, key) = manager(&app, "owner@acme.test").await;
    let mut full = reference_curl_body()["lead"].clone();
    full["score"] = json!(7);
    full["description"] = json!("Interested");
    full["external_id"] = json!("crm-1");
    let created = create(&app, &key, full).await;
    let id = created["id"].as_str().unwrap();
    // Change some fields, empty two optional ones; the rest stays.
    let (status, body) = patch(
        &app,
        &key,
        id,
        json!({"lead": {"status": "qualified", "budget": 19.99, "score": null, "description": null}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated = &body["lead"];
    assert_eq!(updated["status"], "qualified");
    assert_eq!(updated["budget"], 19.99);
    assert_eq!(updated["score"], Value::Null);
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["name"], created["name"]);
    assert_eq!(updated["external_id"], "crm-1");
    assert_eq!(updated["api_key_id"], created["api_key_id"]);
    assert!(updated["updated_at"].as_str().unwrap() >= created["updated_at"].as_str().unwrap());
    let (_, stored) = get(&app, &format!("/api/external/leads/{id}"), &key).await;
    assert_eq!(&stored["lead"], updated);
    // Required fields cannot be emptied, rules hold, unknown fields are refused: all at once.
    let (status, body) = patch(
        &app,
        &key,
        id,
        json!({"lead": {"name": null, "email": "nope", "status": null, "score": 11, "colour": "red"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in [
        "lead.name",
        "lead.email",
        "lead.status",
        "lead.score",
        "lead.colour",
    ] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    let (_, unchanged) = get(&app, &format!("/api/external/leads/{id}"), &key).await;
    assert_eq!(&unchanged["lead"], updated, "nothing was half written");
    // Another lead's external id is taken; a missing lead and another account's are 404.
    let other = create(&app, &key, lead("Other")).await;
    let (status, body) = patch(
        &app,
        &key,
        other["id"].as_str().unwrap(),
        json!({"lead": {"external_id": "crm-1"}}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("duplicate_lead"))
    );
    assert_eq!(body["error"]["lead_id"], json!(id));
    let (_, stranger) = manager(&app, "stranger@acme.test").await;
    let (status, _) = patch(&app, &stranger, id, json!({"lead": {"status": "lost"}})).await;
    assert_eq!(status, 404);
    let missing = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        patch(&app, &key, &missing, json!({"lead": {"status": "lost"}}))
            .await
            .0,
        404
    );
    // A create-only key may not change leads.
    let (user, _) = (app.create_user("c@acme.test").await, ());
    let (_, create_only) = app.create_key_with(user, NewKey::default()).await;
    assert_eq!(
        patch(&app, &create_only, id, json!({"lead": {"status": "lost"}}))
            .await
            .0,
        403
    );
}

/// A page reads its rows its own way on PostgreSQL (by position, through sqlx); a single
/// lead is read by sea-orm. Both must render every field the same: each column filled
/// and each nullable one empty, a spam lead, attribution and consent.
async fn a_listed_lead_is_the_stored_lead_field_for_field(app: TestApp) {
    use ciq_entity::lead::{ActiveModel, LeadStatus};
    use sea_orm::ActiveValue::Set;
    let (user_id, key) = manager(&app, "fields@example.com").await;
    let at = |s: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(1_764_000_000_000 + s * 1_000)
            .unwrap()
    };
    let full = ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user_id),
        api_key_id: Set(None),
        name: Set("Zoë Ünicode \"quoted\"".into()),
        email: Set("zoe@example.com".into()),
        phone: Set(Some("15551234567".into())),
        source: Set("Website Form".into()),
        industry: Set("Retail".into()),
        score: Set(Some(7)),
        status: Set(LeadStatus::Qualified),
        monthly_revenue_cents: Set(Some(5_000_000)),
        budget_cents: Set(Some(-1)), // not valid input; stored all the same
        description: Set(Some("line one\nline two".into())),
        created_at: Set(at(1)),
        external_id: Set(Some("crm-1".into())),
        updated_at: Set(Some(at(5))),
        spam_reason: Set(None),
        spam_at: Set(None),
        attribution: Set(Some(r#"{"utm_source":"google","utm_campaign":"spring"}"#.into())),
        consent: Set(Some(
            r#"{"text":"I agree","granted":true,"granted_at":"2025-11-24T16:00:00.000Z","ip":"203.0.113.9"}"#
                .into(),
        )),
    };
    let bare = ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user_id),
        name: Set("Bare".into()),
        email: Set("bare@example.com".into()),
        source: Set("API".into()),
        industry: Set("Other".into()),
        status: Set(LeadStatus::New),
        created_at: Set(at(2)),
        updated_at: Set(None),
        ..Default::default()
    };
    let spam = ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user_id),
        name: Set("Spam".into()),
        email: Set("spam@example.com".into()),
        source: Set("Website Form".into()),
        industry: Set("Other".into()),
        status: Set(LeadStatus::Lost),
        created_at: Set(at(3)),
        updated_at: Set(Some(at(3))),
        spam_reason: Set(Some("honeypot".into())),
        spam_at: Set(Some(at(4))),
        ..Default::default()
    };
    ciq_entity::Lead::insert_many([full, bare, spam])
        .exec(&app.db)
        .await
        .unwrap();

    let mut listed = Vec::new();
    for query in ["?limit=10", "?limit=10&spam=true"] {
        let (status, page) = get(&app, &format!("/api/external/leads{query}"), &key).await;
        assert_eq!(status, 200, "{page}");
        listed.extend(page["leads"].as_array().unwrap().iter().cloned());
    }
    let names: Vec<&str> = listed.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bare", "Zoë Ünicode \"quoted\"", "Spam"]);
    for lead in &listed {
        let (status, one) = get(
            &app,
            &format!("/api/external/leads/{}", lead["id"].as_str().unwrap()),
            &key,
        )
        .await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(lead, &one["lead"]);
    }
    let full = &listed[1];
    assert_eq!(full["status"], "qualified");
    assert_eq!(full["score"], 7);
    assert_eq!(full["monthly_revenue"], json!(50000));
    assert_eq!(full["budget"], json!(-0.01));
    assert_eq!(full["external_id"], "crm-1");
    assert_eq!(full["description"], "line one\nline two");
    assert_eq!(full["attribution"]["utm_campaign"], "spring");
    assert_eq!(full["consent"]["ip"], "203.0.113.9");
    assert_eq!(listed[0]["phone"], Value::Null);
    assert_eq!(listed[2]["spam"]["reason"], "honeypot");
}

/// A stored status the gateway does not know (a row written by hand, a newer version's
/// status) fails the page with the store's JSON error on every backend, whichever way the
/// page is read; nothing of the row or the statement is in the answer.
async fn a_row_the_gateway_cannot_read_fails_the_page_plainly(app: TestApp) {
    use sea_orm::ConnectionTrait;
    let (_, key) = manager(&app, "unreadable@example.com").await;
    let made = create(&app, &key, lead("Odd Status")).await;
    let id: uuid::Uuid = made["id"].as_str().unwrap().parse().unwrap();
    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE leads SET status = 'archived' WHERE id = {}",
                ciq_store::placeholder(backend, 1)
            ),
            [id.into()],
        ))
        .await
        .unwrap();
    let (status, body) = get(&app, "/api/external/leads", &key).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("archived") && !text.contains("SELECT"),
        "{text}"
    );
}

/// A page's rows are decoded without a type check per value: the column types are
/// checked once per page, from the result's description, so a column whose type is not
/// the model's (a schema the gateway was not built for) fails the page with the column
/// named — also when the first row holds NULL there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_column_type_is_not_the_models_fails_naming_the_column() {
    use sea_orm::ConnectionTrait;
    let Some(app) = TestApp::spawn(ciq_e2e::Backend::Postgres).await else {
        return;
    };
    let (user_id, key) = manager(&app, "types@example.com").await;
    // The newest lead (the page's first row) has no score: its NULL says nothing of the
    // column's type, which must be checked all the same.
    for score in [Some(5), None] {
        let mut body = reference_curl_body();
        body["lead"]["score"] = json!(score);
        let (status, answer) = app
            .post_json("/api/external/leads/create", &key, &[], &body)
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let filter = ciq_leads::store::LeadFilter::default();
    // Before any page was read (a connection that had prepared the page's statement
    // would refuse it after the change: "cached plan must not change result type").
    app.db
        .execute_unprepared("ALTER TABLE leads ALTER COLUMN score TYPE text")
        .await
        .unwrap();
    let err = ciq_leads::store::list(&app.db, user_id, &filter, None, 10)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("lead column score is of type TEXT"),
        "{err}"
    );
}
