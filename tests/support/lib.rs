//! Test support: the real gateway on port 0 over a fresh, private database.
//!
//! Every [`TestApp`] gets its own database — a SQLite file in its own temporary
//! folder, or a PostgreSQL database named after a UUID — and removes it when dropped.
//! PostgreSQL (`CIQ_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`)
//! is used whenever reachable; with `CI` set, an unreachable server fails the test
//! instead of skipping it.

pub mod browser;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ciq_admin::keys::NewKey;
use ciq_admin::{SecretHasher, keys, users};
use ciq_api::AppState;
use ciq_gateway::{Application, Settings};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// Production's store.
    Postgres,
}

/// The administrative PostgreSQL URL tests create their databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("CIQ_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A private database that is removed when dropped.
pub struct TestDatabase {
    /// URL the gateway connects with.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Folder(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates a fresh database, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("ciq-test-{}", Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                Some(Self {
                    url: format!("sqlite://{}?mode=rwc", dir.join("ciq.db").display()),
                    cleanup: Cleanup::Folder(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = match Database::connect(&admin_url).await {
                    Ok(db) => db,
                    Err(err) if std::env::var_os("CI").is_none() => {
                        eprintln!("skipping PostgreSQL test: {admin_url} unreachable ({err})");
                        return None;
                    }
                    Err(err) => panic!("PostgreSQL is required under CI: {admin_url}: {err}"),
                };
                let name = format!("ciq_test_{}", Uuid::new_v4().simple());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                Some(Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::PostgresDatabase { admin_url, name },
                })
            }
        }
    }

    /// The SQLite folder, for tests that read the raw files.
    pub fn sqlite_folder(&self) -> Option<&PathBuf> {
        match &self.cleanup {
            Cleanup::Folder(dir) => Some(dir),
            Cleanup::PostgresDatabase { .. } => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Folder(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let (admin_url, db_name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread with its own.
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        let admin = Database::connect(&admin_url).await?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"
                            ))
                            .await?;
                        admin.close().await
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test database {name}: {dropped:?}");
                }
            }
        }
    }
}

/// A running gateway on a private database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// A connection of the test's own to the same database.
    pub db: DatabaseConnection,
    /// The gateway's shared state (counters, limiter).
    pub state: Arc<AppState>,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Which backend.
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The database (dropped with the last instance on it).
    pub database: Arc<TestDatabase>,
    settings: Settings,
}

impl TestApp {
    /// Starts the gateway with default settings, or `None` (skip) when the backend
    /// is unreachable outside CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the gateway with adjusted settings.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let database = Arc::new(TestDatabase::create(backend).await?);
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            database_url: database.url.clone(),
            ..Settings::default()
        };
        adjust(&mut settings);
        Some(Self::start(backend, database, settings).await)
    }

    /// Another instance on the same database with the same settings (and so the same
    /// Redis, if any), as a second replica behind a load balancer would be.
    pub async fn spawn_peer(&self) -> Self {
        Self::start(self.backend, self.database.clone(), self.settings.clone()).await
    }

    async fn start(backend: Backend, database: Arc<TestDatabase>, settings: Settings) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("gateway starts");
        let base_url = format!("http://{}", app.local_addr());
        let state = app.state();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        // The test's own connection goes where the gateway's does.
        let db = ciq_gateway::database::connect(&settings.database_url)
            .await
            .expect("test connection");
        Self {
            base_url,
            db,
            state,
            client: reqwest::Client::new(),
            backend,
            shutdown: Some(tx),
            server: Some(server),
            database,
            settings,
        }
    }

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text")
    }

    /// `GET /readyz` as JSON, with its status code.
    pub async fn readiness(&self) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}/readyz", self.base_url))
            .send()
            .await
            .expect("readyz answers");
        (resp.status().as_u16(), resp.json().await.expect("JSON"))
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, email: &str) -> Uuid {
        users::create_user(&self.db, email, Some("Test User"))
            .await
            .expect("create user")
            .id
    }

    /// Creates a key for `user_id` and returns `(key id, plaintext key)`.
    pub async fn create_key_with(&self, user_id: Uuid, new: NewKey) -> (Uuid, String) {
        let (row, plain) = keys::create_key(
            &self.db,
            &SecretHasher::default(),
            user_id,
            new,
            &keys::Actor::cli(),
        )
        .await
        .expect("create key");
        (row.id, plain.expose().to_owned())
    }

    /// A user with one key made as `new` says: `(user id, plaintext key)`.
    pub async fn user_with_key_like(&self, email: &str, new: NewKey) -> (Uuid, String) {
        let user = self.create_user(email).await;
        let (_, key) = self.create_key_with(user, new).await;
        (user, key)
    }

    /// The status of a create with the reference's cURL body and `key`.
    pub async fn create_status(&self, key: Option<&str>) -> u16 {
        self.post_lead(key, &reference_curl_body())
            .await
            .status()
            .as_u16()
    }

    /// A user with one default key: `(user id, plaintext key)`.
    pub async fn user_with_key(&self, email: &str) -> (Uuid, String) {
        let user = self.create_user(email).await;
        let (_, key) = self.create_key_with(user, NewKey::default()).await;
        (user, key)
    }

    /// `POST /api/external/leads/create` with a JSON body and an optional key.
    pub async fn post_lead(&self, key: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/external/leads/create", self.base_url))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        req.send().await.expect("request sent")
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

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

/// A TCP port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
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

/// The reference's full Request Body, verbatim.
pub fn reference_full_body() -> Value {
    serde_json::from_str(
        r#"{
"lead": {
"name": "Jane Doe",
"email": "jane@example.com",
"phone": "15551234567",
"source": "Website Form",
"industry": "Technology",
"score": 7,
"status": "contacted",
"monthly_revenue": 50000,
"budget": 10000,
"description": "Interested in AI calling"
}
}"#,
    )
    .expect("reference body is JSON")
}

