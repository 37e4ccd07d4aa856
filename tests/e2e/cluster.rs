//! The gateway on a Redis Cluster of the test's own (three masters, three replicas):
//! the limit held exactly across instances for keys on every master and while a
//! bucket's slot moves (ASK, then MOVED), a master killed
//! mid-run (its slots degraded, never a 5xx, shared again once its replica has taken
//! over), keys on the live masters exact throughout its failover window, and sessions
//! that live on the cluster and outlive the failover.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ciq_admin::keys::NewKey;
use ciq_e2e::redis_cluster::slot_of;
use ciq_e2e::{Backend, RedisCluster, TestApp, reference_curl_body, unique_redis_prefix};

use ciq_e2e::console::{PASSWORD, browser_like_client, owner, sign_in};

/// Three instances on one database and the cluster, and their Redis key prefix.
async fn three_instances(cluster: &RedisCluster) -> Option<([TestApp; 3], String)> {
    let url = cluster.url();
    let prefix = unique_redis_prefix();
    let first = TestApp::spawn_with(Backend::Postgres, |s| {
        s.redis_url = Some(url.into());
        s.redis_prefix = prefix.clone();
    })
    .await?;
    Some((
        [first.spawn_peer().await, first.spawn_peer().await, first],
        prefix,
    ))
}

/// A cluster of the test's own and three instances on it (see [`three_instances`]), or
/// `None` (skip) where `redis-server` is not installed outside CI.
async fn cluster_with_instances() -> Option<(RedisCluster, [TestApp; 3], String)> {
    let cluster = RedisCluster::start().await?;
    let (instances, prefix) = three_instances(&cluster).await?;
    Some((cluster, instances, prefix))
}

/// The hash tag of a key's limiter bucket (`<prefix>rl:{key:<id>}`).
fn bucket_tag(key_id: uuid::Uuid) -> String {
    format!("key:{key_id}")
}

/// 150 creates at once for `key`, spread over the instances: their statuses.
async fn burst(instances: &[TestApp; 3], key: &str) -> Vec<u16> {
    burst_by_instance(instances, key)
        .await
        .into_iter()
        .map(|(_, status, _)| status)
        .collect()
}

/// [`burst`], each answer with the instance that gave it and when it came.
async fn burst_by_instance(instances: &[TestApp; 3], key: &str) -> Vec<(usize, u16, Instant)> {
    let requests = (0..150).map(|i| {
        let instance = &instances[i % 3];
        async move {
            let status = instance
                .post_lead(Some(key), &reference_curl_body())
                .await
                .status()
                .as_u16();
            (i % 3, status, Instant::now())
        }
    });
    futures_util::future::join_all(requests).await
}

fn counts(statuses: &[u16]) -> HashMap<u16, usize> {
    let mut counts = HashMap::new();
    for s in statuses {
        *counts.entry(*s).or_default() += 1;
    }
    counts
}

/// Keys (each of a new owner, clear of the per-owner cap) until one sits on each of
/// `masters` by its bucket's slot.
async fn a_key_on_each(
    app: &TestApp,
    cluster: &RedisCluster,
    masters: &[u16],
) -> Vec<(u16, String)> {
    let mut found: Vec<(u16, String)> = Vec::new();
    while found.len() < masters.len() {
        let user = app
            .create_user(&format!("{}@acme.test", uuid::Uuid::new_v4().simple()))
            .await;
        let (id, key) = app.create_key_with(user, NewKey::default()).await;
        let master = cluster.master_of_tag(&bucket_tag(id));
        if masters.contains(&master) && !found.iter().any(|(m, _)| *m == master) {
            found.push((master, key));
        }
    }
    found
}

