//! Routing to a Redis Cluster: one multiplexed connection per node, each command sent to
//! the master of its key's slot, so that a master that fails affects its own slots and
//! nothing else.
//!
//! The redis crate's cluster client holds back every request while it re-reads a slot
//! map that still names a dead master, keys on live masters too; here nothing waits for
//! another node:
//! - the slot map (`CLUSTER SLOTS`) is read once before the first command and afterwards
//!   only by a background task (every 10 s; at once after `MOVED`, a failed node or a
//!   cluster error; every 200 ms while a node is down), so requests never wait for it;
//! - a node whose connection fails (refused, dropped, no answer within the bound) is
//!   marked down: commands for its slots fail at once, without a connection attempt,
//!   until the background task reaches it again or the map names the replica that took
//!   its slots over. [`Cluster::serves`] says whether a key's slot is served, so the
//!   limiter decides in-process for those slots only;
//! - `MOVED` updates the slot's owner and retries there (at most twice); `ASK` sends
//!   `ASKING` and the command to the named node, the map unchanged. A transaction
//!   (`MULTI`) that meets either is not retried: its error is returned, and the map is
//!   re-read for the next attempt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisError,
    RedisResult, ServerErrorKind, Value,
};

/// Hash slots in a Redis Cluster.
pub const SLOTS: usize = 16_384;

/// How often the background task looks again while a node is down or the map is wanted.
const EAGER: Duration = Duration::from_millis(200);
/// How often it re-reads the map when all is well (slots moved by an operator show as
/// `MOVED` before that anyway).
const CALM: Duration = Duration::from_secs(10);
/// Redirects followed for one command.
const REDIRECTS: usize = 2;

/// The slot of `key` as Redis Cluster computes it: CRC16 (XMODEM) of its hash tag (the
/// text between the first `{` and the next `}`, when not empty) or of the whole key,
/// modulo 16 384.
pub fn slot_of_key(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|b| *b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS as u16
}

/// A connection to a Redis Cluster; cheap to clone (clones share the nodes' connections,
/// the slot map and the background task).
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    /// The first seed's connection settings (credentials, database, protocol): every
    /// node is reached with them at its own address.
    template: ConnectionInfo,
    seeds: Vec<String>,
    timeout: Duration,
    nodes: Mutex<HashMap<String, Arc<Node>>>,
    map: RwLock<Option<Arc<SlotMap>>>,
    /// Held while the first map is read, so concurrent first requests read it once.
    first_map: tokio::sync::Mutex<()>,
    /// When reading the first map last failed: requests meanwhile fail at once.
    first_map_failed: Mutex<Option<Instant>>,
    /// Set when the map should be re-read soon; the background task clears it.
    wanted: AtomicBool,
    /// Its own allocation, so the background task waits on it without keeping the
    /// cluster connection alive.
    wake: Arc<tokio::sync::Notify>,
    watching: AtomicBool,
    /// Rotates keyless commands over the masters.
    next_master: AtomicUsize,
}

/// Who serves each slot, as a node last told.
struct SlotMap {
    /// Each slot's master, by index into `masters`; `NONE` where no master serves it.
    owner: Vec<u16>,
    masters: Vec<Arc<Node>>,
    /// Every node named (masters and replicas): where the map is read from next time.
    known: Vec<String>,
}

const NONE: u16 = u16::MAX;

impl SlotMap {
    fn master_of(&self, slot: u16) -> Option<&Arc<Node>> {
        match self.owner[usize::from(slot)] {
            NONE => None,
            index => self.masters.get(usize::from(index)),
        }
    }
}

/// One node and its connection.
struct Node {
    addr: String,
    client: redis::Client,
    state: Mutex<NodeState>,
    /// Held while connecting, so concurrent first requests open one connection.
    connecting: tokio::sync::Mutex<()>,
}

enum NodeState {
    /// Not connected yet: the first request connects.
    Idle,
    Up(MultiplexedConnection),
    /// Failed: requests fail at once until the background task reaches it again.
    Down(String),
}

