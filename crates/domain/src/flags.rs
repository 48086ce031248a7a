//! Post-processing flags on a finished call, and what each one does to the customer's
//! pending calls.
//!
//! The provider's post-processing labels each call with flags (`RPC`, `DNC`, ...). A flag's
//! consequences are data, defined once in [`Flag::effects`] and mirrored in this table (a
//! unit test keeps the two identical):
//!
//! | Flags | Effects |
//! |-------|---------|
//! | `DNC` | `SetDoNotCall`, `StopAll` |
//! | `DECEASED`, `BANKRUPTCY`, `ATTORNEY_REP`, `DEBT_DISPUTE`, `FRAUD_CLAIM`, `THREAT_OR_ABUSE`, `WRONG_NUMBER` | `StopAll` |
//! | `CIP_PASSED` | `CompleteSchedule` |
//! | `RPC`, `LIVE_CONNECT` | `QuietPeriod` |
//! | `CALLBACK_REQUEST` | `BookCallback` |
//! | `NO_ANSWER` | `Retry(NoAnswer)` |
//! | `VOICEMAIL`, `VOICEMAIL_LEFT_MESSAGE`, `MESSAGE_LEFT`, `VOICEMAIL_FULL`, `VOICEMAIL_NOT_SET_UP`, `VOICEMAIL_CONNECT` | `Retry(Voicemail)` |
//! | `COMPLAINT`, `INCARCERATED`, `MILITARY`, `HARDSHIP_REQUEST`, `ACCESSIBILITY_ISSUE` | `Review` |
//! | any flag outside this list (`Other`) | `Review` |
//! | `CONNECT`, `AUTO_SYSTEM_CONNECT`, `THIRD_PARTY_CONTACT`, `CUSTOMER_HANGUP`, `TRANSFER_FAILED`, `CIP_FAILED`, `CIP_PARTIAL`, `CIP_REFUSED`, `SUCCESSFUL_TRANSFER`, `FALLBACK_TRANSFER` | none |
//!
//! What the effects mean:
//!
//! - `SetDoNotCall`: set the customer's `doNotCall`.
//! - `StopAll`: cancel every pending call of the customer, in every schedule.
//! - `CompleteSchedule`: the current schedule's goal is met; cancel its remaining calls.
//! - `QuietPeriod`: a telephone conversation about the debt happened; Reg F's 7-day no-call
//!   period for that debt starts now.
//! - `BookCallback`: book the callback the customer asked for.
//! - `Retry(reason)`: apply the company's retry rule for a no-answer, busy or voicemail.
//! - `Review`: a human should look; nothing changes automatically.
//!
//! A call usually carries several flags. [`effects_of`] merges them into an [`EffectSet`]:
//! duplicates collapse; `StopAll` removes any `Retry` and `BookCallback` (nobody may be
//! called); `CompleteSchedule` and `QuietPeriod` remove any `Retry` (the goal is met, or
//! contact was made); of several retry reasons the most specific survives (voicemail, then
//! busy, then no answer). Unknown flags are kept verbatim as [`Flag::Other`] and go to review
//! rather than being dropped or acted on.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which retry rule applies after a call that did not reach anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// A voicemail system answered (whether or not a message was left).
    Voicemail,
}

/// One consequence of a flag for the customer's pending calls. Closed: the worker handles
/// every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Set the customer's do-not-call flag.
    SetDoNotCall,
    /// Cancel every pending call of the customer.
    StopAll,
    /// The current schedule's goal is met: cancel its remaining calls.
    CompleteSchedule,
    /// A conversation about the debt happened: start the Reg F 7-day no-call period.
    QuietPeriod,
    /// Book the callback the customer asked for.
    BookCallback,
    /// Follow the company's retry rule for this reason.
    Retry(RetryReason),
    /// Informational: a human should look; no automatic change.
    Review,
}

