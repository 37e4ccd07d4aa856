//! Limiter decisions per second on Redis, next to `redis-benchmark` running the same
//! Lua script on the same server, in one run.
//!
//! `cargo run --release -p ciq-limiter --example limiter_bench [REDIS_URL] [SECONDS] [CONCURRENCY]`
//! Defaults: redis://127.0.0.1:6379, 5 s, 64. Targets 127.0.0.1 only; stops by itself.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciq_limiter::{InProcessLimiter, RedisLimiter};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let prefix = format!("ciq-bench:{}:", std::process::id());
    let redis = Arc::new(RedisLimiter::new(&url, &prefix).expect("a Redis URL"));
    redis.ping().await.expect("Redis answers");

    let calls_before = redis.script_calls();
    let (rate, p50, p99) = drive(seconds, concurrency, {
        let redis = redis.clone();
        move |i| {
            let redis = redis.clone();
            async move {
                redis
                    .try_acquire(
                        &format!("key:{}", i % 1000),
                        1_000_000_000,
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("decision");
            }
        }
    })
    .await;
    let per_call = rate * seconds as f64 / (redis.script_calls() - calls_before).max(1) as f64;
    println!(
        "RedisLimiter::try_acquire   {rate:>10.0} decisions/s  p50 {p50:>7.3} ms  p99 {p99:>7.3} ms  ({concurrency} concurrent, {seconds} s, 1000 buckets, {per_call:.1} decisions per script call)"
    );

    let local = Arc::new(InProcessLimiter::new());
    let (rate, p50, p99) = drive(seconds.min(2), concurrency, {
        move |i| {
            let local = local.clone();
            async move {
                local.acquire_now(
                    &format!("key:{}", i % 1000),
                    1_000_000_000,
                    Duration::from_secs(60),
                );
            }
        }
    })
    .await;
    println!(
        "InProcessLimiter            {rate:>10.0} decisions/s  p50 {p50:>7.3} ms  p99 {p99:>7.3} ms"
    );

    // The same script through redis-benchmark: the server's own ceiling for it.
    let sha = redis.script_hash().to_owned();
    let requests = (rate_hint(seconds) * 1.0) as u64;
    let host_port = url.trim_start_matches("redis://").trim_end_matches('/');
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "6379"));
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-c",
            &concurrency.to_string(),
            "-n",
            &requests.to_string(),
        ])
        .args(["-r", "1000", "-q"])
        .args([
            "EVALSHA",
            &sha,
            "1",
            &format!("{prefix}{{key:__rand_int__}}"),
            "1000000000",
            "60000",
            "m:__rand_int__",
            "1",
        ])
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            // -q redraws its progress line with carriage returns; the last one is the result.
            let result = text
                .split(['\r', '\n'])
                .rfind(|l| l.contains("requests per second"))
                .and_then(|l| l.rsplit_once(": "))
                .map_or("(no figure)", |(_, figure)| figure);
            println!(
                "redis-benchmark EVALSHA     {result}  ({concurrency} connections, same script)"
            );
        }
        Err(err) => println!("redis-benchmark not run: {err}"),
    }
}

fn rate_hint(seconds: u64) -> f64 {
    // Enough requests for redis-benchmark to run for about as long as our own run.
    (seconds as f64) * 40_000.0
}

async fn drive<F, Fut>(seconds: u64, concurrency: usize, op: F) -> (f64, f64, f64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = t;
                while Instant::now() < deadline {
                    let s = Instant::now();
                    op(i).await;
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                    i += concurrency;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    (all.len() as f64 / elapsed, pct(0.5), pct(0.99))
}
