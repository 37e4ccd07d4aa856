//! The command line. These forms are a contract that scripts depend on:
//!
//! ```text
//! ciq-gateway [serve]
//! ciq-gateway migrate
//! ciq-gateway openapi [--admin]
//! ciq-gateway users create --email E [--name N]
//! ciq-gateway users set-password --user EMAIL|ID
//! ciq-gateway keys roll KEY_ID [--overlap SECONDS]
//! ciq-gateway keys create --user EMAIL|ID [--name N] [--rate-limit PER_MINUTE] [--expires-at RFC3339]
//!                         [--scope SCOPE]... [--allowed-origin ORIGIN]...
//! ciq-gateway keys list --user EMAIL|ID [--json]
//! ciq-gateway keys revoke KEY_ID
//! ciq-gateway webhooks create --user EMAIL|ID --url URL [--event EVENT]...
//! ciq-gateway webhooks list --user EMAIL|ID [--json]
//! ciq-gateway webhooks deliveries ENDPOINT_ID [--json]
//! ciq-gateway webhooks replay DELIVERY_ID
//! ciq-gateway webhooks rotate ENDPOINT_ID [--overlap SECONDS]
//! ciq-gateway webhooks delete ENDPOINT_ID
//! ```
//! stdout carries only the result (a user id, a key, a listing); everything meant
//! for people goes to stderr. Only `serve` logs at `info` by default; the other
//! commands log at `warn` unless `RUST_LOG` says more.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use uuid::Uuid;

use ciq_admin::keys::{self, Actor, KeySummary, NewKey};
use ciq_admin::{SecretHasher, users};
use ciq_limiter::LimitSettings;
use sea_orm::EntityTrait;

use crate::app::{Application, Settings, shutdown_signal};
use crate::database;

/// ConvertIQ lead-ingestion gateway.
#[derive(Debug, Parser)]
#[command(name = "ciq-gateway", version, about)]
pub struct Cli {
    /// Store: `sqlite://FILE?mode=rwc` (embedded default) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = database::DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: SecretString,

    /// Redis for the rate limiter shared by all instances (`redis://HOST:6379`);
    /// unset = in-process limiter. An unreachable Redis degrades, never fails.
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// Log format on stderr: `text` for people, `json` (one object per line) for
    /// collectors.
    #[arg(long, env = "CIQ_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// The key that encrypts webhook signing secrets (base64 of 32 bytes); unset = made
    /// once beside the SQLite file, or webhooks off on PostgreSQL.
    #[arg(
        long,
        env = "CIQ_WEBHOOK_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub webhook_secret_key: Option<SecretString>,

    /// Allow webhook destinations on loopback and private networks, and plain http
    /// (local development and tests only).
    #[arg(long, env = "CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS", global = true)]
    pub webhook_allow_private_networks: bool,

    /// DATABASE_URL (and DATABASE_READ_URL) go through PgBouncer in transaction
    /// pooling mode (`pool_mode = transaction`; no reset query needed): a statement on its
    /// own is one simple query, a transaction starts by dropping what an earlier client
    /// prepared. See docs/operations.md for what it costs.
    #[arg(long, env = "CIQ_DB_TRANSACTION_POOLING", global = true)]
    pub db_transaction_pooling: bool,

    /// Threads that run requests and background work (the async runtime's workers);
    /// unset = one per CPU. Where the gateway shares its CPUs with its database and
    /// Redis, fewer workers spend less CPU per create: see docs/operations.md.
    #[arg(long, env = "CIQ_WORKER_THREADS", global = true, value_name = "N")]
    pub worker_threads: Option<std::num::NonZeroUsize>,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The store as the command line names it.
#[derive(Clone, Copy)]
struct Store<'a> {
    url: &'a str,
    pooling: database::Pooling,
}

impl Store<'_> {
    /// Connected and migrated.
    async fn open(self) -> anyhow::Result<ciq_store::Db> {
        Ok(
            database::connect_and_migrate_with(self.url, database::Waits::default(), self.pooling)
                .await?,
        )
    }
}

