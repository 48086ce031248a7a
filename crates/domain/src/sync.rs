//! `sync: true` (LMS auto-fetch): the caller's request merged with the customer record a
//! loan management system returned, and the time zone resolved from the ZIP code when
//! neither gives one. Pure: the HTTP client lives in `outdial-lms`.
//!
//! Caller-supplied values win field by field (a field sent as `null` counts as not sent);
//! only the seed's customer fields are taken from the LMS, every other key it returns is
//! ignored. The merged object is then validated exactly like a normal `POST /customers`.

use chrono::{DateTime, Offset, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::geo::Geo;

/// The customer fields an LMS answer may fill, in the seed's order.
pub const LMS_FIELDS: [&str; 13] = [
    "firstName",
    "lastName",
    "email",
    "birthday",
    "ssnLastFour",
    "phoneNumber",
    "timezone",
    "streetAddress1",
    "streetAddress2",
    "city",
    "state",
    "zipCode",
    "externalMetadata",
];

/// A request with the LMS's values filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The request body to validate.
    pub body: Map<String, Value>,
    /// The fields whose value came from the LMS, in [`LMS_FIELDS`] order.
    pub from_lms: Vec<&'static str>,
}

/// Fills each field of [`LMS_FIELDS`] the request lacks (absent or `null`) from `lms`.
pub fn merge(request: &Map<String, Value>, lms: &Map<String, Value>) -> Merged {
    let mut body = request.clone();
    let mut from_lms = Vec::new();
    for field in LMS_FIELDS {
        let sent = request.get(field).is_some_and(|v| !v.is_null());
        let Some(value) = lms.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        if sent {
            continue;
        }
        let value = match value {
            // Every LMS field but externalMetadata is text: an LMS that sends a number there
            // (`"zipCode": 94102`) means its decimal digits.
            Value::Number(n) if field != "externalMetadata" && n.is_u64() => {
                Value::String(n.to_string())
            }
            other => other.clone(),
        };
        body.insert(field.to_owned(), value);
        from_lms.push(field);
    }
    Merged { body, from_lms }
}

/// A time zone chosen from a ZIP code, with every zone the ZIP could mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneFromZip {
    /// The zone stored as the customer's `timezone`.
    #[serde(serialize_with = "zone_name")]
    pub zone: Tz,
    /// Every zone the ZIP suggests, sorted by name (one for most ZIPs).
    #[serde(serialize_with = "zone_names")]
    pub candidates: Vec<Tz>,
}

fn zone_name<S: serde::Serializer>(z: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(z.name())
}

fn zone_names<S: serde::Serializer>(zs: &[Tz], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(zs.iter().map(|z| z.name()))
}

/// The zone for `zip` ([`Geo::zip_zones`]); `None` when the ZIP says nothing.
///
/// Of several candidates the one whose clock reads earliest at `now` (the westernmost) is
/// chosen: 08:00 there is 08:00 or later in every other candidate, so the cadence's morning
/// slots, where most calls sit, are lawful in all of them. The policy still checks every
/// candidate at planning and before each dial (the ZIP contributes them all), so a late slot
/// that is past 21:00 further east is moved, never dialed.
pub fn zone_from_zip(zip: &str, geo: &Geo, now: DateTime<Utc>) -> Option<ZoneFromZip> {
    let candidates = geo.zip_zones(zip);
    let zone = *candidates.iter().min_by_key(|z| {
        (
            now.with_timezone(*z).offset().fix().local_minus_utc(),
            z.name(),
        )
    })?;
    Some(ZoneFromZip { zone, candidates })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::America;
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_caller_wins_field_by_field_and_only_customer_fields_are_taken() {
        let request = object(json!({
            "id": "12345", "taskType": "collections", "sync": true,
            "firstName": "Samantha", "email": null,
        }));
        let lms = object(json!({
            "id": "other", "firstName": "Sam", "lastName": "Lee", "email": "sam@example.com",
            "zipCode": 94102, "doNotCall": true, "creditScore": 700,
            "externalMetadata": {"employer_name": "Acme"},
        }));
        let m = merge(&request, &lms);
        assert_eq!(m.body["id"], "12345");
        assert_eq!(m.body["firstName"], "Samantha");
        assert_eq!(m.body["lastName"], "Lee");
        assert_eq!(
            m.body["email"], "sam@example.com",
            "null counts as not sent"
        );
        assert_eq!(m.body["zipCode"], "94102", "a numeric ZIP is its digits");
        assert!(m.body.get("doNotCall").is_none());
        assert!(m.body.get("creditScore").is_none());
        assert_eq!(
            m.from_lms,
            ["lastName", "email", "zipCode", "externalMetadata"]
        );
    }

    #[test]
    fn a_pinned_zip_has_one_candidate_and_an_unknown_one_its_sectional_centre() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 15, 0, 0).unwrap();
        let geo = Geo::us();
        let one = zone_from_zip("94102", geo, now).unwrap();
        assert_eq!(
            (one.zone, one.candidates),
            (America::Los_Angeles, vec![America::Los_Angeles])
        );
        let unknown = (32400..32500)
            .map(|n| n.to_string())
            .find(|z| geo.zip(z).is_none())
            .unwrap();
        let two = zone_from_zip(&unknown, geo, now).unwrap();
        assert_eq!(two.candidates, vec![America::Chicago, America::New_York]);
        assert_eq!(two.zone, America::Chicago, "the westernmost");
        assert_eq!(zone_from_zip("00000", geo, now), None);
    }
}
