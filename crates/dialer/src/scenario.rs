//! What happens on a simulated call: the [`Scenario`]s, their weights ([`OutcomeMix`]), and
//! what each one reports (outcome, flags, transcript, whether there is a recording).

use outdial_domain::{AttemptOutcome, Flag};
use serde::{Deserialize, Serialize};

/// One way a simulated call can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Rings out.
    NoAnswer,
    /// Busy signal.
    Busy,
    /// Voicemail answers; a message is left.
    VoicemailMessageLeft,
    /// Voicemail answers; the box is full.
    VoicemailFull,
    /// An IVR or call screener answers.
    AutoSystem,
    /// The customer answers and talks about the debt.
    RightPartyContact,
    /// The customer answers and asks to be called back later.
    CallbackRequest,
    /// The customer answers and asks never to be called again.
    DoNotCall,
    /// Someone else answers: wrong number.
    WrongNumber,
    /// Someone else answers and takes a message.
    ThirdParty,
    /// The customer answers and hangs up at once.
    CustomerHangup,
    /// The customer answers and disputes the debt.
    DebtDispute,
    /// The customer answers and passes identity verification.
    CipPassed,
    /// The customer answers and fails identity verification.
    CipFailed,
    /// The carrier or the provider fails the call.
    Failed,
}

/// Whether the call is answered, which decides its timing and whether it has a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pickup {
    /// Never answered: rings for the whole ring time.
    RingsOut,
    /// Ends quickly without being answered (busy, carrier failure).
    Short,
    /// Answered, then talks.
    Answered,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 15] = [
        Scenario::NoAnswer,
        Scenario::Busy,
        Scenario::VoicemailMessageLeft,
        Scenario::VoicemailFull,
        Scenario::AutoSystem,
        Scenario::RightPartyContact,
        Scenario::CallbackRequest,
        Scenario::DoNotCall,
        Scenario::WrongNumber,
        Scenario::ThirdParty,
        Scenario::CustomerHangup,
        Scenario::DebtDispute,
        Scenario::CipPassed,
        Scenario::CipFailed,
        Scenario::Failed,
    ];

    /// The attempt outcome the provider reports.
    pub fn outcome(self) -> AttemptOutcome {
        use Scenario::*;
        match self {
            NoAnswer | AutoSystem => AttemptOutcome::NoAnswer,
            Busy => AttemptOutcome::Busy,
            VoicemailMessageLeft | VoicemailFull => AttemptOutcome::Voicemail,
            Failed => AttemptOutcome::Failed,
            RightPartyContact | CallbackRequest | DoNotCall | WrongNumber | ThirdParty
            | CustomerHangup | DebtDispute | CipPassed | CipFailed => AttemptOutcome::Completed,
        }
    }

    /// The post-processing flags the provider reports.
    pub fn flags(self) -> Vec<Flag> {
        use Flag as F;
        let live = [F::Connect, F::LiveConnect];
        let rpc = [F::Connect, F::LiveConnect, F::Rpc];
        let with = |base: &[Flag], extra: Flag| {
            let mut v = base.to_vec();
            v.push(extra);
            v
        };
        match self {
            Scenario::NoAnswer => vec![F::NoAnswer],
            Scenario::Busy | Scenario::Failed => vec![],
            Scenario::VoicemailMessageLeft => {
                vec![F::Voicemail, F::VoicemailConnect, F::VoicemailLeftMessage]
            }
            Scenario::VoicemailFull => vec![F::Voicemail, F::VoicemailConnect, F::VoicemailFull],
            Scenario::AutoSystem => vec![F::AutoSystemConnect],
            Scenario::RightPartyContact => rpc.to_vec(),
            Scenario::CallbackRequest => with(&rpc, F::CallbackRequest),
            Scenario::DoNotCall => with(&rpc, F::Dnc),
            Scenario::WrongNumber => with(&live, F::WrongNumber),
            Scenario::ThirdParty => with(&live, F::ThirdPartyContact),
            Scenario::CustomerHangup => with(&live, F::CustomerHangup),
            Scenario::DebtDispute => with(&rpc, F::DebtDispute),
            Scenario::CipPassed => with(&rpc, F::CipPassed),
            Scenario::CipFailed => with(&rpc, F::CipFailed),
        }
    }

    pub(crate) fn pickup(self) -> Pickup {
        match self {
            Scenario::NoAnswer => Pickup::RingsOut,
            Scenario::Busy | Scenario::Failed => Pickup::Short,
            _ => Pickup::Answered,
        }
    }

    /// A canned transcript (no personal data), `None` when nobody answered.
    pub fn transcript(self) -> Option<&'static str> {
        let text = match self {
            Scenario::NoAnswer | Scenario::Busy | Scenario::Failed => return None,
            Scenario::VoicemailMessageLeft => {
                "Voicemail: Please leave a message after the tone.\nAgent: Hello, this is a message about your account. Please call us back at your convenience. Thank you."
            }
            Scenario::VoicemailFull => "Voicemail: The mailbox is full and cannot accept messages.",
            Scenario::AutoSystem => {
                "System: Please state your name and the reason for your call.\nAgent: Hello, I am calling about an account.\nSystem: Thank you. Goodbye."
            }
            Scenario::RightPartyContact => {
                "Agent: Hello, am I speaking with the account holder?\nCustomer: Yes, speaking.\nAgent: I am calling about your loan payment that is past due.\nCustomer: I can make a payment on Friday.\nAgent: Thank you, I have noted that."
            }
            Scenario::CallbackRequest => {
                "Agent: Hello, am I speaking with the account holder?\nCustomer: Yes, but I am at work. Can you call me back tomorrow afternoon?\nAgent: Of course, we will call you back then."
            }
            Scenario::DoNotCall => {
                "Agent: Hello, am I speaking with the account holder?\nCustomer: Yes. Stop calling this number. Do not call me again.\nAgent: Understood, we will not call you again."
            }
            Scenario::WrongNumber => {
                "Agent: Hello, may I speak with the account holder?\nCaller: You have the wrong number, nobody by that name lives here.\nAgent: I apologize for the inconvenience."
            }
            Scenario::ThirdParty => {
                "Agent: Hello, may I speak with the account holder?\nCaller: They are not home right now.\nAgent: Thank you, I will try again another time."
            }
            Scenario::CustomerHangup => "Agent: Hello, am I speaking with—\nCustomer: (hangs up)",
            Scenario::DebtDispute => {
                "Agent: Hello, I am calling about your loan payment.\nCustomer: I do not owe this money. I dispute this debt.\nAgent: I have recorded your dispute; you will receive a letter."
            }
            Scenario::CipPassed => {
                "Agent: To verify your identity, please confirm your date of birth and the last four digits of your social security number.\nCustomer: (provides the details)\nAgent: Thank you, your identity is verified."
            }
            Scenario::CipFailed => {
                "Agent: To verify your identity, please confirm your date of birth and the last four digits of your social security number.\nCustomer: (provides details that do not match)\nAgent: I am sorry, I could not verify your identity."
            }
        };
        Some(text)
    }
}