/// Log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the request's span (request_id).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the public OpenAPI document (JSON) on stdout.
    Openapi {
        /// Print the operator API's document instead.
        #[arg(long)]
        admin: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage webhook endpoints and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints its signing secret (whsec_…), which is shown this once.
    Create {
        /// Owner: email or user id.
        #[arg(long)]
        user: String,
        /// Where events are sent (https://…).
        #[arg(long)]
        url: String,
        /// lead.created, lead.updated, lead.deleted (repeat for several; default all).
        #[arg(long, value_name = "EVENT")]
        event: Vec<String>,
    },
    /// List a user's endpoints (never a secret).
    List {
        /// Owner: email or user id.
        #[arg(long)]
        user: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's deliveries, newest first.
    Deliveries {
        /// The endpoint's id (from `webhooks list`).
        endpoint_id: Uuid,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue a delivery's event again (same webhook-id); prints the new delivery's id.
    Replay {
        /// The delivery's id (from `webhooks deliveries`).
        delivery_id: Uuid,
    },
    /// Give an endpoint a new signing secret (printed, shown this once); the old one
    /// keeps signing beside it for the overlap.
    Rotate {
        /// The endpoint's id.
        endpoint_id: Uuid,
        /// Seconds the old secret keeps signing too (0 = stops now; at most 604800).
        #[arg(long, default_value_t = 86_400, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(0..=604_800))]
        overlap: u64,
    },
    /// Delete an endpoint and its delivery log.
    Delete {
        /// The endpoint's id.
        endpoint_id: Uuid,
    },
}

/// Options of `serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CIQ_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The gateway's public origin, as clients reach it (e.g. https://api.example.com
    /// behind a proxy): Swagger UI's Try it out may use any key from it, and Settings
    /// links to it. Default: http:// + the bound address.
    #[arg(long, env = "CIQ_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A PostgreSQL streaming replica of DATABASE_URL for lists (leads, Settings);
    /// writes and reads that must see them stay on the primary.
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<SecretString>,
    /// Largest replica lag, in milliseconds, at which lists are still read from it.
    #[arg(long, env = "CIQ_READ_REPLICA_MAX_LAG_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_replica_max_lag_ms: u64,
    /// Requests per key per window, unless the key overrides it.
    #[arg(long, env = "CIQ_RATE_LIMIT_PER_MINUTE", default_value_t = ciq_limiter::DEFAULT_LIMIT_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_minute: u32,
    /// Requests per client address per window without a usable key (missing,
    /// malformed, unknown, revoked, or not yet verified): bounds bad-key work.
    #[arg(long, env = "CIQ_UNAUTHENTICATED_LIMIT_PER_MINUTE",
          default_value_t = ciq_limiter::DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub unauthenticated_limit_per_minute: u32,
    /// Browser submissions (creates and batches with a key that has allowed origins)
    /// per key per client address per window, each lead counted, unless the key
    /// overrides it: a bot's address cannot use up a web form's budget.
    #[arg(long, env = "CIQ_VISITOR_RATE_LIMIT_PER_MINUTE",
          default_value_t = ciq_limiter::DEFAULT_VISITOR_LIMIT_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub visitor_rate_limit_per_minute: u32,
    /// Take the client address from the last X-Forwarded-For entry (only behind a proxy that sets it).
    #[arg(long, env = "CIQ_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Ask every challenge provider's siteverify at this URL instead of its own
    /// (a local stand-in for tests, or an egress proxy).
    #[arg(long, env = "CIQ_CHALLENGE_VERIFY_URL")]
    pub challenge_verify_url: Option<String>,
    /// Operator token for /admin/v1 (Authorization: Bearer …), at least 16
    /// characters; unset = operator API off.
    #[arg(long, env = "CIQ_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,
    /// A file holding the operator token (its first line), instead of `--admin-token`,
    /// which process listings show: e.g. a mounted secret.
    #[arg(long, env = "CIQ_ADMIN_TOKEN_FILE", conflicts_with = "admin_token")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Group-commit writers (concurrent creates share one INSERT); default 1 on
    /// SQLite, 2 on PostgreSQL; 0 = one INSERT per request.
    #[arg(long, env = "CIQ_LEAD_WRITERS")]
    pub lead_writers: Option<usize>,
    /// How long a Settings sign-in lasts, in seconds.
    #[arg(long, env = "CIQ_SESSION_TTL_SECS", default_value_t = 12 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl_secs: u64,
    /// Prefix of the gateway's Redis keys (limiter: `<prefix>rl:`, sessions:
    /// `<prefix>session:`).
    #[arg(long, env = "CIQ_REDIS_PREFIX", default_value = crate::app::DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// Length of the sliding window in seconds (60; shorter only for tests).
    #[arg(long, env = "CIQ_RATE_LIMIT_WINDOW_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub rate_limit_window_secs: u64,
    /// How long an Idempotency-Key and the answer it replays (lead data included) are
    /// kept, in seconds (at least an hour).
    #[arg(long, env = "CIQ_RETENTION_IDEMPOTENCY_SECS", default_value_t = 24 * 3600,
          value_parser = clap::value_parser!(u64).range(3600..))]
    pub retention_idempotency_secs: u64,
    /// Seconds between two purges of what is past its retention (idempotency keys,
    /// expired sessions).
    #[arg(long, env = "CIQ_RETENTION_PURGE_INTERVAL_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_purge_interval_secs: u64,
    /// Longest wait for a database connection, in milliseconds (connecting included).
    #[arg(long, env = "CIQ_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_acquire_timeout_ms: u64,
    /// Longest a PostgreSQL statement may run, in milliseconds.
    #[arg(long, env = "CIQ_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_statement_timeout_ms: u64,
    /// Rows of a CSV import written per transaction (each commit also records how far
    /// the import got).
    #[arg(long, env = "CIQ_IMPORT_CHUNK_ROWS", default_value_t = ciq_imports::worker::DEFAULT_CHUNK_ROWS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2000))]
    pub import_chunk_rows: usize,
    /// Seconds an instance holds a CSV import without renewing its lease: after this
    /// long, an import whose instance died is taken over by another (or by it, restarted).
    #[arg(long, env = "CIQ_IMPORT_LEASE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub import_lease_secs: u64,
    /// Waits before each webhook retry, comma-separated seconds; when they are used up
    /// the delivery has failed.
    #[arg(long, env = "CIQ_WEBHOOK_RETRY_SCHEDULE", default_value = "5,300,1800,7200,18000,36000,36000",
          value_parser = parse_schedule)]
    pub webhook_retry_schedule: RetrySchedule,
    /// Seconds an instance holds a webhook delivery it claimed; a dead instance's
    /// deliveries are taken over after this. Keep it above the 15 s attempt timeout
    /// (shorter only for tests), or a slow attempt may be sent twice at once.
    #[arg(long, env = "CIQ_WEBHOOK_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_lease_seconds: u64,
    /// Seconds of nothing but failed deliveries after which an endpoint is disabled
    /// (5 days).
    #[arg(long, env = "CIQ_WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 5 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_disable_after_secs: u64,
    /// Whether this instance sends webhook deliveries (`false`: it only writes them, and
    /// instances of their own send them).
    #[arg(long, env = "CIQ_WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,
    /// A PEM file of certificate authorities that webhook receivers' certificates may
    /// chain to besides the system's (an operator's private CA); read at start.
    #[arg(long, env = "CIQ_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<std::path::PathBuf>,
    /// How long the webhook delivery log is kept, in seconds.
    #[arg(long, env = "CIQ_RETENTION_DELIVERIES_SECS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(60..))]
    pub retention_deliveries_secs: u64,
    /// How long a lead quarantined as spam is kept before it is erased, in seconds
    /// (30 days).
    #[arg(long, env = "CIQ_RETENTION_SPAM_SECS", default_value_t = 30 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_spam_secs: u64,
    /// How long usage buckets are kept, in seconds (90 days).
    #[arg(long, env = "CIQ_RETENTION_USAGE_SECS", default_value_t = 90 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(3600..))]
    pub retention_usage_secs: u64,
    /// How long the request log is kept, in seconds (7 days).
    #[arg(long, env = "CIQ_RETENTION_REQUEST_LOG_SECS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(60..))]
    pub retention_request_log_secs: u64,
    /// Seconds between two writes of the usage counts (a SIGKILL loses at most this
    /// much of them; a clean shutdown loses nothing).
    #[arg(long, env = "CIQ_USAGE_FLUSH_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub usage_flush_secs: u64,
    /// Most leads the outage spool holds in Redis while the store is down (each of its
    /// 16 streams holds a sixteenth, rounded up); past it, creates answer 503.
    #[arg(long, env = "CIQ_SPOOL_MAX_ENTRIES", default_value_t = ciq_spool::DEFAULT_MAX_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spool_max_entries: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CIQ_MAX_BODY_BYTES", default_value_t = ciq_api::state::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints the new user's id.
    Create {
        /// Email address (unique).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Set a user's sign-in password, read from the first line of stdin (never from
    /// the command line, where process listings would show it).
    SetPassword {
        /// Email or user id.
        #[arg(long)]
        user: String,
    },
    /// Print a one-time link (valid 1 hour) that lets the owner choose a password: send
    /// it to them yourself. A new link replaces the last one.
    ResetLink {
        /// Email or user id.
        #[arg(long)]
        user: String,
        /// The gateway's public origin, as owners' browsers reach it (as `serve`'s).
        #[arg(long, env = "CIQ_PUBLIC_URL")]
        public_url: Option<String>,
        /// Where `serve` listens: the link's origin when no public URL is set.
        #[arg(long, env = "CIQ_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints the key, which is shown this once.
    Create {
        /// Owner: email or user id.
        #[arg(long)]
        user: String,
        /// Name to recognise the key by.
        #[arg(long)]
        name: Option<String>,
        /// Per-key limit, requests per minute.
        #[arg(long, value_name = "PER_MINUTE")]
        rate_limit: Option<u32>,
        /// Browser submissions one client address may make per minute with this key
        /// (each lead of a batch counts); only for a key with --allowed-origin.
        /// Default: CIQ_VISITOR_RATE_LIMIT_PER_MINUTE (10).
        #[arg(long, value_name = "PER_MINUTE")]
        visitor_rate_limit: Option<u32>,
        /// A challenge every browser submission must pass: turnstile, hcaptcha or
        /// recaptcha (only for a key with --allowed-origin; needs
        /// CIQ_WEBHOOK_SECRET_KEY on PostgreSQL to seal the secret).
        #[arg(long, value_name = "PROVIDER", requires = "challenge_secret_file")]
        challenge: Option<ciq_admin::ChallengeProvider>,
        /// A file whose first line is the provider's secret key (kept out of the
        /// process list and the shell's history).
        #[arg(long, value_name = "FILE", requires = "challenge")]
        challenge_secret_file: Option<std::path::PathBuf>,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<DateTime<Utc>>,
        /// What the key may do: leads:create, leads:read, leads:write (repeat for
        /// several; default leads:create).
        #[arg(long, value_name = "SCOPE")]
        scope: Vec<ciq_admin::Scope>,
        /// A web origin (https://www.example.com) whose pages may use the key from a
        /// browser (repeat for several); only for a key whose only scope is
        /// leads:create.
        #[arg(long, value_name = "ORIGIN")]
        allowed_origin: Vec<String>,
    },
    /// List a user's keys (never a secret).
    List {
        /// Owner: email or user id.
        #[arg(long)]
        user: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A key's usage over the last 24 hours: its answers by outcome and the leads it
    /// stored, per bucket (what running instances counted up to CIQ_USAGE_FLUSH_SECS ago).
    Usage {
        /// The key's id (from `keys list`).
        key_id: Uuid,
        /// Bucket length: minute, hour or day (UTC).
        #[arg(long, default_value = "minute", value_parser = ["minute", "hour", "day"])]
        interval: String,
        /// Print the API's `usage` array (JSON) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; running instances refuse it within a second.
    Revoke {
        /// The key's id (from `keys list`).
        key_id: Uuid,
    },
    /// Roll a key: prints a new key now; the old one keeps working for the overlap.
    Roll {
        /// The key's id (from `keys list`).
        key_id: Uuid,
        /// Seconds the old key keeps working (0 = stops now; at most 604800 = 7 days).
        #[arg(long, default_value_t = 0, value_name = "SECONDS")]
        overlap: u64,
    },
}

/// A webhook retry schedule as given on the command line (one argument: clap would take
/// a `Vec` for several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(ciq_webhooks::WebhookSettings::default().retry_schedule)
    }
}

fn parse_schedule(text: &str) -> Result<RetrySchedule, String> {
    ciq_webhooks::parse_retry_schedule(text).map(RetrySchedule)
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    // Before anything starts: a process missing the allocator's serving settings is
    // replaced by one that has them (the call returns only when nothing was missing, or
    // with the error when the replacing failed: logged below, once logging is set up).
    let restart_failed = serving
        .then(crate::allocator::serve_with_defaults)
        .flatten();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // A one-off command prints its result, not the migrator's chatter;
                // PostgreSQL's NOTICEs ("relation ... already exists, skipping" at
                // every start-up migration check) are not news either.
                tracing_subscriber::EnvFilter::new(if serving {
                    "info,sqlx::postgres::notice=warn,sea_orm_migration=warn"
                } else {
                    "warn"
                })
            }),
        )
        .with_writer(std::io::stderr)
        // Its own error report is an eprintln!, which panics when stderr is a closed
        // pipe: a dead log reader must never take the server down with it.
        .log_internal_errors(false);
    match cli.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
    if let Some(err) = restart_failed {
        tracing::warn!(error = %err, "could not restart with the allocator's serving settings; serving with mimalloc's defaults (more memory)");
    }
    // A panic is logged once, as a log line in the chosen format (the default hook's
    // stderr text would bypass it); a handler's panic is then answered 500.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panicked");
    }));
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = cli.worker_threads {
        runtime.worker_threads(workers.get());
    }
    let runtime = runtime
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let url = cli.database_url;
    let pooling = if cli.db_transaction_pooling {
        database::Pooling::Transaction
    } else {
        database::Pooling::Direct
    };
    let store = Store {
        url: url.expose_secret(),
        pooling,
    };
    match cli
        .command
        .unwrap_or(Command::Serve(Box::new(ServeArgs::default_from_env())))
    {
        Command::Serve(args) => {
            serve(
                url.clone(),
                pooling,
                cli.redis_url,
                cli.webhook_secret_key,
                cli.webhook_allow_private_networks,
                *args,
            )
            .await
        }
        Command::Webhooks(cmd) => {
            webhooks_command(
                store,
                cli.webhook_secret_key.as_ref(),
                cli.webhook_allow_private_networks,
                cmd,
            )
            .await
        }
        Command::Migrate => {
            store.open().await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Openapi { admin: false } => {
            print!("{}", ciq_api::openapi::document());
            Ok(())
        }
        Command::Openapi { admin: true } => {
            print!("{}", ciq_admin::operator::document::document());
            Ok(())
        }
        Command::Users(UsersCommand::SetPassword { user }) => {
            let db = store.open().await?;
            let owner = users::find_user(&db, &user).await?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = SecretString::from(password.trim_end_matches(['\r', '\n']));
            users::set_password(&db, &SecretHasher::default(), owner.id, &password).await?;
            eprintln!("password set for {}", owner.email);
            Ok(())
        }
        Command::Users(UsersCommand::ResetLink {
            user,
            public_url,
            listen,
        }) => {
            let db = store.open().await?;
            let owner = users::find_user(&db, &user).await?;
            let origin = match public_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
            {
                Some(url) => ciq_admin::origins::parse_origin(url)
                    .map_err(|why| anyhow::anyhow!("--public-url {why}"))?,
                None => format!("http://{listen}"),
            };
            let (token, expires_at) = ciq_admin::resets::issue(&db, owner.id).await?;
            eprintln!(
                "a link for {} to choose a password: it works once, until {} (an earlier \
                 link no longer works); send it to them",
                owner.email,
                expires_at.format("%Y-%m-%d %H:%M UTC")
            );
            println!("{}", ciq_admin::resets::link(&origin, &token));
            Ok(())
        }
        Command::Users(UsersCommand::Create { email, name }) => {
            let db = store.open().await?;
            let user = users::create_user(&db, &email, name.as_deref()).await?;
            eprintln!("created user {}", user.email);
            println!("{}", user.id);
            Ok(())
        }
        Command::Keys(cmd) => keys_command(store, cli.webhook_secret_key.as_ref(), cmd).await,
    }
}

