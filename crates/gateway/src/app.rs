//! The application: bound listener, shared state, background tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, Route, Server};
use secrecy::{ExposeSecret, SecretString};

use ciq_admin::KeyVerifier;
use ciq_admin::operator::OperatorState;
use ciq_admin::sessions::SessionStore;
use ciq_api::ApiState;
use ciq_console::ConsoleState;
use ciq_imports::worker::ImportWorker;
use ciq_leads::LeadWriter;
use ciq_limiter::{FailoverLimiter, InProcessLimiter, LimitSettings, RateLimiter, RedisLimiter};
use ciq_webhooks::delivery::DeliveryWorker;

use crate::database;

/// How often each instance looks for revoked or changed keys.
pub const KEY_CHANGE_POLL: Duration = Duration::from_millis(500);
/// How often each instance writes the keys' last-use times.
pub const LAST_USED_FLUSH: Duration = Duration::from_secs(5);
/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// The gateway's public origin (`CIQ_PUBLIC_URL`, e.g. `https://api.example.com`):
    /// the one page origin every key may be used from (Swagger UI's Try it out), and
    /// the address Settings shows. `None` = `http://` + the bound address. Never taken
    /// from `Host` or `X-Forwarded-Host`, which a DNS-rebinding page controls.
    pub public_url: Option<String>,
    /// `sqlite://…` or `postgres://…` (may hold a password: never printed).
    pub database_url: SecretString,
    /// A PostgreSQL streaming replica for lists (`DATABASE_READ_URL`); `None` = every
    /// read on the primary.
    pub database_read_url: Option<SecretString>,
    /// Largest lag at which the replica still serves lists.
    pub replica_max_lag: Duration,
    /// Whether `database_url` (and the replica's) go through a transaction pooler.
    pub pooling: database::Pooling,
    /// Rate limits.
    pub limits: LimitSettings,
    /// Take the client address from the last `X-Forwarded-For` entry and the scheme
    /// from `X-Forwarded-Proto` (only behind a proxy that sets them).
    pub trust_forwarded_for: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Redis for the shared limiter and sessions; `None` = in-process limiter and
    /// sessions in the database (may hold a password: never printed).
    pub redis_url: Option<SecretString>,
    /// Prefix of the gateway's Redis keys (several deployments can share a Redis).
    pub redis_prefix: String,
    /// Operator token of `/admin/v1` (at least 16 characters); `None` = API off.
    pub admin_token: Option<SecretString>,
    /// How long a Settings sign-in lasts.
    pub session_ttl: Duration,
    /// Group-commit writer tasks; `None` = 1 on SQLite, 2 on PostgreSQL; `Some(0)` =
    /// group commit off.
    pub lead_writers: Option<usize>,
    /// How long stored data is kept, and how often it is purged.
    pub retention: crate::retention::Retention,
    /// Time between two writes of the usage counts (`CIQ_USAGE_FLUSH_SECS`).
    pub usage_flush_every: Duration,
    /// Most leads the outage spool holds (`CIQ_SPOOL_MAX_ENTRIES`); the spool needs Redis.
    pub spool_max_entries: u64,
    /// How long anything may wait for the store.
    pub waits: database::Waits,
    /// How CSV imports are run.
    pub imports: ciq_imports::worker::WorkerSettings,
    /// How webhooks are delivered.
    pub webhooks: ciq_webhooks::WebhookSettings,
    /// `CIQ_WEBHOOK_SECRET_KEY`; `None` = the embedded default's own (SQLite), or
    /// webhooks off (PostgreSQL).
    pub webhook_key: Option<SecretString>,
    /// `CIQ_CHALLENGE_VERIFY_URL`: where every challenge provider is asked instead of
    /// its own siteverify (tests' local stand-in).
    pub challenge_verify_url: Option<String>,
}

