//! Settings → Leads, acting on leads: search by the start of a name or email (any
//! case, served by an index), the total, a lead's edit form under the API's update
//! rules, its status, deletion after a confirmation, and the same for many leads at
//! once — each announced to webhooks as the API's would be, none reaching another
//! account's leads, every form behind the session's CSRF token.

use ciq_admin::keys::NewKey;
use ciq_e2e::console::{get_html, post_form, signed_in};
use ciq_e2e::fixtures::reference_curl_body;
use ciq_e2e::{Backend, TestApp, on_every_backend};
use ciq_entity::webhook_delivery;
use ciq_leads::events::EventType;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use serde_json::json;
use uuid::Uuid;

on_every_backend!(search_finds_the_start_of_a_name_or_email_in_any_case_through_an_index);

mod announced {
    ciq_e2e::with_each_backend!(
        an_owner_edits_a_lead_under_the_apis_update_rules,
        status_delete_and_bulk_actions_change_only_the_owners_leads,
    );
    use super::*;
}

/// A gateway whose webhooks record their deliveries (none is sent).
async fn spawn_announcing(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.webhooks.allow_private_networks = true;
        s.webhooks.deliver = false;
    })
    .await
}

const CREATE: &str = "/api/external/leads/create";

/// Leads of `user` made through the API with a key of theirs, one per (name, email):
/// their ids, in that order.
async fn create_leads(app: &TestApp, user: Uuid, people: &[(&str, &str)]) -> Vec<Uuid> {
    let (_, key) = app
        .create_key_with(
            user,
            NewKey {
                rate_limit_per_minute: Some(1000),
                ..NewKey::default()
            },
        )
        .await;
    let mut ids = Vec::new();
    for (name, email) in people {
        let mut body = reference_curl_body();
        body["lead"]["name"] = json!(name);
        body["lead"]["email"] = json!(email);
        body["lead"]["score"] = json!(7);
        let (status, answer) = app.post_json(CREATE, &key, &[], &body).await;
        assert_eq!(status, 201, "{answer}");
        ids.push(answer["lead"]["id"].as_str().unwrap().parse().unwrap());
    }
    ids
}

/// A webhook endpoint of `user` that hears every event.
async fn endpoint(app: &TestApp, user: Uuid) -> Uuid {
    ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        user,
        "https://hooks.example.com/in",
        &EventType::ALL,
        true,
    )
    .await
    .unwrap()
    .0
    .id
}

/// The events `endpoint` was sent so far, as (type, lead id), oldest first.
async fn announced(app: &TestApp, endpoint: Uuid) -> Vec<(String, Uuid)> {
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let mut log = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint))
        .all(&app.db)
        .await
        .unwrap();
    log.sort_by_key(|d| d.id);
    log.into_iter().map(|d| (d.event_type, d.lead_id)).collect()
}

/// How many table rows a list page shows.
fn rows(page: &str) -> usize {
    page.matches("<tr").count().saturating_sub(1)
}

