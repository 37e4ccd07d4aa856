//! `POST /api/external/leads/upsert`: create, then update like PATCH, by external id;
//! both scopes; the rules of each branch; 16 concurrent upserts of one id; replays.

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

on_every_backend!(
    an_upsert_creates_then_updates_the_fields_given,
    an_upsert_needs_both_scopes_and_an_external_id,
    concurrent_upserts_of_one_external_id_leave_one_lead,
    an_upsert_replays_with_its_idempotency_key,
);

const UPSERT: &str = "/api/external/leads/upsert";

async fn key_with(app: &TestApp, user: uuid::Uuid, scopes: &[Scope]) -> String {
    app.create_key_with(
        user,
        NewKey {
            scopes: Scopes::of(scopes),
            rate_limit_per_minute: Some(10_000),
            ..NewKey::default()
        },
    )
    .await
    .1
}

async fn upsert(
    app: &TestApp,
    key: &str,
    lead: Value,
    headers: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = app
        .client
        .post(format!("{}{UPSERT}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(json!({ "lead": lead }).to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

fn full_lead(external_id: &str) -> Value {
    let mut lead = reference_curl_body()["lead"].clone();
    lead["external_id"] = json!(external_id);
    lead["description"] = json!("first words");
    lead["score"] = json!(4);
    lead
}

async fn an_upsert_creates_then_updates_the_fields_given(app: TestApp) {
    let user = app.create_user("crm@acme.test").await;
    let creator = key_with(&app, user, &[Scope::LeadsCreate, Scope::LeadsWrite]).await;
    let other = key_with(&app, user, &[Scope::LeadsCreate, Scope::LeadsWrite]).await;
    let (status, created, headers) = upsert(&app, &creator, full_lead("crm-7"), &[]).await;
    assert_eq!(status, 201, "{created}");
    assert!(headers.get("x-ratelimit-remaining").is_some());
    assert_eq!(created["created"], true);
    let id = created["lead"]["id"].clone();
    // The same external id: the fields given replace, null clears, the rest stays.
    let (status, updated, _) = upsert(
        &app,
        &other,
        json!({"external_id": "crm-7", "status": "qualified", "description": null, "name": "Jane Q. Doe"}),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["created"], false);
    let lead = &updated["lead"];
    assert_eq!(lead["id"], id);
    assert_eq!(
        (lead["status"].clone(), lead["name"].clone()),
        (json!("qualified"), json!("Jane Q. Doe"))
    );
    assert_eq!(lead["description"], Value::Null);
    assert_eq!(lead["score"], 4);
    assert_eq!(lead["email"], created["lead"]["email"]);
    assert_eq!(
        lead["api_key_id"], created["lead"]["api_key_id"],
        "the creator stays"
    );
    assert_ne!(lead["updated_at"], created["lead"]["updated_at"]);
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 1);
    // The update rules hold on the update path too.
    let (status, broken, _) = upsert(
        &app,
        &other,
        json!({"external_id": "crm-7", "email": "nope", "name": null}),
        &[],
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = broken["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["lead.name", "lead.email"]);
    // No lead has this id and the body is no whole lead: the create rules say what is missing.
    let (status, missing, _) = upsert(
        &app,
        &other,
        json!({"external_id": "crm-8", "status": "lost"}),
        &[],
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = missing["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"lead.name") && fields.contains(&"lead.industry"),
        "{missing}"
    );
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 1);
    // Another account's lead with the same external id is another lead.
    let (_, stranger) = app
        .user_with_key_like(
            "other@acme.test",
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    let (status, theirs, _) = upsert(&app, &stranger, full_lead("crm-7"), &[]).await;
    assert_eq!(status, 201);
    assert_ne!(theirs["lead"]["id"], id);
}

async fn an_upsert_needs_both_scopes_and_an_external_id(app: TestApp) {
    let user = app.create_user("crm@acme.test").await;
    for (scopes, lacking) in [
        (vec![Scope::LeadsCreate], "leads:write"),
        (vec![Scope::LeadsWrite, Scope::LeadsRead], "leads:create"),
    ] {
        let key = key_with(&app, user, &scopes).await;
        let (status, body, _) = upsert(&app, &key, full_lead("crm-1"), &[]).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"]["code"], "insufficient_scope");
        assert!(body["error"]["message"].as_str().unwrap().contains(lacking));
    }
    let key = key_with(&app, user, &[Scope::LeadsCreate, Scope::LeadsWrite]).await;
    let mut lead = full_lead("x");
    lead.as_object_mut().unwrap().remove("external_id");
    let (status, body, _) = upsert(&app, &key, lead, &[]).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"][0]["field"], "lead.external_id");
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 0);
}

async fn concurrent_upserts_of_one_external_id_leave_one_lead(app: TestApp) {
    let user = app.create_user("crm@acme.test").await;
    let key = key_with(&app, user, &[Scope::LeadsCreate, Scope::LeadsWrite]).await;
    let racers = (0..16).map(|i| {
        let mut lead = full_lead("crm-race");
        lead["name"] = json!(format!("Racer {i}"));
        let (app, key) = (&app, &key);
        async move { upsert(app, key, lead, &[]).await }
    });
    let answers = futures_util::future::join_all(racers).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        15,
        "{statuses:?}"
    );
    let rows = ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::ExternalId.eq("crm-race"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].name.starts_with("Racer "),
        "one of the bodies: {}",
        rows[0].name
    );
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(_, b, _)| b["lead"]["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1);
}

async fn an_upsert_replays_with_its_idempotency_key(app: TestApp) {
    let user = app.create_user("crm@acme.test").await;
    let key = key_with(&app, user, &Scope::ALL).await;
    let (status, first, _) = upsert(
        &app,
        &key,
        full_lead("crm-1"),
        &[("Idempotency-Key", "u-1")],
    )
    .await;
    assert_eq!(status, 201);
    let (status, again, headers) = upsert(
        &app,
        &key,
        full_lead("crm-1"),
        &[("Idempotency-Key", "u-1")],
    )
    .await;
    assert_eq!((status, &again), (201, &first));
    assert_eq!(headers["idempotent-replayed"], "true");
    let change = json!({"external_id": "crm-1", "status": "contacted"});
    let (status, updated, _) =
        upsert(&app, &key, change.clone(), &[("Idempotency-Key", "u-2")]).await;
    assert_eq!(status, 200);
    let (status, replayed, _) =
        upsert(&app, &key, change.clone(), &[("Idempotency-Key", "u-2")]).await;
    assert_eq!(
        (status, &replayed),
        (200, &updated),
        "an update replays as an update"
    );
    // Erased since: the replay is 410, and nothing is made again.
    let id = first["lead"]["id"].as_str().unwrap();
    let resp = app
        .client
        .delete(format!("{}/api/external/leads/{id}", app.base_url))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, gone, _) = upsert(
        &app,
        &key,
        full_lead("crm-1"),
        &[("Idempotency-Key", "u-1")],
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(gone["error"]["code"], "lead_deleted");
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 0);
}
