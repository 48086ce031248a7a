//! Calling rulesets: loading the bundled or an operator's file, and `outdial rules check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use outdial_domain::policy::{LoadOptions, Ruleset, Status, TZDB_VERSION};
use serde_json::{Value, json};

use crate::emit;

/// Which ruleset a command applies.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Ruleset TOML file [default: the bundled US ruleset]
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
}

impl RulesArgs {
    /// Loads and validates the chosen ruleset.
    pub fn load(&self) -> anyhow::Result<Ruleset> {
        load(self.rules.as_deref())
    }
}

/// `outdial rules …`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and validate a ruleset, then print a summary (use after editing rules)
    Check {
        /// Ruleset TOML file [default: the bundled US ruleset]
        file: Option<PathBuf>,
    },
}

/// Runs a `rules` subcommand.
pub fn run(command: &RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Check { file } => {
            let set = load(file.as_deref())?;
            let source = file
                .as_deref()
                .map_or_else(|| "bundled".to_owned(), |p| p.display().to_string());
            emit(&summary(&set, &source))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads `path`, or the bundled ruleset when `None`.
pub fn load(path: Option<&Path>) -> anyhow::Result<Ruleset> {
    let Some(path) = path else {
        return Ruleset::bundled().context("the bundled ruleset is invalid");
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read ruleset file {}", path.display()))?;
    Ruleset::parse(&text, LoadOptions::default())
        .with_context(|| format!("ruleset file {} is rejected", path.display()))
}

/// What identifies the rules a result was computed under.
pub fn identity(set: &Ruleset) -> Value {
    json!({
        "version": set.version,
        "fingerprint": format!("{:016x}", set.fingerprint),
        "tzdb": TZDB_VERSION,
    })
}

fn summary(set: &Ruleset, source: &str) -> Value {
    let statuses = set
        .windows
        .iter()
        .map(|w| w.meta.status)
        .chain(set.caps.iter().map(|c| c.meta.status))
        .chain(set.cooldowns.iter().map(|c| c.meta.status));
    let (mut verified, mut secondary, mut unverified) = (0, 0, 0);
    for status in statuses {
        match status {
            Status::Verified => verified += 1,
            Status::Secondary => secondary += 1,
            Status::Unverified => unverified += 1,
        }
    }
    json!({
        "source": source,
        "ruleset": identity(set),
        "description": set.description,
        "rules": {
            "total": set.windows.len() + set.caps.len() + set.cooldowns.len(),
            "window": set.windows.len(),
            "cap": set.caps.len(),
            "cooldown": set.cooldowns.len(),
        },
        "calendars": set.calendars.len(),
        "status": {
            "verified": verified,
            "secondary": secondary,
            "unverified": unverified,
        },
    })
}
