//! The outage spool's drain against a real Redis and each store: what a drain writes
//! (leads, the block list's verdict, the remembered answer), and that an entry read
//! again — a consumer that died before acknowledging, after or before its commit —
//! stores nothing twice and never brings back an erased lead. (The outage itself, with
//! processes and a killed PostgreSQL, is `crates/gateway/tests/spool.rs`.)

use std::sync::Arc;
use std::time::Duration;

use ciq_e2e::{Backend, TestApp};
use ciq_leads::spooled::{self, Applied, RememberedAnswer, SpooledRequest};
use ciq_leads::{LeadOwner, NewLead};
use ciq_spool::{Drainer, ENTRIES_PER_DRAIN, Held, Spool, Written};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

fn new_lead(email: &str) -> NewLead {
    ciq_leads::rules::validate_submission(&serde_json::json!({"lead": {
        "name": "Jane Doe", "email": email, "source": "Website Form", "industry": "Technology"
    }}))
    .expect("a valid lead")
}

/// A request of `owner` for `email`, remembered under `key` when given.
fn request(owner: LeadOwner, email: &str, browser: bool, key: Option<&str>) -> SpooledRequest {
    let row = ciq_leads::store::prepare(owner, new_lead(email));
    SpooledRequest {
        user_id: owner.user_id,
        remembered: key.map(|key| RememberedAnswer {
            key: key.to_owned(),
            fingerprint: format!("fp-{key}"),
            status: 201,
            body: format!(r#"{{"success":true,"lead":{{"id":"{}"}}}}"#, row.id),
            held: Vec::new(),
        }),
        rows: vec![row],
        browser,
    }
}

/// The test Redis, an app on `backend` and an owner (with a key), or `None` (skip)
/// where Redis or the backend is missing.
async fn app_with_owner(backend: Backend) -> Option<(String, TestApp, LeadOwner)> {
    let redis_url = ciq_e2e::test_redis_url().await?;
    let app = TestApp::spawn(backend).await?;
    let (user_id, _) = app.user_with_key("owner@acme.test").await;
    let owner = LeadOwner {
        user_id,
        api_key_id: None,
    };
    Some((redis_url, app, owner))
}

async fn spool_and_drainer(app: &TestApp, redis_url: &str) -> (Arc<Spool>, Drainer) {
    let (spool, drainer) = spool_and_patient_drainer(app, redis_url).await;
    (spool, drainer.claiming_after(Duration::from_millis(200)))
}

/// [`spool_and_drainer`] with the production claim threshold (15 s): only a dead
/// consumer's heartbeat lets it take entries over sooner.
async fn spool_and_patient_drainer(app: &TestApp, redis_url: &str) -> (Arc<Spool>, Drainer) {
    let link = ciq_redis::RedisLink::open(redis_url, Duration::from_millis(500)).unwrap();
    let prefix = format!("{}spool:", ciq_e2e::unique_redis_prefix());
    let spool = Spool::new(link, &prefix, 1_000, Duration::from_secs(3600));
    spool.check_policy().await;
    assert!(spool.accepting(), "the test Redis does not evict");
    let breaker = ciq_store::Breaker::new(app.db.clone(), Duration::from_secs(5));
    let drainer = Drainer::new(
        spool.clone(),
        app.db.clone(),
        breaker,
        Arc::new(ciq_usage::Recorder::new()),
    );
    (spool, drainer)
}

async fn leads_of(app: &TestApp, user_id: Uuid) -> Vec<ciq_entity::lead::Model> {
    ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::UserId.eq(user_id))
        .all(&app.db)
        .await
        .unwrap()
}