/// What one routed request sends.
#[derive(Clone, Copy)]
enum Work<'a> {
    Command(&'a Cmd),
    Pipeline(&'a Pipeline, usize, usize),
}

enum Answer {
    One(Value),
    Many(Vec<Value>),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cluster_error(detail: impl Into<String>) -> RedisError {
    RedisError::from((
        ErrorKind::Server(ServerErrorKind::ClusterDown),
        "Redis Cluster",
        detail.into(),
    ))
}

/// Whether `err` means the connection it came on is no longer usable.
fn connection_lost(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
}

impl Cluster {
    /// A cluster reached through `seeds` (URLs; the first one's credentials and settings
    /// apply to every node), each connection attempt and answer bounded by `timeout`.
    /// Connects lazily: only a malformed URL is an error.
    pub fn open(seeds: &[&str], timeout: Duration) -> RedisResult<Self> {
        let mut addrs = Vec::new();
        let mut template = None;
        for seed in seeds {
            let client = redis::Client::open(*seed)?;
            let info = client.get_connection_info().clone();
            addrs.push(address_of(&info)?);
            template.get_or_insert(info);
        }
        let template = template.ok_or_else(|| cluster_error("no seed node given"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                template,
                seeds: addrs,
                timeout,
                nodes: Mutex::default(),
                map: RwLock::default(),
                first_map: tokio::sync::Mutex::const_new(()),
                first_map_failed: Mutex::default(),
                wanted: AtomicBool::new(false),
                wake: Arc::new(tokio::sync::Notify::new()),
                watching: AtomicBool::new(false),
                next_master: AtomicUsize::new(0),
            }),
        })
    }

    /// Whether commands for `key` go to a master believed to answer: false while its
    /// slot's master is down (failed and not reached since) or no master serves the slot.
    /// True before the first map is read (the first command will tell).
    pub fn serves(&self, key: &[u8]) -> bool {
        let Some(map) = self.shared.current_map() else {
            return !self.shared.first_map_failed();
        };
        map.master_of(slot_of_key(key))
            .is_some_and(|node| !node.is_down())
    }

    /// How many of the 16 384 slots have no master believed to answer (before the
    /// first map is read: none, or all of them once reading it failed).
    pub fn unserved_slots(&self) -> usize {
        let Some(map) = self.shared.current_map() else {
            return if self.shared.first_map_failed() {
                SLOTS
            } else {
                0
            };
        };
        let down: Vec<bool> = map.masters.iter().map(|node| node.is_down()).collect();
        map.owner
            .iter()
            .filter(|owner| **owner == NONE || down[usize::from(**owner)])
            .count()
    }

    /// `cmd` on every master (the map read first if need be): each one's answer, or
    /// the first error (a master that is down is one).
    pub async fn on_every_master(&self, cmd: &Cmd) -> RedisResult<Vec<Value>> {
        let map = self.shared.map().await?;
        let mut answers = Vec::with_capacity(map.masters.len());
        for node in &map.masters {
            let mut conn = self.shared.connection(node).await?;
            match conn.req_packed_command(cmd).await {
                Ok(Value::ServerError(err)) => return Err(err.into()),
                Ok(answer) => answers.push(answer),
                Err(err) => return Err(self.shared.failed(node, err)),
            }
        }
        Ok(answers)
    }

    async fn route(&self, work: Work<'_>) -> RedisResult<Answer> {
        let shared = &self.shared;
        shared.watch();
        let map = shared.map().await?;
        let slot = work.slot();
        let mut node = match slot {
            Some(slot) => map
                .master_of(slot)
                .cloned()
                .ok_or_else(|| cluster_error(format!("no master serves slot {slot}")))?,
            None => shared.any_master(&map)?,
        };
        let mut asking = false;
        let mut looked_again = false;
        let mut redirects = 0;
        loop {
            // A node already known to be down fails at once; one that fails now (the
            // first request to find it gone) has this request read the map again, and
            // is retried where the map says its slot went (a replica that took over
            // while no request came). Other requests never wait for that read.
            let (was_down, conn) = match node.ready() {
                Some(Ok(conn)) => (false, Ok(conn)),
                Some(Err(err)) => (true, Err(err)),
                None => (false, shared.connection(&node).await),
            };
            if was_down {
                shared.want_map();
            }
            let sent = match conn {
                Ok(mut conn) => work.send(&mut conn, asking).await,
                Err(err) => Err(err),
            };
            let answer = match sent {
                Ok(answer) => answer,
                Err(err) => {
                    if err.is_cluster_error() {
                        shared.want_map();
                    }
                    let err = shared.failed(&node, err);
                    if was_down || looked_again || !connection_lost(&err) {
                        return Err(err);
                    }
                    looked_again = true;
                    let Ok(map) = shared.read_map().await else {
                        return Err(err);
                    };
                    let next = match slot {
                        Some(slot) => map.master_of(slot).cloned(),
                        None => shared.any_master(&map).ok(),
                    };
                    match next {
                        Some(next) if !Arc::ptr_eq(&next, &node) && !next.is_down() => {
                            node = next;
                            asking = false;
                            continue;
                        }
                        _ => return Err(err),
                    }
                }
            };
            let Some((kind, target, moved_slot)) = answer.redirect() else {
                if answer.has_cluster_error() {
                    shared.want_map();
                }
                return Ok(answer);
            };
            // A transaction's commands were refused while queued: nothing ran.
            if redirects == REDIRECTS || work.is_transaction() {
                shared.want_map();
                return Ok(answer);
            }
            redirects += 1;
            node = shared.node(&target)?;
            asking = kind == ServerErrorKind::Ask;
            if kind == ServerErrorKind::Moved {
                shared.moved(moved_slot, &node);
            }
        }
    }

    /// One command, routed by its key.
    pub async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self.route(Work::Command(cmd)).await? {
            Answer::One(value) => Ok(value),
            Answer::Many(_) => unreachable!("a command has one answer"),
        }
    }

    /// A pipeline, routed by its first key (every key of a pipeline must share a slot,
    /// as on a single node's `MULTI`).
    pub async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self.route(Work::Pipeline(pipeline, offset, count)).await? {
            Answer::Many(values) => Ok(values),
            Answer::One(value) => Ok(vec![value]),
        }
    }
}

