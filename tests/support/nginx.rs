//! Debian's nginx as the load balancer of `docker-compose.yml`.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::free_port;

/// Debian's nginx in front of gateway instances, as in `docker-compose.yml`
/// (`deploy/nginx.conf`), on a free port. Stopped when dropped.
pub struct LoadBalancer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl LoadBalancer {
    /// Starts nginx proxying to `upstreams` (`http://host:port` each), or `None`
    /// (skip) when nginx is not installed outside CI.
    pub async fn start(upstreams: &[&str]) -> Option<Self> {
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
        // The same proxy settings as deploy/nginx.conf, with local addresses.
        let shipped = include_str!("../../deploy/nginx.conf");
        let location = &shipped[shipped.find("location / {").expect("a location")..];
        let location = &location[..location.find("\n        }").expect("its end") + 10];
        let conf = format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
             events {{}}\nhttp {{\n    log_format upstream '$upstream_addr $status';\n    \
             access_log {dir}/logs/access.log upstream;\n    client_body_temp_path {dir}/body;\n    \
             proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    \
             uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n    \
             upstream gateways {{\n{servers}        keepalive 64;\n    }}\n    \
             server {{\n        listen 127.0.0.1:{port};\n        client_max_body_size 1m;\n        {location}\n    }}\n}}\n",
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