async fn assert_shared(instances: &[TestApp; 3]) {
    for instance in instances {
        let (status, body) = instance.readiness().await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                body["rate_limiter"].as_str(),
                body["redis"].as_str(),
                body["redis_mode"].as_str(),
                body["degraded"].as_bool()
            ),
            (Some("redis"), Some("ok"), Some("cluster"), Some(false)),
            "{body}"
        );
        assert_eq!(body["degraded_slots_share"], 0.0, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_admit_exactly_the_limit_for_keys_on_every_master() {
    let Some((cluster, instances, _)) = cluster_with_instances().await else {
        return;
    };
    assert_shared(&instances).await;
    assert!(
        instances[0]
            .metrics_text()
            .await
            .contains("ciq_redis_cluster 1")
    );
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for (master, key) in a_key_on_each(&instances[0], &cluster, &masters).await {
        let statuses = burst(&instances, &key).await;
        let counts = counts(&statuses);
        assert_eq!(
            (counts.get(&201), counts.get(&429), counts.len()),
            (Some(&100), Some(&50), 2),
            "key on master {master}: {counts:?}"
        );
    }
}

/// `count` creates for `key`, spread over the instances, one after another.
async fn in_turn(instances: &[TestApp; 3], key: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..count {
        statuses.push(
            instances[i % 3]
                .post_lead(Some(key), &reference_curl_body())
                .await
                .status()
                .as_u16(),
        );
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_whose_slot_moves_to_another_master_keeps_its_count() {
    let Some((cluster, instances, prefix)) = cluster_with_instances().await else {
        return;
    };
    let user = instances[0].create_user("owner@acme.test").await;
    let (id, key) = instances[0].create_key_with(user, NewKey::default()).await;
    let slot = slot_of(&bucket_tag(id));
    let from = cluster.master_of_slot(slot);
    let to = cluster
        .nodes()
        .iter()
        .find(|n| n.master && n.port != from)
        .unwrap()
        .port;

    assert_eq!(in_turn(&instances, &key, 50).await, vec![201; 50]);
    // Mid-migration the bucket is on the new master but the slot is not: ASK.
    cluster.begin_moving_slot(slot, to);
    let bucket = format!("{prefix}rl:{{{}}}", bucket_tag(id));
    assert_eq!(cluster.keys_in_slot(to, slot), vec![bucket.clone()]);
    assert!(cluster.keys_in_slot(from, slot).is_empty());
    assert_eq!(in_turn(&instances, &key, 50).await, vec![201; 50]);
    // Moved: every instance's slot map is stale, MOVED; the count came along.
    cluster.finish_moving_slot(slot, to);
    assert_eq!(in_turn(&instances, &key, 50).await, vec![429; 50]);
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_shared(&instances).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_run_degrades_without_a_5xx_then_shares_again_and_sessions_survive() {
    let Some((mut cluster, instances, prefix)) = cluster_with_instances().await else {
        return;
    };

    // A session started on one instance, on the cluster.
    owner(&instances[0], "owner@acme.test").await;
    let browser = browser_like_client();
    let signed_in = sign_in(&instances[0], &browser, "owner@acme.test", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let token = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let session_key = format!(
        "{prefix}session:{}",
        ciq_admin::hashing::blake2s_hex(token.as_bytes())
    );
    let settings_page = |instance: &TestApp| {
        let url = format!("{}/settings/api-keys", instance.base_url);
        let browser = browser.clone();
        async move { browser.get(url).send().await.unwrap().status().as_u16() }
    };
    for instance in &instances {
        assert_eq!(settings_page(instance).await, 200);
    }

    // The victim: the master holding the session; a key whose bucket it holds too.
    let victim = cluster.master_of_slot(slot_of(&session_key));
    let (_, key) = a_key_on_each(&instances[0], &cluster, &[victim])
        .await
        .remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.replica_has(victim, &session_key) {
        assert!(
            Instant::now() < deadline,
            "the session never reached a replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Traffic for that key on every instance while the master dies and its replica
    // takes over: nothing but 201 and 429, a degraded period, then shared again.
    let mut statuses = Vec::new();
    let mut saw_degraded = false;
    let mut last_readiness = Vec::new();
    let started = Instant::now();
    let mut killed = false;
    loop {
        for instance in &instances {
            statuses.push(
                instance
                    .post_lead(Some(&key), &reference_curl_body())
                    .await
                    .status()
                    .as_u16(),
            );
        }
        if !killed && statuses.len() >= 30 {
            cluster.kill(victim);
            killed = true;
        }
        if killed {
            let mut all_shared = true;
            last_readiness.clear();
            for instance in &instances {
                let (status, body) = instance.readiness().await;
                last_readiness.push(body.clone());
                assert_eq!(status, 200, "{body}");
                if body["degraded"] == true {
                    saw_degraded = true;
                    // Only the dead master's slots: the shared window decides the rest.
                    assert_eq!(body["redis"], "partial", "{body}");
                    assert_eq!(body["rate_limiter"], "redis", "{body}");
                    let share = body["degraded_slots_share"].as_f64().unwrap();
                    assert!(share > 0.2 && share < 0.5, "{body}");
                    all_shared = false;
                } else if body["rate_limiter"] != "redis" {
                    all_shared = false;
                }
            }
            if saw_degraded && all_shared {
                break;
            }
        }
        if started.elapsed() >= Duration::from_secs(60) {
            // Which side did not come back: the cluster (no master for the slot) or the
            // instances (what their readiness said last).
            let slot = slot_of(&session_key);
            let serving = cluster.serving_master(slot);
            panic!(
                "not shared again within 60 s (degraded seen: {saw_degraded}); slot {slot} \
                 served by {serving:?} (the killed master was {victim}); readiness: \
                 {last_readiness:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = counts(&statuses);
    assert!(
        during.keys().all(|s| *s == 201 || *s == 429),
        "only 201 and 429 during the failover: {during:?}"
    );
    assert!(saw_degraded);
    let promoted = cluster.master_of_slot(slot_of(&session_key));
    assert_ne!(promoted, victim);

    // Shared and exact again, on the promoted replica: a fresh key there.
    assert_shared(&instances).await;
    let (_, fresh) = a_key_on_each(&instances[0], &cluster, &[promoted])
        .await
        .remove(0);
    let after = counts(&burst(&instances, &fresh).await);
    assert_eq!(
        (after.get(&201), after.get(&429), after.len()),
        (Some(&100), Some(&50), 2),
        "{after:?}"
    );

    // The session outlived its master, on every instance.
    for (i, instance) in instances.iter().enumerate() {
        assert_eq!(
            settings_page(instance).await,
            200,
            "the settings page on instance {i} after the failover"
        );
    }
}

/// What each instance answered, by second from an instant and by key: the failover's
/// timeline, printed for the record.
struct Timeline {
    zero: Instant,
    answers: Vec<(i64, usize, &'static str, u16)>,
}

impl Timeline {
    fn record(&mut self, at: Instant, instance: usize, key: &'static str, status: u16) {
        let seconds = if at >= self.zero {
            (at - self.zero).as_secs() as i64
        } else {
            -((self.zero - at).as_secs() as i64) - 1
        };
        self.answers.push((seconds, instance, key, status));
    }

    fn print(&self, title: &str) {
        // (second, instance) -> (key, status) -> answers
        let mut lines = std::collections::BTreeMap::<(i64, usize), HashMap<_, usize>>::new();
        for (second, instance, key, status) in &self.answers {
            *lines
                .entry((*second, *instance))
                .or_default()
                .entry((*key, *status))
                .or_default() += 1;
        }
        eprintln!("{title}");
        for ((second, instance), tally) in lines {
            let mut tally: Vec<_> = tally.into_iter().collect();
            tally.sort();
            let text: Vec<String> = tally
                .iter()
                .map(|((key, status), n)| format!("{key} {status}x{n}"))
                .collect();
            eprintln!(
                "{second:>3} {}: {}",
                ["A", "B", "C"][instance],
                text.join(", ")
            );
        }
    }
}

/// Readiness of every instance until each says the dead master's slots (and only
/// they) are limited in-process, or panics after `within`; creates for `key` (on the
/// dead master) meanwhile, recorded in `timeline`.
async fn until_partial(
    instances: &[TestApp; 3],
    key: &str,
    within: Duration,
    timeline: &mut Timeline,
) -> Vec<u16> {
    let deadline = Instant::now() + within;
    let mut statuses = Vec::new();
    loop {
        let mut partial = 0;
        for (i, instance) in instances.iter().enumerate() {
            // A request for a key of the dead master is what finds it dead.
            let status = instance
                .post_lead(Some(key), &reference_curl_body())
                .await
                .status()
                .as_u16();
            timeline.record(Instant::now(), i, "dead-master key", status);
            statuses.push(status);
            let (status, body) = instance.readiness().await;
            assert_eq!(status, 200, "{body}");
            if body["redis"] == "partial" {
                let share = body["degraded_slots_share"].as_f64().unwrap();
                assert!(share > 0.2 && share < 0.5, "{body}");
                assert_eq!(body["rate_limiter"], "redis", "{body}");
                partial += 1;
            }
        }
        if partial == instances.len() {
            return statuses;
        }
        assert!(
            Instant::now() < deadline,
            "not partial everywhere within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_on_live_masters_stay_exact_while_another_master_fails_over() {
    let Some((mut cluster, instances, _)) = cluster_with_instances().await else {
        return;
    };
    let masters = cluster.masters();
    let (victim, live) = (masters[0], masters[1]);
    let keys = a_key_on_each(&instances[0], &cluster, &[victim, live]).await;
    let key_of = |master: u16| keys.iter().find(|(m, _)| *m == master).unwrap().1.clone();
    let (doomed, spared) = (key_of(victim), key_of(live));
    // Every instance has routed to every master (its slot map is read).
    for instance in &instances {
        for key in [&doomed, &spared] {
            let response = instance.post_lead(Some(key), &reference_curl_body()).await;
            assert_eq!(response.status(), 201);
        }
    }
    assert_shared(&instances).await;

    // The failover window, held open by the test: the victim dies, its replica waits.
    let replicas = cluster.replicas_of(victim);
    assert!(!replicas.is_empty());
    cluster.hold_failover(&replicas, true);
    // Once the victim is flagged failed, the other masters keep serving their slots
    // (by default they would refuse every key until a replica takes over: see
    // docs/operations.md).
    cluster.config_set(&cluster.ports, "cluster-require-full-coverage", "no");
    let mut timeline = Timeline {
        zero: Instant::now(),
        answers: Vec::new(),
    };
    cluster.kill(victim);
    let found = until_partial(&instances, &doomed, Duration::from_secs(10), &mut timeline).await;
    assert!(
        found.iter().all(|s| *s == 201),
        "the dead master's keys are limited in-process, never a 5xx: {found:?}"
    );
    // Deep in the window: the cluster has flagged the victim failed, no replica has
    // taken over (held back).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.flagged_failed(victim) {
        assert!(
            Instant::now() < deadline,
            "the victim was never flagged failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flagged = timeline.zero.elapsed();

    // A key on a live master: exact across the three instances, within the window.
    let burst_started = Instant::now();
    let answers = burst_by_instance(&instances, &spared).await;
    for (i, status, at) in &answers {
        timeline.record(*at, *i, "live-master key", *status);
    }
    let statuses: Vec<u16> = answers.iter().map(|(_, status, _)| *status).collect();
    let during = counts(&statuses);
    let burst_took = burst_started.elapsed();
    assert_eq!(
        (during.get(&201), during.get(&429), during.len()),
        (Some(&97), Some(&53), 2),
        "a key on a live master in the failover window (three creates spent above): {during:?}"
    );
    // Still within the window: no instance saw the victim's slots come back.
    for instance in &instances {
        let (_, body) = instance.readiness().await;
        assert_eq!(body["redis"], "partial", "{body}");
    }
    eprintln!("burst of 150 on a live master inside the failover window: {burst_took:?}");

    // The replica takes over; every instance finds it and is exact again there.
    cluster.hold_failover(&replicas, false);
    let allowed = Instant::now();
    let deadline = allowed + Duration::from_secs(30);
    loop {
        let mut shared = 0;
        for (i, instance) in instances.iter().enumerate() {
            let response = instance
                .post_lead(Some(&doomed), &reference_curl_body())
                .await;
            let status = response.status().as_u16();
            timeline.record(Instant::now(), i, "dead-master key", status);
            assert!(matches!(status, 201 | 429), "{status}");
            let (_, body) = instance.readiness().await;
            if body["degraded"] == false {
                shared += 1;
            }
        }
        if shared == instances.len() {
            break;
        }
        assert!(Instant::now() < deadline, "not shared again within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = allowed.elapsed();
    assert_shared(&instances).await;
    let promoted = cluster
        .nodes()
        .into_iter()
        .find(|n| n.master && !n.failed && replicas.contains(&n.port))
        .expect("the victim's replica is a master now")
        .port;
    let (_, fresh) = a_key_on_each(&instances[0], &cluster, &[promoted])
        .await
        .remove(0);
    let answers = burst_by_instance(&instances, &fresh).await;
    for (i, status, at) in &answers {
        timeline.record(*at, *i, "promoted-replica key", *status);
    }
    let statuses: Vec<u16> = answers.iter().map(|(_, status, _)| *status).collect();
    let after = counts(&statuses);
    assert_eq!(
        (after.get(&201), after.get(&429), after.len()),
        (Some(&100), Some(&50), 2),
        "a key on the promoted replica: {after:?}"
    );
    timeline.print(&format!(
        "second from the kill, instance: key status x count (victim flagged failed at \
         {flagged:.1?}, failover held until {:.1} s, shared again {recovered:.1?} after it \
         was allowed)",
        (allowed - timeline.zero).as_secs_f64()
    ));
}
