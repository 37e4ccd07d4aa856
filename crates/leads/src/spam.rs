//! Spam quarantine: why a lead is judged spam, the cheap rules every browser submission
//! passes through, and the verdict a stored lead carries.
//!
//! A spam lead is stored (nothing a visitor sends is lost, and its owner can release
//! it), but it is out of lists, exports and charts, and no event of any kind exists for
//! it until its owner says "Not spam".

use chrono::{DateTime, Utc};

use crate::rules::NewLead;

/// Why a lead was quarantined. Stored as [`SpamReason::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpamReason {
    /// The form's hidden honeypot input was filled in (people never see it; bots do).
    Honeypot,
    /// The name holds a URL.
    LinkInName,
    /// The description holds more than [`MAX_DESCRIPTION_LINKS`] URLs.
    LinksInDescription,
    /// The email address, or its domain, is on the account's block list.
    BlockedEmail,
    /// The challenge provider could not be reached to verify the visitor's token.
    ChallengeUnverified,
}

impl SpamReason {
    /// Every reason.
    pub const ALL: [SpamReason; 5] = [
        Self::Honeypot,
        Self::LinkInName,
        Self::LinksInDescription,
        Self::BlockedEmail,
        Self::ChallengeUnverified,
    ];

    /// The name the lead object and the store carry.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Honeypot => "honeypot",
            Self::LinkInName => "link_in_name",
            Self::LinksInDescription => "links_in_description",
            Self::BlockedEmail => "blocked_email",
            Self::ChallengeUnverified => "challenge_unverified",
        }
    }

    /// The reason named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// What the reason means, in words an owner reads in Settings.
    pub const fn explained(self) -> &'static str {
        match self {
            Self::Honeypot => "the form's hidden field was filled in, as bots do",
            Self::LinkInName => "the name holds a link",
            Self::LinksInDescription => "the description holds more than 3 links",
            Self::BlockedEmail => "the email address is on your block list",
            Self::ChallengeUnverified => {
                "the challenge provider could not be reached to check the visitor"
            }
        }
    }
}

/// More URLs than this in a description make the lead spam.
pub const MAX_DESCRIPTION_LINKS: usize = 3;

/// A stored lead's spam verdict: why, and when it was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spam {
    /// Why (a [`SpamReason`]'s name; kept as stored, so an older gateway's reason reads).
    pub reason: String,
    /// When the lead was judged spam.
    pub at: DateTime<Utc>,
}

impl serde::Serialize for Spam {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut object = s.serialize_struct("Spam", 2)?;
        object.serialize_field("reason", &self.reason)?;
        object.serialize_field("at", &crate::time::Millis(self.at))?;
        object.end()
    }
}

/// What a browser submission brings beside its lead that the rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals<'a> {
    /// The body's top-level `honeypot` (the form's hidden input).
    pub honeypot: Option<&'a str>,
    /// The account's block list.
    pub blocked: Option<&'a BlockList>,
}

/// Most entries an account's block list holds.
pub const MAX_BLOCK_LIST: usize = 500;

/// An account's block list: email addresses, and domains (each with its subdomains),
/// whose browser submissions are spam (`blocked_email`). Entries are lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockList {
    entries: Vec<String>,
}

impl BlockList {
    /// The list of these stored entries.
    pub fn of(entries: Vec<String>) -> Self {
        Self { entries }
    }

    /// Its entries, in order.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Whether `email` is on it: the address itself, or its domain or a domain above it.
    pub fn blocks(&self, email: &str) -> bool {
        let email = email.trim().to_ascii_lowercase();
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
        self.entries.iter().any(|entry| {
            if entry.contains('@') {
                *entry == email
            } else {
                domain == entry
                    || domain
                        .strip_suffix(entry.as_str())
                        .is_some_and(|above| above.ends_with('.'))
            }
        })
    }

    /// The entries an owner typed (one per line, or separated by spaces or commas),
    /// checked and normalised (lower case, duplicates dropped), or every broken one
    /// named: each must be an email address or a domain name (`example.com`, no scheme,
    /// path or wildcard), at most [`MAX_BLOCK_LIST`] of them.
    pub fn parse(typed: &str) -> Result<Self, Vec<String>> {
        let mut entries: Vec<String> = Vec::new();
        let mut broken = Vec::new();
        for word in typed
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
        {
            let entry = word.to_ascii_lowercase();
            let ok = match entry.rsplit_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && is_domain(domain)
                        && ciq_entity::email::is_valid_email(&entry)
                }
                None => is_domain(&entry),
            };
            if !ok {
                broken.push(format!(
                    "“{word}” is neither an email address nor a domain (like example.com)"
                ));
            } else if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        if entries.len() > MAX_BLOCK_LIST {
            broken.push(format!("at most {MAX_BLOCK_LIST} entries"));
        }
        if broken.is_empty() {
            Ok(Self { entries })
        } else {
            Err(broken)
        }
    }
}

/// A domain name: labels of letters, digits and inner hyphens, at least two, at most
/// 253 characters.
fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `user_id`'s block list.
pub async fn block_list(
    db: &impl sea_orm::ConnectionTrait,
    user_id: uuid::Uuid,
) -> Result<BlockList, sea_orm::DbErr> {
    use ciq_entity::AccountScoped;
    use ciq_entity::spam_block;
    use sea_orm::{QueryOrder, QuerySelect};
    let entries = spam_block::Entity::in_account(user_id)
        .select_only()
        .column(spam_block::Column::Entry)
        .order_by_asc(spam_block::Column::Entry)
        .into_tuple::<String>()
        .all(db)
        .await?;
    Ok(BlockList { entries })
}