/// Applying entries: leads stored with their ids and times, the block list's verdict on
/// a browser submission, the remembered answer; the same entries again write nothing,
/// even after one of their leads was erased.
async fn applying_twice_stores_once_and_an_erased_lead_stays_erased(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user_id, key_id) = {
        let (user_id, _) = app.user_with_key("owner@acme.test").await;
        let key = ciq_entity::ApiKey::find()
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        (user_id, key.id)
    };
    let owner = LeadOwner {
        user_id,
        api_key_id: Some(key_id),
    };
    ciq_leads::spam::set_block_list(
        &app.db,
        user_id,
        &ciq_leads::spam::BlockList::of(vec!["spam.test".into()]),
    )
    .await
    .unwrap();
    // The request with k-1 claimed its key before the store went: its claim, still
    // unanswered, gets the spooled answer.
    let claimed =
        ciq_leads::idempotency::claim(&app.db, user_id, "k-1", "fp-k-1", Duration::from_secs(3600))
            .await
            .unwrap();
    assert!(matches!(claimed, ciq_leads::idempotency::Claim::Fresh));
    let entries = vec![
        (
            "0-1-0".to_owned(),
            request(owner, "a@example.com", false, Some("k-1")),
        ),
        (
            "0-2-0".to_owned(),
            request(owner, "bot@spam.test", true, None),
        ),
        (
            "5-1-0".to_owned(),
            request(owner, "c@spam.test", false, None),
        ),
    ];
    let applied = spooled::apply(&app.db, &entries).await.unwrap();
    assert!(
        applied
            .iter()
            .all(|a| matches!(a, Applied::Stored(leads) if leads.len() == 1))
    );
    let stored = leads_of(&app, user_id).await;
    assert_eq!(stored.len(), 3);
    for (_, request) in &entries {
        let row = &request.rows[0];
        let lead = stored.iter().find(|l| l.id == row.id).expect("stored");
        assert_eq!(lead.created_at, row.created_at);
        assert_eq!(lead.api_key_id, Some(key_id));
        // The block list applies to browser submissions only, as at create.
        let spam = (lead.email == "bot@spam.test").then_some("blocked_email");
        assert_eq!(lead.spam_reason.as_deref(), spam, "{}", lead.email);
    }
    let remembered = ciq_entity::IdempotencyKey::find_by_id((user_id, "k-1".to_owned()))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the key's answer is remembered");
    assert_eq!(remembered.response_status, Some(201));
    assert_eq!(remembered.lead_id, Some(entries[0].1.rows[0].id));
    assert_eq!(remembered.request_hash, "fp-k-1");

    // A lead stored already comes again under another entry (a create whose write
    // committed after all was spooled too): not written twice.
    let same_lead = vec![("9-9-0".to_owned(), entries[1].1.clone())];
    let applied = spooled::apply(&app.db, &same_lead).await.unwrap();
    assert!(matches!(&applied[..], [Applied::Stored(leads)] if leads.len() == 1));
    assert_eq!(leads_of(&app, user_id).await.len(), 3);

    // Erased after its drain; the entries come again (a lost acknowledgement).
    app.states
        .api
        .leads
        .erase(user_id, entries[0].1.rows[0].id)
        .await
        .unwrap();
    let again = spooled::apply(&app.db, &entries).await.unwrap();
    assert_eq!(
        again,
        vec![Applied::Already, Applied::Already, Applied::Already]
    );
    assert_eq!(leads_of(&app, user_id).await.len(), 2);
}

/// The drain through Redis: entries written by the spool are stored and acknowledged,
/// their keys' records go; an entry a dead consumer read is claimed by another — both
/// when the dead one never committed it and when it committed but did not acknowledge.
async fn the_drain_claims_a_dead_consumers_entries_and_stores_each_once(backend: Backend) {
    let Some((redis_url, app, owner)) = app_with_owner(backend).await else {
        return;
    };
    let user_id = owner.user_id;
    let (spool, drainer) = spool_and_drainer(&app, &redis_url).await;
    let with_key = request(owner, "k@example.com", false, Some("order-7"));
    assert!(matches!(
        spool.write(&with_key, "queued-body").await.unwrap(),
        Written::Queued(_)
    ));
    // The same key again: the queued answer; another body: refused.
    assert_eq!(
        spool.write(&with_key, "other").await.unwrap(),
        Written::Replay("queued-body".into())
    );
    assert_eq!(
        spool.held(user_id, "order-7", "fp-order-7").await.unwrap(),
        Some(Held::Replay("queued-body".into()))
    );
    assert_eq!(
        spool.held(user_id, "order-7", "another").await.unwrap(),
        Some(Held::Reused)
    );
    let plain: Vec<SpooledRequest> = (0..40)
        .map(|n| request(owner, &format!("p{n}@example.com"), false, None))
        .collect();
    for request in &plain {
        assert!(matches!(
            spool.write(request, "q").await.unwrap(),
            Written::Queued(_)
        ));
    }
    assert_eq!(spool.count().await.unwrap(), 41);
    assert!(spool.maybe_pending());

    // A consumer reads every stream's entries and dies: one of them after committing.
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut committed = None;
    for group in 0..ciq_spool::STREAMS {
        let stream = spool.stream_name(group);
        let read: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(ciq_spool::GROUP)
            .arg("dead")
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut conn)
            .await
            .unwrap_or(None);
        let Some(first) = read
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().next())
        else {
            continue;
        };
        if committed.is_none() {
            let redis::Value::BulkString(raw) = &first.map["request"] else {
                panic!("an entry holds its request");
            };
            let request: SpooledRequest = serde_json::from_slice(raw).unwrap();
            let name = format!("{group}-{}", first.id);
            spooled::apply(&app.db, &[(name, request.clone())])
                .await
                .unwrap();
            committed = Some(request.rows[0].id);
        }
    }
    let committed = committed.expect("some stream had entries");
    // Past the dead consumer's claim threshold, and a second after the last count.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(spool.depth(), 41);
    let stored = drainer.drain_all().await.unwrap();
    assert_eq!(stored, 40, "the committed entry is not stored again");
    // The drain counted the spool as it went: readiness follows it.
    assert_eq!(spool.depth(), 0);
    assert_eq!(spool.count().await.unwrap(), 0);
    let leads = leads_of(&app, user_id).await;
    assert_eq!(leads.len(), 41);
    assert_eq!(leads.iter().filter(|l| l.id == committed).count(), 1);
    // Drained: the store holds the key's answer, the spool no longer does.
    assert_eq!(
        spool.held(user_id, "order-7", "fp-order-7").await.unwrap(),
        None
    );
    assert!(
        ciq_entity::IdempotencyKey::find_by_id((user_id, "order-7".to_owned()))
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
    );
}

