//! Where a submitted lead meets the spam rules, and what its submitter is told.

use std::sync::Arc;

use ciq_leads::spam::{self, BlockList, Signals};
use ciq_leads::{NewLead, SpamReason};

use crate::auth::Caller;
use crate::state::ApiState;

/// The block list of the account a browser submission goes to (`None` for any other
/// request, which the block list does not apply to). Kept a few seconds per instance;
/// one that cannot be read counts as empty (the lead itself will meet the outage).
pub async fn block_list(state: &ApiState, caller: &Caller) -> Option<Arc<BlockList>> {
    caller.visitor.as_ref()?;
    let user_id = caller.key.user_id;
    if state.leads.writer().breaker().is_open() {
        // The store is gone: what this instance holds, or nothing (a spooled lead
        // meets the block list again when it is drained).
        return Some(state.block_lists.get(&user_id).await.unwrap_or_default());
    }
    // Boxed: a server key's create never gets here, and would otherwise carry this
    // future's state (a cache load, a store read) inline while it waits.
    let loaded = Box::pin(state.block_lists.try_get_with(user_id, async {
        spam::block_list(&state.db, user_id).await.map(Arc::new)
    }))
    .await;
    Some(loaded.unwrap_or_default())
}

/// Readies a lead `caller` submits for the store: whether it is spam (see [`verdict`])
/// and, for a browser submission, the visitor's address on its consent.
pub fn receive(
    caller: &Caller,
    lead: &mut NewLead,
    honeypot: Option<&str>,
    blocked: Option<&BlockList>,
) {
    lead.spam = verdict(caller, lead, honeypot, blocked);
    if let Some(consent) = &mut lead.consent {
        consent.ip.clone_from(&caller.address);
    }
}

/// Why the lead `caller` submits is spam, if it is: any create or batch whose
/// `honeypot` is filled in; for a browser submission also the content rules (a link in
/// the name, more than 3 in the description, an address on the account's `blocked`
/// list), then a challenge that could not be verified.
fn verdict(
    caller: &Caller,
    lead: &NewLead,
    honeypot: Option<&str>,
    blocked: Option<&BlockList>,
) -> Option<SpamReason> {
    let signals = Signals { honeypot, blocked };
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

/// Appends `lead` to `out` as JSON, as [`as_submitted`] shows it (its spam verdict
/// hidden): a created lead in a create's or a batch's answer.
pub fn write_as_submitted(lead: &ciq_leads::Lead, out: &mut Vec<u8>) {
    if lead.spam.is_some() {
        ciq_leads::Lead {
            spam: None,
            ..lead.clone()
        }
        .write_json(out);
    } else {
        lead.write_json(out);
    }
}

/// Counts the leads `caller` stored, by what they were: in the key's usage, and for a
/// browser submission in the metrics.
pub fn count_stored<'a>(
    state: &ApiState,
    caller: &Caller,
    stored: impl IntoIterator<Item = &'a ciq_leads::Lead>,
) {
    let (mut accepted, mut quarantined) = (0, 0);
    for lead in stored {
        if lead.spam.is_some() {
            quarantined += 1;
        } else {
            accepted += 1;
        }
    }
    let key = ciq_usage::KeyRef {
        key_id: caller.key.key_id,
        user_id: caller.key.user_id,
    };
    state
        .usage
        .leads(key, chrono::Utc::now(), accepted + quarantined, quarantined);
    if caller.visitor.is_some() {
        ciq_http::metrics::record_browser_submissions("accepted", accepted);
        ciq_http::metrics::record_browser_submissions("spam", quarantined);
    }
}
