//! The gateway's connection to Redis, one node or a Redis Cluster, behind one type that
//! every user of Redis (limiter, sessions) takes.
//!
//! `REDIS_URL` names one node (`redis://host:6379`) or, separated by commas, the seed
//! nodes of a cluster. On a cluster each command goes to the master of its key's slot
//! over a connection of that master's own ([`cluster`]): a master that fails affects
//! its slots only, and keys on the others are served as before. Both connect lazily
//! and reconnect by themselves, so opening succeeds while Redis is down.

pub mod cluster;

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

pub use cluster::{Cluster, SLOTS, slot_of_key};

/// Which Redis a [`RedisLink`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One server (with or without replicas of its own).
    Single,
    /// A Redis Cluster: keys spread over several masters by slot.
    Cluster,
}

impl RedisMode {
    /// `single` or `cluster`, as readiness and the docs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Cluster => "cluster",
        }
    }
}

/// A connection to one Redis node or to a Redis Cluster; cheap to clone (clones share
/// the connections). Implements the redis crate's [`ConnectionLike`], so scripts,
/// commands and single-key pipelines run on it as on a plain connection.
#[derive(Clone)]
pub enum RedisLink {
    /// One node, through a connection manager that reconnects after failures.
    Single(ConnectionManager),
    /// A cluster: a multiplexed connection per node, commands routed by slot.
    Cluster(Cluster),
}

impl RedisLink {
    /// Opens `url` (one URL, or several comma-separated: a cluster's seed nodes). Each
    /// attempt to connect and each answer is given up on after `timeout`. Only a
    /// malformed URL is an error; an unreachable Redis is found by the first command.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, RedisError> {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .collect();
        if let [single] = nodes[..] {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let client = redis::Client::open(single)?;
            return Ok(Self::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?));
        }
        Ok(Self::Cluster(Cluster::open(&nodes, timeout)?))
    }

    /// One node or a cluster.
    pub fn mode(&self) -> RedisMode {
        match self {
            Self::Single(_) => RedisMode::Single,
            Self::Cluster(_) => RedisMode::Cluster,
        }
    }

    /// Whether Redis answers: one node, a `PING`; a cluster, a `PING` from every master
    /// the client knows and `cluster_state:ok` (every slot has a master) from a node.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let ping = redis::cmd("PING");
        match self {
            Self::Single(conn) => ping
                .query_async::<String>(&mut conn.clone())
                .await
                .map(drop),
            Self::Cluster(cluster) => {
                cluster.on_every_master(&ping).await?;
                let info: String = redis::from_redis_value(
                    cluster
                        .command(&redis::cmd("CLUSTER").arg("INFO").clone())
                        .await?,
                )?;
                if info.lines().any(|line| line.trim() == "cluster_state:ok") {
                    Ok(())
                } else {
                    Err(RedisError::from((
                        redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                        "the cluster has slots without a master",
                    )))
                }
            }
        }
    }

    /// How many of a cluster's 16 384 slots have no master believed to answer (0 on one
    /// node).
    pub fn unserved_slots(&self) -> usize {
        match self {
            Self::Single(_) => 0,
            Self::Cluster(cluster) => cluster.unserved_slots(),
        }
    }
}

impl RedisLink {
    /// `INFO section` of the node, or of every master of a cluster (one text per
    /// master): what a setting that must hold everywhere (the eviction policy) is read
    /// from. `INFO` answers where `CONFIG GET` is renamed away (managed services).
    pub async fn info_of_masters(&self, section: &str) -> Result<Vec<String>, RedisError> {
        let mut info = redis::cmd("INFO");
        info.arg(section);
        match self {
            Self::Single(conn) => Ok(vec![info.query_async(&mut conn.clone()).await?]),
            Self::Cluster(cluster) => cluster
                .on_every_master(&info)
                .await?
                .into_iter()
                .map(|answer| redis::from_redis_value(answer).map_err(RedisError::from))
                .collect(),
        }
    }
}

/// The value of `field` in an `INFO` text (`field:value` lines).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(cluster) => Box::pin(cluster.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => Box::pin(cluster.pipeline(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_url_is_a_node_several_are_a_clusters_seeds() {
        let timeout = Duration::from_millis(100);
        let one = RedisLink::open("redis://127.0.0.1:1", timeout).unwrap();
        assert_eq!(one.mode(), RedisMode::Single);
        let seeds = "redis://127.0.0.1:1, redis://127.0.0.1:2,";
        let cluster = RedisLink::open(seeds, timeout).unwrap();
        assert_eq!(cluster.mode(), RedisMode::Cluster);
        // Nothing listens there: opening succeeded, asking fails within the bound.
        let started = std::time::Instant::now();
        assert!(cluster.ping().await.is_err());
        assert!(one.ping().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused() {
        let timeout = Duration::from_millis(100);
        assert!(RedisLink::open("not a url", timeout).is_err());
        assert!(RedisLink::open("redis://127.0.0.1:1,not a url", timeout).is_err());
    }
}