impl ServeArgs {
    /// `serve`'s options when the subcommand was left out: defaults and environment.
    fn default_from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::parse_from(["ciq-gateway"]).serve
    }
}

async fn serve(
    database_url: SecretString,
    pooling: database::Pooling,
    redis_url: Option<SecretString>,
    webhook_key: Option<SecretString>,
    webhook_allow_private_networks: bool,
    args: ServeArgs,
) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let admin_token = match &args.admin_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the operator token from {}", path.display()))?;
            Some(SecretString::from(
                text.lines().next().unwrap_or_default().trim(),
            ))
        }
        None => args.admin_token,
    };
    let settings = Settings {
        listen: args.listen,
        public_url: args.public_url,
        database_url,
        pooling,
        database_read_url: args
            .database_read_url
            .filter(|u| !u.expose_secret().trim().is_empty()),
        replica_max_lag: Duration::from_millis(args.read_replica_max_lag_ms),
        limits: LimitSettings {
            per_window: args.rate_limit_per_minute,
            unauthenticated_per_window: args.unauthenticated_limit_per_minute,
            visitor_per_window: args.visitor_rate_limit_per_minute,
            window: Duration::from_secs(args.rate_limit_window_secs),
        },
        trust_forwarded_for: args.trust_forwarded_for,
        challenge_verify_url: args.challenge_verify_url.filter(|u| !u.trim().is_empty()),
        max_body_bytes: args.max_body_bytes,
        redis_url: redis_url.filter(|u| !u.expose_secret().trim().is_empty()),
        redis_prefix: args.redis_prefix,
        admin_token,
        session_ttl: Duration::from_secs(args.session_ttl_secs),
        lead_writers: args.lead_writers,
        retention: crate::retention::Retention {
            idempotency: Duration::from_secs(args.retention_idempotency_secs),
            purge_every: Duration::from_secs(args.retention_purge_interval_secs),
            deliveries: Duration::from_secs(args.retention_deliveries_secs),
            spam: Duration::from_secs(args.retention_spam_secs),
            usage: Duration::from_secs(args.retention_usage_secs),
            request_log: Duration::from_secs(args.retention_request_log_secs),
        },
        usage_flush_every: Duration::from_secs(args.usage_flush_secs),
        spool_max_entries: args.spool_max_entries,
        waits: database::Waits {
            acquire: Duration::from_millis(args.db_acquire_timeout_ms),
            statement: Duration::from_millis(args.db_statement_timeout_ms),
        },
        imports: ciq_imports::worker::WorkerSettings {
            chunk_rows: args.import_chunk_rows,
            lease: Duration::from_secs(args.import_lease_secs),
        },
        webhooks: ciq_webhooks::WebhookSettings {
            retry_schedule: args.webhook_retry_schedule.0,
            allow_private_networks: webhook_allow_private_networks,
            lease: Duration::from_secs(args.webhook_lease_seconds),
            disable_after: Duration::from_secs(args.webhook_disable_after_secs),
            deliver: args.webhook_delivery,
            extra_roots: match &args.webhook_ca_file {
                Some(path) => ciq_webhooks::read_roots(path)
                    .map_err(|e| anyhow::anyhow!("CIQ_WEBHOOK_CA_FILE: {e}"))?,
                None => Vec::new(),
            },
            ..ciq_webhooks::WebhookSettings::default()
        },
        webhook_key,
    };
    let app = Application::build(settings).await?;
    tracing::info!(
        addr = %app.local_addr(),
        worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "serving; API docs at {}/docs",
        app.public_origin()
    );
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn keys_command(
    store: Store<'_>,
    key: Option<&SecretString>,
    cmd: KeysCommand,
) -> anyhow::Result<()> {
    let db = store.open().await?;
    match cmd {
        KeysCommand::Create {
            user,
            name,
            rate_limit,
            visitor_rate_limit,
            challenge,
            challenge_secret_file,
            expires_at,
            scope,
            allowed_origin,
        } => {
            let owner = users::find_user(&db, &user).await?;
            let challenge = match (challenge, challenge_secret_file) {
                (Some(provider), Some(file)) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let first = text.lines().next().unwrap_or_default();
                    Some(ciq_admin::NewChallenge::checked(provider, first)?)
                }
                _ => None,
            };
            let secrets = match challenge {
                Some(_) => crate::webhook_key::resolve(store.url, key)?,
                None => None,
            };
            let new = NewKey {
                name: name.unwrap_or_default(),
                rate_limit_per_minute: rate_limit,
                expires_at,
                scopes: ciq_admin::Scopes::of(&scope),
                allowed_origins: allowed_origin,
                visitor_rate_limit_per_minute: visitor_rate_limit,
                challenge,
            };
            let (row, plain) = keys::create_key_sealing(
                &db,
                &SecretHasher::default(),
                secrets.as_ref(),
                owner.id,
                new,
                &Actor::cli(),
            )
            .await?;
            eprintln!(
                "created key {} ({:?}) for {}; store it now, it is not shown again",
                row.id, row.name, owner.email
            );
            println!("{}", plain.expose());
        }
        KeysCommand::List { user, json } => {
            let owner = users::find_user(&db, &user).await?;
            let listed = keys::list_keys(&db, owner.id).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listed).expect("summaries serialise")
                );
            } else {
                print_table(&listed);
            }
        }
        KeysCommand::Roll { key_id, overlap } => {
            let secrets = crate::webhook_key::resolve(store.url, key).ok().flatten();
            let (row, plain) = keys::roll_key(
                &db,
                &SecretHasher::default(),
                secrets.as_ref(),
                key_id,
                Duration::from_secs(overlap),
                &Actor::cli(),
            )
            .await?;
            eprintln!(
                "rolled key {key_id}: new key {} ({}); the old key stops working in {overlap} s",
                row.id, row.display_prefix
            );
            println!("{}", plain.expose());
        }
        KeysCommand::Usage {
            key_id,
            interval,
            json,
        } => {
            let key = keys::find_key(&db, key_id).await?;
            let interval = ciq_usage::Interval::parse(&interval).expect("clap checked it");
            let window = ciq_usage::query::Window::new(interval, None, None, Utc::now())?;
            let of = ciq_usage::query::Of::Key(ciq_usage::KeyRef {
                key_id,
                user_id: key.user_id,
            });
            let buckets = ciq_usage::query::buckets(&db, of, &window).await?;
            if json {
                let rows = ciq_admin::usage::UsageBucket::list(buckets);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("buckets serialise")
                );
            } else {
                print_usage(&buckets);
            }
        }
        KeysCommand::Revoke { key_id } => {
            let key = keys::revoke_key(&db, key_id, &Actor::cli()).await?;
            eprintln!(
                "revoked key {} ({}); running instances refuse it within a second",
                key.id, key.display_prefix
            );
        }
    }
    Ok(())
}

