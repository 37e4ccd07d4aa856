//! The outage spool, as production runs it: two gateway processes on a private
//! PostgreSQL cluster and a private Redis, clients at work, PostgreSQL killed. Clients
//! that say `Prefer: respond-async` get 201 or 202 throughout, the others 503;
//! an instance is SIGKILLed mid-outage; when PostgreSQL is back every acknowledged lead
//! is stored exactly once with the `created_at` it was answered with, and its
//! `lead.created` delivered once.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ciq_e2e::{GatewayProcess, PrivatePostgres, PrivateRedis, Receiver};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_ciq-gateway");
const WEBHOOK_KEY: &str = "q0hJ7TQjDq9rLr8cJYyq1rW3yXk3o1dQdJ8k5b7N3wE=";

/// The gateways' environment over `pg` and `redis`.
fn env(redis: &PrivateRedis, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("CIQ_WEBHOOK_SECRET_KEY", WEBHOOK_KEY.to_owned()),
        ("CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
        ("CIQ_DB_ACQUIRE_TIMEOUT_MS", "30000".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    env
}

/// Each spool stream's unacknowledged entries (consumer, idle ms, deliveries): what a
/// slow drain is waiting for.
async fn pending(url: &str) -> String {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg("*spool:{s*}")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    let mut report = Vec::new();
    for stream in streams.iter().filter(|s| s.ends_with('}')) {
        let entries: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(stream)
            .arg("drain")
            .arg("-")
            .arg("+")
            .arg(100)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let len: u64 = redis::cmd("XLEN")
            .arg(stream)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if len > 0 || !entries.is_empty() {
            let held: Vec<String> = entries
                .iter()
                .map(|(_, consumer, idle, n)| format!("{}:{idle}ms:x{n}", &consumer[..8]))
                .collect();
            report.push(format!("{stream} len {len} pending [{}]", held.join(" ")));
        }
    }
    report.join("; ")
}

fn start(pg: &PrivatePostgres, env: &[(&'static str, String)]) -> GatewayProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    GatewayProcess::start(BIN, &pg.url(), &env)
}

/// A CLI command on `pg`'s database; its stdout.
fn cli(pg: &PrivatePostgres, env: &[(&'static str, String)], args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DATABASE_URL", pg.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A key of owner@acme.test's (made before) that no test here exhausts.
fn key_of_owner(pg: &PrivatePostgres, env: &[(&'static str, String)]) -> String {
    let args = [
        "keys",
        "create",
        "--user",
        "owner@acme.test",
        "--rate-limit",
        "100000",
    ];
    cli(pg, env, &args)
}

/// A create; `prefer` adds `Prefer: respond-async`. Status, headers, body.
async fn create(
    base: &str,
    key: &str,
    body: &Value,
    prefer: bool,
    idempotency_key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = ciq_e2e::http_client()
        .post(format!("{base}/api/external/leads/create"))
        .timeout(Duration::from_secs(10))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(body.to_string());
    if prefer {
        req = req.header("Prefer", "respond-async");
    }
    if let Some(idempotency_key) = idempotency_key {
        req = req.header("Idempotency-Key", idempotency_key);
    }
    let resp = req.send().await.expect("the gateway answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// A batch with `Prefer: respond-async`. Status, headers, body.
async fn post_batch(
    base: &str,
    key: &str,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = ciq_e2e::http_client()
        .post(format!("{base}/api/external/leads/batch"))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .header("Prefer", "respond-async")
        .body(body.to_string());
    if let Some(idempotency_key) = idempotency_key {
        req = req.header("Idempotency-Key", idempotency_key);
    }
    let resp = req.send().await.expect("the gateway answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn readiness(base: &str) -> (u16, Value) {
    let resp = ciq_e2e::http_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// One answer a client saw: when (from the kill), which client kind, status, and the
/// lead it acknowledged (id, created_at).
#[derive(Debug, Clone)]
struct Seen {
    instance: char,
    at: Option<Duration>,
    prefer: bool,
    status: u16,
    lead: Option<(String, String)>,
}

fn lead_of(body: &Value) -> Option<(String, String)> {
    Some((
        body["lead"]["id"].as_str()?.to_owned(),
        body["lead"]["created_at"].as_str()?.to_owned(),
    ))
}

/// Clients creating leads on `base` until `stop`: `prefer` says `Prefer: respond-async`.
fn client(
    instance: char,
    base: String,
    key: String,
    prefer: bool,
    killed_at: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let body = json!({"lead": {
                "name": format!("Visitor {n}"),
                "email": format!("v{n}-{}@example.com", uuid::Uuid::new_v4().simple()),
                "source": "Website Form",
                "industry": "Technology"
            }});
            let (status, _, answer) = create(&base, &key, &body, prefer, None).await;
            let at = killed_at.lock().await.map(|at| at.elapsed());
            seen.lock().await.push(Seen {
                instance,
                at,
                prefer,
                status,
                lead: matches!(status, 201 | 202)
                    .then(|| lead_of(&answer))
                    .flatten(),
            });
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_spooled_for_async_clients_and_drained_once() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let env = env(&redis, &[]);
    let a = start(&pg, &env);
    // B sends no webhooks: it is SIGKILLed mid-run, and deliveries it held would wait out
    // their lease (and could be sent twice: delivery is at least once) — the drain's
    // once-only is what is checked here.
    let mut env_b = env.clone();
    env_b.push(("CIQ_WEBHOOK_DELIVERY", "false".to_owned()));
    let mut b = start(&pg, &env_b);
    cli(
        &pg,
        &env,
        &["users", "create", "--email", "owner@acme.test"],
    );
    cli(
        &pg,
        &env,
        &[
            "webhooks",
            "create",
            "--user",
            "owner@acme.test",
            "--url",
            &receiver.url("/hook"),
        ],
    );
    let key = key_of_owner(&pg, &env);
    // Each instance verifies (and caches) the key while the store answers.
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for base in [&a.base_url, &b.base_url] {
        let (status, _, body) =
            create(base, &key, &ciq_e2e::reference_curl_body(), true, None).await;
        assert_eq!(status, 201, "{body}");
        acknowledged.push(lead_of(&body).unwrap());
    }

    let killed_at = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let stop_b = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (mut clients, mut b_clients) = (Vec::new(), Vec::new());
    for (instance, base, stop) in [('A', &a.base_url, &stop), ('B', &b.base_url, &stop_b)] {
        for prefer in [true, true, false] {
            let clients = if instance == 'A' {
                &mut clients
            } else {
                &mut b_clients
            };
            clients.push(client(
                instance,
                base.clone(),
                key.clone(),
                prefer,
                killed_at.clone(),
                stop.clone(),
                seen.clone(),
            ));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.kill();
    *killed_at.lock().await = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Readiness: the instance is ready, its store spooling.
    let (status, ready) = readiness(&a.base_url).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["store"], "spooling", "{ready}");
    assert_eq!(ready["database"], "unreachable", "{ready}");

    // An external id needs the store: 503 even for an async client.
    let mut with_external_id = ciq_e2e::reference_curl_body();
    with_external_id["lead"]["external_id"] = json!("crm-1");
    let (status, headers, _) = create(&a.base_url, &key, &with_external_id, true, None).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));

    // An Idempotency-Key: the retry replays the 202, another body is refused.
    let body = json!({"lead": {"name": "Kept Once", "email": "once@example.com",
        "source": "Website Form", "industry": "Technology"}});
    let (status, headers, first) = create(&a.base_url, &key, &body, true, Some("k-1")).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["queued"], true);
    assert_eq!(headers["preference-applied"], "respond-async");
    let queued = lead_of(&first).unwrap();
    acknowledged.push(queued.clone());
    let (status, headers, again) = create(&b.base_url, &key, &body, true, Some("k-1")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first);
    let mut other = body.clone();
    other["lead"]["name"] = json!("Someone Else");
    let (status, _, refused) = create(&a.base_url, &key, &other, true, Some("k-1")).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");

    // A batch: a valid item is queued, one with an external id is 503, a broken one 422.
    let batch_body = json!({"leads": [
        {"name": "In A Batch", "email": "batch@example.com", "source": "CRM", "industry": "Retail"},
        {"name": "Has An Id", "email": "id@example.com", "source": "CRM", "industry": "Retail",
         "external_id": "crm-9"},
        {"name": "No Email", "source": "CRM", "industry": "Retail"}
    ]});
    let (status, headers, queued_batch) =
        post_batch(&a.base_url, &key, &batch_body, Some("b-1")).await;
    assert_eq!(status, 200, "{queued_batch}");
    assert!(!headers.contains_key("idempotent-replayed"));
    let statuses: Vec<u64> = queued_batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 503, 422], "{queued_batch}");
    assert_eq!(queued_batch["results"][0]["queued"], true);
    assert_eq!(
        (
            queued_batch["created"].as_u64(),
            queued_batch["failed"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let batch_lead = lead_of(&queued_batch["results"][0]).unwrap();
    acknowledged.push(batch_lead.clone());
    let (status, headers, again) = post_batch(&b.base_url, &key, &batch_body, Some("b-1")).await;
    assert_eq!((status, &again), (200, &queued_batch));
    assert_eq!(headers["idempotent-replayed"], "true");

    // One instance crashes mid-outage; what it acknowledged is in Redis already.
    // Its clients finish what they sent first: a request cut by the kill would be no
    // answer at all, which is not what this test looks at.
    stop_b.store(true, Ordering::SeqCst);
    for client in b_clients {
        client.await.unwrap();
    }
    b.kill();
    let b_killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spooled = readiness(&a.base_url).await.1["spooled"].as_u64().unwrap();
    assert!(spooled > 10, "only {spooled} spooled");

    assert!(pg.restart());
    let back_at = Instant::now();
    let mut pending_when_slow = None;
    // The retry of k-1 before the drain, or after: the 202, or the 201's shape.
    loop {
        let (status, ready) = readiness(&a.base_url).await;
        if status == 200 && ready["store"] == "ok" && ready["spooled"] == 0 {
            break;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(30),
            "not drained: {ready}"
        );
        if pending_when_slow.is_none() && back_at.elapsed() > Duration::from_secs(5) {
            pending_when_slow = Some(pending(&redis.url()).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_in = back_at.elapsed();
    // Entries a drain read while the store was still gone were handed back, not left to
    // a consumer that then died (which would hold them for the 15 s claim threshold).
    assert!(
        drained_in < Duration::from_secs(8),
        "drained in {drained_in:?}; pending when it was slow: {}",
        pending_when_slow.unwrap_or_default()
    );
    let (status, headers, replayed) = create(&a.base_url, &key, &body, true, Some("k-1")).await;
    assert_eq!(status, 201, "{replayed}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(lead_of(&replayed).unwrap(), queued);
    assert!(replayed.get("queued").is_none(), "{replayed}");
    // The batch's retry: its queued item is 201 now, the others as they were.
    let (status, headers, stored_batch) =
        post_batch(&a.base_url, &key, &batch_body, Some("b-1")).await;
    assert_eq!(status, 200, "{stored_batch}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(stored_batch["results"][0]["status"], 201, "{stored_batch}");
    assert!(stored_batch["results"][0].get("queued").is_none());
    assert_eq!(lead_of(&stored_batch["results"][0]).unwrap(), batch_lead);
    assert_eq!(stored_batch["results"][1]["status"], 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let seen = seen.lock().await.clone();
    let mut counts: HashMap<(bool, u16), usize> = HashMap::new();
    for s in &seen {
        *counts.entry((s.prefer, s.status)).or_default() += 1;
        if s.prefer {
            // Not even in the first second: a create that meets the outage before the
            // breaker opens is spooled as the same row.
            assert!(
                matches!(s.status, 201 | 202),
                "an async client got {} {:?} after the kill",
                s.status,
                s.at
            );
        } else {
            assert!(
                matches!(s.status, 201 | 503),
                "a plain client got {}",
                s.status
            );
        }
        if let Some(lead) = &s.lead {
            acknowledged.push(lead.clone());
        }
    }
    // The timeline, second by second from the kill: what each instance answered.
    let killed = killed_at.lock().await.expect("killed");
    eprintln!(
        "timeline (s from the kill; B SIGKILLed at {:.1} s, PostgreSQL back at {:.1} s):",
        (b_killed_at - killed).as_secs_f64(),
        (back_at - killed).as_secs_f64()
    );
    let mut timeline: std::collections::BTreeMap<(i64, char), HashMap<(bool, u16), usize>> =
        Default::default();
    for s in &seen {
        let second =
            s.at.map_or(-1, |at| i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
        *timeline
            .entry((second, s.instance))
            .or_default()
            .entry((s.prefer, s.status))
            .or_default() += 1;
    }
    for ((second, instance), answers) in &timeline {
        let mut answers: Vec<_> = answers.iter().collect();
        answers.sort();
        let shown: Vec<String> = answers
            .iter()
            .map(|((prefer, status), n)| {
                format!("{} {status}×{n}", if *prefer { "async" } else { "plain" })
            })
            .collect();
        eprintln!("  {second:>3} {instance}: {}", shown.join(", "));
    }
    assert!(
        counts.get(&(true, 202)).copied().unwrap_or(0) > 10,
        "{counts:?}"
    );
    assert!(
        counts.get(&(false, 503)).copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    eprintln!("answers (prefer, status): {counts:?}; drained {spooled}+ in {drained_in:?}");

    // Every acknowledged lead is stored once, with the created_at it was answered with.
    let db = ciq_gateway::database::connect(&pg.url()).await.unwrap();
    let stored: HashMap<String, ciq_entity::lead::Model> = ciq_entity::Lead::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|lead| (lead.id.to_string(), lead))
        .collect();
    let ids: HashSet<&String> = acknowledged.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), acknowledged.len(), "an id acknowledged twice");
    for (id, created_at) in &acknowledged {
        let lead = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged lead {id} is not stored"));
        let answered = chrono::DateTime::parse_from_rfc3339(created_at).unwrap();
        assert_eq!(lead.created_at, answered, "{id}");
    }
    // Each lead.created once: the receiver gets one delivery per stored lead.
    let deliveries = receiver
        .wait_for("/hook", stored.len(), Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = receiver.received("/hook").len().max(deliveries.len());
    let mut per_lead: HashMap<String, usize> = HashMap::new();
    for got in receiver.received("/hook") {
        let event = got.json();
        assert_eq!(event["type"], "lead.created");
        *per_lead
            .entry(event["data"]["lead"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(deliveries, stored.len());
    assert!(per_lead.values().all(|n| *n == 1), "{per_lead:?}");
    assert_eq!(per_lead.len(), stored.len());
    drop(a);
}

/// A bounded spool answers 503 once full; a spool whose Redis is gone too answers 503;
/// an evicting Redis never spools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_a_lost_redis_and_an_evicting_redis_answer_503() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    // 20 entries at most: each of the 16 streams holds 2.
    let env = env(&redis, &[("CIQ_SPOOL_MAX_ENTRIES", "20".to_owned())]);
    let a = start(&pg, &env);
    cli(
        &pg,
        &env,
        &["users", "create", "--email", "owner@acme.test"],
    );
    let key = key_of_owner(&pg, &env);
    let body = ciq_e2e::reference_curl_body();
    assert_eq!(create(&a.base_url, &key, &body, true, None).await.0, 201);
    pg.kill();
    // The first create after the kill finds the store gone and opens the breaker.
    let deadline = Instant::now() + Duration::from_secs(10);
    while create(&a.base_url, &key, &body, true, None).await.0 != 202 {
        assert!(Instant::now() < deadline, "never spooled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = vec![202];
    for _ in 0..60 {
        let (status, headers, answer) = create(&a.base_url, &key, &body, true, None).await;
        if status == 503 {
            assert!(headers.contains_key("retry-after"));
            assert_eq!(answer["error"]["code"], "service_unavailable", "{answer}");
        }
        statuses.push(status);
    }
    let queued = statuses.iter().filter(|s| **s == 202).count();
    assert!(
        (17..=32).contains(&queued),
        "{queued} spooled: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 61 - queued);

    // Redis gone as well: nowhere to put a lead.
    redis.kill();
    let (status, _, _) = create(&a.base_url, &key, &body, true, None).await;
    assert_eq!(status, 503);
    let (status, ready) = readiness(&a.base_url).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["store"], "unreachable");

    // An evicting Redis: the spool is off.
    assert!(redis.restart().await);
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The policy is read every 10 s.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, _, _) = create(&a.base_url, &key, &body, true, None).await;
    assert_eq!(status, 503);
    assert_eq!(readiness(&a.base_url).await.1["store"], "unreachable");
}

/// A restart (or a new instance) while PostgreSQL is down — here a database never
/// migrated: the process serves (live, not ready, every create 503, even one that
/// takes a queued answer: no key can be verified) and completes its start — the
/// migrations — when the store answers, instead of exiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_during_an_outage_completes_its_start_when_the_store_returns() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    pg.kill();
    // The start's first attempt gives up after the acquire timeout (1 s by default).
    let env = env(&redis, &[("CIQ_DB_ACQUIRE_TIMEOUT_MS", "1000".to_owned())]);
    let gateway = start(&pg, &env);
    let live = ciq_e2e::http_client()
        .get(format!("{}/healthz", gateway.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let (status, ready) = readiness(&gateway.base_url).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "starting", "{ready}");
    assert_eq!(ready["store"], "unreachable", "{ready}");
    // Well-formed, never issued (no key is stored yet; none can be verified).
    let (made_up, _) = ciq_admin::key::generate();
    let made_up = made_up.expose();
    for prefer in [false, true] {
        let started = Instant::now();
        let (status, headers, body) = create(
            &gateway.base_url,
            made_up,
            &ciq_e2e::reference_curl_body(),
            prefer,
            None,
        )
        .await;
        assert_eq!(status, 503, "{body}");
        assert!(headers.contains_key("retry-after"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered at once"
        );
    }

    assert!(pg.restart());
    let back = Instant::now();
    loop {
        let (status, ready) = readiness(&gateway.base_url).await;
        if status == 200 {
            assert_eq!(ready["status"], "ready");
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "never ready: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("ready {:?} after the store returned", back.elapsed());
    // The schema is there: an owner, a key, a lead.
    cli(
        &pg,
        &env,
        &["users", "create", "--email", "owner@acme.test"],
    );
    let key = cli(&pg, &env, &["keys", "create", "--user", "owner@acme.test"]);
    let (status, _, body) = create(
        &gateway.base_url,
        &key,
        &ciq_e2e::reference_curl_body(),
        false,
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
