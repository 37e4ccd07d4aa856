//! The Settings pages as a browser uses them: an owner with a password, a signed-in
//! client with its cookie jar, the CSRF token of a page's form, a page's status and HTML.
//! Every test of a Settings page starts here instead of in another test's module.

/// The password every test owner signs in with.
pub const PASSWORD: &str = "correct horse battery";

/// A client that keeps cookies and follows no redirect, as a browser's form posts need.
pub fn browser_like_client() -> reqwest::Client {
    crate::http_client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token a page's form carries.
pub fn hidden_csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// A new account owner `email` whose password is [`PASSWORD`]; their id.
pub async fn owner(app: &crate::TestApp, email: &str) -> uuid::Uuid {
    let id = app.create_user(email).await;
    ciq_admin::users::set_password(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        id,
        &PASSWORD.into(),
    )
    .await
    .unwrap();
    id
}

/// Signs `email` in through the sign-in page with `client` (its cookie jar keeps the
/// session); the answer to the form.
pub async fn sign_in(
    app: &crate::TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = client
        .get(format!("{}/login", app.base_url))
        .send()
        .await
        .unwrap();
    let csrf = hidden_csrf(&page.text().await.unwrap());
    client
        .post(format!("{}/login", app.base_url))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// The sign-in form of owner@acme.test posted by a client without a cookie jar: the
/// login page's CSRF cookie sent by hand; `over_tls` as a TLS-terminating proxy says.
pub async fn post_sign_in(
    app: &crate::TestApp,
    client: &reqwest::Client,
    csrf_cookie: &str,
    csrf: &str,
    over_tls: bool,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{}/login", app.base_url))
        .header("Cookie", csrf_cookie);
    if over_tls {
        req = req.header("X-Forwarded-Proto", "https");
    }
    req.form(&[
        ("email", "owner@acme.test"),
        ("password", PASSWORD),
        ("csrf", csrf),
    ])
    .send()
    .await
    .unwrap()
}

/// `GET path` with `client`'s cookies: the status and the HTML.
pub async fn get_html(client: &reqwest::Client, app: &crate::TestApp, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("{}{path}", app.base_url))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `POST path` as a form with `client`'s cookies: the status and the body.
pub async fn post_form(
    client: &reqwest::Client,
    app: &crate::TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let resp = client
        .post(format!("{}{path}", app.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// An owner signed in, as a test of a Settings page starts: their id, a client whose
/// cookie jar holds the session, and the session's CSRF token (read from a page).
pub struct Session {
    /// The owner's id.
    pub user: uuid::Uuid,
    /// Sends the session cookie.
    pub client: reqwest::Client,
    /// What every form of the session carries.
    pub csrf: String,
}

/// A new owner `email`, signed in through the sign-in page (asserted: 303), with the
/// CSRF token of `page`.
pub async fn signed_in(app: &crate::TestApp, email: &str, page: &str) -> Session {
    let user = owner(app, email).await;
    let client = browser_like_client();
    expect_status(sign_in(app, &client, email, PASSWORD).await, 303).await;
    let (status, html) = get_html(&client, app, page).await;
    assert_eq!(status, 200, "{page} for a signed-in owner: {html}");
    Session {
        user,
        client,
        csrf: hidden_csrf(&html),
    }
}

/// `resp`'s body, once its status is asserted to be `status` (the body shown when not).
pub async fn expect_status(resp: reqwest::Response, status: u16) -> String {
    let got = resp.status().as_u16();
    let url = resp.url().to_string();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "{url}: {body}");
    body
}