/// The reference's cURL example body, verbatim.
pub fn reference_curl_body() -> Value {
    serde_json::from_str(
        r#"{
"lead": {
"name": "Jane Doe",
"email": "jane@example.com",
"phone": "15551234567",
"source": "API",
"industry": "Technology"
}
}"#,
    )
    .expect("reference body is JSON")
}

/// Runs each named scenario `async fn NAME(app: TestApp)` once on SQLite and once
/// on PostgreSQL, as `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::TestApp::spawn($crate::Backend::Sqlite).await.expect("sqlite");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres).await else {
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// Debian's nginx in front of gateway instances, as in `docker-compose.yml`
/// (`deploy/nginx.conf`), on a free port. Stopped when dropped.
pub struct LoadBalancer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl LoadBalancer {
    /// Starts nginx proxying to `upstreams` (`http://host:port` each), or `None`
    /// (skip) when nginx is not installed outside CI.
    pub async fn start(upstreams: &[&str]) -> Option<Self> {
        if std::process::Command::new("nginx")
            .arg("-v")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx is required under CI"
            );
            eprintln!("skipping: nginx is not installed");
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ciq-nginx-{}", Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let servers: String = upstreams
            .iter()
            .map(|u| format!("        server {};\n", u.trim_start_matches("http://")))
            .collect();
        // The same proxy settings as deploy/nginx.conf, with local addresses.
        let shipped = include_str!("../../deploy/nginx.conf");
        let location = &shipped[shipped.find("location / {").expect("a location")..];
        let location = &location[..location.find("\n        }").expect("its end") + 10];
        let conf = format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
             events {{}}\nhttp {{\n    log_format upstream '$upstream_addr $status';\n    \
             access_log {dir}/logs/access.log upstream;\n    client_body_temp_path {dir}/body;\n    \
             proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    \
             uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n    \
             upstream gateways {{\n{servers}        keepalive 64;\n    }}\n    \
             server {{\n        listen 127.0.0.1:{port};\n        client_max_body_size 1m;\n        {location}\n    }}\n}}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let mut child = std::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    base_url: format!("http://127.0.0.1:{port}"),
                    child,
                    dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
    }
}

impl LoadBalancer {
    /// How many requests each upstream (`127.0.0.1:PORT`) answered, from nginx's
    /// access log.
    pub fn served_by(&self) -> std::collections::HashMap<String, usize> {
        let log = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        let mut counts = std::collections::HashMap::new();
        for line in log.lines() {
            if let Some(upstream) = line.split(' ').next() {
                *counts.entry(upstream.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of the test's own (Debian's binaries, run as `postgres`), on
/// a free port, to stop and start at will. Removed when dropped.
pub struct PrivatePostgres {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or `None` (skip) outside CI when the server
    /// binaries are not installed.
    pub async fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .max()
            });
        let Some(bin) = bin.filter(|b| b.join("pg_ctl").exists()) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL server binaries are required under CI"
            );
            eprintln!("skipping: no PostgreSQL server binaries");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("ciq-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success());
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        pg.as_postgres(
            "initdb",
            &["--auth=trust", "--username=postgres", "-D"],
            true,
        );
        assert!(pg.restart(), "the private cluster starts");
        Some(pg)
    }

    fn as_postgres(&self, tool: &str, args: &[&str], with_dir: bool) -> bool {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args);
        if with_dir {
            cmd.arg(self.dir.join("data"));
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn restart(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.as_postgres(
            "pg_ctl",
            &[
                "-w",
                "-o",
                &options,
                "-l",
                &format!("{}/log", self.dir.display()),
                "start",
                "-D",
            ],
            true,
        )
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) {
        self.as_postgres("pg_ctl", &["-m", "immediate", "-w", "stop", "-D"], true);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
