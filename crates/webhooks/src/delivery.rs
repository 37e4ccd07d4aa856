//! Delivery: every instance runs a [`DeliveryWorker`] that claims due deliveries under
//! a lease (a conditional `UPDATE`, so two instances never hold one delivery at once; a
//! dead instance's leases run out and another takes them), sends each once, and writes
//! what came of it — delivered, a retry on the schedule (or when `Retry-After` says),
//! failed. At most [`PER_ENDPOINT`] deliveries of one endpoint are in flight per
//! instance, out of [`MAX_IN_FLIGHT`], so one slow receiver cannot hold the others up.

use ciq_entity::AccountScoped;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ciq_store::Db;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::webhook_endpoint;
use ciq_store::Breaker;

use ciq_store::secret::SecretBox;

use crate::WebhookSettings;
use crate::address::{GuardedResolver, SystemLookup, check_url};
use crate::endpoints::{self, signing_secrets};
use crate::outbox::Codec;
use crate::secret::signature;
use secrecy::SecretString;

/// Deliveries in flight per instance.
pub const MAX_IN_FLIGHT: usize = 32;
/// Deliveries of one endpoint in flight per instance.
pub const PER_ENDPOINT: usize = 4;
/// Bytes of a receiver's answer kept in the delivery log.
pub const RESPONSE_EXCERPT: usize = 1024;
/// How often an idle worker looks for due deliveries.
pub const POLL: Duration = Duration::from_millis(250);
/// How long a group sending an endpoint's backlog uses its read of the endpoint (URL,
/// secrets) before reading it again.
pub const ENDPOINT_FRESH: Duration = Duration::from_secs(1);
/// Rounds a group sends of one endpoint's backlog before its slots go back to the
/// claim over every endpoint (oldest due first).
pub const GROUP_TURNS: usize = 8;
/// How often a busy worker looks at an outbox it found empty (an idle one looks on
/// every poll).
pub const OUTBOX_LOOK: Duration = Duration::from_millis(100);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Installs rustls' ring provider for the process (reqwest's TLS is built without a
/// provider of its own, to stay clear of aws-lc's C build). Idempotent.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client of deliveries: no redirects followed, no proxies, the attempt
/// timeout, names resolved through `resolver` (public addresses only, unless
/// allowed), and TLS verified against the system's roots plus the settings' extra ones.
/// It keeps as many idle connections to a host as the worker has deliveries in flight:
/// many accounts' endpoints often share one host (an automation platform's hooks), and
/// a pool kept to one endpoint's share closed and reopened (a new TCP connection, a new
/// TLS handshake) most of them every round.
pub fn client(settings: &WebhookSettings, resolver: GuardedResolver) -> reqwest::Client {
    install_tls();
    let extra_roots = settings
        .extra_roots
        .iter()
        .map(|der| reqwest::Certificate::from_der(der).expect("a parsed DER certificate"));
    reqwest::Client::builder()
        .tls_certs_merge(extra_roots)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.attempt_timeout)
        .connect_timeout(Duration::from_secs(5).min(settings.attempt_timeout))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .user_agent(concat!("ConvertIQ-Webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(resolver))
        .build()
        .expect("the webhook client's settings are valid")
}

/// One instance's delivery worker.
pub struct DeliveryWorker {
    db: Db,
    breaker: Arc<Breaker>,
    secrets: Option<SecretBox>,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// The readers of the domains' outbox rows.
    codecs: &'static [Codec],
    /// Who holds a lease: this instance, for this run.
    instance: Uuid,
    in_flight: AtomicUsize,
    busy_endpoints: Mutex<HashSet<Uuid>>,
    wake: Notify,
    /// Set when the store failed under this instance (a claim, or the record of an
    /// attempt): it may hold leases on deliveries it is not sending (the attempt's
    /// outcome was lost, or the claim's answer was). The next claim gives those back
    /// first, so they go out when the store is back instead of when the lease ends.
    stale_leases: std::sync::atomic::AtomicBool,
    /// Attempts that went out but whose outcome the store did not take (it failed
    /// between the send and the record): kept here, their leases held, and written
    /// before the next claim, so a receiver that got an event is not sent it again
    /// when the store is back (unless the outage outlasts the lease).
    unrecorded: std::sync::Mutex<Vec<(webhook_delivery::Model, Answer)>>,
    /// Test seam: this many records fail next, as if the store had failed.
    failing_records: AtomicUsize,
    /// Test seam: the exchange's task panics at its next settlement.
    breaking_exchange: std::sync::atomic::AtomicBool,
    /// When the outbox was last looked at, while it was found empty.
    last_empty_outbox: std::sync::Mutex<Option<Instant>>,
    /// Where sending groups hand their rounds to be settled together (see
    /// [`DeliveryWorker::settle_turns`]); started on first use.
    exchange: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Turn>>,
}

/// One sending group's round, handed to the worker's exchange: the outcomes of its
/// attempts to write, and whether it wants its endpoint's next due deliveries.
struct Turn {
    endpoint_id: Uuid,
    attempts: Vec<Attempt>,
    more: bool,
    settled: tokio::sync::oneshot::Sender<Settled>,
}

/// What came of a [`Turn`]: whether its outcomes were written (or kept to be written
/// when the store answers), and its endpoint's next deliveries, leased (`Err`: the
/// claim failed, and may have taken leases whose answer was lost).
struct Settled {
    recorded: bool,
    /// What its written attempts say about its endpoint, for the group to act on
    /// (`None`: none was written, or the lease of each ran out meanwhile).
    verdict: Option<Verdict>,
    next: Result<Vec<webhook_delivery::Model>, ()>,
}

/// Per endpoint, what its recorded attempts say about it.
type Verdicts = std::collections::HashMap<Uuid, Verdict>;

/// Claimed deliveries grouped by their endpoint (a group is what one endpoint's sender
/// holds).
fn by_endpoint(
    claimed: Vec<webhook_delivery::Model>,
) -> std::collections::HashMap<Uuid, Vec<webhook_delivery::Model>> {
    let mut groups: std::collections::HashMap<Uuid, Vec<_>> = Default::default();
    for delivery in claimed {
        groups
            .entry(delivery.endpoint_id)
            .or_default()
            .push(delivery);
    }
    groups
}

/// A claimed delivery and what its attempt came to: `Err`, it was not sent (the
/// endpoint could not be read).
struct Attempt {
    delivery: webhook_delivery::Model,
    answer: Result<Answer, String>,
    /// Whether its endpoint was failing when read (`true` when unknown).
    endpoint_failing: bool,
}

/// The row an attempt's outcome writes.
struct Outcome {
    status: DeliveryStatus,
    next: chrono::DateTime<chrono::Utc>,
    code: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Where an endpoint's deliveries go and the secrets that sign them, or why none can
/// be sent (each attempt's recorded error).
type Target = Result<(url::Url, Vec<SecretString>), String>;

/// What one endpoint's recorded attempts say about it.
#[derive(Clone, Copy)]
struct Verdict {
    user_id: Uuid,
    /// When they were recorded.
    at: chrono::DateTime<chrono::Utc>,
    delivered: bool,
    gone: bool,
    /// Whether it was failing when read (a success then clears that).
    was_failing: bool,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
enum Answer {
    /// The receiver answered.
    Status {
        code: u16,
        excerpt: String,
        retry_after: Option<Duration>,
    },
    /// No answer: why (never the URL, which may carry a token).
    Error(String),
}

impl DeliveryWorker {
    /// A worker on `db` (skipping turns while `breaker` is open); `secrets` is the
    /// gateway's webhook key (`None`: none configured, nothing can be signed); `codecs`
    /// read the outbox rows the domains write.
    pub fn new(
        db: Db,
        breaker: Arc<Breaker>,
        secrets: Option<SecretBox>,
        settings: WebhookSettings,
        codecs: &'static [Codec],
    ) -> Arc<Self> {
        let resolver = GuardedResolver {
            lookup: Arc::new(SystemLookup),
            allow_private: settings.allow_private_networks,
        };
        Self::with_client(
            db,
            breaker,
            secrets,
            settings.clone(),
            client(&settings, resolver),
            codecs,
        )
    }

    /// How it delivers: the retry schedule, when a failing endpoint is disabled.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// [`DeliveryWorker::new`] with its own HTTP client (tests give one whose resolver
    /// answers what they want).
    pub fn with_client(
        db: Db,
        breaker: Arc<Breaker>,
        secrets: Option<SecretBox>,
        settings: WebhookSettings,
        client: reqwest::Client,
        codecs: &'static [Codec],
    ) -> Arc<Self> {
        Arc::new(Self {
            db,
            breaker,
            secrets,
            settings,
            client,
            codecs,
            instance: Uuid::now_v7(),
            in_flight: AtomicUsize::new(0),
            busy_endpoints: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            stale_leases: std::sync::atomic::AtomicBool::new(false),
            unrecorded: std::sync::Mutex::new(Vec::new()),
            failing_records: AtomicUsize::new(0),
            breaking_exchange: std::sync::atomic::AtomicBool::new(false),
            last_empty_outbox: std::sync::Mutex::new(None),
            exchange: std::sync::OnceLock::new(),
        })
    }

    /// This run's id: what `lease_owner` holds on the deliveries it has leased.
    pub fn instance(&self) -> Uuid {
        self.instance
    }

    /// Test seam: as if the store had just failed under this instance (its leases on
    /// deliveries it is not sending are given back at the next claim).
    #[doc(hidden)]
    pub fn lost_the_store(&self) {
        self.stale_leases.store(true, Ordering::Release);
    }

    /// Test seam: the next `n` records of an attempt's outcome fail as if the store had
    /// failed between the send and the record.
    #[doc(hidden)]
    pub fn fail_next_records(&self, n: usize) {
        self.failing_records.store(n, Ordering::Release);
    }

    /// Test seam: the exchange's task panics at its next settlement, losing the rounds
    /// it holds (as a bug would); later rounds are settled by their own groups.
    #[doc(hidden)]
    pub fn break_the_exchange(&self) {
        self.breaking_exchange.store(true, Ordering::Release);
    }

    /// Looks for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims and sends for ever.
    pub async fn run(self: Arc<Self>) {
        let mut failing = false;
        let mut last_gauges = Instant::now() - Duration::from_secs(60);
        loop {
            if !self.breaker.is_open() {
                if last_gauges.elapsed() >= Duration::from_secs(5) {
                    last_gauges = Instant::now();
                    if let Err(err) = self.update_gauges().await {
                        tracing::debug!(error = %err, "webhook gauges not updated");
                    }
                }
                // Looked at on each turn, but while deliveries keep the worker turning
                // and the outbox was just found empty, at most every OUTBOX_LOOK.
                let looked = *self.last_empty_outbox.lock().expect("not poisoned");
                if looked.is_none_or(|at| at.elapsed() >= OUTBOX_LOOK) {
                    match self.fan_out().await {
                        Ok(made) => {
                            *self.last_empty_outbox.lock().expect("not poisoned") =
                                (made == 0).then(Instant::now);
                        }
                        Err(err) => {
                            tracing::debug!(error = %err, "webhook outbox not fanned out; will retry");
                        }
                    }
                }
                match self.claim_and_send().await {
                    Ok(claimed) => {
                        failing = false;
                        if claimed > 0 {
                            continue;
                        }
                    }
                    Err(err) if !failing => {
                        failing = true;
                        self.stale_leases.store(true, Ordering::Release);
                        tracing::warn!(error = %err, "webhook delivery: the store failed; will retry");
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Writes the outcomes the store did not take when they came (see `unrecorded`), in
    /// one statement; if it fails they all stay for the next turn.
    async fn record_unrecorded(&self) -> Result<(), DbErr> {
        let waiting = std::mem::take(&mut *self.unrecorded.lock().expect("not poisoned"));
        if waiting.is_empty() {
            return Ok(());
        }
        let attempts: Vec<Attempt> = waiting
            .into_iter()
            .map(|(delivery, answer)| Attempt {
                delivery,
                answer: Ok(answer),
                endpoint_failing: true,
            })
            .collect();
        match self.record(&attempts).await {
            Ok(verdicts) => self.judge(verdicts).await,
            Err(err) => {
                self.unrecorded.lock().expect("not poisoned").extend(
                    attempts
                        .into_iter()
                        .filter_map(|a| Some((a.delivery, a.answer.ok()?))),
                );
                Err(err)
            }
        }
    }

    /// Before a claim, once the store answers again: the outcomes it did not take are
    /// written, then the leases left by its failure are given back.
    async fn recover(&self) -> Result<(), DbErr> {
        if !self.unrecorded.lock().expect("not poisoned").is_empty() {
            self.record_unrecorded().await?;
        }
        if self.stale_leases.load(Ordering::Acquire) {
            self.release_stale().await?;
        }
        Ok(())
    }

    /// Gives back the leases this instance holds on pending deliveries of endpoints it
    /// is not sending to now: left over from a store failure (see `stale_leases`).
    /// Called only once every unrecorded outcome is written (their leases stay held).
    async fn release_stale(&self) -> Result<(), DbErr> {
        let busy: Vec<Uuid> = self.busy_endpoints.lock().await.iter().copied().collect();
        let released = unleased(webhook_delivery::Entity::update_many())
            .filter(webhook_delivery::Column::LeaseOwner.eq(self.instance))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(webhook_delivery::Column::EndpointId.is_not_in(busy))
            .exec(&self.db)
            .await?;
        self.stale_leases.store(false, Ordering::Release);
        if released.rows_affected > 0 {
            tracing::info!(
                deliveries = released.rows_affected,
                "webhook leases left by a store failure given back"
            );
        }
        Ok(())
    }

    /// Gives back this instance's leases (at shutdown): another instance, or this one
    /// restarted, sends them at once instead of after the lease. Outcomes still
    /// unrecorded are written first, so what went out is not sent again.
    pub async fn release(&self) -> Result<(), DbErr> {
        if let Err(err) = self.record_unrecorded().await {
            tracing::warn!(error = %err, "webhook outcomes not recorded at shutdown; those deliveries go out again");
        }
        unleased(webhook_delivery::Entity::update_many())
            .filter(webhook_delivery::Column::LeaseOwner.eq(self.instance))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Turns the domains' outbox rows into delivery rows until none is left; how many
    /// deliveries that made.
    pub async fn fan_out(&self) -> Result<u64, DbErr> {
        crate::outbox::drain(&self.db, self.codecs).await
    }

    /// Claims what is due (within the free slots) and starts sending it; how many.
    async fn claim_and_send(self: &Arc<Self>) -> Result<usize, DbErr> {
        self.recover().await?;
        let groups = self.claim_groups().await?;
        let count = groups.iter().map(|(_, d)| d.len()).sum();
        for (endpoint_id, deliveries) in groups {
            let worker = self.clone();
            tokio::spawn(async move {
                worker
                    .send_group(endpoint_id, deliveries, GROUP_TURNS)
                    .await
            });
        }
        Ok(count)
    }

    /// Claims what is due now and sends it, waiting for every attempt to be written;
    /// how many were claimed (tests, and a caller that wants it done now).
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize, DbErr> {
        self.fan_out().await?;
        self.recover().await?;
        let groups = self.claim_groups().await?;
        let count = groups.iter().map(|(_, d)| d.len()).sum();
        futures_util::future::join_all(
            groups
                .into_iter()
                .map(|(endpoint_id, deliveries)| self.send_group(endpoint_id, deliveries, 0)),
        )
        .await;
        Ok(count)
    }

    /// Leases what is due within the free slots, grouped by endpoint, and counts it in
    /// flight.
    async fn claim_groups(&self) -> Result<Vec<(Uuid, Vec<webhook_delivery::Model>)>, DbErr> {
        let free = MAX_IN_FLIGHT.saturating_sub(self.in_flight.load(Ordering::Acquire));
        if free == 0 {
            return Ok(Vec::new());
        }
        let busy: Vec<Uuid> = self.busy_endpoints.lock().await.iter().copied().collect();
        let groups = by_endpoint(self.claim(free, &busy, &[]).await?);
        let mut busy = self.busy_endpoints.lock().await;
        for (endpoint_id, deliveries) in &groups {
            busy.insert(*endpoint_id);
            self.in_flight.fetch_add(deliveries.len(), Ordering::AcqRel);
        }
        Ok(groups.into_iter().collect())
    }

    /// Sends one endpoint's claimed deliveries at once (at most [`PER_ENDPOINT`]), the
    /// attempts in parallel, and hands their outcomes to the exchange; for up to `turns`
    /// more rounds the exchange also leases the endpoint's next due deliveries (beside
    /// the statement writing the outcomes, with every other group's waiting round) and
    /// the group sends those (the endpoint read again once it is older than
    /// [`ENDPOINT_FRESH`]), so a backlog is not held up by a claim over every endpoint
    /// between its batches. Frees its slots at the end.
    async fn send_group(
        self: &Arc<Self>,
        endpoint_id: Uuid,
        mut deliveries: Vec<webhook_delivery::Model>,
        turns: usize,
    ) {
        // Where and how to send, from the last read of the endpoint (and when it was).
        let mut read: Option<(Instant, Target)> = None;
        let mut failing = true;
        let mut turn = 0;
        loop {
            let total = deliveries.len();
            let (read_at, target) = match read.take() {
                Some((at, target)) if at.elapsed() < ENDPOINT_FRESH => (at, target),
                _ => match endpoints::find_any(&self.db, endpoint_id).await {
                    Ok(endpoint) => {
                        failing = endpoint.failing_since.is_some();
                        (Instant::now(), self.target(&endpoint))
                    }
                    Err(err) => {
                        // Not sent: the endpoint could not be read (the store failed, or
                        // it is gone).
                        let attempts: Vec<Attempt> = deliveries
                            .into_iter()
                            .map(|delivery| Attempt {
                                delivery,
                                answer: Err(err.to_string()),
                                endpoint_failing: true,
                            })
                            .collect();
                        if let Some(verdicts) = self.record_or_keep(&attempts).await
                            && let Err(err) = self.judge(verdicts).await
                        {
                            tracing::warn!(error = %err, "webhook endpoint not judged");
                        }
                        self.free(endpoint_id, total).await;
                        return;
                    }
                },
            };
            let sending = &target;
            let endpoint_failing = failing;
            let attempts: Vec<Attempt> =
                futures_util::future::join_all(deliveries.into_iter().map(|delivery| async move {
                    let started = Instant::now();
                    let answer = match sending {
                        Ok((url, signing)) => self.send(url, signing, &delivery).await,
                        Err(why) => Answer::Error(why.clone()),
                    };
                    metrics::histogram!("ciq_webhook_attempt_seconds")
                        .record(started.elapsed().as_secs_f64());
                    Attempt {
                        delivery,
                        answer: Ok(answer),
                        endpoint_failing,
                    }
                }))
                .await;
            // What the record's judgement leaves: a success clears a failing endpoint,
            // a round without one marks it failing.
            failing = !attempts.iter().any(|a| {
                matches!(a.answer, Ok(Answer::Status { code, .. }) if (200..300).contains(&code))
            });
            turn += 1;
            let (settled, settling) = tokio::sync::oneshot::channel();
            let round = Turn {
                endpoint_id,
                attempts,
                more: turn <= turns,
                settled,
            };
            if let Err(refused) = self.exchange().send(round) {
                // The exchange's task is gone (it panicked): settled here instead.
                self.settle(vec![refused.0]).await;
            }
            let Settled {
                recorded,
                verdict,
                next,
            } = settling.await.unwrap_or(Settled {
                // The exchange ended while it held this round (it panicked): what it
                // wrote is unknown, so leases it may have taken are given back.
                recorded: false,
                verdict: None,
                next: Err(()),
            });
            // The endpoint judged here, not in the exchange: a failing endpoint's writes
            // hold up only its own group.
            let judged = match verdict {
                Some(verdict) => match self.judge_endpoint(endpoint_id, verdict).await {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::warn!(error = %err, "webhook endpoint not judged");
                        false
                    }
                },
                None => true,
            };
            match next {
                Ok(next) if recorded && judged && !next.is_empty() => {
                    self.in_flight.fetch_add(next.len(), Ordering::AcqRel);
                    self.in_flight.fetch_sub(total, Ordering::AcqRel);
                    deliveries = next;
                    read = Some((read_at, target));
                }
                Ok(next) => {
                    // Claimed while the record failed: not sent, given back next claim.
                    if !next.is_empty() {
                        self.stale_leases.store(true, Ordering::Release);
                    }
                    self.free(endpoint_id, total).await;
                    return;
                }
                Err(_) => {
                    // The claim's answer may be lost with leases taken.
                    self.stale_leases.store(true, Ordering::Release);
                    self.free(endpoint_id, total).await;
                    return;
                }
            }
        }
    }

    /// The sender of this worker's exchange, its task started on first use.
    fn exchange(self: &Arc<Self>) -> &tokio::sync::mpsc::UnboundedSender<Turn> {
        self.exchange.get_or_init(|| {
            let (hand, taken) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(Self::settle_turns(Arc::downgrade(self), taken));
            hand
        })
    }

    /// The exchange: settles the sending groups' rounds as they come, every round that
    /// is waiting when it turns settled together ([`DeliveryWorker::settle`]), so while
    /// one settlement runs the next gathers. Ends with its worker.
    async fn settle_turns(
        worker: std::sync::Weak<Self>,
        mut taken: tokio::sync::mpsc::UnboundedReceiver<Turn>,
    ) {
        let mut turns = Vec::new();
        while taken.recv_many(&mut turns, usize::MAX).await > 0 {
            let Some(worker) = worker.upgrade() else {
                return;
            };
            if worker.breaking_exchange.swap(false, Ordering::AcqRel) {
                panic!("the webhook exchange broke (test seam)");
            }
            worker.settle(std::mem::take(&mut turns)).await;
        }
    }

    /// Settles `turns`: every attempt's outcome written by one statement and, beside
    /// it, the next due deliveries of every endpoint that wants more leased by one
    /// claim (at most [`PER_ENDPOINT`] each); each round is answered with its share. A
    /// round claiming per endpoint was two statements per four deliveries (more under
    /// many endpoints); together they are two per settlement.
    async fn settle(&self, turns: Vec<Turn>) {
        let mut attempts = Vec::new();
        let mut wanting = Vec::new();
        let mut answers = Vec::with_capacity(turns.len());
        for turn in turns {
            attempts.extend(turn.attempts);
            if turn.more {
                wanting.push(turn.endpoint_id);
            }
            answers.push((turn.endpoint_id, turn.more, turn.settled));
        }
        let next = async {
            if wanting.is_empty() {
                return Ok(Vec::new());
            }
            self.claim(PER_ENDPOINT * wanting.len(), &[], &wanting)
                .await
        };
        let (mut verdicts, next) = tokio::join!(self.record_or_keep(&attempts), next);
        let mut next = next.map(by_endpoint);
        for (endpoint_id, more, settled) in answers {
            let share = match &mut next {
                Ok(groups) => Ok(groups.remove(&endpoint_id).unwrap_or_default()),
                Err(_) if more => Err(()),
                Err(_) => Ok(Vec::new()),
            };
            if let Err(unanswered) = settled.send(Settled {
                recorded: verdicts.is_some(),
                verdict: verdicts
                    .as_mut()
                    .and_then(|verdicts| verdicts.remove(&endpoint_id)),
                next: share,
            }) && unanswered.next.is_ok_and(|next| !next.is_empty())
            {
                // Its group is gone: the deliveries leased for it are given back.
                self.stale_leases.store(true, Ordering::Release);
            }
        }
    }

    /// Writes `attempts`' outcomes; when the store does not take them, keeps those that
    /// went out (written when it answers, their leases held meanwhile, so none is sent
    /// twice) and has the leases of those that did not given back at the next claim.
    /// What the written ones say about their endpoints, `None` when none was written.
    async fn record_or_keep(&self, attempts: &[Attempt]) -> Option<Verdicts> {
        let err = match self.record(attempts).await {
            Ok(verdicts) => return Some(verdicts),
            Err(err) => err,
        };
        tracing::warn!(error = %err, deliveries = attempts.len(), "could not record webhook attempts");
        let mut unrecorded = self.unrecorded.lock().expect("not poisoned");
        for attempt in attempts {
            match &attempt.answer {
                Ok(answer) => unrecorded.push((attempt.delivery.clone(), answer.clone())),
                Err(_) => self.stale_leases.store(true, Ordering::Release),
            }
        }
        None
    }

    /// Gives an endpoint's slots back (`count` deliveries) and looks for more work.
    async fn free(&self, endpoint_id: Uuid, count: usize) {
        self.busy_endpoints.lock().await.remove(&endpoint_id);
        self.in_flight.fetch_sub(count, Ordering::AcqRel);
        self.wake();
    }

    /// Where and with what an endpoint's deliveries are sent: its URL (checked) and its
    /// signing secrets; or why none can be (recorded as each attempt's error).
    fn target(&self, endpoint: &webhook_endpoint::Model) -> Target {
        let Some(secrets) = &self.secrets else {
            return Err(
                "the gateway has no webhook key (CIQ_WEBHOOK_SECRET_KEY) to sign with".into(),
            );
        };
        let signing =
            signing_secrets(secrets, endpoint, ciq_entity::now()).map_err(|err| err.to_string())?;
        let url = check_url(&endpoint.url, self.settings.allow_private_networks)
            .map_err(|refused| format!("not sent: the url {refused}"))?;
        Ok((url, signing))
    }

    fn lease_end(&self) -> chrono::DateTime<chrono::Utc> {
        ciq_entity::now() + chrono::TimeDelta::from_std(self.settings.lease).unwrap_or_default()
    }

    /// Leases up to `limit` due deliveries, at most [`PER_ENDPOINT`] of each enabled
    /// endpoint and none of the `busy` endpoints (this instance is sending to them), of
    /// the `only` endpoints when there are some: per endpoint an index range
    /// (`idx_webhook_deliveries_due`, which holds pending deliveries only), so a large
    /// backlog (or a long history of settled deliveries) costs no more to claim from
    /// than a small one. The lease's condition is
    /// checked again by the `UPDATE` itself, so of two instances that pick the same
    /// delivery only one gets it (PostgreSQL also skips rows another claim has locked).
    async fn claim(
        &self,
        limit: usize,
        busy: &[Uuid],
        only: &[Uuid],
    ) -> Result<Vec<webhook_delivery::Model>, DbErr> {
        let backend = self.db.get_database_backend();
        let now = ciq_entity::now();
        let mut values: Vec<Value> =
            vec![self.instance.into(), self.lease_end().into(), now.into()];
        let place = |n: usize| ciq_store::placeholder(backend, n);
        let excluded = if busy.is_empty() {
            String::new()
        } else {
            let places: Vec<String> = (0..busy.len()).map(|i| place(4 + i)).collect();
            values.extend(busy.iter().map(|id| Value::from(*id)));
            format!("AND e.id NOT IN ({})", places.join(", "))
        };
        let excluded = if only.is_empty() {
            excluded
        } else {
            let first = values.len() + 1;
            values.extend(only.iter().map(|id| Value::from(*id)));
            let places: Vec<String> = (first..=values.len()).map(place).collect();
            format!("{excluded} AND e.id IN ({})", places.join(", "))
        };
        let due = |d: &str| {
            format!(
                "{d}.status = 'pending' AND {d}.next_attempt_at <= {now} \
                 AND ({d}.lease_until IS NULL OR {d}.lease_until < {now})",
                now = place(3)
            )
        };
        let candidates = match backend {
            DbBackend::Postgres => format!(
                "SELECT d.id FROM webhook_endpoints e CROSS JOIN LATERAL \
                 (SELECT id, next_attempt_at FROM webhook_deliveries d \
                 WHERE d.endpoint_id = e.id AND {due_d} ORDER BY d.next_attempt_at \
                 LIMIT {PER_ENDPOINT} FOR UPDATE SKIP LOCKED) d \
                 WHERE e.enabled {excluded} ORDER BY d.next_attempt_at LIMIT {limit}",
                due_d = due("d"),
            ),
            // SQLite has no LATERAL: the same per endpoint, driven from the endpoints, as
            // a correlated subquery in the join.
            _ => format!(
                "SELECT x.id FROM webhook_endpoints e JOIN webhook_deliveries x \
                 ON x.id IN (SELECT y.id FROM webhook_deliveries y \
                 WHERE y.endpoint_id = e.id AND {due_y} ORDER BY y.next_attempt_at \
                 LIMIT {PER_ENDPOINT}) \
                 WHERE e.enabled {excluded} ORDER BY x.next_attempt_at LIMIT {limit}",
                due_y = due("y"),
            ),
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = {owner}, lease_until = {until} \
             WHERE id IN ({candidates}) AND {due_all} RETURNING *",
            owner = place(1),
            until = place(2),
            due_all = due("webhook_deliveries"),
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.iter()
            .map(|row| webhook_delivery::Model::from_query_result(row, ""))
            .collect()
    }

    /// One signed POST of `delivery` to `url`, and what came of it.
    async fn send(
        &self,
        url: &url::Url,
        signing: &[SecretString],
        delivery: &webhook_delivery::Model,
    ) -> Answer {
        let timestamp = chrono::Utc::now().timestamp();
        let id = delivery.event_id.to_string();
        let sent = self
            .client
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(signing, &id, timestamp, &delivery.payload),
            )
            .body(delivery.payload.clone())
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(err) => return Answer::Error(describe(&err)),
        };
        let code = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT {
            match resp.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT);
        Answer::Status {
            code,
            excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            retry_after,
        }
    }

    /// Writes what came of `attempts` in one statement (each only while this instance
    /// still holds its lease: one whose lease ran out is whoever holds it now's); what
    /// the written ones say about their endpoints ([`DeliveryWorker::judge`] acts on it).
    async fn record(&self, attempts: &[Attempt]) -> Result<Verdicts, DbErr> {
        if self
            .failing_records
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(DbErr::Custom("the store failed (test seam)".into()));
        }
        if attempts.is_empty() {
            return Ok(Verdicts::default());
        }
        let backend = self.db.get_database_backend();
        let now = ciq_entity::now();
        let mut values: Vec<Value> = vec![self.instance.into(), now.into()];
        let mut tuples = Vec::with_capacity(attempts.len());
        let mut written: Vec<(&Attempt, Outcome)> = Vec::with_capacity(attempts.len());
        for attempt in attempts {
            let outcome = self.outcome(attempt, now);
            let first = values.len() + 1;
            values.extend([
                attempt.delivery.id.into(),
                outcome.status.as_str().into(),
                (attempt.delivery.attempts + 1).into(),
                outcome.next.into(),
                outcome.code.map(i32::from).into(),
                outcome.excerpt.clone().into(),
                outcome.error.clone().into(),
                outcome.delivered_at.into(),
            ]);
            let places: Vec<String> = (first..=values.len())
                .map(|n| ciq_store::placeholder(backend, n))
                .collect();
            tuples.push(format!("({})", places.join(", ")));
            written.push((attempt, outcome));
        }
        let sql = format!(
            "WITH v (d_id, d_status, d_attempts, d_next, d_code, d_response, d_error, \
             d_delivered) AS (VALUES {tuples}) \
             UPDATE webhook_deliveries SET status = v.d_status, attempts = v.d_attempts, \
             next_attempt_at = v.d_next, last_status_code = v.d_code, \
             last_response = v.d_response, last_error = v.d_error, last_attempt_at = {now}, \
             delivered_at = v.d_delivered, lease_owner = NULL, lease_until = NULL \
             FROM v WHERE id = v.d_id AND lease_owner = {owner} RETURNING id",
            tuples = tuples.join(", "),
            now = ciq_store::placeholder(backend, 2),
            owner = ciq_store::placeholder(backend, 1),
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let mut ids = HashSet::with_capacity(rows.len());
        for row in &rows {
            ids.insert(row.try_get::<Uuid>("", "id")?);
        }
        // Per endpoint, what its written attempts say about it.
        let mut verdicts = Verdicts::default();
        for (attempt, outcome) in written {
            // A lease that ran out meanwhile: whoever holds it now decides.
            if !ids.contains(&attempt.delivery.id) {
                continue;
            }
            let kind = match outcome.status {
                DeliveryStatus::Delivered => "delivered",
                DeliveryStatus::Pending => "retried",
                DeliveryStatus::Failed => "failed",
            };
            metrics::counter!("ciq_webhook_deliveries_total", "outcome" => kind).increment(1);
            let verdict = verdicts
                .entry(attempt.delivery.endpoint_id)
                .or_insert(Verdict {
                    user_id: attempt.delivery.user_id,
                    at: now,
                    delivered: false,
                    gone: false,
                    was_failing: false,
                });
            verdict.delivered |= outcome.status == DeliveryStatus::Delivered;
            verdict.gone |= outcome.code == Some(410);
            verdict.was_failing |= attempt.endpoint_failing;
        }
        Ok(verdicts)
    }

    /// Judges each endpoint by its verdict ([`DeliveryWorker::judge_endpoint`]).
    async fn judge(&self, verdicts: Verdicts) -> Result<(), DbErr> {
        for (endpoint_id, verdict) in verdicts {
            self.judge_endpoint(endpoint_id, verdict).await?;
        }
        Ok(())
    }

    /// What an attempt comes to: delivered, a retry (when), or failed.
    fn outcome(&self, attempt: &Attempt, now: chrono::DateTime<chrono::Utc>) -> Outcome {
        let delivery = &attempt.delivery;
        let (code, excerpt, error, retry_after) = match &attempt.answer {
            Ok(Answer::Status {
                code,
                excerpt,
                retry_after,
            }) => (Some(*code), Some(excerpt.clone()), None, *retry_after),
            Ok(Answer::Error(why)) | Err(why) => (None, None, Some(why.clone()), None),
        };
        let delivered = code.is_some_and(|c| (200..300).contains(&c));
        let gone = code == Some(410);
        let retry_wait = match (retry_after, code) {
            (Some(wait), Some(429 | 503)) => Some(wait.min(MAX_RETRY_AFTER)),
            _ => self
                .settings
                .retry_schedule
                .get(usize::try_from(delivery.attempts).unwrap_or(usize::MAX))
                .copied(),
        };
        let (status, next) = if delivered {
            (DeliveryStatus::Delivered, now)
        } else if gone {
            (DeliveryStatus::Failed, now)
        } else {
            match retry_wait {
                Some(wait) => (
                    DeliveryStatus::Pending,
                    now + chrono::TimeDelta::from_std(wait).unwrap_or_default(),
                ),
                None => (DeliveryStatus::Failed, now),
            }
        };
        Outcome {
            status,
            next,
            code,
            excerpt,
            error,
            delivered_at: delivered.then_some(now),
        }
    }

    /// The endpoint after its attempts: a success ends its run of failures; a 410
    /// disables it; a run of failures as long as the settings allow disables it too.
    async fn judge_endpoint(&self, endpoint_id: Uuid, verdict: Verdict) -> Result<(), DbErr> {
        let now = verdict.at;
        let endpoint = webhook_endpoint::Column::Id.eq(endpoint_id);
        if verdict.delivered && !verdict.gone {
            // An endpoint read as not failing needs no write (the common case).
            if verdict.was_failing {
                webhook_endpoint::Entity::update_many()
                    .col_expr(
                        webhook_endpoint::Column::FailingSince,
                        Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
                    )
                    .filter(endpoint)
                    .filter(webhook_endpoint::Column::FailingSince.is_not_null())
                    .exec(&self.db)
                    .await?;
            }
            return Ok(());
        }
        let disable = |reason: String| async move {
            match endpoints::set_enabled(
                &self.db,
                verdict.user_id,
                endpoint_id,
                false,
                Some(&reason),
            )
            .await
            {
                Ok(()) => {
                    tracing::warn!(endpoint = %endpoint_id, reason, "webhook endpoint disabled");
                    Ok(())
                }
                Err(endpoints::EndpointError::Store(err)) => Err(err),
                Err(_) => Ok(()),
            }
        };
        if verdict.gone {
            return disable("the receiver answered 410 Gone".to_owned()).await;
        }
        webhook_endpoint::Entity::update_many()
            .col_expr(webhook_endpoint::Column::FailingSince, Expr::value(now))
            .filter(endpoint.clone())
            .filter(webhook_endpoint::Column::FailingSince.is_null())
            .exec(&self.db)
            .await?;
        let since = webhook_endpoint::Entity::find()
            .select_only()
            .column(webhook_endpoint::Column::FailingSince)
            .filter(endpoint)
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .into_tuple::<Option<chrono::DateTime<chrono::Utc>>>()
            .one(&self.db)
            .await?
            .flatten();
        let limit = chrono::TimeDelta::from_std(self.settings.disable_after).unwrap_or_default();
        if let Some(since) = since
            && now - since >= limit
        {
            return disable(format!(
                "every delivery failed for {}",
                describe_span(self.settings.disable_after)
            ))
            .await;
        }
        Ok(())
    }

    /// `ciq_webhook_pending_deliveries` (with the events of the outbox not fanned out
    /// yet) and `ciq_webhook_oldest_pending_seconds`, read per endpoint through
    /// `idx_webhook_deliveries_due`.
    async fn update_gauges(&self) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT count(*) AS pending, min(d.created_at) AS oldest FROM webhook_endpoints e \
                 JOIN webhook_deliveries d ON d.endpoint_id = e.id AND d.status = 'pending'",
            ))
            .await?;
        let (count, oldest) = match row {
            Some(row) => (
                row.try_get::<i64>("", "pending").unwrap_or(0),
                row.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "oldest")
                    .ok()
                    .flatten(),
            ),
            None => (0, None),
        };
        // Group commit's outbox holds events not fanned out yet (PostgreSQL).
        let unfanned = if backend == DbBackend::Postgres {
            self.db
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT COALESCE(sum(json_array_length(events::json)), 0)::bigint AS waiting \
                     FROM webhook_outbox",
                ))
                .await?
                .and_then(|row| row.try_get::<i64>("", "waiting").ok())
                .unwrap_or(0)
        } else {
            0
        };
        metrics::gauge!("ciq_webhook_pending_deliveries").set((count + unfanned) as f64);
        let age = oldest.map_or(0.0, |at| {
            (ciq_entity::now() - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics::gauge!("ciq_webhook_oldest_pending_seconds").set(age);
        Ok(())
    }
}

/// `update` also hands the deliveries' leases back (owner and expiry cleared).
fn unleased(
    update: sea_orm::UpdateMany<webhook_delivery::Entity>,
) -> sea_orm::UpdateMany<webhook_delivery::Entity> {
    update
        .col_expr(
            webhook_delivery::Column::LeaseOwner,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            webhook_delivery::Column::LeaseUntil,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
}

/// A request's failure in words, without its URL (which may carry a token).
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

/// `Retry-After` as seconds or an HTTP date, as a wait from now.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

fn describe_span(span: Duration) -> String {
    let secs = span.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

/// An endpoint's deliveries, newest first, at most `limit` (the account is in the query).
pub async fn deliveries(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    endpoint_id: Uuid,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::in_account(user_id)
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
        .order_by_desc(webhook_delivery::Column::CreatedAt)
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Queues the event of delivery `id` (of `user_id`'s account) to its endpoint again, as
/// a new delivery due now with the same `webhook-id` and body; returns the new id.
/// `None`: no such delivery in the account.
pub async fn replay(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    let Some(original) = webhook_delivery::Entity::find_in_account(user_id, id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let again = crate::outbox::pending_delivery(
        user_id,
        original.endpoint_id,
        original.event_id,
        &original.event_type,
        original.lead_id,
        original.payload,
        ciq_entity::now(),
    );
    let new_id = again.id;
    webhook_delivery::Entity::insert(webhook_delivery::ActiveModel::from(again))
        .exec_without_returning(db)
        .await?;
    Ok(Some(new_id))
}

/// The type of the event "send test event" queues.
pub const TEST_EVENT: &str = "webhook.test";

/// Queues a `webhook.test` event to the endpoint `endpoint_id` of `user_id`'s account,
/// due now (its body says it is a test and carries no lead); returns the delivery's id.
pub async fn queue_test(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    endpoint_id: Uuid,
) -> Result<Uuid, DbErr> {
    let now = ciq_entity::now();
    let event_id = Uuid::now_v7();
    let body = serde_json::json!({
        "type": TEST_EVENT,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {"message": "A test event, sent from Settings → Webhooks. It carries no lead."},
    });
    let row = crate::outbox::pending_delivery(
        user_id,
        endpoint_id,
        event_id,
        TEST_EVENT,
        Uuid::nil(),
        body.to_string(),
        now,
    );
    let id = row.id;
    webhook_delivery::Entity::insert(webhook_delivery::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(id)
}

/// Deletes finished deliveries (delivered or failed) older than `retention`; returns how
/// many.
pub async fn purge(db: &impl ConnectionTrait, retention: Duration) -> Result<u64, DbErr> {
    let before = ciq_entity::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    // Per endpoint (every delivery has one): the log's index finds the old rows.
    let endpoints = webhook_endpoint::Entity::find()
        .select_only()
        .column(webhook_endpoint::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    let mut purged = 0;
    for chunk in endpoints.chunks(500) {
        purged += webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::EndpointId.is_in(chunk.to_vec()))
            .filter(webhook_delivery::Column::CreatedAt.lt(before))
            .filter(webhook_delivery::Column::Status.ne(DeliveryStatus::Pending))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::TimeDelta::seconds(120)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!((110..=120).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(describe_span(Duration::from_secs(5 * 86_400)), "5 days");
        assert_eq!(describe_span(Duration::from_secs(3)), "3 seconds");
    }
}