/// A consumer whose heartbeat is gone (its instance was killed right after reading)
/// loses its entries within a second of idleness, long before the 15 s claim threshold;
/// a live consumer's entries stay with it.
async fn a_dead_consumers_entries_are_taken_over_at_once_and_a_live_ones_are_not(backend: Backend) {
    let Some((redis_url, app, owner)) = app_with_owner(backend).await else {
        return;
    };
    let user_id = owner.user_id;
    let (spool, drainer) = spool_and_patient_drainer(&app, &redis_url).await;
    for n in 0..40 {
        let request = request(owner, &format!("h{n}@example.com"), false, None);
        assert!(matches!(
            spool.write(&request, "q").await.unwrap(),
            Written::Queued(_)
        ));
    }
    let mut conn = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // A live instance's heartbeat; the dead one's expired with it.
    let _: () = redis::cmd("SET")
        .arg(spool.heartbeat_key("alive"))
        .arg(1)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (mut dead, mut alive) = (0, 0);
    for group in 0..ciq_spool::STREAMS {
        for (consumer, count) in [("dead", 1), ("alive", 100)] {
            let read: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(ciq_spool::GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(spool.stream_name(group))
                .arg(">")
                .query_async(&mut conn)
                .await
                .unwrap_or(None);
            let read = read.map_or(0, |r| r.keys.iter().map(|k| k.ids.len()).sum::<usize>());
            if consumer == "dead" {
                dead += read;
            } else {
                alive += read;
            }
        }
    }
    assert_eq!(dead + alive, 40);
    assert!(dead > 0 && alive > 0, "{dead} {alive}");
    // Just read: not yet (a second of idleness first).
    assert_eq!(drainer.drain_all().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let stored = drainer.drain_all().await.unwrap();
    assert_eq!(
        stored, dead as u64,
        "the dead consumer's entries, no others"
    );
    assert_eq!(leads_of(&app, user_id).await.len(), dead);
    assert_eq!(spool.count().await.unwrap(), alive as u64);
}

/// One drain's read of spooled batches — [`ENTRIES_PER_DRAIN`] entries of the most leads
/// a batch takes, each with its `Idempotency-Key` — is applied whole: every lead stored,
/// every key's items remembered. (10 000 rows: more bind parameters than one statement
/// may carry on either store; applying them again writes nothing.)
async fn a_drains_read_of_full_batches_is_applied_whole(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user_id, _) = app.user_with_key("owner@acme.test").await;
    let owner = LeadOwner {
        user_id,
        api_key_id: None,
    };
    let per_batch = ciq_api::leads::batch::MAX_BATCH_LEADS;
    let entries: Vec<(String, SpooledRequest)> = (0..ENTRIES_PER_DRAIN)
        .map(|n| {
            let rows: Vec<_> = (0..per_batch)
                .map(|i| {
                    ciq_leads::store::prepare(owner, new_lead(&format!("b{n}-{i}@example.com")))
                })
                .collect();
            let key = format!("batch-{n}");
            let remembered = RememberedAnswer {
                key: key.clone(),
                fingerprint: format!("fp-{key}"),
                status: 200,
                body: "[]".into(),
                held: rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| (i, row.id))
                    .collect(),
            };
            let request = SpooledRequest {
                user_id,
                rows,
                browser: false,
                remembered: Some(remembered),
            };
            (format!("{}-{n}-0", n % 16), request)
        })
        .collect();
    let applied = spooled::apply(&app.db, &entries).await.unwrap();
    assert!(
        applied
            .iter()
            .all(|a| matches!(a, Applied::Stored(leads) if leads.len() == per_batch))
    );
    let total = ENTRIES_PER_DRAIN * per_batch;
    assert_eq!(leads_of(&app, user_id).await.len(), total);
    let held = ciq_entity::IdempotencyLead::find()
        .filter(ciq_entity::idempotency_lead::Column::UserId.eq(user_id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(held.len(), total, "every batch item's lead is remembered");
    let again = spooled::apply(&app.db, &entries).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Already));
    assert_eq!(leads_of(&app, user_id).await.len(), total);
}