/// Weights of each scenario. A call picks one in proportion to its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeMix {
    weights: Vec<(Scenario, u32)>,
}

impl OutcomeMix {
    /// A mix with these weights (zero weights are dropped). An empty mix always fails calls.
    pub fn new(weights: impl IntoIterator<Item = (Scenario, u32)>) -> Self {
        Self {
            weights: weights.into_iter().filter(|(_, w)| *w > 0).collect(),
        }
    }

    /// Every call goes the same way.
    pub fn always(scenario: Scenario) -> Self {
        Self::new([(scenario, 1)])
    }

    /// Collections calls: most ring out or reach voicemail; about one in four reaches the
    /// customer; a few percent produce DNC, wrong-number, dispute or callback flags.
    pub fn collections() -> Self {
        use Scenario::*;
        Self::new([
            (NoAnswer, 30),
            (Busy, 6),
            (VoicemailMessageLeft, 20),
            (VoicemailFull, 2),
            (AutoSystem, 3),
            (RightPartyContact, 18),
            (CallbackRequest, 5),
            (DoNotCall, 3),
            (WrongNumber, 3),
            (ThirdParty, 3),
            (CustomerHangup, 3),
            (DebtDispute, 1),
            (Failed, 3),
        ])
    }

    /// Identity-verification calls: like collections, but a reached customer mostly goes
    /// through CIP.
    pub fn verification() -> Self {
        use Scenario::*;
        Self::new([
            (NoAnswer, 30),
            (Busy, 6),
            (VoicemailMessageLeft, 20),
            (VoicemailFull, 2),
            (AutoSystem, 3),
            (CipPassed, 17),
            (CipFailed, 4),
            (CallbackRequest, 4),
            (DoNotCall, 3),
            (WrongNumber, 3),
            (ThirdParty, 2),
            (CustomerHangup, 3),
            (Failed, 3),
        ])
    }

    /// The scenario a uniformly random `draw` selects.
    pub(crate) fn pick(&self, draw: u64) -> Scenario {
        let total: u64 = self.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return Scenario::Failed;
        }
        let mut point = draw % total;
        for (scenario, weight) in &self.weights {
            let weight = u64::from(*weight);
            if point < weight {
                return *scenario;
            }
            point -= weight;
        }
        Scenario::Failed
    }

    /// Each scenario's share of calls, 0.0..=1.0.
    pub fn share(&self, scenario: Scenario) -> f64 {
        let total: u32 = self.weights.iter().map(|(_, w)| *w).sum();
        let weight: u32 = self
            .weights
            .iter()
            .filter(|(s, _)| *s == scenario)
            .map(|(_, w)| *w)
            .sum();
        if total == 0 {
            0.0
        } else {
            f64::from(weight) / f64::from(total)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outdial_domain::{Effect, effects_of};

    #[test]
    fn every_scenario_reports_flags_whose_effects_match_its_story() {
        let has = |s: Scenario, e: Effect| effects_of(&s.flags()).contains(e);
        assert!(has(Scenario::DoNotCall, Effect::SetDoNotCall));
        assert!(has(Scenario::WrongNumber, Effect::StopAll));
        assert!(has(Scenario::DebtDispute, Effect::StopAll));
        assert!(has(Scenario::CipPassed, Effect::CompleteSchedule));
        assert!(has(Scenario::RightPartyContact, Effect::QuietPeriod));
        assert!(has(Scenario::CallbackRequest, Effect::BookCallback));
        for s in Scenario::ALL {
            let answered = s.pickup() == Pickup::Answered;
            assert_eq!(s.transcript().is_some(), answered, "{s:?}");
            assert!(
                s.flags().iter().all(|f| !matches!(f, Flag::Other(_))),
                "{s:?}"
            );
        }
    }

    #[test]
    fn pick_follows_the_weights_exactly_over_one_cycle() {
        let mix = OutcomeMix::new([(Scenario::Busy, 1), (Scenario::NoAnswer, 3)]);
        let picks: Vec<_> = (0..4).map(|d| mix.pick(d)).collect();
        assert_eq!(picks.iter().filter(|s| **s == Scenario::Busy).count(), 1);
        assert_eq!(mix.share(Scenario::NoAnswer), 0.75);
        assert_eq!(OutcomeMix::new([]).pick(9), Scenario::Failed);
    }
}
