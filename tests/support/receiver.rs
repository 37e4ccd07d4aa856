//! A webhook receiver on 127.0.0.1: it records every request and answers each path as
//! the test scripted it (status, headers, a delay), then 200.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::{Body, Endpoint, Request, Response};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
    /// The sender's address and port: one per connection it came on.
    pub peer: String,
}

impl Received {
    /// The headers as the `http` crate holds them (what Standard Webhooks libraries take).
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// A plain answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// This answer with a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// This answer after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    always: Mutex<HashMap<String, Reply>>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` from [`Receiver::start_tls`].
    pub base_url: String,
    /// The self-signed certificate an https receiver presents (its own authority).
    pub certificate: Option<rustls::pki_types::CertificateDer<'static>>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    front: Option<tokio::task::JoinHandle<()>>,
}

struct Recording(Arc<Shared>);

impl Endpoint for Recording {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let peer = req.remote_addr().to_string();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = req.take_body().into_string().await.unwrap_or_default();
        self.0.received.lock().unwrap().push(Received {
            path: path.clone(),
            headers,
            body,
            at: Instant::now(),
            peer,
        });
        let scripted = self
            .0
            .script
            .lock()
            .unwrap()
            .get_mut(&path)
            .and_then(VecDeque::pop_front);
        let reply = scripted
            .or_else(|| self.0.always.lock().unwrap().get(&path).cloned())
            .unwrap_or(Reply::status(200));
        tokio::time::sleep(reply.delay).await;
        let mut resp = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
        for (name, value) in reply.headers {
            resp = resp.header(name, value);
        }
        Ok(resp.body(Body::from_string(format!("answered {}", reply.status))))
    }
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let (port, server) = crate::serve_on_free_port(Recording(shared.clone())).await;
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            certificate: None,
            shared,
            server,
            front: None,
        }
    }

    /// Starts behind TLS: a self-signed certificate for `localhost` (made now), a TLS
    /// front on 127.0.0.1 that hands each decrypted connection to the plain receiver.
    pub async fn start_tls() -> Self {
        let mut receiver = Self::start().await;
        let plain = receiver.base_url.trim_start_matches("http://").to_owned();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let certificate = made.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        receiver.front = Some(tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, plain) = (acceptor.clone(), plain.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends here, as it should.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut inner = tokio::net::TcpStream::connect(plain).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                });
            }
        }));
        receiver.base_url = format!("https://localhost:{port}");
        receiver.certificate = Some(certificate);
        receiver
    }

    /// The URL of `path` here.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The next requests to `path` get `replies`, in order; then 200.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.shared
            .script
            .lock()
            .unwrap()
            .insert(path.to_owned(), replies.into());
    }

    /// Every request to `path` (after the scripted ones) gets `reply`.
    pub fn always(&self, path: &str, reply: Reply) {
        self.shared
            .always
            .lock()
            .unwrap()
            .insert(path.to_owned(), reply);
    }

    /// What `path` received so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (up to `within`) until `path` received at least `count` requests.
    pub async fn wait_for(&self, path: &str, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} received {} of {count} requests within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(front) = &self.front {
            front.abort();
        }
    }
}