macro_rules! flags {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A post-processing flag. Known flags are variants; anything else is kept verbatim in
        /// [`Flag::Other`]. Serialized as its SCREAMING_SNAKE name.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Flag {
            $(#[doc = $doc] $variant,)*
            /// A flag outside the known list, exactly as received.
            Other(String),
        }

        impl Flag {
            /// Every known flag (everything but `Other`).
            pub const KNOWN: &'static [Flag] = &[$(Flag::$variant,)*];

            /// The SCREAMING_SNAKE name, or the verbatim text of an unknown flag.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Flag::$variant => $name,)*
                    Flag::Other(s) => s,
                }
            }

            fn known(name: &str) -> Option<Flag> {
                match name {
                    $($name => Some(Flag::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

flags! {
    NoAnswer => "NO_ANSWER", "Nobody answered.";
    Voicemail => "VOICEMAIL", "A voicemail system answered.";
    Connect => "CONNECT", "The call connected.";
    LiveConnect => "LIVE_CONNECT", "A live person answered.";
    VoicemailConnect => "VOICEMAIL_CONNECT", "The call connected to voicemail.";
    AutoSystemConnect => "AUTO_SYSTEM_CONNECT", "An automated system (IVR, screener) answered.";
    MessageLeft => "MESSAGE_LEFT", "A message was left.";
    VoicemailLeftMessage => "VOICEMAIL_LEFT_MESSAGE", "A voicemail message was left.";
    Rpc => "RPC", "Right-party contact: the agent spoke with the customer.";
    ThirdPartyContact => "THIRD_PARTY_CONTACT", "Someone other than the customer answered.";
    WrongNumber => "WRONG_NUMBER", "The number does not belong to the customer.";
    CustomerHangup => "CUSTOMER_HANGUP", "The customer hung up.";
    Dnc => "DNC", "The customer asked not to be called.";
    Complaint => "COMPLAINT", "The customer complained.";
    ThreatOrAbuse => "THREAT_OR_ABUSE", "The call involved threats or abuse.";
    Deceased => "DECEASED", "The customer is reported deceased.";
    Incarcerated => "INCARCERATED", "The customer is reported incarcerated.";
    Military => "MILITARY", "The customer is on active military duty.";
    Bankruptcy => "BANKRUPTCY", "The customer reports a bankruptcy.";
    HardshipRequest => "HARDSHIP_REQUEST", "The customer asked for hardship relief.";
    DebtDispute => "DEBT_DISPUTE", "The customer disputes the debt.";
    AttorneyRep => "ATTORNEY_REP", "The customer is represented by an attorney.";
    FraudClaim => "FRAUD_CLAIM", "The customer reports fraud or identity theft.";
    AccessibilityIssue => "ACCESSIBILITY_ISSUE", "The customer needs an accommodation.";
    CallbackRequest => "CALLBACK_REQUEST", "The customer asked to be called back.";
    TransferFailed => "TRANSFER_FAILED", "A transfer to a human failed.";
    VoicemailFull => "VOICEMAIL_FULL", "The voicemail box was full.";
    VoicemailNotSetUp => "VOICEMAIL_NOT_SET_UP", "The voicemail box is not set up.";
    CipPassed => "CIP_PASSED", "Identity verification passed.";
    CipFailed => "CIP_FAILED", "Identity verification failed.";
    CipPartial => "CIP_PARTIAL", "Identity verification was partly completed.";
    CipRefused => "CIP_REFUSED", "The customer refused identity verification.";
    SuccessfulTransfer => "SUCCESSFUL_TRANSFER", "The call was transferred to a human.";
    FallbackTransfer => "FALLBACK_TRANSFER", "The call was transferred to the fallback line.";
}

impl Flag {
    /// What this flag does to the customer's pending calls (the table in the module doc).
    pub fn effects(&self) -> &'static [Effect] {
        use Effect::*;
        use Flag::*;
        match self {
            Dnc => &[SetDoNotCall, StopAll],
            Deceased | Bankruptcy | AttorneyRep | DebtDispute | FraudClaim | ThreatOrAbuse
            | WrongNumber => &[StopAll],
            CipPassed => &[CompleteSchedule],
            Rpc | LiveConnect => &[QuietPeriod],
            CallbackRequest => &[BookCallback],
            NoAnswer => &[Retry(RetryReason::NoAnswer)],
            Voicemail | VoicemailLeftMessage | MessageLeft | VoicemailFull | VoicemailNotSetUp
            | VoicemailConnect => &[Retry(RetryReason::Voicemail)],
            Complaint | Incarcerated | Military | HardshipRequest | AccessibilityIssue => &[Review],
            Other(_) => &[Review],
            Connect | AutoSystemConnect | ThirdPartyContact | CustomerHangup | TransferFailed
            | CipFailed | CipPartial | CipRefused | SuccessfulTransfer | FallbackTransfer => &[],
        }
    }

    /// A telephone conversation with the customer, as Reg F counts it (starts the 7-day
    /// quiet period): `RPC` and `LIVE_CONNECT`.
    pub fn is_conversation(&self) -> bool {
        matches!(self, Flag::Rpc | Flag::LiveConnect)
    }

    /// The call was answered by a person or a machine (voicemail, IVR). Every known flag but
    /// `NO_ANSWER` implies that; an unknown flag implies nothing.
    pub fn is_connected(&self) -> bool {
        !matches!(self, Flag::NoAnswer | Flag::Other(_))
    }
}

/// Total: a known name (matched after trimming, ignoring ASCII case) gives its variant,
/// anything else is kept verbatim as [`Flag::Other`].
impl FromStr for Flag {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_uppercase();
        Ok(Flag::known(&name).unwrap_or_else(|| Flag::Other(s.to_owned())))
    }
}

impl From<&str> for Flag {
    fn from(s: &str) -> Self {
        let Ok(flag) = s.parse();
        flag
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Flag::from(s.as_str()))
    }
}

/// The merged effects of a call's flags: deduplicated, in a fixed order, with the dominance
/// rules of the module doc applied. Serialized as an array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EffectSet(Vec<Effect>);

/// Merges the effects of all `flags` of one call.
pub fn effects_of(flags: &[Flag]) -> EffectSet {
    flags.iter().flat_map(Flag::effects).copied().collect()
}

impl EffectSet {
    /// No effects.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an effect (for example the retry implied by the call's outcome) and re-applies
    /// the merge rules, so a dominated effect stays out.
    pub fn insert(&mut self, effect: Effect) {
        self.0.push(effect);
        self.normalize();
    }

    /// Whether `effect` survived the merge.
    pub fn contains(&self, effect: Effect) -> bool {
        self.0.contains(&effect)
    }

    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The effects, in declaration order of [`Effect`].
    pub fn iter(&self) -> std::slice::Iter<'_, Effect> {
        self.0.iter()
    }

    /// The effects as a slice.
    pub fn as_slice(&self) -> &[Effect] {
        &self.0
    }

    /// The retry rule to follow, if any survived.
    pub fn retry(&self) -> Option<RetryReason> {
        self.0.iter().find_map(|e| match e {
            Effect::Retry(reason) => Some(*reason),
            _ => None,
        })
    }

    fn normalize(&mut self) {
        let has = |set: &[Effect], e: Effect| set.contains(&e);
        let stop_all = has(&self.0, Effect::StopAll);
        let no_retry =
            stop_all || has(&self.0, Effect::CompleteSchedule) || has(&self.0, Effect::QuietPeriod);
        let best_retry = self.retry_candidates().max();
        self.0.retain(|e| match e {
            Effect::Retry(reason) => !no_retry && Some(*reason) == best_retry,
            Effect::BookCallback => !stop_all,
            _ => true,
        });
        self.0.sort_unstable();
        self.0.dedup();
    }

    fn retry_candidates(&self) -> impl Iterator<Item = RetryReason> + '_ {
        self.0.iter().filter_map(|e| match e {
            Effect::Retry(reason) => Some(*reason),
            _ => None,
        })
    }
}

