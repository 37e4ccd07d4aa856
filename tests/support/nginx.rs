//! Debian's nginx as the load balancer of `docker-compose.yml`: the shipped
//! `deploy/nginx/*.conf` locations, a public TLS listener (self-signed certificate
//! made by `openssl`) and the internal plain one.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::free_port;

/// Debian's nginx in front of gateway instances, as in `docker-compose.yml`
/// (`deploy/nginx/`), on free ports. Stopped when dropped.
pub struct LoadBalancer {
    /// The internal listener, every path: `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The public TLS listener: `https://127.0.0.1:PORT` (self-signed).
    pub public_url: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl LoadBalancer {
    /// Starts nginx proxying to `upstreams` (`http://host:port` each), or `None`
    /// (skip) when nginx is not installed outside CI.
    pub async fn start(upstreams: &[&str]) -> Option<Self> {
        Self::start_with_public_port(upstreams, free_port()).await
    }

    /// [`LoadBalancer::start`] with the public TLS listener on `tls_port`, chosen
    /// before the gateways start so that their `CIQ_PUBLIC_URL` can name it.
    pub async fn start_with_public_port(upstreams: &[&str], tls_port: u16) -> Option<Self> {
        if std::process::Command::new("nginx")
            .arg("-v")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx is required under CI"
            );
            eprintln!("skipping: nginx is not installed");
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ciq-nginx-{}", Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let servers: String = upstreams
            .iter()
            .map(|u| format!("        server {};\n", u.trim_start_matches("http://")))
            .collect();
        // The shipped locations, verbatim but for where they include each other from.
        for (name, text) in [
            (
                "public.conf",
                include_str!("../../deploy/nginx/public.conf"),
            ),
            (
                "internal.conf",
                include_str!("../../deploy/nginx/internal.conf"),
            ),
            ("proxy.conf", include_str!("../../deploy/nginx/proxy.conf")),
        ] {
            let text = text.replace("/etc/nginx/ciq/", &format!("{}/", dir.display()));
            std::fs::write(dir.join(name), text).expect("nginx include");
        }
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(made.success(), "openssl made a certificate");
        let conf = format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
             events {{}}\nhttp {{\n    log_format upstream '$upstream_addr $status';\n    \
             access_log {dir}/logs/access.log upstream;\n    client_body_temp_path {dir}/body;\n    \
             proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    \
             uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n    \
             upstream gateways {{\n{servers}        keepalive 64;\n    }}\n    \
             server {{\n        listen 127.0.0.1:{tls_port} ssl;\n        \
             ssl_certificate {dir}/cert.pem;\n        ssl_certificate_key {dir}/key.pem;\n        \
             include {dir}/public.conf;\n    }}\n    \
             server {{\n        listen 127.0.0.1:{port};\n        include {dir}/internal.conf;\n    }}\n}}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let mut child = std::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    base_url: format!("http://127.0.0.1:{port}"),
                    public_url: format!("https://127.0.0.1:{tls_port}"),
                    child,
                    dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
        );
    }
}

impl LoadBalancer {
    /// How many requests each upstream (`127.0.0.1:PORT`) answered, from nginx's
    /// access log.
    pub fn served_by(&self) -> std::collections::HashMap<String, usize> {
        let log = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        let mut counts = std::collections::HashMap::new();
        for line in log.lines() {
            if let Some(upstream) = line.split(' ').next() {
                *counts.entry(upstream.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for LoadBalancer {
    /// Stops nginx with SIGTERM, so its master stops its worker too (a SIGKILLed master
    /// leaves the worker running, orphaned); SIGKILL if it has not ended within 5 s.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
