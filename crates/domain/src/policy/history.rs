//! A customer's contact history prepared for repeated decisions: sorted by time, with each
//! contact's local date precomputed in every candidate zone so caps count without
//! converting time zones on every check.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::contact::{Contact, ContactKind};
use super::local::local_date;

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

/// Contacts sorted by instant, with their local dates per candidate zone.
#[derive(Debug, Clone)]
pub struct History<'z> {
    zones: &'z [Tz],
    contacts: Vec<Contact>,
    /// Each contact's instant as [`Nanos`] (cheap comparisons).
    nanos: Vec<Nanos>,
    /// Each kind present, as a bit per `ContactKind`.
    kinds: u8,
    /// `dates[i * zones.len() + z]` = local date of contact `i` in zone `z`.
    dates: Vec<NaiveDate>,
}

impl<'z> History<'z> {
    /// Prepare `contacts` for deciding in `zones` (the customer's candidate zones).
    pub fn new(zones: &'z [Tz], contacts: &[Contact]) -> Self {
        let mut h = History {
            zones,
            contacts: Vec::with_capacity(contacts.len()),
            nanos: Vec::with_capacity(contacts.len()),
            kinds: 0,
            dates: Vec::new(),
        };
        let mut sorted = contacts.to_vec();
        sorted.sort_by_key(|c| c.at);
        for c in sorted {
            h.push(c);
        }
        h
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
        self.nanos.insert(i, at);
        self.kinds |= 1 << contact.kind as u8;
        let nz = self.zones.len();
        let dates = self.zones.iter().map(|z| local_date(*z, contact.at));
        if i == self.contacts.len() {
            self.dates.extend(dates);
        } else {
            self.dates.splice(i * nz..i * nz, dates);
        }
        self.contacts.insert(i, contact);
    }

    /// The contacts, oldest first.
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// Index range of contacts with `after < at <= until`.
    pub fn range(&self, after: Nanos, until: Nanos) -> std::ops::Range<usize> {
        self.nanos.partition_point(|n| *n <= after)..self.nanos.partition_point(|n| *n <= until)
    }

    /// The instant of contact `i`.
    pub fn nanos(&self, i: usize) -> Nanos {
        self.nanos[i]
    }

    /// Whether any contact's kind satisfies `pred`.
    pub fn has(&self, pred: impl Fn(ContactKind) -> bool) -> bool {
        ContactKind::ALL
            .iter()
            .any(|k| self.kinds & (1 << *k as u8) != 0 && pred(*k))
    }

    /// Local date of contact `i` in candidate zone number `zone`.
    pub fn date(&self, i: usize, zone: usize) -> NaiveDate {
        self.dates[i * self.zones.len() + zone]
    }

    /// The zones dates were computed for.
    pub fn zones(&self) -> &'z [Tz] {
        self.zones
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Pacific};

    fn contact(at: &str) -> Contact {
        Contact {
            at: at.parse().unwrap(),
            debt: None,
            number: None,
            kind: ContactKind::Placed,
        }
    }

    #[test]
    fn contacts_are_sorted_with_dates_per_zone() {
        let mut h = History::new(
            &[America::New_York, Pacific::Guam],
            &[contact("2026-11-23T03:00:00Z")],
        );
        h.push(contact("2026-11-22T03:00:00Z"));
        assert_eq!(
            h.contacts()[0].at,
            "2026-11-22T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // 2026-11-22T03:00Z is the 21st in New York and the 22nd in Guam.
        assert_eq!(h.date(0, 0).to_string(), "2026-11-21");
        assert_eq!(h.date(0, 1).to_string(), "2026-11-22");
        assert_eq!(h.date(1, 0).to_string(), "2026-11-22");
        assert_eq!(
            h.range(
                Nanos::of("2026-11-22T03:00:00Z".parse().unwrap()),
                Nanos::of("2026-11-24T00:00:00Z".parse().unwrap())
            ),
            1..2
        );
    }
}
