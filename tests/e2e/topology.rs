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

    let client = ciq_e2e::http_client();
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
        let id = resp.headers().get("x-request-id").map(|v| v.len());
        assert_eq!(
            id,
            Some(32),
            "an answer without the gateway's request id: {resp:?}"
        );
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

/// `curl -k` (the certificate is self-signed): the status and the headers, lower-cased.
fn curl(method: &str, url: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-k", "-s", "-o", "/dev/null", "-D", "-", "-X", method, url])
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_side_is_tls_only_and_hides_probes_metrics_and_the_operator_api() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.trust_forwarded_for = true;
        s.admin_token = Some("operator-token-of-the-topology-test".into());
    })
    .await
    else {
        return;
    };
    let Some(lb) = LoadBalancer::start(&[&app.base_url]).await else {
        return;
    };
    let public = lb.public_url.clone();
    let internal = lb.base_url.clone();
    let checks = tokio::task::spawn_blocking(move || {
        // Public: the Settings page over TLS, with HSTS and __Host- Secure cookies.
        let (status, head) = curl("GET", &format!("{public}/login"));
        assert_eq!(status, 200, "{head}");
        assert!(
            head.contains("strict-transport-security: max-age=31536000"),
            "{head}"
        );
        assert!(
            head.contains("set-cookie: __host-ciq_login_csrf="),
            "{head}"
        );
        assert!(head.contains("; secure"), "{head}");
        // Not on the public side, whatever the method.
        for (method, path) in [
            ("GET", "/metrics"),
            ("GET", "/readyz"),
            ("GET", "/admin/v1/openapi.json"),
            ("POST", "/admin/v1/users"),
        ] {
            let (status, head) = curl(method, &format!("{public}{path}"));
            assert_eq!(status, 404, "{method} {path}: {head}");
            assert!(head.contains("content-type: application/json"), "{head}");
        }
        // Internal: every path.
        assert_eq!(curl("GET", &format!("{internal}/metrics")).0, 200);
        assert_eq!(curl("GET", &format!("{internal}/readyz")).0, 200);
        assert_eq!(
            curl("GET", &format!("{internal}/admin/v1/openapi.json")).0,
            401
        );
    });
    checks.await.unwrap();
}
