//! The command-line contract, run as scripts run it: the real binary, stdout
//! captured, on SQLite and (when reachable) PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ciq_e2e::{Backend, TestDatabase, reference_curl_body, reference_full_body};
use sea_orm::EntityTrait;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ciq-gateway");

fn cli(db: &TestDatabase, args: &[&str]) -> Output {
    cli_with(db, args, &[])
}

/// [`cli`] with extra environment.
fn cli_with(db: &TestDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// A webhook key for the tests' processes (PostgreSQL has none of its own), and the
/// switch that lets them send to the receiver on 127.0.0.1.
const WEBHOOK_ENV: [(&str, &str); 2] = [
    (
        "CIQ_WEBHOOK_SECRET_KEY",
        "q0hJ7TQjDq9rLr8cJYyq1rW3yXk3o1dQdJ8k5b7N3wE=",
    ),
    ("CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
];

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A `serve` process, SIGKILLed when dropped.
type Served = ciq_e2e::GatewayProcess;

/// Starts the binary with no subcommand (serve is the default) on a free port.
fn serve(db: &TestDatabase) -> Served {
    serve_with(db, &[])
}

/// [`serve`] with extra environment.
fn serve_with(db: &TestDatabase, env: &[(&str, &str)]) -> Served {
    ciq_e2e::GatewayProcess::start(BIN, &db.url, env)
}

async fn post(base_url: &str, key: &str, body: &Value) -> reqwest::Response {
    ciq_e2e::http_client()
        .post(format!("{base_url}/api/external/leads/create"))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn the_documented_workflow(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    assert!(cli(&db, &["migrate"]).status.success());

    let user_id = stdout_of(&cli(
        &db,
        &[
            "users",
            "create",
            "--email",
            "Owner@Acme.test",
            "--name",
            "Owner",
        ],
    ));
    let user_id = user_id.strip_suffix('\n').expect("one line");
    uuid::Uuid::parse_str(user_id).expect("stdout is the user id, alone");

    let key = stdout_of(&cli(
        &db,
        &[
            "keys",
            "create",
            "--user",
            "owner@acme.test",
            "--name",
            "CRM",
        ],
    ));
    assert_eq!(key.lines().count(), 1);
    let key = key.trim_end().to_owned();
    ciq_admin::key::parse(&key).expect("stdout is the key, alone");
    let by_id = stdout_of(&cli(
        &db,
        &["keys", "create", "--user", user_id, "--rate-limit", "5"],
    ));
    assert!(by_id.starts_with("ciq_"));

    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", user_id, "--json"],
    )))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let crm = listed.iter().find(|k| k["name"] == "CRM").unwrap();
    assert_eq!(crm["status"], "active");
    assert!(key.starts_with(crm["display_prefix"].as_str().unwrap()));
    let text = serde_json::to_string(listed).unwrap();
    assert!(!text.contains(&key[16..]), "the secret is listed");
    assert!(!text.contains("argon2"), "the hash is listed");
    let table = stdout_of(&cli(&db, &["keys", "list", "--user", "owner@acme.test"]));
    assert!(table.starts_with("ID"));
    assert!(table.contains("CRM"));

    let served = serve(&db);
    for body in [reference_full_body(), reference_curl_body()] {
        assert_eq!(post(&served.base_url, &key, &body).await.status(), 201);
    }

    // A revoke from the CLI reaches the running server within a second.
    let key_id = crm["id"].as_str().unwrap();
    let out = cli(&db, &["keys", "revoke", key_id]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let revoked_at = Instant::now();
    loop {
        let status = post(&served.base_url, &key, &reference_curl_body())
            .await
            .status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 201);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", user_id, "--json"],
    )))
    .unwrap();
    let crm = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "CRM")
        .unwrap();
    assert_eq!(crm["status"], "revoked");
}