/// Shortest operator token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Default prefix of the gateway's Redis keys: the limiter's are `<prefix>rl:…`,
/// sessions `<prefix>session:…`, keys' last good verifications `<prefix>verified:…`.
pub const DEFAULT_REDIS_PREFIX: &str = "ciq:";

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            database_url: database::DEFAULT_DATABASE_URL.into(),
            database_read_url: None,
            replica_max_lag: ciq_store::replica::DEFAULT_MAX_LAG,
            pooling: database::Pooling::Direct,
            limits: LimitSettings::default(),
            trust_forwarded_for: false,
            max_body_bytes: ciq_api::state::DEFAULT_MAX_BODY_BYTES,
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.into(),
            admin_token: None,
            session_ttl: ciq_console::state::DEFAULT_SESSION_TTL,
            lead_writers: None,
            retention: crate::retention::Retention::default(),
            usage_flush_every: ciq_usage::flush::DEFAULT_FLUSH_EVERY,
            spool_max_entries: ciq_spool::DEFAULT_MAX_ENTRIES,
            waits: database::Waits::default(),
            imports: ciq_imports::worker::WorkerSettings::default(),
            webhooks: ciq_webhooks::WebhookSettings::default(),
            webhook_key: None,
            challenge_verify_url: None,
        }
    }
}

/// Each surface's state of one instance; they share the store, verifier and limiter.
#[derive(Clone)]
pub struct States {
    /// Integrators' API.
    pub api: Arc<ApiState>,
    /// Account owners' Settings pages.
    pub console: Arc<ConsoleState>,
    /// Operator API and probes.
    pub operator: Arc<OperatorState>,
    /// This instance's webhook delivery worker.
    pub webhooks: Arc<DeliveryWorker>,
    /// The key that seals the endpoints' signing secrets (`None`: webhooks are off).
    pub webhook_key: Option<ciq_store::secret::SecretBox>,
    /// Writes the usage the API counts (tests flush it at will).
    pub usage: ciq_usage::Flusher,
}

/// A gateway instance with its listener bound and its store migrated, ready to run.
pub struct Application {
    acceptor: poem::listener::BoxAcceptor,
    local_addr: SocketAddr,
    states: States,
    retention: crate::retention::Retention,
    /// Whether this instance runs webhook delivery workers.
    delivering: bool,
}