async fn search_finds_the_start_of_a_name_or_email_in_any_case_through_an_index(app: TestApp) {
    let session = signed_in(&app, "alice@acme.test", "/settings/leads").await;
    create_leads(
        &app,
        session.user,
        &[
            ("Jane Doe", "jane@doe.example"),
            ("Janet Smith", "smith@corp.example"),
            ("Bob Jones", "JANITOR@corp.example"),
            ("100% Percent", "pct@corp.example"),
            ("Zed", "zed@corp.example"),
        ],
    )
    .await;
    let other = signed_in(&app, "bob@acme.test", "/settings/leads").await;
    create_leads(
        &app,
        other.user,
        &[("Janice Other", "janice@other.example")],
    )
    .await;
    let client = &session.client;

    let (status, page) = get_html(client, &app, "/settings/leads").await;
    assert_eq!(status, 200);
    assert!(page.contains("5 leads"), "the total");
    // The score column.
    assert!(
        page.contains(">Score<") && page.contains("data-label=\"Score\">7<"),
        "{page}"
    );
    for (q, expected) in [
        // A name's start, any case; an email's start, any case; both at once.
        ("jAn", vec!["Jane Doe", "Janet Smith", "Bob Jones"]),
        ("janet", vec!["Janet Smith"]),
        ("SMITH@", vec!["Janet Smith"]),
        ("jane", vec!["Jane Doe", "Janet Smith"]),
        // Not a substring search; LIKE's wildcards are plain characters.
        ("doe", vec![]),
        ("%", vec![]),
        ("100%", vec!["100% Percent"]),
        ("_ed", vec![]),
    ] {
        let path = format!(
            "/settings/leads?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let (status, page) = get_html(client, &app, &path).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(rows(&page), expected.len(), "{q}: {page}");
        for name in &expected {
            assert!(page.contains(name), "{q} finds {name}");
        }
        assert!(!page.contains("Janice Other"), "never another account's");
        if !expected.is_empty() {
            let total = if expected.len() == 1 {
                "1 lead".to_owned()
            } else {
                format!("{} leads", expected.len())
            };
            assert!(
                page.contains(&format!("{total} match")),
                "{q}: the total of the search"
            );
        }
        // The export follows the search.
        let (_, csv) = get_html(
            client,
            &app,
            &path.replace("/settings/leads?", "/settings/leads/export.csv?"),
        )
        .await;
        assert_eq!(csv.lines().count(), 1 + expected.len(), "{q}: {csv}");
    }
    // A search with other filters; and a broken search named.
    let (_, page) = get_html(client, &app, "/settings/leads?q=jan&status=new").await;
    assert_eq!(rows(&page), 3);
    for (q, said) in [
        ("%01", "Search: must not contain control characters"),
        (
            &"a".repeat(101)[..],
            "Search: must be at most 100 characters",
        ),
    ] {
        let (status, page) = get_html(client, &app, &format!("/settings/leads?q={q}")).await;
        assert_eq!(status, 422, "{q}");
        assert!(page.contains(said), "{page}");
    }

    // The search reads the name and email indexes, not every lead of the account: the
    // plan of a search on an account of thousands of leads (PostgreSQL's statistics
    // gathered, as autovacuum does; SQLite's not, as nothing runs ANALYZE on it).
    let fillers: Vec<ciq_entity::lead::ActiveModel> = (0..3000)
        .map(|i| {
            let at = chrono::Utc::now() - chrono::TimeDelta::seconds(i);
            ciq_entity::lead::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(session.user),
                name: Set(format!("Filler {i:05}")),
                email: Set(format!("filler{i}@example.com")),
                source: Set("Filler".into()),
                industry: Set("Retail".into()),
                status: Set(ciq_entity::lead::LeadStatus::New),
                created_at: Set(at),
                updated_at: Set(Some(at)),
                ..Default::default()
            }
        })
        .collect();
    for chunk in fillers.chunks(500) {
        ciq_entity::Lead::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
    let backend = app.db.get_database_backend();
    if backend == sea_orm::DatabaseBackend::Postgres {
        app.db.execute_unprepared("ANALYZE leads").await.unwrap();
    }
    let filter = ciq_leads::store::LeadFilter {
        search: Some("jan".into()),
        ..Default::default()
    };
    let statement = ciq_leads::store::list_statement(&app.db, session.user, &filter, None, 50);
    let (sql, values) = (
        statement.sql,
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let explain = match backend {
        sea_orm::DatabaseBackend::Postgres => format!("EXPLAIN {sql}"),
        _ => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let plan: Vec<String> = app
        .db
        .query_all_raw(Statement::from_sql_and_values(backend, explain, values))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            row.try_get_by_index::<String>(match backend {
                sea_orm::DatabaseBackend::Postgres => 0,
                _ => 3,
            })
            .unwrap()
        })
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("idx_leads_user_name_prefix"), "{plan}");
    assert!(plan.contains("idx_leads_user_email"), "{plan}");
}

