//! Web forms that survive bots: a browser key is public, so its submissions pass the
//! visitor limit before they spend the key's budget; honeypot and spam rules quarantine
//! what bots send, and quarantined leads are out of lists and announce nothing.

use ciq_admin::keys::{self, NewKey};
use ciq_admin::{ChallengeProvider, NewChallenge, Scope, Scopes};
use ciq_e2e::{
    Backend, FakeSiteverify, TestApp, reference_curl_body, test_redis_url, unique_redis_prefix,
};
use ciq_entity::webhook_delivery;
use ciq_leads::events::EventType;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

ciq_e2e::with_each_backend!(
    a_bot_gets_its_visitor_limit_and_a_real_visitor_still_gets_in,
    a_batch_counts_each_lead_against_the_visitor_limit,
    a_filled_honeypot_is_answered_as_usual_and_quarantined,
    spam_rules_apply_to_browser_submissions_only,
    spam_is_never_announced_and_its_erasure_neither,
    a_challenge_is_verified_refused_or_left_unverified,
    settings_release_or_delete_spam,
    the_block_list_holds_back_addresses_and_domains,
);

pub(crate) const SHOP: &str = "https://shop.example";
pub(crate) const CREATE: &str = "/api/external/leads/create";
const BATCH: &str = "/api/external/leads/batch";
const BOT: &str = "203.0.113.7";
pub(crate) const VISITOR: &str = "198.51.100.2";

/// A gateway that takes the client address from `X-Forwarded-For`, as behind the
/// shipped nginx.
pub(crate) async fn behind_a_proxy(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| s.trust_forwarded_for = true).await
}

/// An owner with a browser key for [`SHOP`] (made as `new` says otherwise) and a key
/// that reads everything: `(owner, browser key, reading key)`.
pub(crate) async fn shop_owner(app: &TestApp, email: &str, new: NewKey) -> (Uuid, String, String) {
    let owner = app.create_user(email).await;
    let (_, browser) = app
        .create_key_with(
            owner,
            NewKey {
                allowed_origins: vec![SHOP.into()],
                ..new
            },
        )
        .await;
    let (_, reader) = app
        .create_key_with(
            owner,
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                rate_limit_per_minute: Some(100_000),
                ..NewKey::default()
            },
        )
        .await;
    (owner, browser, reader)
}

/// A submission to `path` with `key` from `address`, with `Origin: origin` if given:
/// the answer's status, headers and JSON.
pub(crate) async fn submit(
    app: &TestApp,
    path: &str,
    key: &str,
    address: &str,
    origin: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .header("X-Forwarded-For", address)
        .body(body.to_string());
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}

