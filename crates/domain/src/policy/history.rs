//! A customer's contact history prepared for repeated decisions about one subject (debt and
//! number): sorted by time, each contact's local date precomputed in every candidate zone,
//! and for every cap and quiet period the contacts it counts already picked out, so a check
//! is a binary search instead of a scan or a time-zone conversion.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::contact::{Contact, KeyMatch, Subject};
use super::local::local_date;
use super::ruleset::{CapRule, CooldownRule};

/// An instant as nanoseconds since the Unix epoch: exact, and far cheaper to compare and
/// offset than `DateTime` arithmetic on the decision hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nanos(i128);

impl Nanos {
    /// The instant `t`.
    pub fn of(t: DateTime<Utc>) -> Self {
        Nanos(i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()))
    }

    /// `self - d`.
    pub fn minus(self, d: Duration) -> Self {
        Nanos(self.0 - span(d))
    }

    /// `self + d`.
    pub fn plus(self, d: Duration) -> Self {
        Nanos(self.0 + span(d))
    }
}

fn span(d: Duration) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

/// Contacts sorted by instant, with local dates per candidate zone and, per rule, the
/// indices of the contacts the rule counts. Built by `Prepared::history`.
#[derive(Debug, Clone)]
pub struct History<'a> {
    zones: &'a [Tz],
    subject: Subject<'a>,
    contacts: Vec<Contact>,
    nanos: Vec<Nanos>,
    /// `dates[i * zones.len() + z]` = local date of contact `i` in zone `z`.
    dates: Vec<NaiveDate>,
    caps: &'a [&'a CapRule],
    cooldowns: &'a [&'a CooldownRule],
    /// Per rule (caps first, then quiet periods, in the order of the `Prepared` that built
    /// this), the ascending indices of the contacts it counts; empty until a contact comes.
    counted: Vec<Vec<usize>>,
}

impl<'a> History<'a> {
    /// Prepare `contacts` for decisions about `subject` in `zones` under these caps and
    /// quiet periods.
    pub(crate) fn new(
        zones: &'a [Tz],
        caps: &'a [&'a CapRule],
        cooldowns: &'a [&'a CooldownRule],
        subject: Subject<'a>,
        contacts: &[Contact],
    ) -> Self {
        let mut h = History {
            zones,
            subject,
            contacts: Vec::with_capacity(contacts.len()),
            nanos: Vec::with_capacity(contacts.len()),
            dates: Vec::new(),
            caps,
            cooldowns,
            counted: Vec::new(),
        };
        let mut sorted = contacts.to_vec();
        sorted.sort_by_key(|c| c.at);
        for c in sorted {
            h.push(c);
        }
        h
    }

    /// The subject decisions with this history are about.
    pub fn subject(&self) -> &Subject<'a> {
        &self.subject
    }

    /// Make room for `n` more contacts.
    pub fn reserve(&mut self, n: usize) {
        self.contacts.reserve(n);
        self.nanos.reserve(n);
        self.dates.reserve(n * self.zones.len());
    }

    /// Add a contact (kept in time order).
    pub fn push(&mut self, contact: Contact) {
        let at = Nanos::of(contact.at);
        let i = self.nanos.partition_point(|n| *n <= at);
        let appended = i == self.contacts.len();
        let nz = self.zones.len();
        let dates = self.zones.iter().map(|z| local_date(*z, contact.at));
        if appended {
            self.dates.extend(dates);
        } else {
            self.dates.splice(i * nz..i * nz, dates);
        }
        let rules = self.caps.len() + self.cooldowns.len();
        self.counted.resize_with(rules, Vec::new);
        let counters = self.caps.iter().map(|c| (c.count, &c.key[..]));
        let counters = counters.chain(self.cooldowns.iter().map(|c| (c.after, &c.key[..])));
        for ((what, key), list) in counters.zip(&mut self.counted) {
            if !appended {
                list.iter_mut().filter(|j| **j >= i).for_each(|j| *j += 1);
            }
            if contact.kind.counted_by(what) && KeyMatch::new(&self.subject, key).matches(&contact)
            {
                let pos = list.partition_point(|j| *j < i);
                list.insert(pos, i);
            }
        }
        self.nanos.insert(i, at);
        self.contacts.insert(i, contact);
    }

    /// The contacts, oldest first.
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// How many contacts are at or before `t`.
    pub fn upto(&self, t: Nanos) -> usize {
        self.nanos.partition_point(|n| *n <= t)
    }

    /// Ascending indices of the contacts counted by rule number `rule` (caps first, then
    /// quiet periods, as in the `Prepared` that built this history).
    pub fn counted(&self, rule: usize) -> &[usize] {
        self.counted.get(rule).map_or(&[], Vec::as_slice)
    }

    /// The instant of contact `i`.
    pub fn nanos(&self, i: usize) -> Nanos {
        self.nanos[i]
    }

    /// Local date of contact `i` in candidate zone number `zone`.
    pub fn date(&self, i: usize, zone: usize) -> NaiveDate {
        self.dates[i * self.zones.len() + zone]
    }

    /// The zones dates were computed for.
    pub fn zones(&self) -> &'a [Tz] {
        self.zones
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ContactKind;
    use crate::policy::ruleset::Ruleset;
    use chrono_tz::{America, Pacific};

    fn contact(at: &str, kind: ContactKind, debt: Option<&str>) -> Contact {
        Contact {
            at: at.parse().unwrap(),
            debt: debt.map(str::to_owned),
            number: None,
            kind,
        }
    }

    #[test]
    fn contacts_are_sorted_with_dates_per_zone_and_counted_per_rule() {
        let set = Ruleset::bundled().unwrap();
        let caps: Vec<&CapRule> = set
            .caps
            .iter()
            .filter(|c| &*c.meta.id == "fed.regf.1006.14.b.2.i.A")
            .collect();
        let quiet: Vec<&CooldownRule> = set.cooldowns.iter().collect();
        let zones = [America::New_York, Pacific::Guam];
        let subject = Subject {
            debt: Some("L1"),
            number: None,
        };
        let mut h = History::new(
            &zones,
            &caps,
            &quiet,
            subject,
            &[contact(
                "2026-11-23T03:00:00Z",
                ContactKind::Conversation,
                Some("L1"),
            )],
        );
        h.push(contact(
            "2026-11-22T03:00:00Z",
            ContactKind::Placed,
            Some("L2"),
        ));
        h.push(contact(
            "2026-11-22T04:00:00Z",
            ContactKind::NotConnected,
            None,
        ));
        // Sorted: L2 placed, unknown-debt not-connected, L1 conversation.
        assert_eq!(h.contacts()[0].debt.as_deref(), Some("L2"));
        // 2026-11-22T03:00Z is the 21st in New York and the 22nd in Guam.
        assert_eq!(h.date(0, 0).to_string(), "2026-11-21");
        assert_eq!(h.date(0, 1).to_string(), "2026-11-22");
        // The Reg F cap counts every attempt about L1 or an unknown debt; the quiet period
        // only the conversation.
        assert_eq!(h.counted(0), &[1, 2]);
        assert_eq!(h.counted(1), &[2]);
        assert_eq!(
            h.upto(Nanos::of("2026-11-22T04:00:00Z".parse().unwrap())),
            2
        );
    }
}