async fn an_owner_edits_a_lead_under_the_apis_update_rules(backend: Backend) {
    let Some(app) = spawn_announcing(backend).await else {
        return;
    };
    let session = signed_in(&app, "alice@acme.test", "/settings/leads").await;
    let hook = endpoint(&app, session.user).await;
    let ids = create_leads(
        &app,
        session.user,
        &[
            ("Jane Doe", "jane@doe.example"),
            ("Other Lead", "other@corp.example"),
        ],
    )
    .await;
    let (jane, other_lead) = (ids[0], ids[1]);
    // The second lead has an external id the first may not take.
    ciq_leads::store::update(
        &app.db,
        session.user,
        other_lead,
        ciq_leads::rules::validate_patch(&json!({"lead": {"external_id": "crm-7"}})).unwrap(),
    )
    .await
    .unwrap();
    let client = &session.client;
    let edit = format!("/settings/leads/{jane}/edit");
    let (status, form) = get_html(client, &app, &edit).await;
    assert_eq!(status, 200);
    assert!(form.contains("value=\"Jane Doe\"") && form.contains("value=\"jane@doe.example\""));
    assert!(
        !form.contains("name=\"attribution\""),
        "set once, never edited"
    );
    let csrf = session.csrf.as_str();
    let mut sent = vec![
        ("csrf", csrf),
        ("name", "Jane Q. Doe"),
        ("email", "not an email"),
        ("phone", ""),
        ("source", "Website"),
        ("industry", "Technology"),
        ("score", "11"),
        ("status", "qualified"),
        ("monthly_revenue", "50000.123"),
        ("budget", ""),
        ("description", "Met at the fair"),
        ("external_id", ""),
    ];
    let before = ciq_leads::store::find(&app.db, session.user, jane)
        .await
        .unwrap();

    // Every broken rule at once, beside its field, as the API words it; the form as typed.
    let (status, page) = post_form(client, &app, &edit, &sent).await;
    assert_eq!(status, 422, "{page}");
    for said in [
        "must be a valid email address",
        "must be a whole number from 1 to 10",
        "must have at most 2 decimal places",
        "3 fields need a change",
    ] {
        assert!(page.contains(said), "{said}: {page}");
    }
    assert!(page.contains("value=\"Jane Q. Doe\"") && page.contains("value=\"not an email\""));
    assert!(page.contains("aria-invalid=\"true\""));
    assert_eq!(
        ciq_leads::store::find(&app.db, session.user, jane)
            .await
            .unwrap(),
        before,
        "nothing saved"
    );
    // A required field emptied, and another lead's external id.
    sent[2].1 = "jane@doe.example";
    sent[6].1 = "";
    sent[8].1 = "";
    let mut cleared = sent.clone();
    cleared[1].1 = " ";
    let (status, page) = post_form(client, &app, &edit, &cleared).await;
    assert_eq!(status, 422);
    assert!(page.contains("is required and cannot be cleared"), "{page}");
    let mut taken = sent.clone();
    taken[11].1 = "crm-7";
    let (status, page) = post_form(client, &app, &edit, &taken).await;
    assert_eq!(status, 422);
    assert!(
        page.contains(&format!("has this external id (lead {other_lead})")),
        "{page}"
    );

    // Saved: the changed fields, an emptied optional one, one lead.updated.
    let (status, page) = post_form(client, &app, &edit, &sent).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Saved. Changed:") && page.contains("Jane Q. Doe"),
        "{page}"
    );
    let after = ciq_leads::store::find(&app.db, session.user, jane)
        .await
        .unwrap();
    assert_eq!(after.name, "Jane Q. Doe");
    assert_eq!(after.source, "Website");
    assert_eq!(after.industry, "Technology");
    assert_eq!(after.status, ciq_leads::LeadStatus::Qualified);
    assert_eq!(after.description.as_deref(), Some("Met at the fair"));
    assert_eq!(
        (after.phone, after.score, after.monthly_revenue),
        (None, None, None)
    );
    assert_eq!(
        after.api_key_id, before.api_key_id,
        "the key that made it stays"
    );
    assert!(after.updated_at > before.updated_at);
    let events = announced(&app, hook).await;
    assert_eq!(
        events
            .iter()
            .filter(|(kind, _)| kind == "lead.updated")
            .count(),
        2,
        "the external id set up top, and this save: {events:?}"
    );
    // The same form again changes nothing and tells no one.
    let (status, page) = post_form(client, &app, &edit, &sent).await;
    assert_eq!(status, 200);
    assert!(page.contains("Nothing was changed."));
    assert_eq!(announced(&app, hook).await.len(), events.len());

    // Without the session's token: refused, nothing saved.
    let mut forged = sent.clone();
    forged[0].1 = "forged";
    forged[1].1 = "Forged Name";
    let (status, _) = post_form(client, &app, &edit, &forged).await;
    assert_eq!(status, 403);
    // Another owner neither sees nor edits it.
    let bob = signed_in(&app, "bob@acme.test", "/settings/leads").await;
    assert_eq!(get_html(&bob.client, &app, &edit).await.0, 404);
    let mut bobs = sent.clone();
    bobs[0].1 = bob.csrf.as_str();
    bobs[1].1 = "Bob Was Here";
    assert_eq!(post_form(&bob.client, &app, &edit, &bobs).await.0, 404);
    let now = ciq_leads::store::find(&app.db, session.user, jane)
        .await
        .unwrap();
    assert_eq!(now.name, "Jane Q. Doe");
    app.stop().await;
}

