//! Server-side verification of a browser submission's challenge token with the key's
//! provider (Cloudflare Turnstile, hCaptcha, Google reCAPTCHA): their siteverify, a form
//! POST of `secret`, `response` and `remoteip` answered with JSON `{"success": …}`.
//! Every token is asked about once (providers refuse a token used twice; nothing is
//! cached), within [`VERIFY_TIMEOUT`].

use std::time::Duration;

use ciq_admin::ChallengeProvider;
use ciq_admin::challenge::RECAPTCHA_MIN_SCORE;
use secrecy::{ExposeSecret, SecretString};

/// The longest a provider may take to answer before the submission is taken as
/// unverified (stored as spam, never lost).
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest token sent on to a provider (Turnstile's are up to 2048 characters).
pub const MAX_TOKEN_LEN: usize = 4096;

/// What a provider said of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A person passed the challenge.
    Passed,
    /// The provider refused the token (wrong, expired, used before, or a reCAPTCHA v3
    /// score under [`RECAPTCHA_MIN_SCORE`]), or none was sent.
    Refused,
    /// The provider could not be asked, or did not answer as documented (why, for the
    /// log).
    Unreachable(String),
}

/// Asks the providers' siteverify endpoints (or one local stand-in for all of them).
#[derive(Debug, Clone)]
pub struct ChallengeVerifier {
    client: reqwest::Client,
    url_override: Option<String>,
}

impl ChallengeVerifier {
    /// A verifier asking each provider at its documented URL, or every provider at
    /// `url_override` (`CIQ_CHALLENGE_VERIFY_URL`: a local fake in tests, a proxy).
    pub fn new(url_override: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(VERIFY_TIMEOUT)
            .connect_timeout(VERIFY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ConvertIQ-Gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        Self {
            client,
            url_override,
        }
    }

    /// The provider's verdict on `token`, sent with the site's `secret` and the
    /// visitor's address `remote_ip`.
    pub async fn verify(
        &self,
        provider: ChallengeProvider,
        secret: &SecretString,
        token: &str,
        remote_ip: &str,
    ) -> Verdict {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Verdict::Refused;
        }
        let url = self
            .url_override
            .as_deref()
            .unwrap_or(provider.verify_url());
        let form = [
            ("secret", secret.expose_secret()),
            ("response", token),
            ("remoteip", remote_ip),
        ];
        let answer = match self.client.post(url).form(&form).send().await {
            Ok(answer) => answer,
            Err(err) => return Verdict::Unreachable(format!("{}: {err}", provider.as_str())),
        };
        let status = answer.status();
        if !status.is_success() {
            return Verdict::Unreachable(format!("{} answered {status}", provider.as_str()));
        }
        match answer.json::<Siteverify>().await {
            Ok(said) => said.verdict(),
            Err(err) => Verdict::Unreachable(format!(
                "{}: not a siteverify answer: {err}",
                provider.as_str()
            )),
        }
    }
}

/// The part of a siteverify answer that decides (every provider's has `success`;
/// reCAPTCHA v3's a `score`; the rest, such as `error-codes` and `hostname`, is
/// ignored).
#[derive(Debug, serde::Deserialize)]
struct Siteverify {
    success: bool,
    #[serde(default)]
    score: Option<f64>,
}

impl Siteverify {
    fn verdict(&self) -> Verdict {
        let human = self.success && self.score.is_none_or(|score| score >= RECAPTCHA_MIN_SCORE);
        if human {
            Verdict::Passed
        } else {
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(json: &str) -> Verdict {
        serde_json::from_str::<Siteverify>(json).unwrap().verdict()
    }

    #[test]
    fn answers_are_read_as_each_provider_documents_them() {
        // Turnstile and hCaptcha: success with extra fields.
        let turnstile = r#"{"success": true, "challenge_ts": "2026-12-04T20:00:00.000Z",
            "hostname": "shop.example", "error-codes": [], "action": "", "cdata": ""}"#;
        assert_eq!(verdict(turnstile), Verdict::Passed);
        let refused = r#"{"success": false, "error-codes": ["invalid-input-response"]}"#;
        assert_eq!(verdict(refused), Verdict::Refused);
        // reCAPTCHA v3: a score under 0.5 is a bot.
        assert_eq!(
            verdict(r#"{"success": true, "score": 0.9}"#),
            Verdict::Passed
        );
        assert_eq!(
            verdict(r#"{"success": true, "score": 0.5}"#),
            Verdict::Passed
        );
        assert_eq!(
            verdict(r#"{"success": true, "score": 0.3}"#),
            Verdict::Refused
        );
    }
}
