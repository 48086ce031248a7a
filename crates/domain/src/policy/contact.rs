//! Past contacts: the attempt history the caps and quiet periods are computed from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ruleset::{Counted, KeyPart};

/// How far an attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// Placed but never reached the line (busy signal, network error).
    NotConnected,
    /// Reached the line: rang out unanswered, or voicemail.
    Placed,
    /// Someone or something answered, without a conversation about the debt.
    Connected,
    /// A telephone conversation with the person (right-party contact).
    Conversation,
}

impl ContactKind {
    /// Whether a contact of this kind is counted by `what`.
    pub fn counted_by(self, what: Counted) -> bool {
        match what {
            Counted::Attempts => true,
            Counted::ConnectedAttempts => self != ContactKind::NotConnected,
            Counted::Conversations => self == ContactKind::Conversation,
        }
    }
}

/// One past (or, during schedule expansion, planned) contact with the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// The debt it was about, if known.
    pub debt: Option<String>,
    /// The number dialed (E.164), if known.
    pub number: Option<String>,
    /// How far it got.
    pub kind: ContactKind,
}

/// The call being decided on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The debt the call is about, if any.
    pub debt: Option<&'a str>,
    /// The number to be dialed (E.164).
    pub number: Option<&'a str>,
}

impl Contact {
    /// Whether this contact shares the cap key with `subject`. An unknown debt or number on
    /// either side matches (conservative: it might be the same one).
    pub fn same_key(&self, subject: &Subject<'_>, key: &[KeyPart]) -> bool {
        KeyMatch::new(subject, key).matches(self)
    }
}

/// The parts of a subject a cap key compares, resolved once for many contacts.
#[derive(Debug, Clone, Copy)]
pub struct KeyMatch<'a> {
    debt: Option<&'a str>,
    number: Option<&'a str>,
}

impl<'a> KeyMatch<'a> {
    /// What `key` compares of `subject` (a part the key lacks, or the subject does not know,
    /// compares nothing).
    pub fn new(subject: &Subject<'a>, key: &[KeyPart]) -> Self {
        KeyMatch {
            debt: subject.debt.filter(|_| key.contains(&KeyPart::Debt)),
            number: subject.number.filter(|_| key.contains(&KeyPart::Number)),
        }
    }

    /// Whether `contact` shares the key.
    pub fn matches(&self, contact: &Contact) -> bool {
        matches_opt(contact.debt.as_deref(), self.debt)
            && matches_opt(contact.number.as_deref(), self.number)
    }
}

fn matches_opt(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_predicates() {
        assert!(ContactKind::NotConnected.counted_by(Counted::Attempts));
        assert!(!ContactKind::NotConnected.counted_by(Counted::ConnectedAttempts));
        assert!(ContactKind::Placed.counted_by(Counted::ConnectedAttempts));
        assert!(!ContactKind::Connected.counted_by(Counted::Conversations));
        assert!(ContactKind::Conversation.counted_by(Counted::Conversations));
    }

    #[test]
    fn keys_match_per_debt_and_unknown_matches_everything() {
        let c = Contact {
            at: "2026-01-05T15:00:00Z".parse().unwrap(),
            debt: Some("L1".into()),
            number: None,
            kind: ContactKind::Placed,
        };
        let key = [KeyPart::Person, KeyPart::Debt];
        assert!(c.same_key(
            &Subject {
                debt: Some("L1"),
                number: None
            },
            &key
        ));
        assert!(!c.same_key(
            &Subject {
                debt: Some("L2"),
                number: None
            },
            &key
        ));
        assert!(c.same_key(
            &Subject {
                debt: None,
                number: None
            },
            &key
        ));
        assert!(c.same_key(
            &Subject {
                debt: Some("L2"),
                number: None
            },
            &[KeyPart::Person]
        ));
    }
}