async fn status_delete_and_bulk_actions_change_only_the_owners_leads(backend: Backend) {
    let Some(app) = spawn_announcing(backend).await else {
        return;
    };
    let session = signed_in(&app, "alice@acme.test", "/settings/leads").await;
    let hook = endpoint(&app, session.user).await;
    let ids = create_leads(
        &app,
        session.user,
        &[
            ("Ann One", "ann@corp.example"),
            ("Ben Two", "ben@corp.example"),
            ("Cat Three", "cat@corp.example"),
            ("Dan Four", "dan@corp.example"),
        ],
    )
    .await;
    let bob = signed_in(&app, "bob@acme.test", "/settings/leads").await;
    let bobs = create_leads(&app, bob.user, &[("Bob's Lead", "lead@bob.example")]).await;
    let client = &session.client;
    let csrf = session.csrf.as_str();
    let find = |id: Uuid| {
        let db = app.db.clone();
        let user = session.user;
        async move { ciq_leads::store::find(&db, user, id).await }
    };
    let created = announced(&app, hook).await.len();

    // One lead's status, from its page.
    let (_, page) = get_html(client, &app, &format!("/settings/leads/{}", ids[0])).await;
    assert!(page.contains("Set status") && page.contains("/edit\"") && page.contains("/delete\""));
    let status_path = format!("/settings/leads/{}/status", ids[0]);
    let (status, page) = post_form(
        client,
        &app,
        &status_path,
        &[("csrf", csrf), ("status", "contacted")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Status set to contacted."));
    assert_eq!(
        find(ids[0]).await.unwrap().status,
        ciq_leads::LeadStatus::Contacted
    );
    let (_, page) = post_form(
        client,
        &app,
        &status_path,
        &[("csrf", csrf), ("status", "contacted")],
    )
    .await;
    assert!(page.contains("The status already is contacted."));
    let (status, page) = post_form(
        client,
        &app,
        &status_path,
        &[("csrf", csrf), ("status", "won")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Status: must be one of new, contacted, qualified, lost."));
    assert_eq!(
        post_form(client, &app, &status_path, &[("status", "lost")])
            .await
            .0,
        403
    );
    let events = announced(&app, hook).await;
    assert_eq!(
        events.len(),
        created + 1,
        "one lead.updated for one change: {events:?}"
    );
    assert_eq!(events.last().unwrap(), &("lead.updated".to_owned(), ids[0]));

    // Deleting one asks first; then it is gone and announced.
    let delete = format!("/settings/leads/{}/delete", ids[3]);
    let (status, page) = get_html(client, &app, &delete).await;
    assert_eq!(status, 200);
    assert!(page.contains("Delete “Dan Four”?") && page.contains("cannot be undone"));
    assert!(find(ids[3]).await.is_ok(), "asking deletes nothing");
    assert_eq!(
        post_form(client, &app, &delete, &[("csrf", "forged")])
            .await
            .0,
        403
    );
    let (status, page) = post_form(client, &app, &delete, &[("csrf", csrf)]).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Deleted “Dan Four”.") && page.contains("Your leads"),
        "back to the list"
    );
    assert!(find(ids[3]).await.is_err());
    assert_eq!(
        announced(&app, hook).await.last().unwrap(),
        &("lead.deleted".to_owned(), ids[3])
    );

    // Many at once: a status for the ticked ones (Bob's id among them is passed over).
    let tick = |id: &Uuid| format!("lead_{id}");
    let (t0, t1, tb) = (tick(&ids[0]), tick(&ids[1]), tick(&bobs[0]));
    let bulk = "/settings/leads/bulk?status=new";
    let (status, page) = post_form(
        client,
        &app,
        bulk,
        &[
            ("csrf", csrf),
            ("action", "status:qualified"),
            (&t0, "on"),
            (&t1, "on"),
            (&tb, "on"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Set 2 leads to qualified. 1 lead already was"),
        "{page}"
    );
    // The list shown after is the one the form came from (its filter in the query).
    assert!(page.contains("<option value=\"new\" selected"), "{page}");
    for id in &ids[..2] {
        assert_eq!(
            find(*id).await.unwrap().status,
            ciq_leads::LeadStatus::Qualified
        );
    }
    let bobs_lead = ciq_leads::store::find(&app.db, bob.user, bobs[0])
        .await
        .unwrap();
    assert_eq!(
        bobs_lead.status,
        ciq_leads::LeadStatus::New,
        "another account's lead untouched"
    );
    // Refusals: nothing ticked, no action, a forged token.
    let (status, page) = post_form(
        client,
        &app,
        bulk,
        &[("csrf", csrf), ("action", "status:lost")],
    )
    .await;
    assert_eq!(
        (status, page.contains("Tick the leads to change first.")),
        (422, true)
    );
    let (status, page) = post_form(
        client,
        &app,
        bulk,
        &[("csrf", csrf), ("action", ""), (&t0, "on")],
    )
    .await;
    assert_eq!(
        (
            status,
            page.contains("Choose what to do with the ticked leads.")
        ),
        (422, true)
    );
    assert_eq!(
        post_form(
            client,
            &app,
            bulk,
            &[("csrf", "x"), ("action", "delete"), (&t0, "on")]
        )
        .await
        .0,
        403
    );

    // Deleting many asks first, naming them; confirmed, they go (Bob's stays).
    let (t2,) = (tick(&ids[2]),);
    let (status, page) = post_form(
        client,
        &app,
        bulk,
        &[
            ("csrf", csrf),
            ("action", "delete"),
            (&t1, "on"),
            (&t2, "on"),
            (&tb, "on"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Delete 2 leads?") && page.contains("Ben Two") && page.contains("Cat Three")
    );
    assert!(!page.contains("Bob&#39;s Lead") && !page.contains("Bob's Lead"));
    assert!(find(ids[1]).await.is_ok(), "asking deletes nothing");
    let (status, page) = post_form(
        client,
        &app,
        bulk,
        &[
            ("csrf", csrf),
            ("action", "delete"),
            ("confirm", "yes"),
            (&t1, "on"),
            (&t2, "on"),
            (&tb, "on"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Deleted 2 leads."), "{page}");
    assert!(find(ids[1]).await.is_err() && find(ids[2]).await.is_err());
    assert!(
        ciq_leads::store::find(&app.db, bob.user, bobs[0])
            .await
            .is_ok()
    );
    let deleted: Vec<Uuid> = announced(&app, hook)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "lead.deleted")
        .map(|(_, id)| id)
        .collect();
    assert_eq!(deleted.len(), 3);
    assert!(deleted.contains(&ids[1]) && deleted.contains(&ids[2]));

    // Another owner's lead: every page and action is "not found".
    let bobs_csrf = [("csrf", bob.csrf.as_str()), ("status", "lost")];
    for path in ["", "/edit", "/delete"] {
        let path = format!("/settings/leads/{}{path}", ids[0]);
        assert_eq!(get_html(&bob.client, &app, &path).await.0, 404, "{path}");
    }
    for path in ["/status", "/delete"] {
        let path = format!("/settings/leads/{}{path}", ids[0]);
        assert_eq!(
            post_form(&bob.client, &app, &path, &bobs_csrf).await.0,
            404,
            "{path}"
        );
    }
    let (_, page) = post_form(
        &bob.client,
        &app,
        "/settings/leads/bulk",
        &[
            ("csrf", bob.csrf.as_str()),
            ("action", "delete"),
            ("confirm", "yes"),
            (&t0, "on"),
        ],
    )
    .await;
    assert!(page.contains("Deleted 0 leads."), "{page}");
    assert_eq!(
        find(ids[0]).await.unwrap().status,
        ciq_leads::LeadStatus::Qualified
    );
    app.stop().await;
}