impl FromIterator<Effect> for EffectSet {
    fn from_iter<I: IntoIterator<Item = Effect>>(iter: I) -> Self {
        let mut set = Self(iter.into_iter().collect());
        set.normalize();
        set
    }
}

impl<'a> IntoIterator for &'a EffectSet {
    type Item = &'a Effect;
    type IntoIter = std::slice::Iter<'a, Effect>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(names: &[&str]) -> Vec<Flag> {
        names.iter().map(|n| Flag::from(*n)).collect()
    }

    #[test]
    fn every_flag_round_trips_through_str_and_serde() {
        assert_eq!(Flag::KNOWN.len(), 34);
        for flag in Flag::KNOWN {
            assert_eq!(Flag::from(flag.as_str()), *flag);
            let json = serde_json::to_string(flag).unwrap();
            assert_eq!(json, format!("\"{}\"", flag.as_str()));
            assert_eq!(serde_json::from_str::<Flag>(&json).unwrap(), *flag);
            assert!(
                flag.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_')
            );
        }
    }

    #[test]
    fn unknown_flags_are_kept_verbatim() {
        let flag = Flag::from("Promise_To_Pay ");
        assert_eq!(flag, Flag::Other("Promise_To_Pay ".to_owned()));
        assert_eq!(serde_json::to_value(&flag).unwrap(), "Promise_To_Pay ");
        let back: Flag = serde_json::from_value(serde_json::to_value(&flag).unwrap()).unwrap();
        assert_eq!(back, flag);
        assert!(!flag.is_connected() && !flag.is_conversation());
    }

    #[test]
    fn known_names_match_ignoring_case_and_surrounding_space() {
        assert_eq!(Flag::from("dnc"), Flag::Dnc);
        assert_eq!(Flag::from(" Live_Connect\n"), Flag::LiveConnect);
    }

    #[test]
    fn dnc_flag_sets_do_not_call_and_stops_everything() {
        assert_eq!(Flag::Dnc.effects(), [Effect::SetDoNotCall, Effect::StopAll]);
        let set = effects_of(&flags(&["VOICEMAIL", "DNC", "CALLBACK_REQUEST"]));
        assert_eq!(set.as_slice(), [Effect::SetDoNotCall, Effect::StopAll]);
    }

    /// Parses the markdown table of the module doc from this file's source.
    fn documented_table() -> Vec<(Vec<String>, Vec<String>)> {
        let backticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        include_str!("flags.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! | "))
            .filter(|row| !row.starts_with("Flags") && !row.starts_with('-'))
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                (backticked(cells[0]), backticked(cells[1]))
            })
            .collect()
    }

    #[test]
    fn module_doc_table_matches_the_effects_of_every_flag() {
        let table = documented_table();
        let mut documented = Vec::new();
        for (names, effects) in &table {
            for name in names {
                let flag = if name == "Other" {
                    Flag::Other("X".to_owned())
                } else {
                    Flag::from(name.as_str())
                };
                assert!(
                    name == "Other" || Flag::KNOWN.contains(&flag),
                    "{name} is not a known flag"
                );
                let actual: Vec<String> = flag.effects().iter().map(|e| format!("{e:?}")).collect();
                assert_eq!(&actual, effects, "{name}");
                documented.push(flag);
            }
        }
        for flag in Flag::KNOWN {
            assert_eq!(
                documented.iter().filter(|f| *f == flag).count(),
                1,
                "{flag} documented once"
            );
        }
    }

    #[test]
    fn stop_all_dominates_retry() {
        let set = effects_of(&flags(&["NO_ANSWER", "WRONG_NUMBER", "NO_ANSWER"]));
        assert_eq!(set.as_slice(), [Effect::StopAll]);
        assert_eq!(set.retry(), None);
        let mut set = effects_of(&flags(&["DECEASED"]));
        set.insert(Effect::Retry(RetryReason::Busy));
        assert_eq!(set.as_slice(), [Effect::StopAll]);
    }

    #[test]
    fn voicemail_flags_merge_into_one_voicemail_retry() {
        let set = effects_of(&flags(&[
            "VOICEMAIL",
            "VOICEMAIL_LEFT_MESSAGE",
            "MESSAGE_LEFT",
            "VOICEMAIL_CONNECT",
        ]));
        assert_eq!(set.as_slice(), [Effect::Retry(RetryReason::Voicemail)]);
        let set = effects_of(&flags(&["NO_ANSWER", "VOICEMAIL_FULL"]));
        assert_eq!(set.retry(), Some(RetryReason::Voicemail));
    }

    #[test]
    fn a_conversation_starts_the_quiet_period_and_needs_no_retry() {
        let set = effects_of(&flags(&["CONNECT", "RPC", "LIVE_CONNECT", "NO_ANSWER"]));
        assert_eq!(set.as_slice(), [Effect::QuietPeriod]);
    }

    #[test]
    fn passed_verification_completes_the_schedule() {
        let set = effects_of(&flags(&[
            "LIVE_CONNECT",
            "RPC",
            "CIP_PASSED",
            "SUCCESSFUL_TRANSFER",
        ]));
        assert_eq!(
            set.as_slice(),
            [Effect::CompleteSchedule, Effect::QuietPeriod]
        );
    }

    #[test]
    fn review_flags_and_unknown_flags_ask_for_a_human_without_other_changes() {
        let set = effects_of(&flags(&["COMPLAINT", "MILITARY", "SOMETHING_NEW"]));
        assert_eq!(set.as_slice(), [Effect::Review]);
        let set = effects_of(&flags(&["DNC", "COMPLAINT"]));
        assert_eq!(
            set.as_slice(),
            [Effect::SetDoNotCall, Effect::StopAll, Effect::Review]
        );
    }

    #[test]
    fn callback_is_booked_unless_everything_stops() {
        assert_eq!(
            effects_of(&flags(&["CALLBACK_REQUEST"])).as_slice(),
            [Effect::BookCallback]
        );
        assert!(
            !effects_of(&flags(&["CALLBACK_REQUEST", "ATTORNEY_REP"]))
                .contains(Effect::BookCallback)
        );
    }

    #[test]
    fn no_flags_means_no_effects() {
        assert!(effects_of(&[]).is_empty());
        assert!(effects_of(&flags(&["CONNECT", "CIP_FAILED", "TRANSFER_FAILED"])).is_empty());
    }

    #[test]
    fn conversation_and_connection_classification() {
        let conversations: Vec<&Flag> =
            Flag::KNOWN.iter().filter(|f| f.is_conversation()).collect();
        assert_eq!(conversations, [&Flag::LiveConnect, &Flag::Rpc]);
        for flag in Flag::KNOWN {
            if flag.is_conversation() {
                assert!(flag.is_connected(), "{flag}");
            }
        }
        for flag in [
            Flag::Connect,
            Flag::VoicemailConnect,
            Flag::AutoSystemConnect,
            Flag::CustomerHangup,
            Flag::ThirdPartyContact,
        ] {
            assert!(flag.is_connected(), "{flag}");
        }
        assert!(!Flag::NoAnswer.is_connected());
    }

    #[test]
    fn effect_sets_serialize_as_arrays() {
        let set = effects_of(&flags(&["DNC", "NO_ANSWER"]));
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            serde_json::json!(["set_do_not_call", "stop_all"])
        );
        let retry = effects_of(&flags(&["NO_ANSWER"]));
        assert_eq!(
            serde_json::to_value(&retry).unwrap(),
            serde_json::json!([{"retry": "no_answer"}])
        );
    }
}