async fn mistakes_fail_with_a_message_and_no_output(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    stdout_of(&cli(&db, &["users", "create", "--email", "a@acme.test"]));
    for args in [
        &["users", "create", "--email", "A@acme.test"][..],
        &["users", "create", "--email", "not-an-email"],
        &["keys", "create", "--user", "nobody@acme.test"],
        &[
            "keys",
            "create",
            "--user",
            "a@acme.test",
            "--rate-limit",
            "0",
        ],
        &[
            "keys",
            "create",
            "--user",
            "a@acme.test",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
        &["keys", "revoke", "01a2176c-955f-76b2-b590-aa4a776ea4de"],
        // A CA file that is missing, or holds no certificate, stops serve at start.
        &["serve", "--webhook-ca-file", "/nonexistent/ca.pem"],
        &["serve", "--webhook-ca-file", env!("CARGO_MANIFEST_PATH")],
        // A read replica must be PostgreSQL.
        &[
            "serve",
            "--database-read-url",
            "sqlite://replica.db?mode=rwc",
        ],
    ] {
        let out = cli(&db, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error: "), "{args:?}: {stderr}");
        if args[0] == "serve" {
            assert!(
                stderr.contains("CIQ_WEBHOOK_CA_FILE: ")
                    || stderr.contains("DATABASE_READ_URL must be a postgres:// URL"),
                "{stderr}"
            );
        }
    }
}

async fn rolling_and_passwords(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let user_id = stdout_of(&cli(&db, &["users", "create", "--email", "o@acme.test"]));
    let key = stdout_of(&cli(&db, &["keys", "create", "--user", "o@acme.test"]));
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "o@acme.test", "--json"],
    )))
    .unwrap();
    let key_id = listed[0]["id"].as_str().unwrap().to_owned();

    let rolled = stdout_of(&cli(&db, &["keys", "roll", &key_id, "--overlap", "3600"]));
    assert_eq!(rolled.lines().count(), 1);
    assert_ne!(rolled, key);
    ciq_admin::key::parse(rolled.trim_end()).expect("stdout is the new key, alone");
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "o@acme.test", "--json"],
    )))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let old = listed.iter().find(|k| k["id"] == key_id.as_str()).unwrap();
    assert_eq!(
        old["status"], "active",
        "the old key works during the overlap"
    );
    assert!(old["expires_at"].is_string());
    let out = cli(&db, &["keys", "roll", &key_id, "--overlap", "999999"]);
    assert_eq!(out.status.code(), Some(1));

    // The password comes from stdin, never the command line.
    let mut child = Command::new(BIN)
        .args(["users", "set-password", "--user", user_id.trim_end()])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let conn = ciq_gateway::database::connect(&db.url).await.unwrap();
    let user = ciq_admin::users::find_user(&conn, "o@acme.test")
        .await
        .unwrap();
    let hash = user.password_hash.expect("a password hash");
    assert!(hash.starts_with("$argon2id$"));
    assert!(ciq_admin::SecretHasher::default().verify("correct horse battery", &hash));
}

/// `users reset-link`: one line on stdout, the link under the public URL (or the
/// listen address), its token working until a newer link replaces it; a broken public
/// URL or an unknown user fails with a message and no output.
async fn a_reset_link_is_printed_alone_and_only_the_newest_works(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    stdout_of(&cli(&db, &["users", "create", "--email", "o@acme.test"]));
    let args = ["users", "reset-link", "--user", "o@acme.test"];
    let out = cli_with(
        &db,
        &args,
        &[("CIQ_PUBLIC_URL", "https://console.example.com")],
    );
    let first = stdout_of(&out);
    assert_eq!(first.lines().count(), 1, "{first}");
    let token = first
        .trim_end()
        .strip_prefix("https://console.example.com/reset-password/")
        .unwrap_or_else(|| panic!("the link under the public URL: {first}"))
        .to_owned();
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains("o@acme.test") && told.contains("works once"),
        "{told}"
    );
    let second = stdout_of(&cli_with(&db, &args, &[("CIQ_LISTEN", "127.0.0.1:9999")]));
    assert!(
        second.starts_with("http://127.0.0.1:9999/reset-password/"),
        "{second}"
    );
    let newest = second.trim_end().rsplit('/').next().unwrap().to_owned();
    let conn = ciq_gateway::database::connect(&db.url).await.unwrap();
    let pending = |token: String| {
        let conn = conn.clone();
        async move { ciq_admin::resets::pending(&conn, &token).await.unwrap() }
    };
    assert!(pending(token).await.is_none(), "replaced by the newer link");
    assert_eq!(pending(newest).await.unwrap().email, "o@acme.test");
    for (args, env, said) in [
        (
            &args[..],
            &[("CIQ_PUBLIC_URL", "not a url")][..],
            "--public-url",
        ),
        (
            &["users", "reset-link", "--user", "nobody@acme.test"][..],
            &[][..],
            "nobody@acme.test",
        ),
    ] {
        let out = cli_with(&db, args, env);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{said}"
        );
    }
}

ciq_e2e::with_each_backend!(
    a_reset_link_is_printed_alone_and_only_the_newest_works,
    rolling_and_passwords,
    the_documented_workflow,
    mistakes_fail_with_a_message_and_no_output,
    commands_print_no_log_lines_unless_asked,
    a_killed_gateway_resumes_an_import_and_imports_every_good_row_once,
    webhook_endpoints_are_managed_from_the_command_line,
    a_gateway_killed_mid_delivery_leaves_the_event_to_its_successor,
);