/// `GET path` with `key`: the JSON answer.
pub(crate) async fn read(app: &TestApp, key: &str, path: &str) -> Value {
    let resp = app
        .client
        .get(format!("{}{path}", app.base_url))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The abuse run, for each `Origin` a bot may send (the shop's, none, the
/// gateway's own): 105 creates from one address give the bot its 10, and a real
/// visitor's submission right after is created, with the key's budget spent only by
/// the admitted ones.
async fn a_bot_gets_its_visitor_limit_and_a_real_visitor_still_gets_in(backend: Backend) {
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let own = app.base_url.clone();
    for (round, origin) in [Some(SHOP), None, Some(own.as_str())]
        .into_iter()
        .enumerate()
    {
        let (_, key, reader) =
            shop_owner(&app, &format!("shop{round}@acme.test"), NewKey::default()).await;
        let mut statuses = Vec::new();
        for _ in 0..105 {
            let (status, headers, body) =
                submit(&app, CREATE, &key, BOT, origin, &reference_curl_body()).await;
            if status == 429 {
                assert_eq!(body["error"]["code"], "rate_limited");
                assert_eq!(
                    header(&headers, "ratelimit-policy"),
                    "\"visitor\";q=10;w=60"
                );
                assert_eq!(header(&headers, "x-ratelimit-limit"), "10");
                assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
                let retry: u64 = header(&headers, "retry-after").parse().unwrap();
                assert!((1..=60).contains(&retry), "{retry}");
                if let Some(origin) = origin {
                    assert_eq!(header(&headers, "access-control-allow-origin"), origin);
                }
            } else {
                assert_eq!(
                    header(&headers, "ratelimit-policy"),
                    "\"default\";q=100;w=60"
                );
            }
            statuses.push(status);
        }
        let created = statuses.iter().filter(|&&s| s == 201).count();
        assert_eq!(
            (created, statuses.len() - created),
            (10, 95),
            "origin {origin:?}: {statuses:?}"
        );
        assert!(statuses[..10].iter().all(|&s| s == 201));
        // The visitor, from another address, with the shop's page.
        let (status, headers, body) = submit(
            &app,
            CREATE,
            &key,
            VISITOR,
            Some(SHOP),
            &reference_curl_body(),
        )
        .await;
        assert_eq!(status, 201, "origin {origin:?}: {body}");
        assert_eq!(body["lead"]["spam"], Value::Null);
        // The key's budget paid for the 11 leads only.
        assert_eq!(header(&headers, "x-ratelimit-remaining"), "89");
        let listed = read(&app, &reader, "/api/external/leads?limit=200").await;
        assert_eq!(listed["leads"].as_array().unwrap().len(), 11);
    }
    // The process's counters (other tests in it count too: at least ours).
    assert!(submissions(&app, "visitor_limited").await >= 285);
    assert!(submissions(&app, "accepted").await >= 33);
    app.stop().await;
}

/// The residual a visitor limit leaves, measured: a bot with 11 addresses spends the
/// key's whole budget (10 each, the 11th address gets 10 of what is left), and the
/// real visitor then meets the key's own 429. docs/forms.md states it and its remedy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_with_eleven_addresses_still_spends_the_keys_budget() {
    let Some(app) = behind_a_proxy(Backend::Sqlite).await else {
        return;
    };
    let (_, key, _) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let mut created = 0;
    for bot in 0..11 {
        let address = format!("203.0.113.{}", 10 + bot);
        for _ in 0..10 {
            let (status, _, _) =
                submit(&app, CREATE, &key, &address, None, &reference_curl_body()).await;
            created += usize::from(status == 201);
        }
    }
    assert_eq!(created, 100);
    let (status, headers, _) = submit(
        &app,
        CREATE,
        &key,
        VISITOR,
        Some(SHOP),
        &reference_curl_body(),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        header(&headers, "ratelimit-policy"),
        "\"default\";q=100;w=60"
    );
    app.stop().await;
}

/// Each lead of a batch is a submission: a batch larger than what is left of the
/// visitor's allowance is refused whole (and costs the key nothing); a key's own
/// visitor limit replaces the default.
async fn a_batch_counts_each_lead_against_the_visitor_limit(backend: Backend) {
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let own_limit = NewKey {
        visitor_rate_limit_per_minute: Some(7),
        ..NewKey::default()
    };
    let (_, key, reader) = shop_owner(&app, "shop@acme.test", own_limit).await;
    let leads = |n: usize| json!({"leads": vec![reference_curl_body()["lead"].clone(); n]});
    let (status, headers, body) = submit(&app, BATCH, &key, BOT, Some(SHOP), &leads(4)).await;
    assert_eq!((status, body["created"].as_u64()), (200, Some(4)), "{body}");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "99");
    let (status, headers, body) = submit(&app, BATCH, &key, BOT, Some(SHOP), &leads(4)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(header(&headers, "ratelimit-policy"), "\"visitor\";q=7;w=60");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "3");
    let (status, _, _) = submit(&app, CREATE, &key, BOT, Some(SHOP), &reference_curl_body()).await;
    assert_eq!(status, 201);
    let (status, headers, _) = submit(&app, BATCH, &key, BOT, None, &leads(2)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "97");
    let listed = read(&app, &reader, "/api/external/leads?limit=200").await;
    assert_eq!(listed["leads"].as_array().unwrap().len(), 7);
    // A batch larger than the whole allowance never fits: it says so, and to wait a
    // whole window (not "retry in 0 s").
    let (status, headers, body) = submit(&app, BATCH, &key, "203.0.113.99", None, &leads(8)).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), "60");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a batch of 8 leads") && message.contains("at most 7"),
        "{message}"
    );
    // A server key has no visitor limit: the same address sends on.
    let (status, _, _) = submit(&app, BATCH, &reader, BOT, None, &leads(20)).await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// `ciq_browser_submissions_total{outcome}` as `/metrics` shows it (0 before any).