async fn webhooks_command(
    store: Store<'_>,
    key: Option<&SecretString>,
    allow_private: bool,
    cmd: WebhooksCommand,
) -> anyhow::Result<()> {
    use ciq_webhooks::{delivery, endpoints};
    let db = store.open().await?;
    match cmd {
        WebhooksCommand::Create {
            user,
            url: target,
            event,
        } => {
            let owner = users::find_user(&db, &user).await?;
            let events = endpoints::parse_events(&event, &ciq_leads::events::NAMES)?;
            let secrets = crate::webhook_key::resolve(store.url, key)?;
            let (row, secret) = endpoints::create(
                &db,
                secrets.as_ref(),
                owner.id,
                &target,
                &events,
                allow_private,
            )
            .await?;
            eprintln!(
                "created webhook endpoint {} ({}) for {}, events {}; store the secret now, it is not shown again",
                row.id, row.url, owner.email, row.events
            );
            println!("{}", secrecy::ExposeSecret::expose_secret(&secret));
        }
        WebhooksCommand::List { user, json } => {
            let owner = users::find_user(&db, &user).await?;
            let listed = endpoints::list(&db, owner.id).await?;
            if json {
                let rows: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "id": e.id,
                            "url": e.url,
                            "events": e.events.split(',').collect::<Vec<_>>(),
                            "enabled": e.enabled,
                            "disabled_reason": e.disabled_reason,
                            "created_at": ciq_http::time::format_time(e.created_at),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("plain data")
                );
            } else {
                println!("{:<36}  {:<8}  {:<40}  URL", "ID", "ENABLED", "EVENTS");
                for e in &listed {
                    println!(
                        "{:<36}  {:<8}  {:<40}  {}",
                        e.id, e.enabled, e.events, e.url
                    );
                }
            }
        }
        WebhooksCommand::Deliveries { endpoint_id, json } => {
            let endpoint = endpoints::find_any(&db, endpoint_id).await?;
            let listed = delivery::deliveries(&db, endpoint.user_id, endpoint.id, 1000).await?;
            if json {
                let rows: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "id": d.id,
                            "event_id": d.event_id,
                            "event_type": d.event_type,
                            "status": d.status.as_str(),
                            "attempts": d.attempts,
                            "last_status_code": d.last_status_code,
                            "last_error": d.last_error,
                            "next_attempt_at": (d.status == ciq_entity::webhook_delivery::DeliveryStatus::Pending)
                                .then(|| ciq_http::time::format_time(d.next_attempt_at)),
                            "created_at": ciq_http::time::format_time(d.created_at),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("plain data")
                );
            } else {
                println!(
                    "{:<36}  {:<12}  {:<9}  {:>8}  {:>4}  EVENT",
                    "ID", "TYPE", "STATUS", "ATTEMPTS", "LAST"
                );
                for d in &listed {
                    println!(
                        "{:<36}  {:<12}  {:<9}  {:>8}  {:>4}  {}",
                        d.id,
                        d.event_type,
                        d.status.as_str(),
                        d.attempts,
                        d.last_status_code
                            .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                        d.event_id
                    );
                }
            }
        }
        WebhooksCommand::Replay { delivery_id } => {
            let found = ciq_entity::WebhookDelivery::find_by_id(delivery_id)
                .one(&db)
                .await?
                .with_context(|| format!("no webhook delivery {delivery_id}"))?;
            let id = delivery::replay(&db, found.user_id, delivery_id)
                .await?
                .with_context(|| format!("no webhook delivery {delivery_id}"))?;
            eprintln!("queued event {} again as delivery {id}", found.event_id);
            println!("{id}");
        }
        WebhooksCommand::Rotate {
            endpoint_id,
            overlap,
        } => {
            let endpoint = endpoints::find_any(&db, endpoint_id).await?;
            let secrets = crate::webhook_key::resolve(store.url, key)?;
            let secret = endpoints::rotate(
                &db,
                secrets.as_ref(),
                endpoint.user_id,
                endpoint.id,
                Duration::from_secs(overlap),
            )
            .await?;
            eprintln!(
                "rotated the secret of webhook endpoint {}; the old one keeps signing for {overlap} s",
                endpoint.id
            );
            println!("{}", secrecy::ExposeSecret::expose_secret(&secret));
        }
        WebhooksCommand::Delete { endpoint_id } => {
            let endpoint = endpoints::find_any(&db, endpoint_id).await?;
            endpoints::delete(&db, endpoint.user_id, endpoint.id).await?;
            eprintln!(
                "deleted webhook endpoint {} ({})",
                endpoint.id, endpoint.url
            );
        }
    }
    Ok(())
}