/// `webhooks create | list | deliveries | replay | delete`, as scripts use them; a lead
/// event goes to the receiver and its delivery shows in the list.
async fn webhook_endpoints_are_managed_from_the_command_line(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let receiver = ciq_e2e::Receiver::start().await;
    let run = |args: &[&str]| cli_with(&db, args, &WEBHOOK_ENV);
    stdout_of(&run(&["users", "create", "--email", "o@acme.test"]));
    // Without the key on PostgreSQL, or with a bad URL or event, it says why and prints nothing.
    for (args, env, why) in [
        (
            vec![
                "webhooks",
                "create",
                "--user",
                "o@acme.test",
                "--url",
                "ftp://x",
            ],
            &WEBHOOK_ENV[..],
            "must start with https://",
        ),
        (
            vec![
                "webhooks",
                "create",
                "--user",
                "o@acme.test",
                "--url",
                "https://hooks.example.com/",
                "--event",
                "lead.moved",
            ],
            &WEBHOOK_ENV[..],
            "\"lead.moved\" is not an event",
        ),
    ] {
        let out = cli_with(&db, &args, env);
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{stderr}");
    }
    if backend == Backend::Postgres {
        let out = cli(
            &db,
            &[
                "webhooks",
                "create",
                "--user",
                "o@acme.test",
                "--url",
                "https://hooks.example.com/",
            ],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("CIQ_WEBHOOK_SECRET_KEY"));
    }
    let url = receiver.url("/hook");
    let secret = stdout_of(&run(&[
        "webhooks",
        "create",
        "--user",
        "o@acme.test",
        "--url",
        &url,
        "--event",
        "lead.created",
    ]));
    let secret = secret.strip_suffix('\n').expect("one line");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed: Value = serde_json::from_str(&stdout_of(&run(&[
        "webhooks",
        "list",
        "--user",
        "o@acme.test",
        "--json",
    ])))
    .unwrap();
    let endpoint = &listed[0];
    assert_eq!(endpoint["url"], url.as_str());
    assert_eq!(endpoint["events"], serde_json::json!(["lead.created"]));
    assert_eq!(endpoint["enabled"], true);
    assert!(
        !listed.to_string().contains(secret),
        "a listing never shows the secret"
    );
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();

    let key = stdout_of(&run(&["keys", "create", "--user", "o@acme.test"]));
    let server = serve_with(&db, &WEBHOOK_ENV);
    assert_eq!(
        post(&server.base_url, key.trim(), &reference_curl_body())
            .await
            .status(),
        201
    );
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(got[0].body.as_bytes(), &got[0].header_map())
        .unwrap();
    let deliveries = || -> Value {
        serde_json::from_str(&stdout_of(&run(&[
            "webhooks",
            "deliveries",
            &endpoint_id,
            "--json",
        ])))
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let listed = deliveries();
        if listed[0]["status"] == "delivered" {
            break listed[0].clone();
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first["event_type"], "lead.created");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["last_status_code"], 200);
    assert_eq!(first["next_attempt_at"], Value::Null);
    assert_eq!(
        first["event_id"].as_str(),
        Some(got[0].headers["webhook-id"].as_str())
    );
    // Replay: a new delivery of the same event, sent again with the same webhook-id.
    let replayed = stdout_of(&run(&["webhooks", "replay", first["id"].as_str().unwrap()]));
    let replayed = replayed.trim();
    uuid::Uuid::parse_str(replayed).expect("stdout is the new delivery's id, alone");
    let again = receiver.wait_for("/hook", 2, Duration::from_secs(10)).await;
    assert_eq!(
        again[1].headers["webhook-id"],
        again[0].headers["webhook-id"]
    );
    assert_eq!(again[1].body, again[0].body);
    assert!(
        deliveries()
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == replayed)
    );
    // Rotate: a new secret; during the overlap both sign.
    let rotated = stdout_of(&run(&[
        "webhooks",
        "rotate",
        &endpoint_id,
        "--overlap",
        "600",
    ]));
    let rotated = rotated.trim();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert_eq!(
        post(&server.base_url, key.trim(), &reference_curl_body())
            .await
            .status(),
        201
    );
    let third = receiver.wait_for("/hook", 3, Duration::from_secs(10)).await;
    for s in [secret, rotated] {
        standardwebhooks::Webhook::new(s)
            .unwrap()
            .verify(third[2].body.as_bytes(), &third[2].header_map())
            .unwrap();
    }
    drop(server);
    // Delete: gone, with its log.
    assert!(run(&["webhooks", "delete", &endpoint_id]).status.success());
    let listed: Value = serde_json::from_str(&stdout_of(&run(&[
        "webhooks",
        "list",
        "--user",
        "o@acme.test",
        "--json",
    ])))
    .unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let out = run(&["webhooks", "deliveries", &endpoint_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such webhook endpoint"));
}

/// The receiver holds the first attempt open; the gateway is SIGKILLed while it waits;
/// a new gateway takes the delivery over once the (shortened) lease runs out and
/// delivers it — the acknowledged lead's event is not lost.
async fn a_gateway_killed_mid_delivery_leaves_the_event_to_its_successor(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let receiver = ciq_e2e::Receiver::start().await;
    receiver.script(
        "/hook",
        vec![ciq_e2e::Reply::status(200).after(Duration::from_secs(30))],
    );
    let run = |args: &[&str]| cli_with(&db, args, &WEBHOOK_ENV);
    stdout_of(&run(&["users", "create", "--email", "o@acme.test"]));
    stdout_of(&run(&[
        "webhooks",
        "create",
        "--user",
        "o@acme.test",
        "--url",
        &receiver.url("/hook"),
    ]));
    let key = stdout_of(&run(&["keys", "create", "--user", "o@acme.test"]));
    let env = [
        WEBHOOK_ENV[0],
        WEBHOOK_ENV[1],
        ("CIQ_WEBHOOK_LEASE_SECONDS", "2"),
    ];
    let mut first = serve_with(&db, &env);
    assert_eq!(
        post(&first.base_url, key.trim(), &reference_curl_body())
            .await
            .status(),
        201
    );
    // The attempt is under way: the receiver has it and has not answered.
    receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let started = Instant::now();
    let _second = serve_with(&db, &env);
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(20)).await;
    assert_eq!(
        got[1].headers["webhook-id"], got[0].headers["webhook-id"],
        "the same event"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "taken over after {:?}",
        started.elapsed()
    );
    let conn = ciq_gateway::database::connect(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = ciq_entity::WebhookDelivery::find()
            .all(&conn)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        if rows[0].status == ciq_entity::webhook_delivery::DeliveryStatus::Delivered {
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits up to 60 s for `done` to say the import (read afresh) is far enough.
async fn wait_for_import(
    db: &ciq_store::Db,
    user: uuid::Uuid,
    id: uuid::Uuid,
    done: impl Fn(&ciq_imports::store::ImportSummary) -> bool,
) -> ciq_imports::store::ImportSummary {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let import = ciq_imports::store::find(db, user, id)
            .await
            .unwrap()
            .expect("the import exists");
        if done(&import) {
            return import;
        }
        assert!(
            Instant::now() < deadline,
            "the import got stuck: {import:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// 20 000 rows, every tenth without an email; the gateway is SIGKILLed mid-import
/// and started again: the import goes on from the position committed with its last
/// rows, and ends with each good row a lead exactly once and each bad row listed once.
async fn a_killed_gateway_resumes_an_import_and_imports_every_good_row_once(backend: Backend) {
    use ciq_imports::{ImportFile, Mapping, store};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let user: uuid::Uuid = stdout_of(&cli(&db, &["users", "create", "--email", "i@acme.test"]))
        .trim()
        .parse()
        .unwrap();
    let conn = ciq_gateway::database::connect(&db.url).await.unwrap();
    const ROWS: usize = 20_000;
    let bad = |i: usize| i % 10 == 9;
    let mut csv = String::from("name,email,source,industry\n");
    for i in 0..ROWS {
        let email = if bad(i) {
            String::new()
        } else {
            format!("lead{i}@example.com")
        };
        csv.push_str(&format!("Lead {i},{email},Fair,Retail\n"));
    }
    let file = ImportFile::read(csv.as_bytes()).unwrap();
    let id = store::create(&conn, user, "big.csv", csv.into_bytes(), &file)
        .await
        .unwrap();
    assert!(
        store::save_mapping(&conn, user, id, &Mapping::suggested(&file.columns), true)
            .await
            .unwrap()
    );
    let settings = [
        ("CIQ_IMPORT_CHUNK_ROWS", "50"),
        ("CIQ_IMPORT_LEASE_SECS", "2"),
    ];
    let leads_now = || async {
        ciq_entity::Lead::find()
            .select_only()
            .column(ciq_entity::lead::Column::Email)
            .filter(ciq_entity::lead::Column::UserId.eq(user))
            .into_tuple::<String>()
            .all(&conn)
            .await
            .unwrap()
    };

    let mut first = serve_with(&db, &settings);
    wait_for_import(&conn, user, id, |i| i.position >= 1_000).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let stopped = store::find(&conn, user, id).await.unwrap().unwrap();
    assert!(
        (stopped.position as usize) < ROWS,
        "the import finished before the gateway was killed; make the chunks smaller"
    );
    // What was committed is exactly what the position says.
    assert_eq!(
        stopped.position,
        stopped.created_count + stopped.failed_count
    );
    assert_eq!(leads_now().await.len(), stopped.created_count as usize);

    let _second = serve_with(&db, &settings);
    let done = wait_for_import(&conn, user, id, |i| !i.status.is_pending()).await;
    assert_eq!(
        done.status,
        ciq_entity::lead_import::ImportStatus::Done,
        "{done:?}"
    );
    let good = (0..ROWS).filter(|i| !bad(*i)).count();
    assert_eq!(
        (
            done.position as usize,
            done.created_count as usize,
            done.failed_count as usize
        ),
        (ROWS, good, ROWS - good)
    );
    let emails = leads_now().await;
    let distinct: std::collections::HashSet<&String> = emails.iter().collect();
    assert_eq!(
        (emails.len(), distinct.len()),
        (good, good),
        "each good row once"
    );
    let failures = store::failures(&conn, user, id, None).await.unwrap();
    let lines: Vec<i32> = failures.iter().map(|f| f.line).collect();
    let expected: Vec<i32> = (0..ROWS)
        .filter(|i| bad(*i))
        .map(|i| i as i32 + 2)
        .collect();
    assert_eq!(lines, expected, "each bad row listed once, by its line");
    assert!(failures.iter().all(|f| f.reason == "email: is required"));
    eprintln!(
        "killed at row {} of {ROWS}; resumed and finished",
        stopped.position
    );
}

/// A one-off command on a fresh store (which it migrates) says only what it did on
/// stderr: no migrator INFO lines unless `RUST_LOG` asks for them.
async fn commands_print_no_log_lines_unless_asked(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let out = Command::new(BIN)
        .args(["users", "create", "--email", "quiet@acme.test"])
        .env("DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "created user quiet@acme.test",
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["keys", "list", "--user", "quiet@acme.test"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INFO"),
        "RUST_LOG=info is honoured"
    );
}

/// The environment a process runs with now, from `/proc`, by name.
fn environment_of(pid: u32) -> std::collections::HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .expect("the process's environment")
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The status of `GET /healthz`: the process serves.
async fn healthz(base_url: &str) -> reqwest::StatusCode {
    ciq_e2e::http_client()
        .get(format!("{base_url}/healthz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn serve_runs_with_the_allocators_serving_settings_unless_the_operator_set_them() {
    let Some(db) = TestDatabase::create(Backend::Sqlite).await else {
        return;
    };
    // Nothing set: the same process (the child's own id) now runs with both, and serves.
    let mut served = serve(&db);
    let environment = environment_of(served.child.id());
    assert_eq!(
        environment
            .get("MIMALLOC_ARENA_EAGER_COMMIT")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(
        environment.get("MIMALLOC_PURGE_DELAY").map(String::as_str),
        Some("10")
    );
    assert_eq!(
        environment.get("CIQ_LISTEN").map(String::as_str),
        Some("127.0.0.1:0"),
        "the rest of the environment is kept"
    );
    assert_eq!(healthz(&served.base_url).await, 200);
    served.kill();
    // The operator's value wins; only the missing one is added.
    let served = serve_with(&db, &[("MIMALLOC_PURGE_DELAY", "1000")]);
    let environment = environment_of(served.child.id());
    assert_eq!(
        environment.get("MIMALLOC_PURGE_DELAY").map(String::as_str),
        Some("1000")
    );
    assert_eq!(
        environment
            .get("MIMALLOC_ARENA_EAGER_COMMIT")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(healthz(&served.base_url).await, 200);
}

/// `CIQ_WORKER_THREADS` sets how many threads the runtime serves with (the gauge on
/// `/metrics` reads the runtime itself); 0 or a non-number is refused at start, naming
/// the flag, before anything is served.
#[tokio::test]
async fn the_worker_threads_are_as_many_as_configured() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let client = ciq_e2e::http_client();
    for workers in ["1", "3"] {
        let served = serve_with(&db, &[("CIQ_WORKER_THREADS", workers)]);
        let metrics = ciq_e2e::get_text(&client, &format!("{}/metrics", served.base_url)).await;
        assert!(
            metrics
                .lines()
                .any(|line| line == format!("ciq_runtime_worker_threads {workers}")),
            "{workers} workers: {metrics}"
        );
    }
    for refused in ["0", "two"] {
        let out = Command::new(BIN)
            .env("DATABASE_URL", &db.url)
            .env("CIQ_LISTEN", "127.0.0.1:0")
            .env("CIQ_WORKER_THREADS", refused)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{refused}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "invalid value '{refused}' for '--worker-threads <N>'"
            )),
            "{refused}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_operator_token_can_come_from_a_file() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let file = std::env::temp_dir().join(format!("ciq-token-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, "operator-token-from-a-file\n").unwrap();
    let served = serve_with(&db, &[("CIQ_ADMIN_TOKEN_FILE", file.to_str().unwrap())]);
    let client = ciq_e2e::http_client();
    let status = |token: &'static str| {
        client
            .get(format!("{}/admin/v1/openapi.json", served.base_url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        status("operator-token-from-a-file").await.unwrap().status(),
        200
    );
    assert_eq!(
        status("operator-token-from-a-filf").await.unwrap().status(),
        401
    );
    drop(served);
    // An unreadable file is a start-up error that names it, not an API left open or off.
    let out = Command::new(BIN)
        .env("DATABASE_URL", &db.url)
        .env("CIQ_LISTEN", "127.0.0.1:0")
        .env("CIQ_ADMIN_TOKEN_FILE", "/nonexistent/token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/token"));
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn keys_carry_the_scopes_they_were_made_with() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    stdout_of(&cli(&db, &["users", "create", "--email", "s@acme.test"]));
    stdout_of(&cli(
        &db,
        &[
            "keys",
            "create",
            "--user",
            "s@acme.test",
            "--name",
            "default",
        ],
    ));
    stdout_of(&cli(
        &db,
        &[
            "keys",
            "create",
            "--user",
            "s@acme.test",
            "--name",
            "reader",
            "--scope",
            "leads:read",
            "--scope",
            "leads:create",
        ],
    ));
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "s@acme.test", "--json"],
    )))
    .unwrap();
    let scopes = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["scopes"]
            .clone()
    };
    assert_eq!(scopes("default"), serde_json::json!(["leads:create"]));
    assert_eq!(
        scopes("reader"),
        serde_json::json!(["leads:create", "leads:read"])
    );
    let out = cli(
        &db,
        &[
            "keys",
            "create",
            "--user",
            "s@acme.test",
            "--scope",
            "leads:delete",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("leads:write"));
}

#[tokio::test]
async fn browser_keys_take_allowed_origins_only_when_create_only() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    stdout_of(&cli(&db, &["users", "create", "--email", "w@acme.test"]));
    let create = |extra: &[&str]| {
        let mut args = vec!["keys", "create", "--user", "w@acme.test", "--name", "web"];
        args.extend_from_slice(extra);
        cli(&db, &args)
    };
    let key = stdout_of(&create(&[
        "--allowed-origin",
        "https://www.example.com",
        "--allowed-origin",
        "http://localhost:3000/",
    ]));
    assert!(key.trim().starts_with("ciq_"));
    for (extra, why) in [
        (
            vec![
                "--scope",
                "leads:create",
                "--scope",
                "leads:read",
                "--allowed-origin",
                "https://www.example.com",
            ],
            "only scope is leads:create",
        ),
        (
            vec!["--allowed-origin", "https://www.example.com/contact"],
            "no path",
        ),
        (
            vec!["--allowed-origin", "https://*.example.com"],
            "wildcards",
        ),
        (vec!["--allowed-origin", "www.example.com"], "scheme://host"),
    ] {
        let out = create(&extra);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("allowed_origins") && stderr.contains(why),
            "{stderr}"
        );
    }
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "w@acme.test", "--json"],
    )))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "no refused key was made");
    assert_eq!(
        listed[0]["allowed_origins"],
        serde_json::json!(["https://www.example.com", "http://localhost:3000"])
    );
    let table = stdout_of(&cli(&db, &["keys", "list", "--user", "w@acme.test"]));
    assert!(
        table.contains("https://www.example.com http://localhost:3000"),
        "{table}"
    );
}

