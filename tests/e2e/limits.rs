//! Rate limiting across instances, the sliding window end to end, degraded mode,
//! and the per-address allowance for requests without a usable key.

use std::time::Duration;

use ciq_admin::keys::NewKey;
use ciq_e2e::{
    Backend, PrivateRedis, TestApp, reference_curl_body, test_redis_url, unique_redis_prefix,
};
use serde_json::Value;

async fn with_shared_redis(backend: Backend, window: Duration) -> Option<TestApp> {
    let url = test_redis_url().await?;
    TestApp::spawn_with(backend, |s| {
        s.redis_url = Some(url.into());
        s.redis_prefix = unique_redis_prefix();
        s.limits.window = window;
    })
    .await
}

async fn three_instances_admit_exactly_the_limit(backend: Backend) {
    let Some(first) = with_shared_redis(backend, Duration::from_secs(60)).await else {
        return;
    };
    let instances = [first.spawn_peer().await, first.spawn_peer().await, first];
    for instance in &instances {
        assert_eq!(instance.readiness().await.1["rate_limiter"], "redis");
    }
    let user = instances[0].create_user("owner@acme.test").await;
    for round in 0..3 {
        let (_, key) = instances[0].create_key_with(user, NewKey::default()).await;
        let requests = (0..150).map(|i| {
            let instance = &instances[i % 3];
            let key = key.clone();
            async move {
                instance
                    .post_lead(Some(&key), &reference_curl_body())
                    .await
                    .status()
                    .as_u16()
            }
        });
        let statuses = futures_util::future::join_all(requests).await;
        let created = statuses.iter().filter(|&&s| s == 201).count();
        let limited = statuses.iter().filter(|&&s| s == 429).count();
        assert_eq!((created, limited), (100, 50), "round {round}: {statuses:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_admit_exactly_the_limit_on_postgres() {
    three_instances_admit_exactly_the_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_admit_exactly_the_limit_on_sqlite() {
    three_instances_admit_exactly_the_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_slides_and_retry_after_is_honest() {
    let Some(app) = with_shared_redis(Backend::Sqlite, Duration::from_secs(3)).await else {
        return;
    };
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            NewKey {
                rate_limit_per_minute: Some(2),
                ..NewKey::default()
            },
        )
        .await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let refused = app.post_lead(Some(&key), &reference_curl_body()).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The first admission leaves the 3 s window ~1.8 s from now: rounded up, 2 s.
    assert_eq!(retry_after, 2);
    assert_eq!(refused.headers()["ratelimit-policy"], "\"default\";q=2;w=3");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    // Exactly one slot freed: the client that waited Retry-After is admitted, and the
    // next one is not.
    assert_eq!(app.create_status(Some(&key)).await, 201);
    assert_eq!(app.create_status(Some(&key)).await, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_mid_run_degrades_to_local_limits_and_recovers() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.redis_url = Some(url.into());
    })
    .await
    .unwrap();
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            NewKey {
                rate_limit_per_minute: Some(5),
                ..NewKey::default()
            },
        )
        .await;
    for _ in 0..3 {
        assert_eq!(app.create_status(Some(&key)).await, 201);
    }
    let (status, ready) = app.readiness().await;
    assert_eq!(
        (status, ready["redis"].as_str(), ready["degraded"].as_bool()),
        (200, Some("ok"), Some(false))
    );

    redis.kill();
    // No 5xx: every request is decided, now by the in-process window, which starts
    // empty: 5 admitted, then 429.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            app.post_lead(Some(&key), &reference_curl_body())
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429]);
    let (status, ready) = app.readiness().await;
    assert_eq!(status, 200, "degraded is still ready: {ready}");
    assert_eq!(ready["degraded"], true);
    assert_eq!(ready["redis"], "unreachable");
    assert_eq!(ready["rate_limiter"], "in_process");
    assert!(
        app.metrics_text()
            .await
            .lines()
            .any(|l| l == "ciq_rate_limiter_degraded 1"),
        "metrics say degraded"
    );

    assert!(redis.restart().await);
    let mut recovered = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if app.readiness().await.1["redis"] == "ok" {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the shared limiter never came back");
    assert!(
        app.metrics_text()
            .await
            .lines()
            .any(|l| l == "ciq_rate_limiter_degraded 0")
    );
    // Back on Redis (a fresh server: its window is empty).
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_at_start_means_degraded_not_down() {
    let closed_port = ciq_e2e::free_port();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.redis_url = Some(format!("redis://127.0.0.1:{closed_port}").into());
    })
    .await
    .unwrap();
    let (status, ready) = app.readiness().await;
    assert_eq!(status, 200);
    assert_eq!(ready["degraded"], true);
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_are_limited_per_address_and_good_cached_keys_are_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.limits.unauthenticated_per_window = 4;
    })
    .await
    .unwrap();
    let (_, good) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&good)).await, 201);
    // Wrong secrets for a real lookup id would each cost argon2 if not cached; a made-up
    // key with a valid checksum costs a database read.
    let (made_up, _) = ciq_admin::key::generate();
    let mut statuses = Vec::new();
    let attempts = [
        Some(made_up.expose()),
        None,
        Some("ciq_nope"),
        Some(made_up.expose()),
        Some(made_up.expose()),
        None,
    ];
    for key in attempts {
        statuses.push(
            app.post_lead(key, &reference_curl_body())
                .await
                .status()
                .as_u16(),
        );
    }
    // Only failures use up the allowance of 4: the good key's first (successful)
    // verification did not. The fifth bad request is refused before any key work.
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    let refused = app.post_lead(None, &reference_curl_body()).await;
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The cached good key never needs the allowance.
    for _ in 0..3 {
        assert_eq!(app.create_status(Some(&good)).await, 201);
    }
    assert_eq!(app.states.api.verifier.argon2_runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_from_one_ipv6_network_share_one_allowance() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.limits.unauthenticated_per_window = 4;
        s.trust_forwarded_for = true;
    })
    .await
    .unwrap();
    let from = |address: &'static str| {
        let app = &app;
        async move {
            let headers = [("X-Forwarded-For", address)];
            app.post_json(
                "/api/external/leads/create",
                "ciq_nope",
                &headers,
                &reference_curl_body(),
            )
            .await
            .0
        }
    };
    for _ in 0..4 {
        assert_eq!(from("2001:db8:1:2::1").await, 401);
    }
    // Another address of the same /64 bought a fresh allowance.
    for address in ["2001:db8:1:2::2", "2001:db8:1:2:ffff::6"] {
        assert_eq!(from(address).await, 429, "{address}");
    }
    assert_eq!(from("2001:db8:1:3::1").await, 401, "another network");
}

