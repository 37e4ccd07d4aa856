//! The gateway binary as a process of the test's own: started on a free port, found by
//! the address it logs, SIGKILLed when the test says (as a crash would) or when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A serving `ciq-gateway` process.
pub struct GatewayProcess {
    /// The process (kill it to crash the instance).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl GatewayProcess {
    /// Starts `bin` (a test's `env!("CARGO_BIN_EXE_ciq-gateway")`) serving
    /// `database_url` on a free port, with `env` added; returns once it logs its address.
    pub fn start(bin: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("CIQ_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut addr = None;
        for line in stderr.by_ref() {
            let line = line.expect("a log line");
            if let Some(rest) = line.split("API docs at http://").nth(1) {
                addr = rest.split("/docs").next().map(str::to_owned);
                break;
            }
        }
        // The log reader goes away here, as a crashed log shipper would: the server
        // must keep serving with its stderr a closed pipe.
        drop(stderr);
        let addr = addr.expect("serve logs its address");
        Self {
            child,
            base_url: format!("http://{addr}"),
        }
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
