//! The real gateway on port 0 over a private database, with request helpers.

use std::sync::Arc;
use std::time::Duration;

use ciq_admin::keys::NewKey;
use ciq_admin::{SecretHasher, keys, users};
use ciq_gateway::app::States;
use ciq_gateway::{Application, Settings};
use ciq_store::Db;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::database::{Backend, TestDatabase};
use crate::fixtures::reference_curl_body;

/// A running gateway on a private database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// A connection of the test's own to the same database.
    pub db: Db,
    /// The gateway's state, per surface (counters, limiter).
    pub states: States,
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
            database_url: database.url.clone().into(),
            pooling: backend.pooling(),
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

    /// Another instance on the same database, with its settings adjusted.
    pub async fn spawn_peer_with(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        Self::start(self.backend, self.database.clone(), settings).await
    }

    async fn start(backend: Backend, database: Arc<TestDatabase>, settings: Settings) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("gateway starts");
        let base_url = format!("http://{}", app.local_addr());
        let states = app.states();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        // The test's own connection goes where the gateway's does.
        let db = ciq_gateway::database::connect_with(
            settings.database_url.expose_secret(),
            ciq_gateway::database::Waits::default(),
            settings.pooling,
        )
        .await
        .expect("test connection");
        Self {
            base_url,
            db,
            states,
            client: crate::http_client(),
            backend,
            shutdown: Some(tx),
            server: Some(server),
            database,
            settings,
        }
    }

    /// `GET path` on this instance (`path` starts with `/`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics_text(&self) -> String {
        crate::get_text(&self.client, &format!("{}/metrics", self.base_url)).await
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

    /// A key of `user_id`'s with only `leads:read` (for the refusals of every other
    /// scope): its plaintext.
    pub async fn read_only_key(&self, user_id: Uuid) -> String {
        let new = NewKey {
            scopes: ciq_admin::Scopes::of(&[ciq_admin::Scope::LeadsRead]),
            ..NewKey::default()
        };
        self.create_key_with(user_id, new).await.1
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

    /// `POST path` with the JSON `body`, `X-API-Key: key` and the `headers` given: the
    /// status and the JSON answer (`Null` when it has none).
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("Content-Type", "application/json")
            .header("X-API-Key", key)
            .body(body.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
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