/// Replaces `user_id`'s block list with `list`, in one transaction.
pub async fn set_block_list(
    db: &ciq_store::Db,
    user_id: uuid::Uuid,
    list: &BlockList,
) -> Result<(), sea_orm::DbErr> {
    use ciq_entity::AccountScoped;
    use ciq_entity::spam_block;
    use sea_orm::{EntityTrait, Set, TransactionTrait};
    let txn = db.begin().await?;
    spam_block::Entity::delete_in_account(user_id)
        .exec(&txn)
        .await?;
    let now = ciq_entity::now();
    if !list.entries.is_empty() {
        spam_block::Entity::insert_many(list.entries.iter().map(|entry| spam_block::ActiveModel {
            user_id: Set(user_id),
            entry: Set(entry.clone()),
            created_at: Set(now),
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await
}

impl Signals<'_> {
    /// Whether the honeypot holds anything but white space.
    pub fn trapped(&self) -> bool {
        self.honeypot.is_some_and(|h| !h.trim().is_empty())
    }
}

/// The first rule `lead` breaks, if any: the honeypot, then a link in the name, then
/// links in the description, then the block list (a browser submission passes through
/// all of them).
pub fn judge(lead: &NewLead, signals: Signals<'_>) -> Option<SpamReason> {
    if signals.trapped() {
        return Some(SpamReason::Honeypot);
    }
    if links(&lead.name) > 0 {
        return Some(SpamReason::LinkInName);
    }
    if lead
        .description
        .as_deref()
        .is_some_and(|d| links(d) > MAX_DESCRIPTION_LINKS)
    {
        return Some(SpamReason::LinksInDescription);
    }
    if signals.blocked.is_some_and(|list| list.blocks(&lead.email)) {
        return Some(SpamReason::BlockedEmail);
    }
    None
}

/// How many URLs `text` holds: `http://`, `https://` or `www.` (any case) followed by
/// a character that is not white space, counted once per run of non-space characters
/// (what `(?i)(https?://|www\.)\S+` finds).
pub fn links(text: &str) -> usize {
    text.split_whitespace()
        .filter(|word| {
            let word = word.to_ascii_lowercase();
            ["http://", "https://", "www."].iter().any(|start| {
                word.match_indices(start)
                    .any(|(at, _)| word.len() > at + start.len())
            })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(name: &str, description: Option<&str>) -> NewLead {
        let body = serde_json::json!({"lead": {
            "name": name, "email": "jane@example.com", "source": "Website Form",
            "industry": "Technology", "description": description,
        }});
        crate::rules::validate_submission(&body).unwrap()
    }

    #[test]
    fn links_are_counted_as_the_rule_states() {
        assert_eq!(links("see https://a.example and WWW.b.example"), 2);
        assert_eq!(links("http://"), 0, "a scheme alone is no link");
        assert_eq!(links("www."), 0);
        assert_eq!(links("https://a.example/https://b.example"), 1);
        assert_eq!(links("Jane http:x www"), 0);
        assert_eq!(links("xhttps://a"), 1);
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let honeypot = Signals {
            honeypot: Some("filled"),
            ..Signals::default()
        };
        assert_eq!(
            judge(&lead("Jane", None), honeypot),
            Some(SpamReason::Honeypot)
        );
        let blank = Signals {
            honeypot: Some("  "),
            ..Signals::default()
        };
        assert_eq!(judge(&lead("Jane", None), blank), None);
        assert_eq!(
            judge(
                &lead("Cheap pills www.pills.example", None),
                Signals::default()
            ),
            Some(SpamReason::LinkInName)
        );
        let three = "a https://1.example b https://2.example c https://3.example";
        assert_eq!(judge(&lead("Jane", Some(three)), Signals::default()), None);
        let four = format!("{three} http://4.example");
        assert_eq!(
            judge(&lead("Jane", Some(&four)), Signals::default()),
            Some(SpamReason::LinksInDescription)
        );
    }

    #[test]
    fn the_block_list_takes_addresses_and_domains_with_their_subdomains() {
        let list = BlockList::parse("Spammer@Example.com\nbad.test, bad.test  mail.ru").unwrap();
        assert_eq!(
            list.entries(),
            ["spammer@example.com", "bad.test", "mail.ru"]
        );
        assert!(list.blocks("spammer@example.com"));
        assert!(list.blocks(" SPAMMER@example.COM "));
        assert!(!list.blocks("jane@example.com"));
        assert!(list.blocks("x@bad.test") && list.blocks("x@eu.bad.test"));
        assert!(!list.blocks("x@notbad.test") && !list.blocks("x@bad.test.com"));
        assert!(list.blocks("ivan@mail.ru"));
        let lead = lead("Jane", None);
        let blocked = BlockList::parse("example.com").unwrap();
        let signals = Signals {
            blocked: Some(&blocked),
            ..Signals::default()
        };
        assert_eq!(judge(&lead, signals), Some(SpamReason::BlockedEmail));
        let broken =
            BlockList::parse("https://bad.test *.bad.test localhost @x.com ok.test").unwrap_err();
        assert_eq!(broken.len(), 4, "{broken:?}");
        assert!(broken[0].contains("https://bad.test"));
    }

    #[test]
    fn reasons_round_trip_by_name() {
        for reason in SpamReason::ALL {
            assert_eq!(SpamReason::from_name(reason.as_str()), Some(reason));
        }
    }
}
