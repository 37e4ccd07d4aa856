//! Private databases: a SQLite file in its own folder, or a PostgreSQL database
//! named after a UUID, removed when dropped.

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// Production's store.
    Postgres,
    /// Production's store through PgBouncer in transaction pooling mode (a pgbouncer
    /// of the test's own in front of the test's database; the gateway runs with
    /// `CIQ_DB_TRANSACTION_POOLING`).
    PgBouncer,
}

impl Backend {
    /// Whether the store is PostgreSQL (directly or through PgBouncer).
    pub fn is_postgres(self) -> bool {
        matches!(self, Self::Postgres | Self::PgBouncer)
    }

    /// How the gateway must reach this store.
    pub fn pooling(self) -> ciq_gateway::database::Pooling {
        match self {
            Self::PgBouncer => ciq_gateway::database::Pooling::Transaction,
            Self::Sqlite | Self::Postgres => ciq_gateway::database::Pooling::Direct,
        }
    }
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
    /// The pgbouncer in front of it ([`Backend::PgBouncer`]).
    bouncer: Option<crate::pgbouncer::PgBouncer>,
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
                    bouncer: None,
                })
            }
            Backend::PgBouncer => {
                let mut database = Box::pin(Self::create(Backend::Postgres)).await?;
                let admin_url = postgres_admin_url();
                let bouncer = crate::pgbouncer::PgBouncer::start(
                    &admin_url,
                    crate::pgbouncer::PoolMode::Transaction,
                )
                .await?;
                let (base, name) = database.url.rsplit_once('/').expect("a database URL");
                let user = base.split_once("://").map_or("postgres", |(_, r)| {
                    r.split_once('@').map_or("postgres", |(u, _)| u)
                });
                database.url = format!("postgres://{user}@127.0.0.1:{}/{name}", bouncer.port);
                database.bouncer = Some(bouncer);
                Some(database)
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
                    bouncer: None,
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
