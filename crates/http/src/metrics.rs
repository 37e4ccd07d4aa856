//! Prometheus metrics: the process's recorder, the request counter middleware, and
//! the text exposition served at `GET /metrics`.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `ciq_http_requests_total` | counter | `route`, `method`, `status` |
//! | `ciq_http_request_duration_seconds` | histogram | `route` |
//! | `ciq_rate_limit_decisions_total` | counter | `scope` (`key`, `address`), `outcome` (`admitted`, `refused`) |
//! | `ciq_rate_limit_decision_seconds` | histogram | — (one API key's limiter decision, Redis round trip included) |
//! | `ciq_rate_limiter_degraded` | gauge | — (1 while Redis is configured but unreachable) |
//! | `ciq_redis_cluster` | gauge | — (1 when `REDIS_URL` names a Redis Cluster) |
//! | `ciq_leads_created_total` | counter | — |
//! | `ciq_key_cache_hits_total` | counter | — |
//! | `ciq_argon2_verifications_total` | counter | — |
//! | `ciq_db_pool_connections`, `ciq_db_pool_idle_connections` | gauge | — |
//! | `ciq_runtime_worker_threads` | gauge | — (the async runtime's workers, `CIQ_WORKER_THREADS`) |
//! | `ciq_db_reads_total` | counter | `on` (`replica`, `primary`): list reads, by where they ran |
//! | `ciq_db_replica_lag_seconds`, `ciq_db_replica_in_use` | gauge | — (the read replica's lag; 1 while lists are read there) |
//! | `ciq_lead_batch_size` | histogram | — (rows per group-commit INSERT) |
//! | `ciq_lead_batch_linger_seconds` | histogram | — (a writer's wait for announced rows) |
//! | `ciq_lead_commit_seconds` | histogram | — (one group-commit INSERT and its commit) |
//!
//! The degraded and cluster gauges, the key-cache and argon2 counters, the pool and
//! worker gauges are read from the instance's state at scrape time (the operator module's
//! `/metrics` passes them to [`render`]); the rest are recorded here.
//!
//! One recorder per process (the `metrics` facade is global): several gateways in one
//! process — as in tests — share it.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: sub-millisecond to the slowest plausible request.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How often pending histogram samples are folded into their buckets.
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use, with a thread that folds pending
/// histogram samples into buckets every [`UPKEEP_INTERVAL`]. `build_recorder` starts no
/// such task itself: without it every sample is kept until the next scrape, and a
/// gateway nobody scrapes grows by a few bytes per request for ever.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&LATENCY_BUCKETS)
            .expect("non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a host application's); ours still
        // renders what is recorded through it only if it is the global one.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be sparse");
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("ciq-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread can be started");
        handle
    })
}

/// Renders what the recorder holds, followed by `own`: values read from one
/// instance's state at scrape time (name, kind, help, value), written here rather
/// than through the global recorder so that each instance reports its own.
pub fn render(own: &[(&str, &str, &str, u64)]) -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    for (name, kind, help, value) in own {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    text
}

/// The metric handles a request records into, by what labels them, kept per runtime
/// thread: a handle is found once per combination and thread, not on every request —
/// building a metric's key (its labels, a status written as text) and finding it in the
/// recorder's registry was 1–2 % of the gateway's samples under creates (flat profiles,
/// 2026-12-07; 0.7 % with the handles kept, the rest recorded elsewhere).
/// The combinations are few and fixed (static routes and scopes, ten methods, the
/// status codes an answer can have), so the maps stay small.
mod handles {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::thread::LocalKey;

    type Map<K, V> = RefCell<HashMap<K, V>>;

