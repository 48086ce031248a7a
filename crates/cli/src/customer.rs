//! The customer a command works on: a `POST /customers` body from a file or stdin, or the
//! built-in demo customer; its validation and the location facts the policy needs.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use outdial_domain::task::TaskType;
use outdial_domain::{Customer, CustomerInput, Violations};
use serde_json::{Value, json};

/// The demo customer: the API's example request with realistic values (a Boston borrower
/// with a fictional 555-01xx number). Massachusetts adds its own collection rules, so the
/// demo shows a state cap at work besides the federal ones.
pub const DEMO: &str = r#"{
  "id": "cust-10472",
  "taskType": "collections",
  "firstName": "Maria",
  "lastName": "Alvarez",
  "email": "maria.alvarez@example.com",
  "birthday": "1984-03-09",
  "ssnLastFour": "4821",
  "timezone": "America/New_York",
  "phoneNumber": "+16175550142",
  "streetAddress1": "27 School St",
  "streetAddress2": "Apt 3",
  "city": "Boston",
  "state": "MA",
  "zipCode": "02108",
  "doNotCall": false,
  "isTest": true,
  "test": false,
  "externalMetadata": {
    "employer_name": "Harbor Logistics",
    "pay_frequency": "biweekly",
    "pay_day": "Friday"
  },
  "loanIds": [48213],
  "sync": false,
  "loanId": "loan-48213"
}"#;

/// Where the customer comes from and which task types are valid.
#[derive(Debug, Args)]
pub struct CustomerArgs {
    /// Customer JSON (the `POST /customers` body); `-` reads stdin [default: built-in demo]
    #[arg(long, value_name = "FILE|-")]
    customer: Option<PathBuf>,
    /// Task types the company accepts, comma-separated
    #[arg(
        long,
        value_name = "a,b",
        value_delimiter = ',',
        default_value = "collections,verification"
    )]
    task_types: Vec<TaskType>,
}

impl CustomerArgs {
    /// Reads and validates the customer. `Err` is an unreadable or malformed file; the
    /// inner `Err` lists every invalid field. `today` bounds birthdays.
    pub fn load(&self, today: NaiveDate) -> anyhow::Result<Result<Customer, Violations>> {
        let input = match self.customer.as_deref() {
            None => demo_input()?,
            Some(path) => read_input(path)?,
        };
        Ok(input.validate(&self.task_types, today))
    }
}

fn demo_input() -> anyhow::Result<CustomerInput> {
    serde_json::from_str(DEMO).context("the built-in demo customer does not parse")
}

fn read_input(path: &Path) -> anyhow::Result<CustomerInput> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the customer from stdin")?;
        ("stdin".to_owned(), text)
    } else {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read customer file {name}"))?;
        (name, text)
    };
    serde_json::from_str(&text)
        .with_context(|| format!("customer from {name} is not a JSON object of customer fields"))
}

/// The `{"error": …}` envelope printed for an invalid customer.
pub fn error_envelope(violations: &Violations) -> anyhow::Result<Value> {
    let fields = serde_json::to_value(violations).context("cannot serialize the violations")?;
    Ok(json!({ "error": { "message": violations.to_string(), "fields": fields } }))
}
