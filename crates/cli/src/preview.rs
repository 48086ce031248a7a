//! `outdial preview`: a customer's schedule
//! expanded into lawful call instants under the ruleset, printed without personal data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use outdial_domain::policy::Ruleset;
use outdial_domain::schedule::{Cadence, CadenceDef, Request, expand};
use outdial_domain::task::ScheduleType;
use outdial_domain::{Customer, ErrorCode, FieldError, Violations};
use serde_json::{Value, json};

use crate::customer::{self, CustomerArgs};
use crate::rules::{self, RulesArgs};
use crate::{EXIT_INVALID_CUSTOMER, emit, parse_instant};

/// The schedule to expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Verification,
    Collections,
    Custom,
}

impl From<ScheduleArg> for ScheduleType {
    fn from(s: ScheduleArg) -> Self {
        match s {
            ScheduleArg::Verification => ScheduleType::Verification,
            ScheduleArg::Collections => ScheduleType::Collections,
            ScheduleArg::Custom => ScheduleType::Custom,
        }
    }
}

/// Arguments of `outdial preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    customer: CustomerArgs,
    /// The schedule type; its purpose selects the rules in force
    #[arg(long, value_enum, default_value_t = ScheduleArg::Collections)]
    schedule: ScheduleArg,
    /// Cadence JSON (camelCase CadenceDef); required for custom, replaces the built-in
    /// cadence otherwise
    #[arg(long, value_name = "FILE", required_if_eq("schedule", "custom"))]
    cadence: Option<PathBuf>,
    /// Plan from this instant (RFC 3339) [default: now]
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    from: Option<DateTime<Utc>>,
    #[command(flatten)]
    rules: RulesArgs,
}

/// `outdial preview`.
pub fn run(args: &PreviewArgs, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let ruleset = args.rules.load()?;
    let kind = ScheduleType::from(args.schedule);
    let cadence = cadence(kind, args.cadence.as_deref())?;
    let customer = match args.customer.load(now.date_naive())? {
        Ok(customer) => customer,
        Err(violations) => {
            emit(&customer::error_envelope(&violations)?)?;
            return Ok(ExitCode::from(EXIT_INVALID_CUSTOMER));
        }
    };
    if customer.do_not_call {
        // The API answers 409 here: a do-not-call customer gets no schedule.
        let refused = FieldError::new(
            "doNotCall",
            ErrorCode::InvalidValue,
            "the customer has doNotCall set: no calls are scheduled",
        );
        emit(&customer::error_envelope(&Violations::from(refused))?)?;
        return Ok(ExitCode::from(EXIT_INVALID_CUSTOMER));
    }
    let start = args.from.unwrap_or(now);
    emit(&document(&ruleset, &customer, kind, &cadence, start)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The cadence for `kind`: the file if given, else the built-in one.
fn cadence(kind: ScheduleType, file: Option<&Path>) -> anyhow::Result<Cadence> {
    let def = match file {
        Some(path) => {
            let name = path.display();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read cadence file {name}"))?;
            serde_json::from_str::<CadenceDef>(&text)
                .with_context(|| format!("cadence file {name} is not a cadence definition"))?
        }
        None => match Cadence::default_def(kind) {
            Some(def) => def,
            None => bail!("a custom schedule needs --cadence FILE"),
        },
    };
    Cadence::parse(&def).context("the cadence is invalid")
}

/// The preview document. Personal data stays out: only the customer's id and zone appear.
fn document(
    ruleset: &Ruleset,
    customer: &Customer,
    kind: ScheduleType,
    cadence: &Cadence,
    start: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let candidates = customer.candidates();
    let prepared = ruleset.prepare(&candidates, kind.purpose());
    let plan = expand(
        cadence,
        &Request {
            policy: &prepared,
            zone: customer.timezone,
            subject: customer.subject(),
            history: &[],
            start,
        },
    );
    let rules_in_force: Vec<&str> = prepared.rule_ids().collect();
    Ok(json!({
        "ruleset": rules::identity(ruleset),
        "customer": { "id": customer.id.as_str(), "timezone": customer.timezone.name() },
        "schedule": {
            "type": serde_json::to_value(kind).context("cannot serialize the schedule type")?,
            "purpose": kind.purpose().as_str(),
            "from": start,
        },
        "candidates": serde_json::to_value(&candidates).context("cannot serialize the candidates")?,
        "rulesInForce": rules_in_force,
        "plan": serde_json::to_value(&plan).context("cannot serialize the plan")?,
    }))
}