/// `key` with another secret: the same lookup id, a valid checksum, a wrong secret.
fn wrong_secret_for(key: &str, n: usize) -> String {
    let parsed = ciq_admin::key::parse(key).unwrap();
    let secret = format!("{n:0>32}");
    let signed = format!("{}{}{secret}", ciq_admin::key::PREFIX, parsed.lookup_id);
    format!("{signed}{}", ciq_admin::key::checksum_suffix(&signed))
}

/// Creates with `key` from `address` (the gateway trusts X-Forwarded-For here).
async fn create_from(app: &TestApp, key: &str, address: &str) -> u16 {
    let headers = [("X-Forwarded-For", address)];
    app.post_json(
        "/api/external/leads/create",
        key,
        &headers,
        &reference_curl_body(),
    )
    .await
    .0
}

/// A gateway on the shared Redis that trusts X-Forwarded-For, with `adjust` applied;
/// `None` without Redis outside CI.
async fn behind_a_proxy_on_redis(
    adjust: impl FnOnce(&mut ciq_gateway::Settings),
) -> Option<TestApp> {
    let url = test_redis_url().await?;
    TestApp::spawn_with(Backend::Sqlite, |s| {
        s.redis_url = Some(url.into());
        s.redis_prefix = unique_redis_prefix();
        s.trust_forwarded_for = true;
        adjust(s);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_secrets_for_a_key_cost_ten_argon2_runs_and_never_lock_it_out() {
    let Some(first) = behind_a_proxy_on_redis(|_| {}).await else {
        return;
    };
    let (_, key) = first.user_with_key("owner@acme.test").await;
    // Used once, somewhere: its digest is shared.
    assert_eq!(create_from(&first, &key, "192.0.2.1").await, 201);
    // An instance that has not seen the key, attacked with its public lookup id from a
    // thousand addresses (so no address allowance stops them).
    let attacked = first.spawn_peer().await;
    for n in 0..1000 {
        let address = format!("10.{}.{}.1", n / 256, n % 256);
        let status = create_from(&attacked, &wrong_secret_for(&key, n), &address).await;
        assert_eq!(status, 401, "attempt {n}");
    }
    let runs = attacked.states.api.verifier.argon2_runs();
    assert_eq!(
        runs,
        u64::from(ciq_api::auth::LOOKUP_FAILURES_PER_WINDOW),
        "argon2 ran only within the lookup id's allowance"
    );
    // The real key still verifies there, and on a fresh instance, without argon2.
    assert_eq!(create_from(&attacked, &key, "192.0.2.2").await, 201);
    assert_eq!(attacked.states.api.verifier.argon2_runs(), runs);
    let fresh = first.spawn_peer().await;
    assert_eq!(create_from(&fresh, &key, "192.0.2.3").await, 201);
    assert_eq!(fresh.states.api.verifier.argon2_runs(), 0);
    // A wrong secret there is refused unchecked.
    assert_eq!(
        create_from(&fresh, &wrong_secret_for(&key, 1), "192.0.2.4").await,
        401
    );
    assert_eq!(fresh.states.api.verifier.argon2_runs(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_verifies_is_not_refused_for_its_addresss_failures() {
    let Some(first) = behind_a_proxy_on_redis(|s| s.limits.unauthenticated_per_window = 4).await
    else {
        return;
    };
    let (_, key) = first.user_with_key("owner@acme.test").await;
    assert_eq!(create_from(&first, &key, "192.0.2.1").await, 201);
    // An office behind one address: someone's bad requests use up its allowance.
    let office = "198.51.100.7";
    for _ in 0..4 {
        assert_eq!(create_from(&first, "ciq_nope", office).await, 401);
    }
    assert_eq!(create_from(&first, "ciq_nope", office).await, 429);
    // A colleague's good key, on an instance that has not cached it: verified, 201
    // (it was 429 before it was checked).
    let other = first.spawn_peer().await;
    assert_eq!(create_from(&other, &key, office).await, 201);
    assert_eq!(other.states.api.verifier.argon2_runs(), 0);
    // A wrong one from there is still 429.
    assert_eq!(
        create_from(&other, &wrong_secret_for(&key, 7), office).await,
        429
    );
}
