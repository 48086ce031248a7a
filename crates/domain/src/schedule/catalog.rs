//! A company's task types and the cadence each uses per schedule type.
//!
//! Company configuration (`outdial company set-task-types <file.toml>`, with the API issue)
//! is a TOML table per task type:
//!
//! ```toml
//! [collections]            # a task type name
//! schedule = "collections" # the schedule type used when a request names none
//!
//! [welcome_call]
//! schedule = "custom"
//! [welcome_call.custom]    # a cadence per schedule type overrides the built-in one
//! cron = ["0 0 10 * * Mon-Fri"]
//! horizon = "7d"
//! maxAttempts = 3
//! retry = { noAnswer = "4h", busy = "30m", voicemail = "1d" }
//! ```
//!
//! A schedule type without its own cadence uses the built-in default
//! ([`Cadence::default_def`]); `custom` has none, so it needs one here or in the request.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Deserialize;

use super::cadence::{Cadence, CadenceDef, CadenceError};
use crate::task::{ScheduleType, TaskType};

/// A catalog that cannot be loaded, or a lookup that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The file does not parse.
    #[error("task types do not parse: {0}")]
    Parse(String),
    /// A task type name is malformed.
    #[error("task type {0:?} must be 1-64 characters of letters, digits, '_', '-' or '.'")]
    BadName(String),
    /// A cadence is invalid.
    #[error("task type {task_type}, {schedule:?} cadence: {source}")]
    Cadence {
        /// The task type.
        task_type: String,
        /// The schedule type.
        schedule: ScheduleType,
        /// What is wrong.
        #[source]
        source: CadenceError,
    },
    /// The catalog is empty.
    #[error("a company needs at least one task type")]
    Empty,
    /// A task type the company does not have.
    #[error("unknown task type {given:?}; valid task types: {}", valid.join(", "))]
    UnknownTaskType {
        /// What was asked for.
        given: String,
        /// The company's task types.
        valid: Vec<String>,
    },
    /// A custom schedule without a cadence from the company or the request.
    #[error("task type {0} has no custom cadence: the request must supply one")]
    NoCustomCadence(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskTypeDef {
    schedule: ScheduleType,
    #[serde(default)]
    verification: Option<CadenceDef>,
    #[serde(default)]
    collections: Option<CadenceDef>,
    #[serde(default)]
    custom: Option<CadenceDef>,
}

/// One task type's configuration.
#[derive(Debug, Clone)]
pub struct TaskTypeConfig {
    /// The schedule type used when a request names none.
    pub schedule: ScheduleType,
    verification: (CadenceDef, Cadence),
    collections: (CadenceDef, Cadence),
    custom: Option<(CadenceDef, Cadence)>,
}

/// A company's task types.
#[derive(Debug, Clone)]
pub struct Catalog {
    types: BTreeMap<TaskType, TaskTypeConfig>,
}

impl Catalog {
    /// The catalog a new company starts with: `collections` and `verification`, each on its
    /// built-in cadence.
    pub fn builtin() -> Self {
        let text = "[collections]\nschedule = \"collections\"\n[verification]\nschedule = \"verification\"\n";
        // The built-in text and cadences are fixed and covered by a test.
        Self::parse(text).unwrap_or_else(|_| Catalog {
            types: BTreeMap::new(),
        })
    }

    /// Parse and validate a company's task-type file.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let defs: BTreeMap<String, TaskTypeDef> =
            toml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?;
        let mut types = BTreeMap::new();
        for (name, def) in defs {
            let task_type =
                TaskType::from_str(&name).map_err(|_| CatalogError::BadName(name.clone()))?;
            let cadence = |schedule: ScheduleType,
                           own: Option<CadenceDef>|
             -> Result<Option<(CadenceDef, Cadence)>, CatalogError> {
                own.or_else(|| Cadence::default_def(schedule))
                    .map(|d| Cadence::parse(&d).map(|c| (d, c)))
                    .transpose()
                    .map_err(|source| CatalogError::Cadence {
                        task_type: name.clone(),
                        schedule,
                        source,
                    })
            };
            let builtin = |schedule: ScheduleType, own: Option<CadenceDef>| {
                cadence(schedule, own)?.ok_or_else(|| CatalogError::NoCustomCadence(name.clone()))
            };
            let config = TaskTypeConfig {
                schedule: def.schedule,
                verification: builtin(ScheduleType::Verification, def.verification)?,
                collections: builtin(ScheduleType::Collections, def.collections)?,
                custom: cadence(ScheduleType::Custom, def.custom)?,
            };
            types.insert(task_type, config);
        }
        if types.is_empty() {
            return Err(CatalogError::Empty);
        }
        Ok(Catalog { types })
    }

    /// The company's task types, sorted (for a 400 listing the valid ones).
    pub fn task_types(&self) -> Vec<TaskType> {
        self.types.keys().cloned().collect()
    }

    /// A task type's configuration, or an error listing the valid ones.
    pub fn get(&self, task_type: &str) -> Result<&TaskTypeConfig, CatalogError> {
        self.types
            .iter()
            .find(|(t, _)| t.as_str() == task_type)
            .map(|(_, c)| c)
            .ok_or_else(|| CatalogError::UnknownTaskType {
                given: task_type.to_owned(),
                valid: self.types.keys().map(|t| t.as_str().to_owned()).collect(),
            })
    }

    /// The cadence for `task_type` and `schedule` (the task type's default when `None`).
    pub fn cadence(
        &self,
        task_type: &str,
        schedule: Option<ScheduleType>,
    ) -> Result<&Cadence, CatalogError> {
        self.cadence_with_def(task_type, schedule).map(|(_, c)| c)
    }

    /// The cadence for `task_type` and `schedule` with the definition it was parsed from.
    pub fn cadence_with_def(
        &self,
        task_type: &str,
        schedule: Option<ScheduleType>,
    ) -> Result<(&CadenceDef, &Cadence), CatalogError> {
        let config = self.get(task_type)?;
        let (def, cadence) = match schedule.unwrap_or(config.schedule) {
            ScheduleType::Verification => &config.verification,
            ScheduleType::Collections => &config.collections,
            ScheduleType::Custom => config
                .custom
                .as_ref()
                .ok_or_else(|| CatalogError::NoCustomCadence(task_type.to_owned()))?,
        };
        Ok((def, cadence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_collections_and_verification() {
        let c = Catalog::builtin();
        let names: Vec<String> = c
            .task_types()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(names, ["collections", "verification"]);
        assert_eq!(c.cadence("collections", None).unwrap().max_attempts, 21);
        assert_eq!(c.cadence("verification", None).unwrap().max_attempts, 6);
        assert_eq!(
            c.cadence("collections", Some(ScheduleType::Custom))
                .unwrap_err(),
            CatalogError::NoCustomCadence("collections".into())
        );
    }

    #[test]
    fn unknown_task_type_lists_the_valid_ones() {
        let err = Catalog::builtin().get("payments").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown task type \"payments\"; valid task types: collections, verification"
        );
    }

    #[test]
    fn company_cadences_override_the_builtin_ones() {
        let c = Catalog::parse(
            r#"
            [welcome_call]
            schedule = "custom"
            [welcome_call.custom]
            cron = ["0 0 10 * * Mon-Fri"]
            horizon = "7d"
            maxAttempts = 3
            retry = { noAnswer = "4h", busy = "30m", voicemail = "1d" }
            "#,
        )
        .unwrap();
        assert_eq!(c.cadence("welcome_call", None).unwrap().max_attempts, 3);
        assert_eq!(
            c.cadence("welcome_call", Some(ScheduleType::Collections))
                .unwrap()
                .max_attempts,
            21
        );
    }

    #[test]
    fn bad_catalogs_are_rejected_naming_the_problem() {
        assert_eq!(Catalog::parse("").unwrap_err(), CatalogError::Empty);
        assert!(matches!(
            Catalog::parse("[\"bad name\"]\nschedule = \"collections\"").unwrap_err(),
            CatalogError::BadName(_)
        ));
        assert!(matches!(
            Catalog::parse("[x]\nschedule = \"weekly\"").unwrap_err(),
            CatalogError::Parse(_)
        ));
        let bad_cron = "[x]\nschedule = \"collections\"\n[x.collections]\ncron = [\"nope\"]\nhorizon = \"7d\"\nmaxAttempts = 3\nretry = { noAnswer = \"4h\", busy = \"30m\", voicemail = \"1d\" }";
        assert!(matches!(
            Catalog::parse(bad_cron).unwrap_err(),
            CatalogError::Cadence { .. }
        ));
    }
}
