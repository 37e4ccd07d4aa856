//! Stored data that expires: remembered idempotent answers (they hold lead data) and
//! database sessions are purged by every instance once their time is up.

use std::time::Duration;

use ciq_e2e::{TestApp, on_every_backend, reference_curl_body};
use ciq_entity::{idempotency_key, session};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

on_every_backend!(
    what_is_past_its_retention_is_purged_by_every_instance,
    finished_imports_go_after_30_days_with_their_failed_rows_and_their_leads_stay,
    the_webhook_delivery_log_goes_after_its_retention_and_pending_deliveries_stay,
    spam_goes_30_days_after_it_was_judged_and_normal_leads_stay,
);

async fn create_with_key(app: &TestApp, key: &str, idempotency_key: &str) -> u16 {
    let headers = [("Idempotency-Key", idempotency_key)];
    app.post_json(
        "/api/external/leads/create",
        key,
        &headers,
        &reference_curl_body(),
    )
    .await
    .0
}

async fn what_is_past_its_retention_is_purged_by_every_instance(app: TestApp) {
    let (user, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(create_with_key(&app, &key, "old").await, 201);
    assert_eq!(create_with_key(&app, &key, "fresh").await, 201);
    // "old" was remembered 25 hours ago.
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::CreatedAt,
            Expr::value(ciq_entity::now() - chrono::TimeDelta::hours(25)),
        )
        .filter(idempotency_key::Column::Key.eq("old"))
        .exec(&app.db)
        .await
        .unwrap();
    // One session ended an hour ago, one is live.
    let store = ciq_admin::sessions::SessionStore::Database(app.db.clone());
    for _ in 0..2 {
        store.start(user, Duration::from_secs(3600)).await.unwrap();
    }
    let first = session::Entity::find().one(&app.db).await.unwrap().unwrap();
    session::Entity::update_many()
        .col_expr(
            session::Column::ExpiresAt,
            Expr::value(ciq_entity::now() - chrono::TimeDelta::hours(1)),
        )
        .filter(session::Column::Id.eq(first.id))
        .exec(&app.db)
        .await
        .unwrap();

    // Two instances purging the same store at a quick pace.
    let settings = |s: &mut ciq_gateway::Settings| {
        s.retention.purge_every = Duration::from_millis(100);
    };
    let purging = TestApp::spawn_peer_with(&app, settings).await;
    let other = TestApp::spawn_peer_with(&app, settings).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let keys = idempotency_key::Entity::find()
            .count(&app.db)
            .await
            .unwrap();
        let sessions = session::Entity::find().count(&app.db).await.unwrap();
        if (keys, sessions) == (1, 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not purged within 10 s: {keys} keys, {sessions} sessions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = idempotency_key::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.key, "fresh");
    let live = session::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_ne!(live.id, first.id);
    // The forgotten key is new again; the remembered one still replays.
    assert_eq!(create_with_key(&purging, &key, "old").await, 201);
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 3);
    assert_eq!(create_with_key(&other, &key, "fresh").await, 201);
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 3);
}

async fn finished_imports_go_after_30_days_with_their_failed_rows_and_their_leads_stay(
    app: TestApp,
) {
    use ciq_entity::{lead_import, lead_import_failure};
    use ciq_imports::{ImportFile, store};
    let user = app.create_user("owner@acme.test").await;
    let csv = b"name,email,source,industry\nAda,ada@example.com,Web,Retail\nBob,,Web,Retail\n";
    let file = ImportFile::read(csv).unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = store::create(&app.db, user, "a.csv", csv.to_vec(), &file)
            .await
            .unwrap();
        let mapping = ciq_imports::Mapping::suggested(&file.columns);
        assert!(
            store::save_mapping(&app.db, user, id, &mapping, true)
                .await
                .unwrap()
        );
        ids.push(id);
    }
    // The gateway's worker runs both.
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store::find(&app.db, user, *id)
            .await
            .unwrap()
            .unwrap()
            .status
            .is_pending()
        {
            assert!(std::time::Instant::now() < deadline, "import not done");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 2);
    assert_eq!(
        lead_import_failure::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        2
    );
    // The first finished 31 days ago.
    lead_import::Entity::update_many()
        .col_expr(
            lead_import::Column::UpdatedAt,
            Expr::value(ciq_entity::now() - chrono::TimeDelta::days(31)),
        )
        .filter(lead_import::Column::Id.eq(ids[0]))
        .exec(&app.db)
        .await
        .unwrap();
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.imports, 1);
    assert!(store::find(&app.db, user, ids[0]).await.unwrap().is_none());
    assert!(store::find(&app.db, user, ids[1]).await.unwrap().is_some());
    let failures = lead_import_failure::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].import_id, ids[1]);
    assert_eq!(
        ciq_entity::Lead::find().count(&app.db).await.unwrap(),
        2,
        "the leads stay"
    );
}