ciq_e2e::with_each_backend!(
    a_dead_consumers_entries_are_taken_over_at_once_and_a_live_ones_are_not,
    a_drains_read_of_full_batches_is_applied_whole,
    applying_twice_stores_once_and_an_erased_lead_stays_erased,
    the_drain_claims_a_dead_consumers_entries_and_stores_each_once,
);

/// The outage on a Redis Cluster: two instances on a private PostgreSQL, the store
/// killed; async creates are answered 202 once a replica holds them, their streams
/// spread over the masters; when the store is back every one is stored once with the
/// `created_at` it was answered with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_the_spool_spreads_over_the_masters_and_drains() {
    let Some(cluster) = ciq_e2e::RedisCluster::start().await else {
        return;
    };
    let Some(pg) = ciq_e2e::PrivatePostgres::start().await else {
        return;
    };
    let prefix = ciq_e2e::unique_redis_prefix();
    let (url, redis_url) = (pg.url(), cluster.url());
    let Some(a) = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database_url = url.into();
        s.redis_url = Some(redis_url.into());
        s.redis_prefix = prefix.clone();
    })
    .await
    else {
        return;
    };
    let b = a.spawn_peer().await;
    let (_, key) = a
        .user_with_key_like(
            "owner@acme.test",
            ciq_admin::keys::NewKey {
                rate_limit_per_minute: Some(100_000),
                ..Default::default()
            },
        )
        .await;
    let post = |app: &TestApp, idempotency_key: Option<&str>| {
        let mut req = app
            .client
            .post(format!("{}/api/external/leads/create", app.base_url))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .header("Prefer", "respond-async")
            .body(ciq_e2e::reference_curl_body().to_string());
        if let Some(idempotency_key) = idempotency_key {
            req = req.header("Idempotency-Key", idempotency_key);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let replayed = resp.headers().contains_key("idempotent-replayed");
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, replayed, body)
        }
    };
    // Both instances verify the key while the store answers.
    assert_eq!(post(&a, None).await.0, 201);
    assert_eq!(post(&b, None).await.0, 201);

    pg.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut answered = Vec::new();
    loop {
        let (status, _, body) = post(&a, None).await;
        if status == 202 {
            answered.push(body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never spooled: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..60 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (status, _, body) = post(app, None).await;
        assert_eq!(status, 202, "{body}");
        answered.push(body);
    }
    let (status, _, first) = post(&a, Some("cluster-k")).await;
    assert_eq!(status, 202, "{first}");
    let (status, replayed, again) = post(&b, Some("cluster-k")).await;
    assert_eq!((status, replayed), (202, true));
    assert_eq!(again, first);
    answered.push(first);
    let (status, ready) = a.readiness().await;
    assert_eq!(
        (status, ready["store"].as_str()),
        (200, Some("spooling")),
        "{ready}"
    );

    // Each master holds some of the streams' entries.
    let mut per_master: std::collections::HashMap<u16, u64> = Default::default();
    for group in 0..ciq_spool::STREAMS {
        let tag = format!("s{group}");
        let port = cluster.master_of_tag(&tag);
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let len: u64 = redis::cmd("XLEN")
            .arg(format!("{prefix}spool:{{{tag}}}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        *per_master.entry(port).or_default() += len;
    }
    assert_eq!(per_master.values().sum::<u64>(), 62, "{per_master:?}");
    assert!(
        per_master.values().filter(|n| **n > 0).count() >= 2,
        "{per_master:?}"
    );

    assert!(pg.restart());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, ready) = a.readiness().await;
        if status == 200 && ready["store"] == "ok" && ready["spooled"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not drained: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored: std::collections::HashMap<String, ciq_entity::lead::Model> =
        ciq_entity::Lead::find()
            .all(&a.db)
            .await
            .unwrap()
            .into_iter()
            .map(|lead| (lead.id.to_string(), lead))
            .collect();
    assert_eq!(stored.len(), 2 + 62);
    for body in &answered {
        let id = body["lead"]["id"].as_str().unwrap();
        let lead = stored.get(id).unwrap_or_else(|| panic!("{id} not stored"));
        let answered_at =
            chrono::DateTime::parse_from_rfc3339(body["lead"]["created_at"].as_str().unwrap())
                .unwrap();
        assert_eq!(lead.created_at, answered_at);
    }
    let (status, replayed, after) = post(&b, Some("cluster-k")).await;
    assert_eq!((status, replayed), (201, true), "{after}");
    assert_eq!(after["lead"]["id"], again["lead"]["id"]);
    drop(b);
}
