//! A PgBouncer of the test's own (Debian's `pgbouncer`) in transaction pooling mode in
//! front of the tests' PostgreSQL: few server connections for many clients, so
//! consecutive transactions of one client land on different server connections.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use uuid::Uuid;

use crate::free_port;

/// Server connections per database: far fewer than a gateway's pool, so clients share
/// them transaction by transaction.
pub const SERVER_CONNECTIONS: usize = 4;

/// How PgBouncer hands out server connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// One server connection per client transaction, [`SERVER_CONNECTIONS`] of them,
    /// handed from client to client with no reset query between them (what one client
    /// prepared stays on the server for the next).
    Transaction,
    /// One server connection per client for as long as it stays connected; the startup
    /// parameters sqlx sends are accepted and ignored, as operators configure it.
    Session,
}

/// A running `pgbouncer`; stopped and its folder removed when dropped.
pub struct PgBouncer {
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl PgBouncer {
    /// Starts one in front of the server of `admin_url` (`postgres://USER@HOST:PORT/…`),
    /// or `None` (skip) outside CI when `pgbouncer` is not installed; under CI that is
    /// a failure.
    pub async fn start(admin_url: &str, mode: PoolMode) -> Option<Self> {
        if Command::new("pgbouncer").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "pgbouncer is required under CI"
            );
            eprintln!("skipping: pgbouncer is not installed");
            return None;
        }
        let after_scheme = admin_url.split_once("://").map_or(admin_url, |(_, r)| r);
        let (user, server) = after_scheme
            .split_once('@')
            .unwrap_or(("postgres", after_scheme));
        let server = server.split('/').next().unwrap_or("127.0.0.1:5432");
        let (host, port) = server.rsplit_once(':').unwrap_or((server, "5432"));
        let dir = std::env::temp_dir().join(format!("ciq-pgbouncer-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let listen = free_port();
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\n\
                 max_client_conn = 1000\nserver_reset_query = DISCARD ALL\n{mode}\
                 logfile = {log}\n",
                mode = match mode {
                    // No reset query between clients: the gateway names nothing a later
                    // client could collide with (ciq_store::db), and the tests hold it so.
                    PoolMode::Transaction => format!(
                        "pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\n"
                    ),
                    PoolMode::Session => "pool_mode = session\ndefault_pool_size = 64\n\
                         ignore_startup_parameters = extra_float_digits,options\n"
                        .to_owned(),
                },
                users = dir.join("users.txt").display(),
                log = dir.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).unwrap();
        // PgBouncer will not run as root.
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let mut command = Command::new("pgbouncer");
        if as_root {
            use std::os::unix::process::CommandExt;
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            };
            let chowned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(chowned.success());
            // Exec'd as postgres itself (no runuser in between), so killing the child
            // stops pgbouncer.
            command.uid(id("-u")).gid(id("-g"));
        }
        let child = command
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let bouncer = Self {
            port: listen,
            child,
            dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok() {
                return Some(bouncer);
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("pgbouncer did not start on port {listen}");
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
