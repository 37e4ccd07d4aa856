//! Redis for tests: the shared server with a private key prefix, or a private
//! `redis-server` to kill and restart.

use std::time::Duration;

use uuid::Uuid;

use crate::free_port;

/// The Redis tests use (`CIQ_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), or
/// `None` (skip) when it does not answer outside CI; under CI that is a failure.
pub async fn test_redis_url() -> Option<String> {
    let url =
        std::env::var("CIQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let limiter = ciq_limiter::RedisLimiter::new(&url, "ciq-test:").expect("a Redis URL");
    match limiter.ping().await {
        Ok(()) => Some(url),
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping Redis test: {url} unreachable ({err})");
            None
        }
        Err(err) => panic!("Redis is required under CI: {url}: {err}"),
    }
}

/// A key prefix no other test uses.
pub fn unique_redis_prefix() -> String {
    format!("ciq-test:{}:", Uuid::new_v4().simple())
}

/// A `redis-server` of the test's own on a free port, to stop and start at will.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one, or `None` (skip) when `redis-server` is not installed outside CI.
    pub async fn start() -> Option<Self> {
        let port = free_port();
        let mut redis = Self { port, child: None };
        if !redis.restart().await {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required under CI"
            );
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        Some(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port; false if it cannot be run.
    pub async fn restart(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