impl Work<'_> {
    fn slot(&self) -> Option<u16> {
        match self {
            Self::Command(cmd) => first_key(cmd).map(slot_of_key),
            Self::Pipeline(pipeline, ..) => {
                pipeline.cmd_iter().find_map(first_key).map(slot_of_key)
            }
        }
    }

    fn is_transaction(&self) -> bool {
        matches!(self, Self::Pipeline(pipeline, ..) if pipeline.is_transaction())
    }

    async fn send(&self, conn: &mut MultiplexedConnection, asking: bool) -> RedisResult<Answer> {
        match (self, asking) {
            (Self::Command(cmd), false) => conn.req_packed_command(cmd).await.map(Answer::One),
            (Self::Command(cmd), true) => {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING").add_command((*cmd).clone());
                let mut answers = conn.req_packed_commands(&pipe, 1, 1).await?;
                Ok(Answer::One(answers.pop().unwrap_or(Value::Nil)))
            }
            (Self::Pipeline(pipeline, offset, count), false) => conn
                .req_packed_commands(pipeline, *offset, *count)
                .await
                .map(Answer::Many),
            (Self::Pipeline(pipeline, offset, count), true) => {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING");
                for cmd in pipeline.cmd_iter() {
                    pipe.add_command(cmd.clone());
                }
                conn.req_packed_commands(&pipe, offset + 1, *count)
                    .await
                    .map(Answer::Many)
            }
        }
    }
}

impl Answer {
    fn errors(&self) -> impl Iterator<Item = &redis::ServerError> {
        let values: &[Value] = match self {
            Self::One(value) => std::slice::from_ref(value),
            Self::Many(values) => values,
        };
        values.iter().filter_map(|value| match value {
            Value::ServerError(err) => Some(err),
            _ => None,
        })
    }

    /// The first `MOVED` or `ASK` among the answers: its kind, node and slot.
    fn redirect(&self) -> Option<(ServerErrorKind, String, u16)> {
        self.errors().find_map(|err| {
            let kind = err.kind()?;
            if !matches!(kind, ServerErrorKind::Moved | ServerErrorKind::Ask) {
                return None;
            }
            let (slot, addr) = err.details()?.split_once(' ')?;
            Some((kind, addr.trim().to_owned(), slot.parse().ok()?))
        })
    }