fn print_usage(buckets: &[(DateTime<Utc>, ciq_usage::Counts)]) {
    println!(
        "{:<16}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
        "START (UTC)", "REQUESTS", "2XX", "4XX", "429", "5XX", "LEADS", "SPAM", "DROPPED"
    );
    for (start, c) in buckets {
        println!(
            "{:<16}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            start.format("%Y-%m-%d %H:%M"),
            c.requests(),
            c.success,
            c.client_error,
            c.rate_limited,
            c.server_error,
            c.leads_created,
            c.spam,
            c.dropped
        );
    }
    if buckets.is_empty() {
        eprintln!("no requests with this key in the last 24 hours");
    }
}

fn print_table(keys: &[KeySummary]) {
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    println!(
        "{:<36}  {:<20}  {:<12}  {:<7}  {:>6}  {:<16}  {:<16}  {:<16}  {:<38}  ORIGINS",
        "ID", "NAME", "PREFIX", "STATUS", "LIMIT", "CREATED", "LAST USED", "EXPIRES", "SCOPES"
    );
    for k in keys {
        println!(
            "{:<36}  {:<20}  {:<12}  {:<7}  {:>6}  {:<16}  {:<16}  {:<16}  {:<38}  {}",
            k.id,
            k.name.chars().take(20).collect::<String>(),
            k.display_prefix,
            k.status,
            k.rate_limit_per_minute
                .map_or_else(|| "-".to_owned(), |l| l.to_string()),
            when(Some(k.created_at)),
            when(k.last_used_at),
            when(k.expires_at),
            k.scopes.names().join(","),
            if k.allowed_origins.is_empty() {
                "-".to_owned()
            } else {
                k.allowed_origins.to_stored()
            },
        );
    }
}