async fn the_webhook_delivery_log_goes_after_its_retention_and_pending_deliveries_stay(
    app: TestApp,
) {
    use ciq_entity::webhook_delivery::{self, DeliveryStatus};
    let user = app.create_user("owner@acme.test").await;
    let key = ciq_store::secret::SecretBox::from_base64(&ciq_store::secret::new_key()).unwrap();
    // An endpoint nobody listens on, created without a worker seeing a due delivery:
    // the rows are written as the outbox writes them, then aged by hand.
    let (endpoint, _) = ciq_webhooks::endpoints::create(
        &app.db,
        Some(&key),
        user,
        "https://hooks.example.com/in",
        &ciq_leads::events::EventType::ALL,
        false,
    )
    .await
    .unwrap();
    ciq_webhooks::endpoints::set_enabled(&app.db, user, endpoint.id, false, Some("test"))
        .await
        .unwrap();
    let at = ciq_entity::now() - chrono::TimeDelta::days(8);
    for (status, age) in [
        (DeliveryStatus::Delivered, at),
        (DeliveryStatus::Failed, at),
        (DeliveryStatus::Pending, at),
        (DeliveryStatus::Delivered, ciq_entity::now()),
    ] {
        webhook_delivery::Entity::insert(webhook_delivery::ActiveModel::from(
            webhook_delivery::Model {
                id: uuid::Uuid::now_v7(),
                user_id: user,
                endpoint_id: endpoint.id,
                event_id: uuid::Uuid::now_v7(),
                event_type: "lead.created".into(),
                lead_id: uuid::Uuid::now_v7(),
                payload: "{}".into(),
                status,
                attempts: 1,
                next_attempt_at: age + chrono::TimeDelta::days(30),
                lease_owner: None,
                lease_until: None,
                last_status_code: Some(200),
                last_response: None,
                last_error: None,
                last_attempt_at: Some(age),
                created_at: age,
                delivered_at: None,
            },
        ))
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.deliveries, 2, "the old delivered and failed ones");
    let left: Vec<DeliveryStatus> = webhook_delivery::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&DeliveryStatus::Pending) && left.contains(&DeliveryStatus::Delivered));
}

/// Spam is erased 30 days after it was judged spam (as an erasure: a remembered answer
/// that held it replays 410); newer spam and normal leads, however old, stay.
async fn spam_goes_30_days_after_it_was_judged_and_normal_leads_stay(app: TestApp) {
    use ciq_entity::lead;
    let (_, key) = app.user_with_key("owner@acme.test").await;
    let mut trapped = reference_curl_body();
    trapped["honeypot"] = serde_json::json!("bot");
    let mut ids = Vec::new();
    for (body, idempotency_key) in [
        (&trapped, "old-spam"),
        (&trapped, "new-spam"),
        (&reference_curl_body(), "normal"),
    ] {
        let headers = [("Idempotency-Key", idempotency_key)];
        let (status, answer) = app
            .post_json("/api/external/leads/create", &key, &headers, body)
            .await;
        assert_eq!(status, 201);
        ids.push(
            answer["lead"]["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        );
    }
    let long_ago = ciq_entity::now() - chrono::TimeDelta::days(31);
    for column in [lead::Column::CreatedAt, lead::Column::SpamAt] {
        lead::Entity::update_many()
            .col_expr(column, Expr::value(long_ago))
            .filter(lead::Column::Id.eq(ids[0]))
            .exec(&app.db)
            .await
            .unwrap();
    }
    lead::Entity::update_many()
        .col_expr(lead::Column::CreatedAt, Expr::value(long_ago))
        .filter(lead::Column::Id.eq(ids[2]))
        .exec(&app.db)
        .await
        .unwrap();
    let purged = ciq_gateway::retention::purge_once(&app.db, Default::default())
        .await
        .unwrap();
    assert_eq!(purged.spam, 1);
    let left: Vec<uuid::Uuid> = lead::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert!(!left.contains(&ids[0]) && left.contains(&ids[1]) && left.contains(&ids[2]));
    let headers = [("Idempotency-Key", "old-spam")];
    let (status, answer) = app
        .post_json("/api/external/leads/create", &key, &headers, &trapped)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (410, Some("lead_deleted"))
    );
}