    fn has_cluster_error(&self) -> bool {
        self.errors().any(|err| {
            matches!(
                err.kind(),
                Some(
                    ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ExecAbort
                )
            )
        })
    }
}

/// The first key `cmd` names, where Redis Cluster routes it; `None` for commands
/// without one (they go to any master). Keys are the first argument except where the
/// command's syntax puts them elsewhere.
fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    // The name upper-cased on the stack (every command passes here); longer names than
    // any listed below take their first argument.
    let name = args.next()?;
    let mut upper = [0_u8; 12];
    let upper = match upper.get_mut(..name.len()) {
        Some(upper) => {
            upper.copy_from_slice(name);
            upper.make_ascii_uppercase();
            &*upper
        }
        None => return args.next(),
    };
    match upper {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let _script = args.next()?;
            let keys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
            if keys == 0 { None } else { args.next() }
        }
        b"XREAD" | b"XREADGROUP" => {
            let mut args = args.skip_while(|arg| !arg.eq_ignore_ascii_case(b"STREAMS"));
            args.next()?;
            args.next()
        }
        b"PING" | b"ECHO" | b"INFO" | b"TIME" | b"WAIT" | b"WAITAOF" | b"ASKING" | b"MULTI"
        | b"EXEC" | b"DISCARD" | b"SCRIPT" | b"FUNCTION" | b"CLUSTER" | b"CLIENT" | b"CONFIG"
        | b"COMMAND" | b"DBSIZE" | b"HELLO" | b"AUTH" | b"SELECT" | b"READONLY" | b"READWRITE"
        | b"ROLE" | b"LASTSAVE" | b"MEMORY" | b"SLOWLOG" | b"LATENCY" | b"PUBLISH"
        | b"SUBSCRIBE" | b"PSUBSCRIBE" | b"RANDOMKEY" | b"SCAN" | b"KEYS" | b"FLUSHALL"
        | b"FLUSHDB" => None,
        _ => args.next(),
    }
}

/// `host:port` of a connection's address, as Redis Cluster names its nodes.
fn address_of(info: &ConnectionInfo) -> RedisResult<String> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => Ok(format!("{host}:{port}")),
        #[allow(unreachable_patterns)]
        _ => Err(cluster_error("Redis Cluster nodes are reached over TCP")),
    }
}

impl Node {
    fn is_down(&self) -> bool {
        matches!(*lock(&self.state), NodeState::Down(_))
    }

    fn mark_down(&self, err: &RedisError) {
        let mut state = lock(&self.state);
        if !matches!(*state, NodeState::Down(_)) {
            tracing::warn!(
                node = %self.addr,
                error = %err,
                "Redis Cluster node unreachable: commands for its slots fail at once until it \
                 answers again or a replica takes its slots over"
            );
        }
        *state = NodeState::Down(err.to_string());
    }

    /// A connection, made now if there is none; a node that is down fails at once.
    async fn connection(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        if let Some(answer) = self.ready() {
            return answer;
        }
        let _connecting = self.connecting.lock().await;
        if let Some(answer) = self.ready() {
            return answer;
        }
        self.connect(config).await
    }

    fn ready(&self) -> Option<RedisResult<MultiplexedConnection>> {
        match &*lock(&self.state) {
            NodeState::Up(conn) => Some(Ok(conn.clone())),
            NodeState::Down(why) => Some(Err(RedisError::from((
                ErrorKind::Io,
                "Redis Cluster node down",
                format!("{}: {why}", self.addr),
            )))),
            NodeState::Idle => None,
        }
    }

    async fn connect(&self, config: &AsyncConnectionConfig) -> RedisResult<MultiplexedConnection> {
        match self
            .client
            .get_multiplexed_async_connection_with_config(config)
            .await
        {
            Ok(conn) => {
                let mut state = lock(&self.state);
                if matches!(*state, NodeState::Down(_)) {
                    tracing::info!(node = %self.addr, "Redis Cluster node reachable again");
                }
                *state = NodeState::Up(conn.clone());
                Ok(conn)
            }
            Err(err) => {
                self.mark_down(&err);
                Err(err)
            }
        }
    }

