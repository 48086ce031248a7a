//! `outdial decide`: may this customer be called at one instant, and if not, when next.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use outdial_domain::task::Purpose;

use crate::customer::{self, CustomerArgs};
use crate::rules::RulesArgs;
use crate::{EXIT_INVALID_CUSTOMER, emit, parse_instant};

/// Why the call would be placed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    Collection,
    Verification,
    Marketing,
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Self {
        match p {
            PurposeArg::Collection => Purpose::Collection,
            PurposeArg::Verification => Purpose::Verification,
            PurposeArg::Marketing => Purpose::Marketing,
        }
    }
}

/// Arguments of `outdial decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The instant to decide on (RFC 3339)
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    at: DateTime<Utc>,
    #[command(flatten)]
    customer: CustomerArgs,
    /// The call's purpose; it selects the rules in force
    #[arg(long, value_enum, default_value_t = PurposeArg::Collection)]
    purpose: PurposeArg,
    #[command(flatten)]
    rules: RulesArgs,
}

/// Prints the decision (exit 0 whether allowed or denied).
pub fn run(args: &DecideArgs, now: DateTime<Utc>) -> anyhow::Result<ExitCode> {
    let ruleset = args.rules.load()?;
    let customer = match args.customer.load(now.date_naive())? {
        Ok(customer) => customer,
        Err(violations) => {
            emit(&customer::error_envelope(&violations)?)?;
            return Ok(ExitCode::from(EXIT_INVALID_CUSTOMER));
        }
    };
    let candidates = customer.candidates();
    let decision =
        ruleset
            .prepare(&candidates, args.purpose.into())
            .decide(args.at, &customer.subject(), &[]);
    emit(&serde_json::to_value(&decision).context("cannot serialize the decision")?)?;
    Ok(ExitCode::SUCCESS)
}