#[test]
fn openapi_admin_prints_the_committed_operator_document() {
    let out = Command::new(BIN)
        .args(["openapi", "--admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed = include_str!("../../../openapi/admin.json");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[test]
fn openapi_prints_the_committed_document() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed = include_str!("../../../openapi/openapi.json");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// Everything the server wrote to stderr, line by line, while it ran.
struct CapturedServer {
    child: Child,
    base_url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl CapturedServer {
    fn start(db: &TestDatabase, envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .env("DATABASE_URL", &db.url)
            .env("CIQ_LISTEN", "127.0.0.1:0")
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("serve starts");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("API docs at http://").nth(1) {
                    let addr = rest.split("/docs").next().unwrap_or_default().to_owned();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve logs its address");
        Self {
            child,
            base_url: format!("http://{addr}"),
            lines,
            reader: Some(reader),
        }
    }

    /// SIGTERM, then the exit status and every line logged.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

#[tokio::test]
async fn logs_never_contain_keys_passwords_or_tokens_and_carry_request_ids() {
    let Some(db) = TestDatabase::create(Backend::Sqlite).await else {
        return;
    };
    let admin_token = "operator-token-for-the-log-test";
    let password = "correct horse battery staple";
    let server = CapturedServer::start(
        &db,
        &[
            ("CIQ_ADMIN_TOKEN", admin_token),
            ("CIQ_LOG_FORMAT", "json"),
            ("RUST_LOG", "trace"),
        ],
    );
    let base = server.base_url.clone();
    let client = ciq_e2e::http_client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let user: Value = client
        .post(format!("{base}/admin/v1/users"))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({"email": "owner@acme.test", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created: Value = client
        .post(format!(
            "{base}/admin/v1/users/{}/keys",
            user["id"].as_str().unwrap()
        ))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({"name": "CRM"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let (made_up, _) = ciq_admin::key::generate();
    for presented in [key.as_str(), typo.as_str(), made_up.expose(), "ciq_short"] {
        client
            .post(format!("{base}/api/external/leads/create"))
            .header("Content-Type", "application/json")
            .header("X-API-Key", presented)
            .header("X-Request-Id", "log-test-42")
            .header("Idempotency-Key", "idem-secret-ish")
            .body(reference_curl_body().to_string())
            .send()
            .await
            .unwrap();
    }
    client
        .post(format!("{base}/admin/v1/users"))
        .bearer_auth("wrong-operator-token-guess")
        .json(&serde_json::json!({"email": "x@acme.test"}))
        .send()
        .await
        .unwrap();
    // Sign in through the Settings page, wrong then right.
    for attempt in ["wrong password here", password] {
        let page = client
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        let csrf = &page[start..start + page[start..].find('"').unwrap()];
        let resp = client
            .post(format!("{base}/login"))
            .form(&[
                ("email", "owner@acme.test"),
                ("password", attempt),
                ("csrf", csrf),
            ])
            .send()
            .await
            .unwrap();
        if attempt == password {
            assert_eq!(resp.status(), 303);
        }
    }

    let (status, lines) = server.terminate();
    assert!(
        status.success(),
        "SIGTERM ends the server cleanly: {status:?}"
    );
    assert!(lines.len() > 10, "{lines:?}");
    let secret = &key[16..48];
    for line in &lines {
        let _: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for (what, needle) in [
            ("key", key.as_str()),
            ("key secret", secret),
            ("mistyped key", &typo[16..48]),
            ("made-up key", &made_up.expose()[16..48]),
            ("admin token", admin_token),
            ("guessed admin token", "wrong-operator-token-guess"),
            ("password", password),
            ("wrong password", "wrong password here"),
        ] {
            assert!(!line.contains(needle), "{what} in the log: {line}");
        }
    }
    let tagged: Vec<&String> = lines.iter().filter(|l| l.contains("log-test-42")).collect();
    assert!(
        tagged.iter().any(|l| l.contains("\"status\":201")),
        "the access line carries the request id: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_acknowledged_lead() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(backend).await else {
            continue;
        };
        stdout_of(&cli(&db, &["users", "create", "--email", "o@acme.test"]));
        let key = stdout_of(&cli(
            &db,
            &[
                "keys",
                "create",
                "--user",
                "o@acme.test",
                "--rate-limit",
                "1000000",
            ],
        ));
        let key = key.trim_end().to_owned();
        let server = CapturedServer::start(&db, &[("RUST_LOG", "warn,ciq_gateway=info")]);
        let base = server.base_url.clone();
        let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let (base, key, acknowledged, stop) = (
                    base.clone(),
                    key.clone(),
                    acknowledged.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let client = ciq_e2e::http_client();
                    let body = reference_curl_body().to_string();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let sent = client
                            .post(format!("{base}/api/external/leads/create"))
                            .header("Content-Type", "application/json")
                            .header("X-API-Key", &key)
                            .body(body.clone())
                            .send()
                            .await;
                        // Refused connections after shutdown are expected; only a 201
                        // is a promise.
                        let Ok(resp) = sent else { continue };
                        if resp.status() == 201
                            && let Ok(json) = resp.json::<Value>().await
                        {
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(json["lead"]["id"].as_str().unwrap().to_owned());
                        }
                    }
                })
            })
            .collect();
        // Under load: SIGTERM once enough creates were acknowledged (on a busy machine
        // that takes longer than on an idle one; bounded).
        let loaded = Instant::now();
        while acknowledged.lock().unwrap().len() <= 20 && loaded.elapsed() < Duration::from_secs(15)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _) = tokio::task::spawn_blocking(move || server.terminate())
            .await
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        assert!(status.success(), "{backend:?}: exit {status:?}");
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            acknowledged.len() > 20,
            "{backend:?}: only {} acknowledged",
            acknowledged.len()
        );
        let conn = ciq_gateway::database::connect(&db.url).await.unwrap();
        use sea_orm::EntityTrait;
        let stored: std::collections::HashSet<String> = ciq_entity::Lead::find()
            .all(&conn)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id.to_string())
            .collect();
        let lost: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !stored.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "{backend:?}: acknowledged but not stored: {lost:?}"
        );
        let _ = conn.close().await;
    }
}

#[tokio::test]
async fn browser_keys_take_a_visitor_limit_and_a_challenge_read_from_a_file() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    stdout_of(&cli(&db, &["users", "create", "--email", "f@acme.test"]));
    let secret_file =
        std::env::temp_dir().join(format!("ciq-challenge-{}.secret", std::process::id()));
    std::fs::write(&secret_file, "0x4AAAAAAAsite-secret\nignored\n").unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let create = |extra: &[&str]| {
        let mut args = vec!["keys", "create", "--user", "f@acme.test"];
        args.extend_from_slice(extra);
        cli(&db, &args)
    };
    let key = stdout_of(&create(&[
        "--allowed-origin",
        "https://shop.example",
        "--visitor-rate-limit",
        "5",
        "--challenge",
        "turnstile",
        "--challenge-secret-file",
        secret_path,
    ]));
    assert!(key.trim().starts_with("ciq_"));
    for (extra, why) in [
        (
            vec!["--visitor-rate-limit", "5"],
            "visitor_rate_limit_per_minute",
        ),
        (
            vec![
                "--challenge",
                "hcaptcha",
                "--challenge-secret-file",
                secret_path,
            ],
            "browser key",
        ),
        (
            vec![
                "--allowed-origin",
                "https://shop.example",
                "--challenge",
                "captcha",
                "--challenge-secret-file",
                secret_path,
            ],
            "turnstile, hcaptcha, recaptcha",
        ),
        (
            vec![
                "--allowed-origin",
                "https://shop.example",
                "--challenge",
                "turnstile",
            ],
            "challenge-secret-file",
        ),
    ] {
        let out = create(&extra);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{extra:?}: {stderr}");
        assert!(
            !stderr.contains("0x4AAAAAAA"),
            "the secret is never printed"
        );
    }
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "f@acme.test", "--json"],
    )))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "no refused key was made");
    assert_eq!(listed[0]["visitor_rate_limit_per_minute"], 5);
    assert_eq!(listed[0]["challenge"], "turnstile");
    assert!(!listed[0].to_string().contains("0x4AAAAAAA"));
    std::fs::remove_file(&secret_file).unwrap();
}

