//! The plans of an import chunk's new customers, each distinct set of inputs expanded once.
//!
//! A new customer has no contact history, so its plan is a function of its candidate
//! locations, its zone, the schedule type, the cadence and the start instant, and of
//! nothing else of the customer: the calls a plan places enter the history without debt or
//! number, so they count against every cap whatever the customer's debt and number are
//! (`outdial_domain::schedule::expand`). Whether the customer has a debt and a number is in
//! the key all the same, so that a change there can only cost a memo miss, never a wrong
//! plan. The customers of one file mostly share a few places: a chunk of 1,000 expands a few
//! plans instead of 1,000, and equal plans are the same value, which the plan store groups
//! without comparing them (`outdial_store`'s `schedule_plan`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use outdial_domain::Customer;
use outdial_domain::policy::{Candidates, Ruleset};
use outdial_domain::schedule::{Cadence, CadenceDef, Plan};
use outdial_domain::task::ScheduleType;

/// What a new customer's plan depends on, besides the cadence and the start.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    candidates: Candidates,
    /// The customer's zone, by its IANA name.
    zone: &'static str,
    has_debt: bool,
    has_number: bool,
}

/// The plans of one schedule type and cadence, by [`Key`].
type ByKey = HashMap<Key, Arc<Plan>>;

/// Plans made at one instant for customers without contact history.
pub(crate) struct FreshPlans<'a> {
    rules: &'a Ruleset,
    start: DateTime<Utc>,
    /// By schedule type and cadence (a chunk has one or two), then by [`Key`].
    known: Vec<(ScheduleType, &'a CadenceDef, ByKey)>,
}

impl<'a> FreshPlans<'a> {
    pub(crate) fn new(rules: &'a Ruleset, start: DateTime<Utc>) -> FreshPlans<'a> {
        FreshPlans {
            rules,
            start,
            known: Vec::new(),
        }
    }

    /// The plan of `kind` with cadence `def` (parsed: `cadence`) for `customer`, who has
    /// no contact history.
    pub(crate) fn plan(
        &mut self,
        customer: &Customer,
        kind: ScheduleType,
        def: &'a CadenceDef,
        cadence: &Cadence,
    ) -> Arc<Plan> {
        let subject = customer.subject();
        let key = Key {
            candidates: customer.candidates(),
            zone: customer.timezone.name(),
            has_debt: subject.debt.is_some(),
            has_number: subject.number.is_some(),
        };
        let slot = match self
            .known
            .iter()
            .position(|(k, d, _)| *k == kind && *d == def)
        {
            Some(i) => i,
            None => {
                self.known.push((kind, def, HashMap::new()));
                self.known.len() - 1
            }
        };
        let plans = &mut self.known[slot].2;
        if let Some(plan) = plans.get(&key) {
            return plan.clone();
        }
        let plan = Arc::new(crate::scheduled_calls::plan_from(
            self.rules,
            &key.candidates,
            customer,
            &[],
            kind,
            cadence,
            self.start,
        ));
        plans.insert(key, plan.clone());
        plan
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use outdial_domain::CustomerInput;
    use outdial_domain::policy::Ruleset;
    use outdial_domain::schedule::Catalog;
    use serde_json::json;

    use super::*;

    fn customer(i: usize) -> Customer {
        // Zones, states, ZIP codes and area codes that agree, disagree and are ambiguous;
        // numbers and debts all different.
        let places = [
            ("America/New_York", "NY", "10004", "212"),
            ("America/Chicago", "IL", "60601", "312"),
            ("America/New_York", "FL", "32501", "850"),
            ("America/Los_Angeles", "CA", "90012", "213"),
            ("America/Phoenix", "AZ", "85004", "602"),
            ("America/Denver", "TX", "79901", "915"),
            ("Pacific/Honolulu", "HI", "96813", "808"),
            ("America/New_York", "NY", "60601", "303"),
        ];
        let (zone, state, zip, area) = places[i % places.len()];
        let mut body = json!({
            "id": format!("c{i}"), "taskType": "collections", "firstName": "Sam",
            "lastName": "Lee", "timezone": zone,
            "phoneNumber": format!("+1{area}555{:04}", i % 10_000),
            "streetAddress1": "1 Main Street", "city": "Springfield", "state": state,
            "zipCode": zip,
        });
        if i.is_multiple_of(3) {
            body["loanId"] = json!(format!("loan-{i}"));
        }
        let input: CustomerInput = serde_json::from_value(body).expect("a customer");
        input
            .validate(
                &Catalog::builtin().task_types(),
                chrono::NaiveDate::from_ymd_opt(2026, 12, 8).expect("a date"),
            )
            .expect("valid")
    }

    #[test]
    fn a_memoized_plan_is_the_plan_the_customer_would_get_alone() {
        let rules = Ruleset::bundled().expect("the bundled rules");
        let catalog = Catalog::builtin();
        // Mid-evening in New York on a Friday before a holiday week: windows, weekends and
        // zone differences all shape the plans.
        let start = Utc.with_ymd_and_hms(2026, 12, 19, 1, 30, 0).unwrap();
        for kind in [ScheduleType::Collections, ScheduleType::Verification] {
            let (def, cadence) = catalog
                .cadence_with_def("collections", Some(kind))
                .expect("a cadence");
            let mut memo = FreshPlans::new(&rules, start);
            for i in 0..64 {
                let c = customer(i);
                let alone = crate::scheduled_calls::plan_from(
                    &rules,
                    &c.candidates(),
                    &c,
                    &[],
                    kind,
                    cadence,
                    start,
                );
                assert_eq!(*memo.plan(&c, kind, def, cadence), alone, "customer {i}");
            }
            let expanded: usize = memo.known.iter().map(|(_, _, m)| m.len()).sum();
            assert!(expanded < 64, "{expanded} plans expanded for 64 customers");
        }
    }
}