    /// Reached again by the background task: a new connection that answers `PING`.
    async fn revive(&self, config: &AsyncConnectionConfig) {
        let _connecting = self.connecting.lock().await;
        if !self.is_down() {
            return;
        }
        let Ok(mut conn) = self
            .client
            .get_multiplexed_async_connection_with_config(config)
            .await
        else {
            return;
        };
        if redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
        {
            tracing::info!(node = %self.addr, "Redis Cluster node reachable again");
            *lock(&self.state) = NodeState::Up(conn);
        }
    }
}

impl Shared {
    fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    /// Whether the first map could not be read the last time it was tried.
    fn first_map_failed(&self) -> bool {
        lock(&self.first_map_failed).is_some()
    }

    fn current_map(&self) -> Option<Arc<SlotMap>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node at `addr` (`host:port`), one per address for the life of the cluster
    /// connection (nodes no map names any more are dropped by the background task).
    fn node(&self, addr: &str) -> RedisResult<Arc<Node>> {
        let mut nodes = lock(&self.nodes);
        if let Some(node) = nodes.get(addr) {
            return Ok(node.clone());
        }
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| cluster_error(format!("a node address without a port: {addr}")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let info = self
            .template
            .clone()
            .set_addr(ConnectionAddr::Tcp(host, port));
        let node = Arc::new(Node {
            addr: addr.to_owned(),
            client: redis::Client::open(info)?,
            state: Mutex::new(NodeState::Idle),
            connecting: tokio::sync::Mutex::const_new(()),
        });
        nodes.insert(addr.to_owned(), node.clone());
        Ok(node)
    }

    async fn connection(&self, node: &Node) -> RedisResult<MultiplexedConnection> {
        let answer = node.connection(&self.config()).await;
        if answer.is_err() {
            self.want_map();
        }
        answer
    }

    /// Records a failed request: a lost connection marks its node down and asks for the
    /// map (a replica may be taking over). Returns the error.
    fn failed(&self, node: &Node, err: RedisError) -> RedisError {
        if connection_lost(&err) {
            node.mark_down(&err);
            self.want_map();
        }
        err
    }

    /// Asks the background task to re-read the map (once however many ask).
    fn want_map(&self) {
        if !self.wanted.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn any_master(&self, map: &SlotMap) -> RedisResult<Arc<Node>> {
        let start = self.next_master.fetch_add(1, Ordering::Relaxed);
        (0..map.masters.len())
            .map(|i| &map.masters[(start + i) % map.masters.len()])
            .find(|node| !node.is_down())
            .cloned()
            .ok_or_else(|| cluster_error("no master answers"))
    }

    /// `MOVED`: the slot is served by `node` now.
    fn moved(&self, slot: u16, node: &Arc<Node>) {
        let mut guard = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = guard.as_ref() else { return };
        let mut masters = map.masters.clone();
        let index = match masters.iter().position(|m| Arc::ptr_eq(m, node)) {
            Some(index) => index,
            None => {
                masters.push(node.clone());
                masters.len() - 1
            }
        };
        let mut owner = map.owner.clone();
        owner[usize::from(slot)] = u16::try_from(index).unwrap_or(NONE);
        *guard = Some(Arc::new(SlotMap {
            owner,
            masters,
            known: map.known.clone(),
        }));
        drop(guard);
        self.want_map();
    }

    /// The map, read from the seeds first if there is none yet. While that keeps
    /// failing, requests fail at once (the background task keeps trying).
    async fn map(&self) -> RedisResult<Arc<SlotMap>> {
        if let Some(map) = self.current_map() {
            return Ok(map);
        }
        let _reading = self.first_map.lock().await;
        if let Some(map) = self.current_map() {
            return Ok(map);
        }
        if lock(&self.first_map_failed).is_some_and(|at| at.elapsed() < EAGER) {
            return Err(cluster_error("no seed node answers"));
        }
        match self.read_map().await {
            Ok(map) => Ok(map),
            Err(err) => {
                *lock(&self.first_map_failed) = Some(Instant::now());
                self.want_map();
                Err(err)
            }
        }
    }

    /// Reads `CLUSTER SLOTS` from the first node that answers (masters first, then the
    /// other nodes named, then the seeds) and makes it the map.
    async fn read_map(&self) -> RedisResult<Arc<SlotMap>> {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(map) = self.current_map() {
            candidates.extend(map.masters.iter().map(|node| node.addr.clone()));
            candidates.extend(map.known.iter().cloned());
        }
        candidates.extend(self.seeds.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|addr| seen.insert(addr.clone()));
        let mut last_error = cluster_error("no node to read the slot map from");
        for addr in candidates {
            let node = self.node(&addr)?;
            let mut conn = match node.connection(&self.config()).await {
                Ok(conn) => conn,
                Err(err) => {
                    last_error = err;
                    continue;
                }
            };
            let answer = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async::<Value>(&mut conn)
                .await;
            match answer.and_then(|slots| self.parse_slots(&addr, slots)) {
                Ok(map) => {
                    let map = Arc::new(map);
                    let changed = self.current_map().is_none_or(|old| {
                        old.owner != map.owner
                            || old
                                .masters
                                .iter()
                                .map(|n| &n.addr)
                                .ne(map.masters.iter().map(|n| &n.addr))
                    });
                    if changed {
                        tracing::info!(
                            from = %addr,
                            masters = map.masters.len(),
                            "Redis Cluster slot map read"
                        );
                    }
                    *self.map.write().unwrap_or_else(PoisonError::into_inner) = Some(map.clone());
                    *lock(&self.first_map_failed) = None;
                    return Ok(map);
                }
                Err(err) => {
                    self.failed(&node, err.clone());
                    last_error = err;
                }
            }
        }
        Err(last_error)
    }

    /// A map from a `CLUSTER SLOTS` answer given by the node at `from` (an empty host
    /// means that node's own).
    fn parse_slots(&self, from: &str, answer: Value) -> RedisResult<SlotMap> {
        let from_host = from.rsplit_once(':').map_or(from, |(host, _)| host);
        let address = |node: &Value| -> Option<String> {
            let Value::Array(fields) = node else {
                return None;
            };
            let host = match fields.first()? {
                Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
                Value::SimpleString(text) => text.clone(),
                _ => return None,
            };
            let Value::Int(port) = fields.get(1)? else {
                return None;
            };
            let host = if host.is_empty() || host == "?" {
                from_host.to_owned()
            } else {
                host
            };
            Some(format!("{host}:{port}"))
        };
        let Value::Array(ranges) = answer else {
            return Err(cluster_error("CLUSTER SLOTS did not answer a list"));
        };
        let mut owner = vec![NONE; SLOTS];
        let mut masters: Vec<Arc<Node>> = Vec::new();
        let mut known: Vec<String> = Vec::new();
        for range in ranges {
            let Value::Array(fields) = range else {
                continue;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(master)) = (
                fields.first(),
                fields.get(1),
                fields.get(2).and_then(address),
            ) else {
                continue;
            };
            for replica in fields.iter().skip(3).filter_map(address) {
                if !known.contains(&replica) {
                    known.push(replica);
                }
            }
            let index = match masters.iter().position(|node| node.addr == master) {
                Some(index) => index,
                None => {
                    masters.push(self.node(&master)?);
                    masters.len() - 1
                }
            };
            let index = u16::try_from(index).unwrap_or(NONE);
            let start = usize::try_from(*start).unwrap_or(SLOTS);
            let end = usize::try_from(*end).unwrap_or(0);
            if let Some(range) = owner.get_mut(start..=end.min(SLOTS - 1)) {
                range.fill(index);
            }
        }
        if masters.is_empty() {
            return Err(cluster_error("CLUSTER SLOTS named no master"));
        }
        Ok(SlotMap {
            owner,
            masters,
            known,
        })
    }

    /// Starts the background task once (it needs a runtime, hence not at open).
    fn watch(self: &Arc<Self>) {
        // A plain load first: every request passes here, the swap happens once.
        if self.watching.load(Ordering::Relaxed) || self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::downgrade(self);
        tokio::spawn(watch(shared));
    }

    /// Drops nodes the map names no more (a replaced master, once it is gone for good)
    /// unless they are seeds.
    fn forget_unnamed(&self, map: &SlotMap) {
        let mut nodes = lock(&self.nodes);
        nodes.retain(|addr, _| {
            self.seeds.contains(addr)
                || map.known.contains(addr)
                || map.masters.iter().any(|node| &node.addr == addr)
        });
    }
}

/// The background task: reaches nodes that are down again and re-reads the map when it
/// is wanted, every 200 ms while anything is amiss and every 10 s otherwise. Ends when
/// the last clone of the cluster connection is dropped.
async fn watch(shared: Weak<Shared>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let troubled = strong.wanted.load(Ordering::Acquire)
            || lock(&strong.nodes).values().any(|node| node.is_down());
        let pause = if troubled { EAGER } else { CALM };
        let wake = strong.wake.clone();
        drop(strong);
        let woken = tokio::time::timeout(pause, wake.notified()).await.is_ok();
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if woken {
            // One look per pause however many requests fail meanwhile (a promotion
            // takes the cluster's node timeout, a second or more, anyway).
            tokio::time::sleep(EAGER).await;
        }
        let down: Vec<Arc<Node>> = lock(&shared.nodes)
            .values()
            .filter(|node| node.is_down())
            .cloned()
            .collect();
        let config = shared.config();
        futures_util::future::join_all(down.iter().map(|node| node.revive(&config))).await;
        shared.wanted.store(false, Ordering::Release);
        if let Ok(map) = shared.read_map().await {
            shared.forget_unnamed(&map);
        } else {
            shared.wanted.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag_as_redis_computes_them() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot_of_key(b"123456789"), 12_739);
        assert_eq!(slot_of_key(b"foo"), 12_182);
        assert_eq!(
            slot_of_key(b"{user1000}.following"),
            slot_of_key(b"user1000")
        );
        // An empty tag counts for nothing: the whole key is hashed.
        assert_ne!(slot_of_key(b"foo{}{bar}"), slot_of_key(b"bar"));
        assert_eq!(slot_of_key(b"foo{{bar}}zap"), slot_of_key(b"{bar"));
    }

    #[test]
    fn keys_are_found_where_each_command_puts_them() {
        let key = |cmd: &Cmd| first_key(cmd).map(|k| String::from_utf8_lossy(k).into_owned());
        let mut eval = redis::cmd("EVALSHA");
        eval.arg("abc").arg(1).arg("rl:{key:1}").arg(100);
        assert_eq!(key(&eval).as_deref(), Some("rl:{key:1}"));
        let mut keyless_eval = redis::cmd("EVAL");
        keyless_eval.arg("return 1").arg(0);
        assert_eq!(key(&keyless_eval), None);
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("drain")
            .arg("me")
            .arg("COUNT")
            .arg(100);
        read.arg("STREAMS").arg("spool:{s3}").arg(">");
        assert_eq!(key(&read).as_deref(), Some("spool:{s3}"));
        let mut get = redis::cmd("get");
        get.arg("session:abc");
        assert_eq!(key(&get).as_deref(), Some("session:abc"));
        assert_eq!(key(&redis::cmd("PING")), None);
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(1000);
        assert_eq!(key(&wait), None);
    }

    #[tokio::test]
    async fn without_an_answering_seed_requests_fail_within_the_bound_and_then_at_once() {
        let cluster = Cluster::open(
            &["redis://127.0.0.1:1", "redis://127.0.0.1:2"],
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(
            cluster.serves(b"anything"),
            "not known to be down before asking"
        );
        assert_eq!(cluster.unserved_slots(), 0);
        let started = Instant::now();
        assert!(cluster.command(&redis::cmd("PING")).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
        // Within the pause after a failed first read, nothing is tried again.
        let again = Instant::now();
        let err = cluster.command(&redis::cmd("PING")).await.unwrap_err();
        assert!(again.elapsed() < Duration::from_millis(50), "{err}");
        assert!(!cluster.serves(b"anything"));
        assert_eq!(cluster.unserved_slots(), SLOTS);
    }
}