async fn submissions(app: &TestApp, outcome: &str) -> u64 {
    let line = format!("ciq_browser_submissions_total{{outcome=\"{outcome}\"}} ");
    app.metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&line)?.parse().ok())
        .unwrap_or(0)
}

/// Reads the lead `id` with `key`.
async fn lead(app: &TestApp, key: &str, id: &Value) -> Value {
    read(
        app,
        key,
        &format!("/api/external/leads/{}", id.as_str().unwrap()),
    )
    .await["lead"]
        .clone()
}

/// A filled honeypot: the answer is an ordinary 201 (or 200 for a batch) showing
/// `"spam": null`, the lead is stored as spam, left out of the list and listed with
/// `?spam=true`. A honeypot that is no string breaks a rule; blank is no trap.
async fn a_filled_honeypot_is_answered_as_usual_and_quarantined(backend: Backend) {
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let (_, key, reader) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let mut trapped = reference_curl_body();
    trapped["honeypot"] = json!("http://spam.example");
    let (status, _, normal) = submit(
        &app,
        CREATE,
        &key,
        VISITOR,
        Some(SHOP),
        &reference_curl_body(),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, answer) = submit(&app, CREATE, &key, BOT, Some(SHOP), &trapped).await;
    assert_eq!(status, 201);
    let keys_of = |v: &Value| {
        v["lead"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys_of(&answer), keys_of(&normal));
    assert_eq!(answer["lead"]["spam"], Value::Null);
    let stored = lead(&app, &reader, &answer["lead"]["id"]).await;
    assert_eq!(stored["spam"]["reason"], "honeypot");
    assert!(stored["spam"]["at"].as_str().unwrap().ends_with('Z'));
    // A batch's honeypot covers every item; a server key's honeypot works the same.
    let batch = json!({"honeypot": "x", "leads": [reference_curl_body()["lead"], reference_curl_body()["lead"]]});
    let (status, _, answer) = submit(&app, BATCH, &reader, BOT, None, &batch).await;
    assert_eq!((status, answer["created"].as_u64()), (200, Some(2)));
    for item in answer["results"].as_array().unwrap() {
        assert_eq!(item["lead"]["spam"], Value::Null);
        assert_eq!(
            lead(&app, &reader, &item["lead"]["id"]).await["spam"]["reason"],
            "honeypot"
        );
    }
    let listed = read(&app, &reader, "/api/external/leads").await;
    let ids: Vec<&Value> = listed["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["id"])
        .collect();
    assert_eq!(ids, [&normal["lead"]["id"]]);
    let spam = read(&app, &reader, "/api/external/leads?spam=true").await;
    assert_eq!(spam["leads"].as_array().unwrap().len(), 3);
    assert!(
        spam["leads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["spam"]["reason"] == "honeypot")
    );
    // Blank is no trap; a honeypot that is not a string is a broken rule, nothing stored.
    let mut blank = reference_curl_body();
    blank["honeypot"] = json!("  ");
    let (status, _, answer) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &blank).await;
    assert_eq!(status, 201);
    assert_eq!(
        lead(&app, &reader, &answer["lead"]["id"]).await["spam"],
        Value::Null
    );
    let mut wrong = reference_curl_body();
    wrong["honeypot"] = json!(1);
    let (status, _, answer) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &wrong).await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "honeypot");
    let batch = json!({"honeypot": [], "leads": [reference_curl_body()["lead"]]});
    let (status, _, answer) = submit(&app, BATCH, &reader, BOT, None, &batch).await;
    assert_eq!(
        (status, answer["error"]["details"][0]["field"].as_str()),
        (422, Some("honeypot"))
    );
    // An invalid lead is 422 whatever the honeypot holds.
    let mut invalid = trapped.clone();
    invalid["lead"]["email"] = json!("nope");
    let (status, _, _) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &invalid).await;
    assert_eq!(status, 422);
    let resp = app
        .client
        .get(format!("{}/api/external/leads?spam=maybe", app.base_url))
        .header("X-API-Key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["details"][0]["field"], "spam");
    app.stop().await;
}