/// Errors of start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The session store could not be set up.
    #[error("sessions: {0}")]
    Sessions(#[from] ciq_admin::AdminError),
    /// `CIQ_ADMIN_TOKEN` is too short to be a secret.
    #[error("CIQ_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LEN} characters")]
    WeakAdminToken,
    /// `REDIS_URL` is not a Redis URL. (An unreachable Redis is not an error: the
    /// gateway starts degraded.)
    #[error("REDIS_URL: {0}")]
    RedisUrl(#[from] redis::RedisError),
    /// `CIQ_WEBHOOK_SECRET_KEY` is unusable, or the embedded default's key file is.
    #[error("webhook key: {0:#}")]
    WebhookKey(anyhow::Error),
    /// `CIQ_PUBLIC_URL` is not an origin.
    #[error("CIQ_PUBLIC_URL: {0}")]
    PublicUrl(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Application {
    /// Connects and migrates the store, then binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let admin_token = settings
            .admin_token
            .filter(|t| !t.expose_secret().is_empty());
        if admin_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().chars().count() < MIN_ADMIN_TOKEN_LEN)
        {
            return Err(StartError::WeakAdminToken);
        }
        let public_origin = public_origin(settings.public_url.as_deref(), &settings.listen)?;
        let database_url = settings.database_url.expose_secret();
        // Nothing waits on the store for longer than a statement may run, and a second.
        let bound = settings.waits.statement + Duration::from_secs(1);
        let connected =
            database::connect_and_migrate_with(database_url, settings.waits, settings.pooling)
                .await;
        let (db, breaker) = match connected {
            Ok(db) => (db.clone(), ciq_store::Breaker::new(db, bound)),
            // A restart, or a new instance, during an outage: it serves (live, not
            // ready; creates 503 or spooled) and completes its start when the store
            // answers, instead of exiting.
            Err(err)
                if !database_url.starts_with("sqlite:") && database::unreachable_at_start(&err) =>
            {
                tracing::warn!(
                    error = %err,
                    "the store is unreachable at start: serving, not ready, until it answers and its schema is checked"
                );
                let db = database::connect_lazily(database_url, settings.waits, settings.pooling)
                    .await?;
                (db.clone(), ciq_store::Breaker::starting(db, bound))
            }
            Err(err) => return Err(err.into()),
        };
        let verifier = KeyVerifier::new(db.clone(), breaker.clone());
        // With Redis, the digest of each key's last good verification is shared, so the
        // real key verifies on any instance past an allowance of failures.
        let verifier = Arc::new(match &settings.redis_url {
            Some(url) => verifier.sharing_through(
                url.expose_secret(),
                &format!("{}verified:", settings.redis_prefix),
            )?,
            None => verifier,
        });
        let reads = match &settings.database_read_url {
            Some(url) => ciq_store::Reads::with_replica(
                db.clone(),
                database::connect_replica(url.expose_secret(), settings.waits, settings.pooling)
                    .await?,
                settings.replica_max_lag,
            ),
            None => ciq_store::Reads::primary_only(db.clone()),
        };
        let webhook_key = crate::webhook_key::resolve(database_url, settings.webhook_key.as_ref())
            .map_err(StartError::WebhookKey)?;
        if webhook_key.is_none() {
            tracing::warn!(
                "webhooks are off: set CIQ_WEBHOOK_SECRET_KEY (base64 of 32 bytes) to encrypt their signing secrets"
            );
        }
        let webhooks = DeliveryWorker::new(
            db.clone(),
            breaker.clone(),
            webhook_key.clone(),
            settings.webhooks.clone(),
            ciq_leads::events::CODECS,
        );
        let limiter: Arc<dyn RateLimiter> = match &settings.redis_url {
            Some(url) => Arc::new(
                FailoverLimiter::new(RedisLimiter::new(
                    url.expose_secret(),
                    &format!("{}rl:", settings.redis_prefix),
                )?)
                .await,
            ),
            None => {
                tracing::info!(
                    "rate limiter: in-process (set REDIS_URL to share it across instances)"
                );
                Arc::new(InProcessLimiter::new())
            }
        };
        let sessions = match &settings.redis_url {
            Some(url) => SessionStore::redis(
                url.expose_secret(),
                &format!("{}session:", settings.redis_prefix),
            )?,
            None => SessionStore::Database(db.clone()),
        };
        // SQLite has one writer anyway; on PostgreSQL one writer gathers while
        // another commits.
        let writers = settings
            .lead_writers
            .unwrap_or(if database_url.starts_with("sqlite:") {
                1
            } else {
                2
            });
        let acceptor = TcpListener::bind(settings.listen.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        let local_addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .expect("a TCP listener has a socket address");
        let public_origin = public_origin.unwrap_or_else(|| format!("http://{local_addr}"));
        let usage = ciq_usage::Flusher::new(
            Arc::new(ciq_usage::Recorder::new()),
            db.clone(),
            settings.usage_flush_every,
        );
        // Creates of clients that take a queued answer wait in Redis while the store
        // is down (on only while Redis cannot evict them: see the spool's drain).
        let spool = match &settings.redis_url {
            Some(url) => Some(ciq_spool::Spool::new(
                ciq_redis::RedisLink::open(url.expose_secret(), Duration::from_millis(500))?,
                &format!("{}spool:", settings.redis_prefix),
                settings.spool_max_entries,
                settings.retention.idempotency,
            )),
            None => None,
        };
        let states = States {
            api: Arc::new(ApiState {
                db: db.clone(),
                reads: reads.clone(),
                verifier: verifier.clone(),
                limiter: limiter.clone(),
                limits: settings.limits,
                trust_forwarded_for: settings.trust_forwarded_for,
                public_origin,
                max_body_bytes: settings.max_body_bytes,
                leads: ciq_leads::Leads::new(
                    db.clone(),
                    reads.clone(),
                    LeadWriter::start(db.clone(), writers, breaker.clone()),
                ),
                idempotency_retention: settings.retention.idempotency,
                secrets: webhook_key.clone(),
                challenges: ciq_api::challenge::ChallengeVerifier::new(
                    settings.challenge_verify_url.clone(),
                ),
                block_lists: ciq_api::state::block_list_cache(),
                usage: usage.recorder().clone(),
                webhook_allow_private: settings.webhooks.allow_private_networks,
                spool: spool.clone(),
            }),
            console: Arc::new(ConsoleState {
                db: db.clone(),
                reads: reads.clone(),
                limiter: limiter.clone(),
                window: settings.limits.window,
                default_limit_per_window: settings.limits.per_window,
                default_visitor_limit_per_window: settings.limits.visitor_per_window,
                trust_forwarded_for: settings.trust_forwarded_for,
                sessions,
                session_ttl: settings.session_ttl,
                sign_in_slots: Arc::new(tokio::sync::Semaphore::new(
                    ciq_console::state::MAX_SIGN_INS_IN_FLIGHT,
                )),
                breaker: breaker.clone(),
                import_worker: ImportWorker::new(db.clone(), breaker.clone(), settings.imports),
                delivery_worker: webhooks.clone(),
                webhook_key: webhook_key.clone(),
                webhook_allow_private: settings.webhooks.allow_private_networks,
            }),
            operator: Arc::new(OperatorState {
                db,
                reads,
                verifier,
                limiter,
                admin_token,
                trust_forwarded_for: settings.trust_forwarded_for,
                breaker: breaker.clone(),
                secrets: webhook_key.clone(),
                spool: spool
                    .clone()
                    .map(|spool| spool as Arc<dyn ciq_store::Spooling>),
            }),
            webhooks,
            webhook_key,
            usage,
        };
        Ok(Self {
            acceptor: acceptor.boxed(),
            local_addr,
            states,
            retention: settings.retention,
            delivering: settings.webhooks.deliver,
        })
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The gateway's public origin: `CIQ_PUBLIC_URL`, or `http://` + the bound address.
    pub fn public_origin(&self) -> &str {
        &self.states.api.public_origin
    }

    /// Each surface's state (tests inspect the verifier's counters through it).
    pub fn states(&self) -> States {
        self.states.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let verifier = self.states.api.verifier.clone();
        let watcher = tokio::spawn(verifier.clone().run_change_watcher(KEY_CHANGE_POLL));
        let flusher = tokio::spawn(verifier.clone().run_last_used_flusher(LAST_USED_FLUSH));
        let purge = tokio::spawn(crate::retention::run_purge(
            self.states.api.db.clone(),
            self.states.console.breaker.clone(),
            self.retention,
        ));
        let imports = self.states.console.import_worker.clone();
        let importer = tokio::spawn(imports.clone().run());
        let usage = tokio::spawn(self.states.usage.clone().run());
        let webhooks = self.states.webhooks.clone();
        let deliverer = self
            .delivering
            .then(|| tokio::spawn(webhooks.clone().run()));
        let breaker = self.states.console.breaker.clone();
        let start = breaker
            .is_starting()
            .then(|| tokio::spawn(complete_start(self.states.api.db.clone(), breaker.clone())));
        let drainer = self.states.api.spool.clone().map(|spool| {
            tokio::spawn(
                ciq_spool::Drainer::new(
                    spool,
                    self.states.api.db.clone(),
                    self.states.console.breaker.clone(),
                    self.states.api.usage.clone(),
                )
                .run(),
            )
        });
        let routes = routes(&self.states);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, shutdown, Some(SHUTDOWN_GRACE))
            .await;
        watcher.abort();
        flusher.abort();
        purge.abort();
        importer.abort();
        usage.abort();
        if let Some(drainer) = drainer {
            drainer.abort();
        }
        if let Some(start) = start {
            start.abort();
        }
        if let Some(deliverer) = deliverer {
            deliverer.abort();
        }
        if let Err(err) = webhooks.release().await {
            tracing::warn!(error = %err, "could not hand back this instance's webhook deliveries at shutdown");
        }
        // An import this instance was running is taken over at once, not after its lease.
        if let Err(err) = imports.release().await {
            tracing::warn!(error = %err, "could not hand back this instance's CSV import at shutdown");
        }
        // Usage counted since the last flush is written before exiting.
        if let Err(err) = self.states.usage.flush().await {
            tracing::warn!(error = %err, "could not write usage counts at shutdown");
        }
        // What was used since the last periodic flush is written before exiting.
        if let Err(err) = verifier.flush_last_used().await {
            tracing::warn!(error = %err, "could not record key last-use times at shutdown");
        }
        result
    }
}

/// How often an instance that started during an outage tries its store.
const START_RETRY: Duration = Duration::from_secs(1);

/// Completes the start of an instance that started while its store was unreachable:
/// applies pending migrations (checks the schema) once the store answers, then lets the
/// breaker close. A refusal that is no outage (a migration that fails) is logged and
/// tried again; the instance stays unready meanwhile.
async fn complete_start(db: ciq_store::Db, breaker: Arc<ciq_store::Breaker>) {
    loop {
        match database::migrate(&db).await {
            Ok(()) => {
                breaker.started();
                tracing::info!("store reachable: schema checked, start complete");
                return;
            }
            Err(err) if database::unreachable_at_start(&err) => {
                tracing::debug!(error = %err, "store still unreachable");
            }
            Err(err) => {
                tracing::error!(error = %err, "the store answers but its schema could not be brought up to date; will retry");
            }
        }
        tokio::time::sleep(START_RETRY).await;
    }
}

/// `CIQ_PUBLIC_URL` in its serialized origin form (`None` when unset: the bound
/// address stands in, with a warning unless that is a loopback address).
fn public_origin(configured: Option<&str>, listen: &str) -> Result<Option<String>, StartError> {
    match configured.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => ciq_admin::origins::parse_origin(url)
            .map(Some)
            .map_err(StartError::PublicUrl),
        None => {
            let loopback = listen
                .parse::<SocketAddr>()
                .is_ok_and(|addr| addr.ip().is_loopback())
                || listen.starts_with("localhost:");
            if !loopback {
                tracing::warn!(
                    listen,
                    "CIQ_PUBLIC_URL is not set: Swagger UI's Try it out works only when the docs are opened at http://{listen}; set it to the address clients use (e.g. https://api.example.com)"
                );
            }
            Ok(None)
        }
    }
}

/// Every surface behind the middleware they share: the access log and request id
/// outermost, then the request metrics, the `Allow` header of a 405, the baseline
/// security headers, and the one error shape for whatever the framework raises.
pub fn routes(states: &States) -> impl Endpoint + use<> {
    routes_with(states, ciq_api::Dispatch::Direct)
}

/// [`routes`], with the way a create reaches its handler chosen (the test that holds
/// both ways to the same answers serves [`ciq_api::Dispatch::Documented`] beside them).
pub fn routes_with(states: &States, dispatch: ciq_api::Dispatch) -> impl Endpoint + use<> {
    // The recorder must be in place before the first request is counted.
    ciq_http::metrics::handle();
    let trust_forwarded_for = states.api.trust_forwarded_for;
    let route = ciq_api::attach_with(Route::new(), states.api.clone(), dispatch);
    let route = ciq_console::attach(route, states.console.clone());
    let route = ciq_admin::operator::attach_operator(route, states.operator.clone());
    surround(
        ciq_admin::operator::attach_probes(route, states.operator.clone()),
        trust_forwarded_for,
    )
}

/// What every answer passes through, inside out: framework errors in our JSON shape, a
/// handler's panic answered, the baseline headers, `Allow`, metrics, the request id and
/// the access log.
fn surround(route: Route, trust_forwarded_for: bool) -> impl Endpoint + use<> {
    route
        .catch_all_error(|err| async move { ciq_http::error::render_framework_error(err) })
        // A panic in a handler is answered (500 `internal_error`, with the request id and
        // the baseline headers), never a dropped connection; the panic hook logs it.
        .with(poem::middleware::CatchPanic::new().with_handler(|_| {
            poem::IntoResponse::into_response(ciq_http::HttpError::internal(
                "a handler panicked (logged above)",
            ))
        }))
        .around(move |endpoint, req| {
            ciq_http::surround::every_request(endpoint, req, trust_forwarded_for)
        })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// A handler's panic is an answer: 500 `internal_error` in the JSON shape, with a
    /// request id, and the connection serves the next request.
    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_with_its_request_id() {
        #[poem::handler]
        fn boom() -> &'static str {
            panic!("an owner's input broke an assumption")
        }
        #[poem::handler]
        fn fine() -> &'static str {
            "fine"
        }
        let app = super::surround(
            poem::Route::new()
                .at("/boom", poem::get(boom))
                .at("/healthz", poem::get(fine)),
            false,
        );
        let client = poem::test::TestClient::new(app);
        let resp = client.get("/boom").send().await;
        resp.assert_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.0.headers().contains_key("x-request-id"));
        let body: Value =
            serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(
            !body.to_string().contains("assumption"),
            "the panic is not sent: {body}"
        );
        client.get("/healthz").send().await.assert_status_is_ok();
    }

    /// The route table (metrics labels, `Allow`) knows every documented operation.
    #[test]
    fn every_documented_operation_is_in_the_route_table() {
        for document in [
            ciq_api::openapi::document(),
            ciq_admin::operator::document::document(),
        ] {
            let doc: Value = serde_json::from_str(&document).unwrap();
            for (path, operations) in doc["paths"].as_object().unwrap() {
                let concrete = path.replace('{', "x").replace('}', "");
                let route = ciq_http::routes::find(&concrete)
                    .unwrap_or_else(|| panic!("{path} is not in the route table"));
                for method in operations.as_object().unwrap().keys() {
                    assert!(
                        route.serves(&method.to_uppercase()),
                        "{method} {path} is not in the route table"
                    );
                }
            }
        }
    }
}
