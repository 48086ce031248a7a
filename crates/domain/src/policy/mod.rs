//! The calling policy: a versioned ruleset (windows, holidays, caps, quiet periods) applied
//! over every candidate location of a customer. Pure: `now` is always an argument.

pub mod calendar;
pub mod candidates;
pub mod cap;
pub mod contact;
pub mod decision;
pub mod designation;
pub mod engine;
pub mod history;
pub mod local;
pub mod ruleset;
pub mod window;

pub use candidates::{Candidate, Candidates, LocationFacts, Source};
pub use contact::{Contact, ContactKind, Subject};
pub use decision::{Block, Decision, PAUSE_RULE, Reason};
pub use designation::{DESIGNATED_RULE, Inconvenient};
pub use engine::{NO_LOCATION_RULE, Prepared};
pub use history::History;
pub use ruleset::{LoadOptions, RuleId, Ruleset, RulesetError, Status};

/// The IANA time-zone database version compiled in (via chrono-tz); record it with decisions.
pub const TZDB_VERSION: &str = chrono_tz::IANA_TZDB_VERSION;
