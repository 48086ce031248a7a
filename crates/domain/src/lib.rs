//! outdial's domain: pure types and the calling policy.
//!
//! Owns customers, scheduled calls and their state machine, post-processing flags and their
//! effects, US geography (ZIP and area code to zones), the versioned calling ruleset, the
//! policy engine that decides whether a dial is lawful now and when it next is, and schedule
//! expansion. It must not depend on tokio, sqlx, redis, axum or reqwest and does no I/O:
//! time comes in as an argument or through [`Clock`].

pub mod call;
pub mod clock;
pub mod customer;
pub mod flags;
pub mod follow_up;
pub mod geo;
pub mod phone;
pub mod policy;
pub mod schedule;
pub mod scheduled_call;
pub mod sync;
pub mod task;
pub mod us_state;
pub mod validation;

pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use us_state::UsState;

pub use call::{
    AttemptNo, AttemptOutcome, CallAttempt, CallId, CallStatus, IllegalTransition, ScheduleId,
};
pub use customer::{Customer, CustomerInput, CustomerRef, ZipCode};
pub use flags::{Effect, EffectSet, Flag, RetryReason, effects_of};
pub use phone::{Birthday, Email, InvalidPhone, PersonName, PhoneNumber, SsnLastFour};
pub use validation::{ErrorCode, FieldError, Invalid, Violations};
