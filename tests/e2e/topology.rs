//! The docker-compose topology as processes: nginx (deploy/nginx.conf's proxy
//! settings) in front of two gateways on one database and one Redis.

use ciq_e2e::{
    Backend, LoadBalancer, TestApp, reference_curl_body, test_redis_url, unique_redis_prefix,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_nginx_share_the_limit_and_both_serve() {
    let Some(redis) = test_redis_url().await else {
        return;
    };
    let Some(one) = TestApp::spawn_with(Backend::Postgres, |s| {
        s.redis_url = Some(redis.into());
        s.redis_prefix = unique_redis_prefix();
        s.trust_forwarded_for = true;
    })
    .await
    else {
        return;
    };
    let two = one.spawn_peer().await;
    let Some(lb) = LoadBalancer::start(&[&one.base_url, &two.base_url]).await else {
        return;
    };
    let (_, key) = one.user_with_key("owner@acme.test").await;

    let client = reqwest::Client::new();
    let body = reference_curl_body().to_string();
    let requests = (0..150).map(|_| {
        client
            .post(format!("{}/api/external/leads/create", lb.base_url))
            .header("Content-Type", "application/json")
            .header("X-API-Key", &key)
            .header("X-Forwarded-For", "6.6.6.6")
            .body(body.clone())
            .send()
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut statuses = Vec::new();
    for resp in responses {
        let resp = resp.unwrap();
        // nginx gives every request an id, and the gateway echoes it.
        assert_eq!(resp.headers()["x-request-id"].len(), 32);
        statuses.push(resp.status().as_u16());
    }
    let created = statuses.iter().filter(|&&s| s == 201).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((created, limited), (100, 50), "{statuses:?}");
    // nginx writes its access log line after answering: give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let served = lb.served_by();
    for (name, instance) in [("one", &one), ("two", &two)] {
        let addr = instance.base_url.trim_start_matches("http://");
        let count = served.get(addr).copied().unwrap_or(0);
        assert!(
            count >= 50,
            "replica {name} served {count}: {served:?}; nginx: {}",
            lb.error_log()
        );
    }
}
