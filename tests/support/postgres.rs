//! A private PostgreSQL cluster, to kill and restart under a running gateway, and
//! streaming replicas of it.

use std::path::PathBuf;

use uuid::Uuid;

use crate::free_port;

/// A PostgreSQL cluster of the test's own (Debian's binaries, run as `postgres`), on
/// a free port, to stop and start at will. Removed when dropped.
pub struct PrivatePostgres {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or `None` (skip) outside CI when the server
    /// binaries are not installed.
    pub async fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .max()
            });
        let Some(bin) = bin.filter(|b| b.join("pg_ctl").exists()) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL server binaries are required under CI"
            );
            eprintln!("skipping: no PostgreSQL server binaries");
            return None;
        };
        let pg = Self::empty(bin);
        pg.as_postgres(
            "initdb",
            &["--auth=trust", "--username=postgres", "-D"],
            true,
        );
        assert!(pg.restart(), "the private cluster starts");
        Some(pg)
    }

    /// A folder of its own (owned by `postgres`) and a free port, nothing in them yet.
    fn empty(bin: PathBuf) -> Self {
        let dir = std::env::temp_dir().join(format!("ciq-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success());
        Self {
            port: free_port(),
            dir,
            bin,
        }
    }

    /// A streaming replica of `primary` (a base backup taken with `pg_basebackup -R`,
    /// so it starts as a hot standby following it), started on a free port.
    pub fn replica_of(primary: &Self) -> Self {
        let replica = Self::empty(primary.bin.clone());
        let port = primary.port.to_string();
        assert!(
            replica.as_postgres(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "-D"
                ],
                true,
            ),
            "pg_basebackup of the primary"
        );
        assert!(replica.restart(), "the replica starts");
        replica
    }

    fn as_postgres(&self, tool: &str, args: &[&str], with_dir: bool) -> bool {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args);
        if with_dir {
            cmd.arg(self.dir.join("data"));
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn restart(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.as_postgres(
            "pg_ctl",
            &[
                "-w",
                "-o",
                &options,
                "-l",
                &format!("{}/log", self.dir.display()),
                "start",
                "-D",
            ],
            true,
        )
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) {
        self.as_postgres("pg_ctl", &["-m", "immediate", "-w", "stop", "-D"], true);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
