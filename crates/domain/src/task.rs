//! Task types, schedule types and call purposes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A company-defined task type (for example `collections`, `verification`, `welcome_call`).
/// Which names are valid is company configuration; this type only checks the shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskType(String);

/// A task type name that is empty, too long, or has characters outside `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task type must be 1-64 characters of letters, digits, '_', '-' or '.'")]
pub struct InvalidTaskType;

impl TaskType {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TaskType {
    type Err = InvalidTaskType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidTaskType)
        }
    }
}

impl TryFrom<String> for TaskType {
    type Error = InvalidTaskType;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TaskType> for String {
    fn from(t: TaskType) -> Self {
        t.0
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of schedule a `POST /scheduled-calls/{customerId}` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    /// Identity verification: first attempt at the next lawful instant, then retries.
    Verification,
    /// Debt collection: a multi-week cadence bounded by the frequency caps.
    Collections,
    /// A cadence or explicit local times supplied by the company or the request.
    Custom,
}

impl ScheduleType {
    /// The snake_case name used in JSON and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScheduleType::Verification => "verification",
            ScheduleType::Collections => "collections",
            ScheduleType::Custom => "custom",
        }
    }

    /// The purpose whose rules govern calls of this schedule. Custom schedules are treated
    /// as collection calls, the strictest purpose that binds a lender's calls.
    pub fn purpose(self) -> Purpose {
        match self {
            ScheduleType::Verification => Purpose::Verification,
            ScheduleType::Collections | ScheduleType::Custom => Purpose::Collection,
        }
    }
}

/// Why a call is placed; rules are keyed on it (compliance.md §0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Collecting a consumer debt (FDCPA / Reg F and state collection acts).
    Collection,
    /// Verifying a person's identity in connection with an account or debt.
    Verification,
    /// Telephone solicitation (TCPA time rule, state telemarketing acts).
    Marketing,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 3] = [
        Purpose::Collection,
        Purpose::Verification,
        Purpose::Marketing,
    ];

    /// The snake_case name used in rules files and decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Collection => "collection",
            Purpose::Verification => "verification",
            Purpose::Marketing => "marketing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_type_shape_is_checked() {
        assert!("collections".parse::<TaskType>().is_ok());
        assert!("welcome-call_v2".parse::<TaskType>().is_ok());
        assert!("".parse::<TaskType>().is_err());
        assert!("has space".parse::<TaskType>().is_err());
        assert!("x".repeat(65).parse::<TaskType>().is_err());
    }

    #[test]
    fn schedule_types_map_to_purposes() {
        assert_eq!(ScheduleType::Verification.purpose(), Purpose::Verification);
        assert_eq!(ScheduleType::Collections.purpose(), Purpose::Collection);
        assert_eq!(ScheduleType::Custom.purpose(), Purpose::Collection);
        let t: ScheduleType = serde_json::from_str("\"collections\"").unwrap();
        assert_eq!(t, ScheduleType::Collections);
    }
}
