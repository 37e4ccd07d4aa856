//! A Redis Cluster of the test's own: six `redis-server` processes in cluster mode
//! (three masters, three replicas) on free ports, joined with
//! `redis-cli --cluster create`, stopped and removed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node's line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it is a master now.
    pub master: bool,
    /// Whether the cluster considers it failed.
    pub failed: bool,
    /// The slot ranges it serves (masters only).
    pub slots: Vec<(u16, u16)>,
}

/// The running cluster.
pub struct RedisCluster {
    /// The nodes' ports, masters first as created.
    pub ports: Vec<u16>,
    children: Vec<(u16, Child)>,
    dir: std::path::PathBuf,
}

/// A port whose cluster-bus port (port + 10 000) is free and below 65 536 as well.
fn free_node_port(taken: &[u16]) -> u16 {
    loop {
        let port = crate::free_port();
        if port > 55_000 || taken.contains(&port) || taken.contains(&(port + 10_000)) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts and joins six nodes, or `None` (skip) outside CI when `redis-server` is
    /// not installed; under CI that is a failure.
    pub async fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required under CI"
            );
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        // A port found free may be taken by a parallel test before its node binds it:
        // such a start is given up and made again on other ports.
        let mut attempt = 0;
        let (cluster, ports) = loop {
            attempt += 1;
            let dir = std::env::temp_dir().join(format!("ciq-cluster-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut ports = Vec::new();
            for _ in 0..6 {
                let port = free_node_port(&ports);
                ports.push(port);
            }
            let mut cluster = Self {
                ports: ports.clone(),
                children: Vec::new(),
                dir,
            };
            for port in ports.clone() {
                cluster.spawn_node(port);
            }
            let mut started = true;
            for port in &ports {
                started &= wait_for_port(*port).await;
            }
            if started {
                break (cluster, ports);
            }
            assert!(
                attempt < 3,
                "redis-server did not start on {ports:?}, three times"
            );
            drop(cluster);
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_healthy(Duration::from_secs(30)).await;
        Some(cluster)
    }

    fn spawn_node(&mut self, port: u16) {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            // A dead master is noticed after a second and its replica takes over.
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.children.push((port, child));
    }

    /// The seed nodes as `REDIS_URL` takes them: every node, comma-separated.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `CLUSTER NODES` as a node that is still alive sees it.
    pub fn nodes(&self) -> Vec<Node> {
        for (port, _) in &self.children {
            if let Some(text) = cli(*port, &["cluster", "nodes"]) {
                return parse_nodes(&text);
            }
        }
        panic!("no cluster node answers");
    }

    /// The ports of the masters now.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes()
            .iter()
            .filter(|n| n.master)
            .map(|n| n.port)
            .collect()
    }

    /// The port of the master serving `slot` now (waiting up to 10 s while the node
    /// asked has not yet heard of a failover's new master).
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(port) = self.serving_master(slot) {
                return port;
            }
            assert!(Instant::now() < deadline, "no master serves slot {slot}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port of the master serving `slot` now, if one does (none while a failover
    /// is under way).
    pub fn serving_master(&self, slot: u16) -> Option<u16> {
        self.nodes()
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .map(|n| n.port)
    }

    /// The port of the master serving the key whose hash tag is `tag`.
    pub fn master_of_tag(&self, tag: &str) -> u16 {
        self.master_of_slot(slot_of(tag))
    }

    /// Kills the node on `port` (SIGKILL, as a crash would).
    pub fn kill(&mut self, port: u16) {
        if let Some(i) = self.children.iter().position(|(p, _)| *p == port) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts moving `slot` from its master to the master on `to` as resharding does:
    /// the slot is marked migrating/importing and its keys are migrated, but the slot
    /// still belongs to its old master (clients now get `ASK` for it).
    pub fn begin_moving_slot(&self, slot: u16, to: u16) {
        let from = self.master_of_slot(slot);
        let (from_id, to_id) = (node_id(from), node_id(to));
        let named = slot.to_string();
        ok(to, &["cluster", "setslot", &named, "importing", &from_id]);
        ok(from, &["cluster", "setslot", &named, "migrating", &to_id]);
        for key in self.keys_in_slot(from, slot) {
            ok(
                from,
                &["migrate", "127.0.0.1", &to.to_string(), &key, "0", "5000"],
            );
        }
    }

    /// The keys of `slot` that the node on `port` holds.
    pub fn keys_in_slot(&self, port: u16, slot: u16) -> Vec<String> {
        cli(
            port,
            &["cluster", "getkeysinslot", &slot.to_string(), "1000"],
        )
        .unwrap()
        .lines()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect()
    }

    /// Finishes [`RedisCluster::begin_moving_slot`]: every master is told the slot is
    /// `to`'s now (clients with the old map get `MOVED`).
    pub fn finish_moving_slot(&self, slot: u16, to: u16) {
        let to_id = node_id(to);
        for node in self.nodes().iter().filter(|n| n.master && !n.failed) {
            ok(
                node.port,
                &["cluster", "setslot", &slot.to_string(), "node", &to_id],
            );
        }
    }

    /// The ports of `master`'s replicas.
    pub fn replicas_of(&self, master: u16) -> Vec<u16> {
        cli(master, &["cluster", "replicas", &node_id(master)])
            .unwrap_or_default()
            .lines()
            .filter_map(|line| node_port(line.split_whitespace().nth(1)?))
            .collect()
    }

    /// Whether a replica of `master` holds `key` yet (replication is asynchronous).
    pub fn replica_has(&self, master: u16, key: &str) -> bool {
        self.replicas_of(master)
            .into_iter()
            .any(|port| replica_exists(port, key))
    }

    /// Holds back (`true`) or allows the automatic failover of the replicas on
    /// `replicas` (`cluster-replica-no-failover`): a dead master's failover window then
    /// lasts until it is allowed again, as long as a test needs it.
    pub fn hold_failover(&self, replicas: &[u16], hold: bool) {
        let value = if hold { "yes" } else { "no" };
        self.config_set(replicas, "cluster-replica-no-failover", value);
    }

    /// `CONFIG SET name value` on the nodes on `ports`.
    pub fn config_set(&self, ports: &[u16], name: &str, value: &str) {
        for port in ports {
            ok(*port, &["config", "set", name, value]);
        }
    }

    /// Whether the cluster (as a live node sees it) has flagged the node on `port` as
    /// failed: the failover window's second part, when its replica may be elected.
    pub fn flagged_failed(&self, port: u16) -> bool {
        self.nodes().iter().any(|n| n.port == port && n.failed)
    }

    /// Waits until every node says `cluster_state:ok`, every slot has a live master and
    /// every live replica is in sync with its master.
    pub async fn wait_until_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ok = self.children.iter().all(|(port, _)| {
                cli(*port, &["cluster", "info"]).is_some_and(|t| t.contains("cluster_state:ok"))
            }) && self.children.iter().all(|(port, _)| {
                cli(*port, &["info", "replication"]).is_some_and(|t| {
                    t.contains("role:master") || t.contains("master_link_status:up")
                })
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster is not healthy within {within:?}: {:?}",
                self.nodes()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster slot of a key whose hash tag is `tag`, as Redis computes it.
pub fn slot_of(tag: &str) -> u16 {
    ciq_redis::slot_of_key(tag.as_bytes())
}

/// The node id of the node on `port`.
fn node_id(port: u16) -> String {
    cli(port, &["cluster", "myid"]).unwrap().trim().to_owned()
}

/// Runs a command that must answer OK.
fn ok(port: u16, args: &[&str]) {
    let answer = cli(port, args).unwrap_or_default();
    assert_eq!(answer.trim(), "OK", "{args:?} on {port}");
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

/// `EXISTS key` on a replica, through a READONLY connection.
fn replica_exists(port: u16, key: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "READONLY\nEXISTS {key}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .is_some_and(|l| l.trim() == "1")
}

fn node_port(address: &str) -> Option<u16> {
    address.split('@').next()?.rsplit(':').next()?.parse().ok()
}

fn parse_nodes(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = node_port(fields.get(1)?)?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect();
            Some(Node {
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail") && !flags.contains("fail?"),
                slots,
            })
        })
        .collect()
}

/// Whether something listens on `port` within 10 s.
async fn wait_for_port(port: u16) -> bool {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
