//! Where a submitted lead meets the spam rules, and what its submitter is told.

use ciq_leads::spam::{self, Signals};
use ciq_leads::{NewLead, SpamReason};

use crate::auth::Caller;

/// Why the lead `caller` submits is spam, if it is: any create or batch whose
/// `honeypot` is filled in; for a browser submission also the content rules (a link in
/// the name, more than 3 in the description), then a challenge that could not be
/// verified.
pub fn verdict(caller: &Caller, lead: &NewLead, honeypot: Option<&str>) -> Option<SpamReason> {
    let signals = Signals { honeypot };
    if caller.visitor.is_some() {
        spam::judge(lead, signals).or(caller
            .challenge_unverified
            .then_some(SpamReason::ChallengeUnverified))
    } else {
        signals.trapped().then_some(SpamReason::Honeypot)
    }
}

/// A stored lead as its submitter sees it in a create or batch answer: exactly as a
/// normal lead (`"spam": null`), so a bot learns nothing from the answer.
pub fn as_submitted(lead: ciq_leads::Lead) -> super::Lead {
    super::Lead::from(ciq_leads::Lead { spam: None, ..lead })
}

/// Counts the leads of a browser submission that were stored, by what they were.
pub fn count_stored<'a>(caller: &Caller, stored: impl IntoIterator<Item = &'a ciq_leads::Lead>) {
    if caller.visitor.is_none() {
        return;
    }
    let (mut accepted, mut quarantined) = (0, 0);
    for lead in stored {
        if lead.spam.is_some() {
            quarantined += 1;
        } else {
            accepted += 1;
        }
    }
    ciq_http::metrics::record_browser_submissions("accepted", accepted);
    ciq_http::metrics::record_browser_submissions("spam", quarantined);
}
