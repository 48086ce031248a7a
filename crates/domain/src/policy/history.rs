//! A customer's contact history prepared for repeated decisions: sorted by time, with each
//! contact's local date precomputed in every candidate zone so caps count without
//! converting time zones on every check.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::contact::{Contact, ContactKind};
use super::local::local_date;

/// Contacts sorted by instant, with their local dates per candidate zone.
#[derive(Debug, Clone)]
pub struct History<'z> {
    zones: &'z [Tz],
    contacts: Vec<Contact>,
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

    /// Add a contact (kept in time order).
    pub fn push(&mut self, contact: Contact) {
        let i = self.contacts.partition_point(|c| c.at <= contact.at);
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
    pub fn range(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> std::ops::Range<usize> {
        self.contacts.partition_point(|c| c.at <= after)
            ..self.contacts.partition_point(|c| c.at <= until)
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
                "2026-11-22T03:00:00Z".parse().unwrap(),
                "2026-11-24T00:00:00Z".parse().unwrap()
            ),
            1..2
        );
    }
}