    thread_local! {
        /// By (route, method, status): the request counter and the route's histogram.
        pub(super) static REQUESTS: Map<(&'static str, &'static str, u16), (metrics::Counter, metrics::Histogram)> =
            RefCell::default();
        /// By (scope, admitted): the limiter's decision counter.
        pub(super) static DECISIONS: Map<(&'static str, bool), metrics::Counter> = RefCell::default();
        /// The limiter's decision latency histogram (one, unlabelled).
        pub(super) static DECISION_LATENCY: Map<(), metrics::Histogram> = RefCell::default();
    }

    /// The handle of `key` in `map`, made by `make` the first time on this thread —
    /// after the recorder is installed, so a handle kept is never a no-op one.
    pub(super) fn of<K: Hash + Eq + Copy + 'static, V: Clone + 'static>(
        map: &'static LocalKey<Map<K, V>>,
        key: K,
        make: impl FnOnce() -> V,
    ) -> V {
        map.with(|map| {
            if let Some(handle) = map.borrow().get(&key) {
                return handle.clone();
            }
            super::handle();
            let handle = make();
            map.borrow_mut().insert(key, handle.clone());
            handle
        })
    }
}

/// Counts one limiter decision.
pub fn record_decision(scope: &'static str, allowed: bool) {
    handles::of(&handles::DECISIONS, (scope, allowed), || {
        let outcome = if allowed { "admitted" } else { "refused" };
        metrics::counter!("ciq_rate_limit_decisions_total", "scope" => scope, "outcome" => outcome)
    })
    .increment(1);
}

/// Counts browser submissions by how they ended (`accepted`, `spam`: per lead stored;
/// `visitor_limited`, `challenge_failed`, `origin_not_allowed`: per request refused).
pub fn record_browser_submissions(outcome: &'static str, count: u64) {
    metrics::counter!("ciq_browser_submissions_total", "outcome" => outcome).increment(count);
}

/// Times one API key's limiter decision (with Redis, its round trip).
pub fn record_decision_latency(took: std::time::Duration) {
    handles::of(&handles::DECISION_LATENCY, (), || {
        metrics::histogram!("ciq_rate_limit_decision_seconds")
    })
    .record(took.as_secs_f64());
}

/// Methods as labels: the ones HTTP defines, and `other` for invented ones, so that
/// `FOO1 /`, `FOO2 /`, ... cannot grow `/metrics` and memory for ever.
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Counts a request's answer (`ciq_http_requests_total`) and times it
/// (`ciq_http_request_duration_seconds`) under its route's label.
pub fn record(route: &'static str, method: &poem::http::Method, status: u16, started: Instant) {
    let method = method_label(method);
    let (requests, duration) = handles::of(&handles::REQUESTS, (route, method, status), || {
        (
            metrics::counter!(
                "ciq_http_requests_total",
                "route" => route,
                "method" => method,
                "status" => status.to_string()
            ),
            metrics::histogram!("ciq_http_request_duration_seconds", "route" => route),
        )
    });
    requests.increment(1);
    duration.record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    #[test]
    fn invented_methods_share_one_label() {
        let foo = poem::http::Method::from_bytes(b"FOO1").unwrap();
        assert_eq!(super::method_label(&foo), "other");
        assert_eq!(super::method_label(&poem::http::Method::POST), "POST");
    }

    /// The value of the exposition's line that starts with `series`, 0 when absent.
    fn value_of(series: &str) -> f64 {
        super::render(&[])
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Handles kept per thread count into the one series their labels name, from any
    /// thread, on first use and after.
    #[test]
    fn kept_handles_count_every_answer_and_decision() {
        const SERIES: &str =
            "ciq_http_requests_total{route=\"/kept\",method=\"PATCH\",status=\"418\"}";
        const DECISIONS: &str =
            "ciq_rate_limit_decisions_total{scope=\"kept\",outcome=\"refused\"}";
        const HISTOGRAM: &str = "ciq_http_request_duration_seconds_count{route=\"/kept\"}";
        let record = || {
            super::record(
                "/kept",
                &poem::http::Method::PATCH,
                418,
                std::time::Instant::now(),
            );
            super::record_decision("kept", false);
        };
        record();
        let (requests, decisions, timed) =
            (value_of(SERIES), value_of(DECISIONS), value_of(HISTOGRAM));
        assert!(requests >= 1.0 && decisions >= 1.0 && timed >= 1.0);
        record();
        record();
        std::thread::spawn(record).join().unwrap();
        assert_eq!(value_of(SERIES), requests + 3.0);
        assert_eq!(value_of(DECISIONS), decisions + 3.0);
        assert_eq!(value_of(HISTOGRAM), timed + 3.0);
    }

    #[test]
    fn installing_the_recorder_starts_its_upkeep_thread() {
        super::handle();
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .expect("Linux /proc")
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        // A new thread names itself once it runs; comm is cut to 15 bytes.
        for _ in 0..500 {
            if names().iter().any(|n| n == "ciq-metrics-upk") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no upkeep thread among {:?}", names());
    }
}
