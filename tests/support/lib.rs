//! Test support: the real gateway on port 0 over a fresh, private database.
//!
//! Every [`TestApp`] gets its own database — a SQLite file in its own temporary
//! folder, or a PostgreSQL database named after a UUID — and removes it when dropped.
//! PostgreSQL (`CIQ_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`)
//! is used whenever reachable; with `CI` set, an unreachable server fails the test
//! instead of skipping it.
//!
//! - [`database`]: private databases; [`app`]: the gateway and its request helpers;
//! - [`redis`], [`redis_cluster`], [`postgres`], [`nginx`], [`proxy`]: servers the tests start and stop
//!   themselves (the proxy can make a store silent);
//! - [`fixtures`]: the reference's bodies; [`browser`]: headless Chromium; [`console`]:
//!   the Settings pages as a browser uses them (owners, sign-in, forms);
//! - [`receiver`]: a webhook receiver that records and answers as scripted; [`process`]:
//!   the gateway binary as a process to crash.

pub mod app;
pub mod browser;
pub mod console;
pub mod database;
pub mod fixtures;
pub mod nginx;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod redis;
pub mod redis_cluster;
pub mod siteverify;

pub use app::TestApp;
pub use database::{Backend, TestDatabase, postgres_admin_url};
pub use fixtures::{reference_curl_body, reference_full_body};
pub use nginx::LoadBalancer;
pub use postgres::PrivatePostgres;
pub use process::GatewayProcess;
pub use proxy::SilentProxy;
pub use receiver::{Receiver, Reply};
pub use redis::{PrivateRedis, test_redis_url, unique_redis_prefix};
pub use redis_cluster::RedisCluster;
pub use siteverify::FakeSiteverify;

/// A test's HTTP client builder. reqwest's TLS is built without a crypto provider of
/// its own (the gateway installs rustls' ring provider at start); a test that builds a
/// client before any gateway started installs it here.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    ciq_webhooks::delivery::install_tls();
    reqwest::Client::builder()
}

/// [`http_client_builder`] with its defaults.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("a plain HTTP client")
}

/// The body of `GET url` as text (any status), through `client`.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("an answer")
        .text()
        .await
        .expect("a text body")
}

/// The string `field` of each lead of a list page (`{"leads": [...]}`), in the page's
/// order.
pub fn leads_field(page: &serde_json::Value, field: &str) -> Vec<String> {
    page["leads"]
        .as_array()
        .expect("a page of leads")
        .iter()
        .map(|lead| lead[field].as_str().expect("a string field").to_owned())
        .collect()
}

/// The first column of the one row `sql` answers on `db`, as an `i64` (a count, a
/// statistic); panics if the statement fails or answers no row.
pub async fn count(db: &ciq_store::Db, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
    .unwrap_or_else(|| panic!("{sql}: no row"))
    .try_get_by_index::<i64>(0)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// Serves `endpoint` on a free port of 127.0.0.1: the port, and the server's task
/// (abort it to stop).
pub async fn serve_on_free_port<E>(endpoint: E) -> (u16, tokio::task::JoinHandle<()>)
where
    E: poem::Endpoint + 'static,
{
    use poem::listener::{Acceptor, Listener, TcpListener};
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("a free port");
    let port = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .expect("a TCP listener has a socket address")
        .port();
    let server = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(endpoint)
            .await;
    });
    (port, server)
}

/// A TCP port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs each named scenario `async fn NAME(app: TestApp)` on SQLite, on PostgreSQL, and
/// on PostgreSQL through PgBouncer in transaction pooling mode, as `sqlite::NAME`,
/// `postgres::NAME` and `pgbouncer::NAME`.
#[macro_export]
macro_rules! on_every_backend {
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
        mod pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::TestApp::spawn($crate::Backend::PgBouncer).await else {
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// Runs each named `async fn NAME(backend: Backend)` once per backend, as
/// `sqlite::NAME` and `postgres::NAME` (for tests that start their own processes).
#[macro_export]
macro_rules! with_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}