/// `keys usage`: what served instances counted, as a table or as the API's `usage`
/// array. A clean shutdown writes what was counted since the last flush (here the
/// flush would only come after 5 minutes); a SIGKILL loses at most one interval (here
/// 1 s: what was answered 3 s before the kill is there).
#[tokio::test]
async fn keys_usage_shows_what_served_instances_counted_even_after_a_shutdown() {
    let Some(db) = TestDatabase::create(Backend::Sqlite).await else {
        return;
    };
    assert!(cli(&db, &["migrate"]).status.success());
    stdout_of(&cli(
        &db,
        &["users", "create", "--email", "owner@acme.test"],
    ));
    let key = stdout_of(&cli(&db, &["keys", "create", "--user", "owner@acme.test"]));
    let key = key.trim_end().to_owned();
    let listed: Value = serde_json::from_str(&stdout_of(&cli(
        &db,
        &["keys", "list", "--user", "owner@acme.test", "--json"],
    )))
    .unwrap();
    let key_id = listed[0]["id"].as_str().unwrap().to_owned();
    let usage = |interval: &str| -> Value {
        serde_json::from_str(&stdout_of(&cli(
            &db,
            &["keys", "usage", &key_id, "--interval", interval, "--json"],
        )))
        .unwrap()
    };
    let sum = |usage: &Value, field: &str| -> u64 {
        usage
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(usage("minute"), serde_json::json!([]));

    let served = CapturedServer::start(&db, &[("CIQ_USAGE_FLUSH_SECS", "300")]);
    let mut broken = reference_curl_body();
    broken["lead"]["email"] = serde_json::json!("nope");
    assert_eq!(
        post(&served.base_url, &key, &reference_curl_body())
            .await
            .status(),
        201
    );
    assert_eq!(
        post(&served.base_url, &key, &reference_curl_body())
            .await
            .status(),
        201
    );
    assert_eq!(post(&served.base_url, &key, &broken).await.status(), 422);
    let (status, _) = served.terminate();
    assert!(status.success());
    let day = usage("day");
    assert_eq!(
        (
            sum(&day, "success"),
            sum(&day, "client_error"),
            sum(&day, "leads_created")
        ),
        (2, 1, 2),
        "{day}"
    );
    assert!(
        day[0]["start"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z")
    );

    let killed = CapturedServer::start(&db, &[("CIQ_USAGE_FLUSH_SECS", "1")]);
    assert_eq!(
        post(&killed.base_url, &key, &reference_curl_body())
            .await
            .status(),
        201
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut child = killed.child;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sum(&usage("hour"), "success"), 3);

    let table = stdout_of(&cli(&db, &["keys", "usage", &key_id]));
    assert!(table.starts_with("START (UTC)"), "{table}");
    assert!(table.lines().count() >= 2, "{table}");
    let unknown = cli(&db, &["keys", "usage", &uuid::Uuid::now_v7().to_string()]);
    assert!(!unknown.status.success());
    assert!(unknown.stdout.is_empty());
}