/// A link in the name, more than 3 in the description: spam from a browser key, a
/// normal lead from a server key (a CRM may well send links).
async fn spam_rules_apply_to_browser_submissions_only(backend: Backend) {
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let (_, key, reader) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let with = |field: &str, value: &str| {
        let mut body = reference_curl_body();
        body["lead"][field] = json!(value);
        body
    };
    let four = "see https://a.example https://b.example www.c.example HTTP://d.example";
    let three = "see https://a.example https://b.example www.c.example";
    let cases = [
        (
            with("name", "Cheap pills www.pills.example"),
            Some("link_in_name"),
        ),
        (with("description", four), Some("links_in_description")),
        (with("description", three), None),
        (with("name", "Jane www."), None),
    ];
    for (body, reason) in &cases {
        let (status, _, answer) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), body).await;
        assert_eq!((status, &answer["lead"]["spam"]), (201, &Value::Null));
        let stored = lead(&app, &reader, &answer["lead"]["id"]).await;
        assert_eq!(stored["spam"]["reason"].as_str(), *reason, "{body}");
        let (status, _, answer) = submit(&app, CREATE, &reader, VISITOR, None, body).await;
        assert_eq!(status, 201);
        let stored = lead(&app, &reader, &answer["lead"]["id"]).await;
        assert_eq!(stored["spam"], Value::Null, "server key: {body}");
    }
    assert!(submissions(&app, "spam").await >= 2);
    app.stop().await;
}

