//! The pages before and around a session: the home page, the sign-in form, the
//! sign-out buttons.

use maud::{Markup, html};

use super::{Section, layout};

/// `GET /`: what this server is and where to go.
pub fn home() -> Markup {
    layout(
        "ConvertIQ lead gateway",
        Section::None,
        html! {},
        html! {
            section.card.narrow.stack {
                h1 { "ConvertIQ lead gateway" }
                p { "This server takes leads from web forms, CRMs and scripts into ConvertIQ accounts." }
                h2 { "For developers" }
                ul {
                    li { a href="/docs" { "API documentation" } " — create leads with your API key (Swagger UI, with Try it out)." }
                    li { a href=(ciq_http::routes::EMBED_FORM) { "The web form script" } " — make a plain HTML form send its leads here (two lines of HTML)." }
                }
                h2 { "For account owners" }
                ul {
                    li { a href="/settings/api-keys" { "API keys" } " — generate, roll and revoke the keys your forms and integrations use." }
                    li { a href="/settings/leads" { "Leads" } " — see, filter, export and import the leads of your account, and the spam held back." }
                    li { a href="/settings/webhooks" { "Webhooks" } " — have new and changed leads pushed to your CRM or automation." }
                }
                p.muted { "Settings need an account: ask the operator of this server for one (they set your password with the command line)." }
            }
        },
    )
}

/// The sign-in form.
/// The sign-in page: `notice` says what went wrong, `done` what went right (a password
/// just chosen).
pub fn login(
    csrf: &str,
    notice: Option<&str>,
    done: Option<&str>,
    email: &str,
    back: Option<&str>,
) -> Markup {
    layout(
        "Sign in",
        Section::None,
        html! {},
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                p.lead { "Manage the API keys, leads and webhooks of your ConvertIQ account." }
                p.muted { "No account yet, or forgot your password? The operator of this server gives access: ask them to create your account, or to send you a link to choose a new password." }
                @if let Some(notice) = notice {
                    div.error role="alert" { (notice) }
                }
                @if let Some(done) = done {
                    div.notice role="status" { (done) }
                }
                form.stack method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    @if let Some(back) = back { input type="hidden" name="next" value=(back); }
                    div {
                        label for="email" { "Email" }
                        input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                    }
                    div {
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The page of a password link: the owner chooses a password (twice), `problem` says
/// what was wrong with the last try.
pub fn reset_password(csrf: &str, email: &str, action: &str, problem: Option<&str>) -> Markup {
    layout(
        "Choose a password",
        Section::None,
        html! {},
        html! {
            section.card.narrow {
                h1 { "Choose a password" }
                p.lead { "For " strong { (email) } ". This link works once, and for an hour after it was made." }
                @if let Some(problem) = problem {
                    div.error role="alert" { (problem) }
                }
                form.stack method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="username" value=(email) autocomplete="username" hidden;
                    div {
                        label for="new" { "New password" }
                        input #new type="password" name="new" autocomplete="new-password" required aria-describedby="new-help" autofocus;
                        p.muted #new-help { "At least " (ciq_admin::users::MIN_PASSWORD_LEN) " characters." }
                    }
                    div {
                        label for="repeat" { "New password again" }
                        input #repeat type="password" name="repeat" autocomplete="new-password" required;
                    }
                    button type="submit" { "Set password" }
                }
            }
        },
    )
}

/// The two sign-out buttons of a signed-in page's header (this session; every session).
pub fn sign_out(csrf: &str) -> Markup {
    html! {
        form method="post" action="/logout" {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" { "Sign out" }
        }
        form method="post" action="/logout/everywhere" {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" title="Ends every session of this account, on every device" { "Sign out everywhere" }
        }
    }
}

/// Settings → Account: who is signed in, and the form that changes their password.
/// `problem`: what was wrong with the last try; `changed`: the password was just
/// changed.
pub fn account(
    user: &ciq_entity::user::Model,
    csrf: &str,
    problem: Option<&str>,
    changed: bool,
) -> Markup {
    layout(
        "Account",
        Section::Account,
        super::signed_in_header(user, csrf),
        html! {
            h1 { "Account" }
            p.lead { "Signed in as " strong { (user.email) } "." }
            @if changed {
                div.notice role="status" { "Your password was changed. Every other session of this account was signed out." }
            }
            @if let Some(problem) = problem {
                div.error role="alert" { (problem) }
            }
            section.card.stack aria-labelledby="password-title" {
                h2 #password-title { "Change your password" }
                p.muted { "Every other session of this account (other browsers and devices) is signed out when it changes; this one stays signed in." }
                form.stack method="post" action=(ciq_http::routes::SETTINGS_ACCOUNT) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="username" value=(user.email) autocomplete="username" hidden;
                    div {
                        label for="current" { "Current password" }
                        input #current type="password" name="current" autocomplete="current-password" required;
                    }
                    div {
                        label for="new" { "New password" }
                        input #new type="password" name="new" autocomplete="new-password" required
                            minlength=(ciq_admin::users::MIN_PASSWORD_LEN) maxlength=(ciq_admin::users::MAX_PASSWORD_LEN)
                            aria-describedby="new-rule";
                        p.muted #new-rule { (ciq_admin::users::MIN_PASSWORD_LEN) " to " (ciq_admin::users::MAX_PASSWORD_LEN) " characters." }
                    }
                    div {
                        label for="repeat" { "New password again" }
                        input #repeat type="password" name="repeat" autocomplete="new-password" required;
                    }
                    div { button type="submit" { "Change password" } }
                }
            }
        },
    )
}
