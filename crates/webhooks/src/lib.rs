//! Webhooks: events pushed to the account owner's endpoints, signed (Standard
//! Webhooks), durable and retried. Nothing here knows what an event is about: a domain
//! (ciq-leads) hands the [`outbox`] events with a type, an account, a subject, an opaque
//! payload and attributes, and names the event types endpoints may subscribe to.
//!
//! - [`secret`]: signing secrets and the signature (sealed at rest by
//!   [`ciq_store::secret::SecretBox`]).
//! - [`endpoints`]: an account's endpoints in the store.
//! - [`filter`]: which events of its types an endpoint receives, by their attributes.
//! - [`outbox`]: events, the one fan-out that turns them into delivery rows in the
//!   transaction of the change, and the batch rows a domain writes for later fan-out.
//! - [`address`]: which destinations may be reached (public addresses only, checked
//!   again at connect time).
//! - [`delivery`]: the workers of every instance that claim due deliveries under a lease,
//!   send them and schedule the retries.

pub mod address;
pub mod delivery;
pub mod endpoints;
pub mod filter;
pub mod outbox;
pub mod secret;

use std::time::Duration;

use rustls::pki_types::CertificateDer;

/// How webhooks are delivered (configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Waits before each retry: after the first failed attempt, the second, …; when they
    /// are used up the delivery has failed.
    pub retry_schedule: Vec<Duration>,
    /// Whether destinations on loopback, private, link-local and similar networks may
    /// be reached (local development and tests only), and `http://` with them.
    pub allow_private_networks: bool,
    /// How long a claimed delivery stays with its instance (longer than an attempt).
    pub lease: Duration,
    /// An endpoint whose every delivery failed for this long is disabled.
    pub disable_after: Duration,
    /// Longest wait for a receiver's answer.
    pub attempt_timeout: Duration,
    /// Whether this instance runs delivery workers (an operator may keep them off the
    /// instances that serve the API and run them on instances of their own).
    pub deliver: bool,
    /// Certificate authorities trusted for receivers besides the system's (a private CA
    /// of the operator's); see [`read_roots`].
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// The retry schedule of DESIGN.md: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_RETRY_SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];
/// How long a claimed delivery stays with its instance.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// An endpoint failing this long is disabled (5 days).
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// Longest wait for a receiver.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_schedule: DEFAULT_RETRY_SCHEDULE
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            allow_private_networks: false,
            lease: DEFAULT_LEASE,
            disable_after: DEFAULT_DISABLE_AFTER,
            attempt_timeout: ATTEMPT_TIMEOUT,
            deliver: true,
            extra_roots: Vec::new(),
        }
    }
}

/// The certificates of a PEM file (`CIQ_WEBHOOK_CA_FILE`): the authorities a receiver's
/// certificate may chain to besides the system's. A file with none is refused, so a
/// wrong path or format is found at start, not at the first delivery.
pub fn read_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if roots.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(roots)
}

/// Parses a retry schedule: comma-separated seconds (`5,300,1800`), at least one.
pub fn parse_retry_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let steps: Result<Vec<Duration>, String> = text
        .split(',')
        .map(|step| {
            step.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{step:?} is not a whole number of seconds"))
        })
        .collect();
    match steps {
        Ok(steps) if steps.is_empty() => Err("the schedule needs at least one wait".into()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_comma_separated_seconds() {
        assert_eq!(
            parse_retry_schedule("1, 2,30").unwrap(),
            [1, 2, 30].map(Duration::from_secs)
        );
        assert!(parse_retry_schedule("").is_err());
        assert!(
            parse_retry_schedule("5,soon")
                .unwrap_err()
                .contains("\"soon\"")
        );
        assert_eq!(
            WebhookSettings::default().retry_schedule.len(),
            DEFAULT_RETRY_SCHEDULE.len()
        );
    }
}
