//! A password link (`users reset-link`) as an owner uses it: the page names the account,
//! a refused password leaves the link working, a chosen one ends every session and the
//! link; a used, replaced or expired link (or one that never was) leads nowhere.

use ciq_e2e::console::{browser_like_client, get_html, hidden_csrf, owner, sign_in};
use ciq_e2e::{TestApp, on_every_backend};
use ciq_entity::password_reset;
use sea_orm::{ActiveValue::Set, EntityTrait, IntoActiveModel};
use secrecy::ExposeSecret;

on_every_backend!(a_reset_link_sets_a_password_once_and_ends_every_session);

async fn a_reset_link_sets_a_password_once_and_ends_every_session(app: TestApp) {
    let user = owner(&app, "owner@acme.test").await;
    // A session from before: the new password ends it.
    let before = browser_like_client();
    assert_eq!(
        sign_in(&app, &before, "owner@acme.test", ciq_e2e::console::PASSWORD)
            .await
            .status(),
        303
    );
    assert_eq!(get_html(&before, &app, "/settings/leads").await.0, 200);

    let (token, _) = ciq_admin::resets::issue(&app.db, user).await.unwrap();
    let path = format!("/reset-password/{}", token.expose_secret());
    let client = browser_like_client();
    let (status, page) = get_html(&client, &app, &path).await;
    assert_eq!(status, 200);
    assert!(page.contains("Choose a password") && page.contains("owner@acme.test"));
    let post = |form: Vec<(&'static str, String)>| {
        let (client, url) = (client.clone(), format!("{}{path}", app.base_url));
        async move {
            let resp = client.post(url).form(&form).send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, location, resp.text().await.unwrap())
        }
    };
    let csrf = hidden_csrf(&page);
    let form = |new: &str, repeat: &str, csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("new", new.to_owned()),
            ("repeat", repeat.to_owned()),
        ]
    };
    // Without the page's token: refused.
    let (status, _, _) = post(form("a new secret phrase", "a new secret phrase", "forged")).await;
    assert_eq!(status, 403);
    // Refused passwords leave the link working; each is named.
    let (status, _, page) = post(form("a new secret phrase", "another phrase", &csrf)).await;
    assert_eq!(status, 422);
    assert!(page.contains("The password and its repetition differ."));
    let csrf = hidden_csrf(&page);
    let (status, _, page) = post(form("short", "short", &csrf)).await;
    assert_eq!(status, 422);
    assert!(page.contains("Password: must be 10 to"), "{page}");
    let csrf = hidden_csrf(&page);
    // Chosen: to the sign-in page, which says so; every session is over.
    let (status, location, _) =
        post(form("a new secret phrase", "a new secret phrase", &csrf)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login?reset=1")));
    let (_, login) = get_html(&client, &app, "/login?reset=1").await;
    assert!(login.contains("Your password is set: sign in with it."));
    assert_eq!(
        get_html(&before, &app, "/settings/leads").await.0,
        303,
        "the old session ended"
    );
    let fresh = browser_like_client();
    assert_eq!(
        sign_in(&app, &fresh, "owner@acme.test", "a new secret phrase")
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in(
            &app,
            &browser_like_client(),
            "owner@acme.test",
            ciq_e2e::console::PASSWORD
        )
        .await
        .status(),
        401
    );
    // Used: the link leads nowhere now.
    let (status, page) = get_html(&client, &app, &path).await;
    assert_eq!(status, 404);
    assert!(page.contains("This link does not work"));

    // A newer link replaces an older one; an expired link and a made-up one lead nowhere.
    let (older, _) = ciq_admin::resets::issue(&app.db, user).await.unwrap();
    let (newer, _) = ciq_admin::resets::issue(&app.db, user).await.unwrap();
    for (token, status) in [(&older, 404), (&newer, 200)] {
        let path = format!("/reset-password/{}", token.expose_secret());
        assert_eq!(get_html(&client, &app, &path).await.0, status);
    }
    let row = ciq_entity::PasswordReset::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut row: password_reset::ActiveModel = row.into_active_model();
    row.expires_at = Set(chrono::Utc::now() - chrono::TimeDelta::seconds(1));
    ciq_entity::PasswordReset::update(row)
        .exec(&app.db)
        .await
        .unwrap();
    let path = format!("/reset-password/{}", newer.expose_secret());
    assert_eq!(get_html(&client, &app, &path).await.0, 404, "expired");
    assert_eq!(ciq_admin::resets::purge_expired(&app.db).await.unwrap(), 1);
    assert_eq!(
        get_html(&client, &app, "/reset-password/made-up").await.0,
        404
    );
}