/// Spam has no events: not for its creation (group commit, the idempotent path, a
/// batch), not for a change, not for its erasure; the normal leads beside it have
/// theirs.
async fn spam_is_never_announced_and_its_erasure_neither(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.trust_forwarded_for = true;
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.webhooks.allow_private_networks = true;
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let (owner, key, reader) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let (hook, _) = ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        owner,
        "https://hooks.example.com/in",
        &EventType::ALL,
        true,
    )
    .await
    .unwrap();
    let mut trapped = reference_curl_body();
    trapped["honeypot"] = json!("bot");
    let mut spam_ids = Vec::new();
    let (_, _, a) = submit(&app, CREATE, &key, BOT, Some(SHOP), &trapped).await;
    spam_ids.push(a["lead"]["id"].clone());
    let resp = app
        .client
        .post(format!("{}{CREATE}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &key)
        .header("X-Forwarded-For", BOT)
        .header("Idempotency-Key", "form-1")
        .body(trapped.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    spam_ids.push(resp.json::<Value>().await.unwrap()["lead"]["id"].clone());
    let batch = json!({"honeypot": "bot", "leads": [reference_curl_body()["lead"]]});
    let (_, _, b) = submit(&app, BATCH, &key, BOT, Some(SHOP), &batch).await;
    spam_ids.push(b["results"][0]["lead"]["id"].clone());
    let (_, _, normal) = submit(
        &app,
        CREATE,
        &key,
        VISITOR,
        Some(SHOP),
        &reference_curl_body(),
    )
    .await;
    // A change and an erasure of spam tell no one either.
    let id = spam_ids[0].as_str().unwrap();
    let patched = app
        .client
        .patch(format!("{}/api/external/leads/{id}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &reader)
        .body(json!({"lead": {"score": 2}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let erased = app
        .client
        .delete(format!(
            "{}/api/external/leads/{}",
            app.base_url,
            spam_ids[1].as_str().unwrap()
        ))
        .header("X-API-Key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 204);
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let log = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
        .all(&app.db)
        .await
        .unwrap();
    let announced: Vec<(String, String)> = log
        .iter()
        .map(|d| (d.event_type.clone(), d.lead_id.to_string()))
        .collect();
    assert_eq!(
        announced,
        [(
            "lead.created".to_owned(),
            normal["lead"]["id"].as_str().unwrap().to_owned()
        )]
    );
    assert_eq!(
        webhook_delivery::Entity::find()
            .count(&app.db)
            .await
            .unwrap(),
        1
    );
    app.stop().await;
}

/// Two instances on one Redis share each visitor's allowance exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_visitor_limit_exactly() {
    let Some(url) = test_redis_url().await else {
        return;
    };
    let Some(first) = TestApp::spawn_with(Backend::Postgres, |s| {
        s.redis_url = Some(url.into());
        s.redis_prefix = unique_redis_prefix();
        s.trust_forwarded_for = true;
    })
    .await
    else {
        return;
    };
    let second = first.spawn_peer().await;
    let (_, key, _) = shop_owner(&first, "shop@acme.test", NewKey::default()).await;
    let instances = [&first, &second];
    let submissions = (0..40).map(|i| {
        let (instance, key) = (instances[i % 2], key.clone());
        async move {
            submit(
                instance,
                CREATE,
                &key,
                BOT,
                Some(SHOP),
                &reference_curl_body(),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(submissions).await;
    let created = statuses.iter().filter(|&&s| s == 201).count();
    assert_eq!(
        (created, statuses.len() - created),
        (10, 30),
        "{statuses:?}"
    );
    second.stop().await;
    first.stop().await;
}

/// A gateway behind a proxy whose challenge providers are `fake`, with a secret key to
/// seal challenge secrets; and a browser key of a new owner with `provider`'s
/// challenge: `(app, browser key, reading key)`.
async fn with_challenge(
    backend: Backend,
    fake: &FakeSiteverify,
    provider: ChallengeProvider,
) -> Option<(TestApp, String, String)> {
    let url = fake.url.clone();
    let app = TestApp::spawn_with(backend, |s| {
        s.trust_forwarded_for = true;
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.challenge_verify_url = Some(url);
    })
    .await?;
    let (owner, _, reader) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let new = NewKey {
        allowed_origins: vec![SHOP.into()],
        challenge: Some(NewChallenge::checked(provider, fake.secret()).unwrap()),
        ..NewKey::default()
    };
    let (_, plain) = keys::create_key_sealing(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        app.states.webhook_key.as_ref(),
        owner,
        new,
        &keys::Actor::cli(),
    )
    .await
    .unwrap();
    Some((app, plain.expose().to_owned(), reader))
}

/// A submission with the challenge token `token` (none when `None`) and the headers given.
async fn challenged(
    app: &TestApp,
    key: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}{CREATE}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", key)
        .header("X-Forwarded-For", VISITOR)
        .header("Origin", SHOP)
        .body(reference_curl_body().to_string());
    if let Some(token) = token {
        req = req.header("X-Challenge-Token", token);
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// A key with Turnstile: a passed token is verified with the provider (secret, token
/// and the visitor's address) and the lead is created; a missing, refused or reused
/// token is 403 `challenge_failed` and spends nothing of the key's budget; a retry
/// with the same `Idempotency-Key` is replayed without asking again; a provider that
/// cannot be reached lets the lead in as spam (`challenge_unverified`).
async fn a_challenge_is_verified_refused_or_left_unverified(backend: Backend) {
    let fake = FakeSiteverify::start("0x4AAAAAAAsecret").await;
    let Some((app, key, reader)) =
        with_challenge(backend, &fake, ChallengeProvider::Turnstile).await
    else {
        return;
    };
    let (status, headers, body) = challenged(&app, &key, None, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("challenge_failed"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Turnstile") && message.contains("X-Challenge-Token"),
        "{message}"
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), SHOP);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "100");
    assert!(fake.asked().is_empty(), "no token, no question");
    let (status, headers, body) = challenged(&app, &key, Some("robot"), &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("challenge_failed"))
    );
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "100");
    let (status, headers, body) = challenged(&app, &key, Some("pass-1"), &[]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "99");
    assert_eq!(
        lead(&app, &reader, &body["lead"]["id"]).await["spam"],
        Value::Null
    );
    let asked = fake.asked();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1]["secret"], "0x4AAAAAAAsecret");
    assert_eq!(asked[1]["response"], "pass-1");
    assert_eq!(asked[1]["remoteip"], VISITOR);
    // A token is good once: never taken from a cache.
    let (status, _, _) = challenged(&app, &key, Some("pass-1"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(fake.asked().len(), 3);
    // An idempotent retry replays the first answer; its spent token is not asked about.
    let retry = [("Idempotency-Key", "form-submit-7")];
    let (status, _, first) = challenged(&app, &key, Some("pass-2"), &retry).await;
    assert_eq!(status, 201);
    let (status, headers, again) = challenged(&app, &key, Some("pass-2"), &retry).await;
    assert_eq!(
        (status, header(&headers, "idempotent-replayed")),
        (201, "true")
    );
    assert_eq!(again["lead"]["id"], first["lead"]["id"]);
    assert_eq!(fake.asked().len(), 4);
    // The refusals count against the visitor's allowance: 7 of 10 used.
    let (status, headers, _) = challenged(&app, &key, Some("pass-3"), &[]).await;
    assert_eq!(status, 201);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "96");
    assert!(submissions(&app, "challenge_failed").await >= 3);
    // The provider out of reach: the lead is kept, as spam, and nothing is announced.
    let closed = ciq_e2e::free_port();
    let cut_off = app
        .spawn_peer_with(|s| {
            s.challenge_verify_url = Some(format!("http://127.0.0.1:{closed}/siteverify"));
        })
        .await;
    let (status, _, body) = challenged(&cut_off, &key, Some("pass-4"), &[]).await;
    assert_eq!((status, &body["lead"]["spam"]), (201, &Value::Null));
    let stored = lead(&app, &reader, &body["lead"]["id"]).await;
    assert_eq!(stored["spam"]["reason"], "challenge_unverified");
    cut_off.stop().await;
    app.stop().await;
}

/// reCAPTCHA v3 answers with a score: under 0.5 is a bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recaptcha_v3_score_under_half_is_refused() {
    let fake = FakeSiteverify::start("6Lc-secret").await;
    let Some((app, key, _)) =
        with_challenge(Backend::Sqlite, &fake, ChallengeProvider::Recaptcha).await
    else {
        return;
    };
    let (status, _, body) = challenged(&app, &key, Some("v3-0.3"), &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("challenge_failed"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reCAPTCHA")
    );
    let (status, _, _) = challenged(&app, &key, Some("v3-0.9"), &[]).await;
    assert_eq!(status, 201);
    app.stop().await;
}

/// A challenge is for browser keys, its secret is stored sealed (never in clear), it is
/// refused where there is no secret key to seal it with, and a roll carries it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_secret_is_sealed_and_carried_over_by_a_roll() {
    let fake = FakeSiteverify::start("hcaptcha-site-secret").await;
    let Some((app, key, _)) =
        with_challenge(Backend::Postgres, &fake, ChallengeProvider::Hcaptcha).await
    else {
        return;
    };
    let rows = ciq_entity::ApiKey::find().all(&app.db).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.challenge_provider.is_some())
        .unwrap();
    assert_eq!(row.challenge_provider.as_deref(), Some("hcaptcha"));
    let sealed = row.challenge_secret.as_ref().unwrap();
    assert!(
        !sealed.windows(8).any(|w| w == b"hcaptcha"),
        "stored sealed"
    );
    let challenge = || Some(NewChallenge::checked(ChallengeProvider::Hcaptcha, "s").unwrap());
    let user = row.user_id;
    let server_key = NewKey {
        challenge: challenge(),
        ..NewKey::default()
    };
    let refused = keys::create_key_sealing(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        app.states.webhook_key.as_ref(),
        user,
        server_key,
        &keys::Actor::cli(),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("browser key"), "{refused}");
    let unsealable = NewKey {
        allowed_origins: vec![SHOP.into()],
        challenge: challenge(),
        ..NewKey::default()
    };
    let refused = keys::create_key(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        user,
        unsealable,
        &keys::Actor::cli(),
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("CIQ_WEBHOOK_SECRET_KEY"),
        "{refused}"
    );
    let (rolled, plain) = keys::roll_key(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        app.states.webhook_key.as_ref(),
        row.id,
        std::time::Duration::ZERO,
        &keys::Actor::cli(),
    )
    .await
    .unwrap();
    assert_eq!(rolled.challenge_provider.as_deref(), Some("hcaptcha"));
    let successor = plain.expose().to_owned();
    assert_ne!(successor, key);
    let (status, _, _) = challenged(&app, &successor, None, &[]).await;
    assert_eq!(status, 403, "the successor demands the challenge");
    let (status, _, _) = challenged(&app, &successor, Some("pass-rolled"), &[]).await;
    assert_eq!(status, 201, "and opens the secret sealed for it");
    app.stop().await;
}

/// Settings → API Key makes a browser key with its own visitor limit and a challenge,
/// lists both (the provider, never the secret), and names what is wrong with the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_make_a_browser_key_with_a_visitor_limit_and_a_challenge() {
    use ciq_e2e::console::{post_form, signed_in};
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let session = signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    let form = |visitor: &'static str, challenge: &'static str, secret: &'static str| {
        vec![
            ("csrf", session.csrf.clone()),
            ("name", "Shop form".to_owned()),
            ("expires_in_days", "0".to_owned()),
            ("scope_create", "on".to_owned()),
            ("allowed_origins", SHOP.to_owned()),
            ("visitor_rate_limit", visitor.to_owned()),
            ("challenge", challenge.to_owned()),
            ("challenge_secret", secret.to_owned()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let session = &session;
        let app = &app;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&session.client, app, "/settings/api-keys", &fields).await
        }
    };
    for (fields, says) in [
        (form("many", "", ""), "Submissions per visitor"),
        (form("5", "turnstile", ""), "challenge secret"),
        (form("5", "captcha", "s"), "providers offered"),
        (form("0", "", ""), "visitor rate limit per minute"),
    ] {
        let (status, html) = send(fields).await;
        assert_eq!(status, 422, "{says}");
        assert!(html.contains(says), "{says}: {html}");
    }
    let (status, html) = send(form("5", "turnstile", "0x4AAAAAAAsite-secret")).await;
    assert_eq!(status, 201, "{html}");
    assert!(html.contains("5 per visitor a minute"));
    assert!(html.contains("challenge: Cloudflare Turnstile"));
    assert!(!html.contains("0x4AAAAAAAsite-secret"));
    let keys = ciq_admin::keys::list_keys(&app.db, session.user)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "no refused form made a key");
    assert_eq!(keys[0].visitor_rate_limit_per_minute, Some(5));
    assert_eq!(keys[0].challenge.as_deref(), Some("turnstile"));
    app.stop().await;
}

/// Settings → Leads → Spam lists what was held back and why; "Not spam" moves a lead
/// into the list and records its `lead.created` now; delete erases it without a word;
/// another account's spam is not found.
async fn settings_release_or_delete_spam(backend: Backend) {
    use ciq_e2e::console::{get_html, post_form, signed_in};
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.webhooks.allow_private_networks = true;
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let session = signed_in(&app, "owner@acme.test", "/settings/leads/spam").await;
    let (hook, _) = ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        session.user,
        "https://hooks.example.com/in",
        &EventType::ALL,
        true,
    )
    .await
    .unwrap();
    let (_, key) = app
        .create_key_with(
            session.user,
            NewKey {
                rate_limit_per_minute: Some(1000),
                ..NewKey::default()
            },
        )
        .await;
    let mut ids = Vec::new();
    for name in ["Bot One", "Bot Two"] {
        let mut body = reference_curl_body();
        body["lead"]["name"] = json!(name);
        body["honeypot"] = json!("filled");
        let (status, answer) = app.post_json(CREATE, &key, &[], &body).await;
        assert_eq!(status, 201);
        ids.push(answer["lead"]["id"].as_str().unwrap().to_owned());
    }
    let (_, normal) = app
        .post_json(CREATE, &key, &[], &reference_curl_body())
        .await;
    let (status, html) = get_html(&session.client, &app, "/settings/leads/spam").await;
    assert_eq!(status, 200);
    assert!(html.contains("Bot One") && html.contains("Bot Two"));
    assert!(html.contains("hidden field was filled in"), "{html}");
    let (_, list) = get_html(&session.client, &app, "/settings/leads").await;
    assert!(!list.contains("Bot One") && list.contains("see the spam list"));
    let csrf = [("csrf", session.csrf.as_str())];
    let (status, html) = post_form(
        &session.client,
        &app,
        &format!("/settings/leads/{}/not-spam", ids[0]),
        &csrf,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("“Bot One” is not spam"));
    let (_, list) = get_html(&session.client, &app, "/settings/leads").await;
    assert!(list.contains("Bot One"));
    // Released once: a second time is refused by name; a normal lead is no spam.
    for id in [ids[0].as_str(), normal["lead"]["id"].as_str().unwrap()] {
        let path = format!("/settings/leads/{id}/not-spam");
        let (status, html) = post_form(&session.client, &app, &path, &csrf).await;
        assert_eq!(status, 422);
        assert!(html.contains("is not in the spam list"));
    }
    let (status, html) = post_form(
        &session.client,
        &app,
        &format!("/settings/leads/{}/delete", ids[1]),
        &csrf,
    )
    .await;
    assert_eq!((status, html.contains("Deleted “Bot Two”")), (200, true));
    // Another owner reaches none of it.
    let other = signed_in(&app, "other@acme.test", "/settings/leads/spam").await;
    let (status, _) = post_form(
        &other.client,
        &app,
        &format!("/settings/leads/{}/delete", ids[0]),
        &[("csrf", other.csrf.as_str())],
    )
    .await;
    assert_eq!(status, 404);
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let log = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
        .all(&app.db)
        .await
        .unwrap();
    let mut announced: Vec<String> = log.iter().map(|d| d.lead_id.to_string()).collect();
    announced.sort();
    let mut expected = vec![
        ids[0].clone(),
        normal["lead"]["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(
        announced, expected,
        "the released lead and the normal one, once each"
    );
    let released = log
        .iter()
        .find(|d| d.lead_id.to_string() == ids[0])
        .unwrap();
    let payload: Value = serde_json::from_str(&released.payload).unwrap();
    assert_eq!(payload["type"], "lead.created");
    assert_eq!(payload["data"]["lead"]["spam"], Value::Null);
    assert_ne!(payload["timestamp"], payload["data"]["lead"]["created_at"]);
    app.stop().await;
}

/// The account's block list, edited in Settings: a browser submission from a blocked
/// address, or from a blocked domain or its subdomains, is stored as spam
/// (`blocked_email`); a server key's lead is not judged by it; a list with a broken
/// entry is refused whole, what was typed shown again.
async fn the_block_list_holds_back_addresses_and_domains(backend: Backend) {
    use ciq_e2e::console::{get_html, post_form, signed_in};
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let session = signed_in(&app, "owner@acme.test", "/settings/leads/spam").await;
    let save = |list: &'static str| {
        let (session, app) = (&session, &app);
        async move {
            let form = [("csrf", session.csrf.as_str()), ("block_list", list)];
            post_form(
                &session.client,
                app,
                "/settings/leads/spam/block-list",
                &form,
            )
            .await
        }
    };
    let (status, html) = save("spammer@example.com\nhttps://bad.test").await;
    assert_eq!(status, 422);
    assert!(html.contains("“https://bad.test” is neither an email address nor a domain"));
    assert!(
        html.contains("spammer@example.com\nhttps://bad.test</textarea>"),
        "kept as typed"
    );
    assert!(
        ciq_leads::spam::block_list(&app.db, session.user)
            .await
            .unwrap()
            .entries()
            .is_empty()
    );
    let (status, html) = save("Spammer@Example.com, bad.test").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Block list saved (2 entries)"));
    let (_, html) = get_html(&session.client, &app, "/settings/leads/spam").await;
    assert!(
        html.contains("bad.test\nspammer@example.com</textarea>"),
        "sorted, lower case"
    );
    let (_, browser) = app
        .create_key_with(
            session.user,
            NewKey {
                allowed_origins: vec![SHOP.into()],
                ..NewKey::default()
            },
        )
        .await;
    let (_, reader) = app
        .create_key_with(
            session.user,
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    for (email, key, reason) in [
        ("spammer@example.com", &browser, Some("blocked_email")),
        ("x@eu.bad.test", &browser, Some("blocked_email")),
        ("jane@example.com", &browser, None),
        ("x@bad.test", &reader, None),
    ] {
        let mut body = reference_curl_body();
        body["lead"]["email"] = json!(email);
        let (status, _, answer) = submit(&app, CREATE, key, VISITOR, Some(SHOP), &body).await;
        let origin_free = (status, answer["lead"]["spam"].clone());
        if key == &reader {
            // A server key sends no Origin in real life; without one it is served.
            let (status, _, answer) = submit(&app, CREATE, key, VISITOR, None, &body).await;
            assert_eq!(status, 201);
            let stored = lead(&app, &reader, &answer["lead"]["id"]).await;
            assert_eq!(stored["spam"], Value::Null, "{email}");
            continue;
        }
        assert_eq!(origin_free, (201, Value::Null), "{email}");
        let stored = lead(&app, &reader, &answer["lead"]["id"]).await;
        assert_eq!(stored["spam"]["reason"].as_str(), reason, "{email}");
    }
    app.stop().await;
}
