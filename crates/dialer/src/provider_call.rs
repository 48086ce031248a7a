//! A call as the provider knows it: its state, timestamps and, once ended, its result.

use std::fmt;

use chrono::{DateTime, Utc};
use outdial_domain::{AttemptOutcome, CallStatus, Flag};
use serde::{Deserialize, Serialize};

use crate::IdempotencyKey;

/// Where a placed call is. A key the provider has never seen is `None` from
/// [`crate::Dialer::lookup`], not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Accepted and ringing.
    Ringing,
    /// Answered (by a person or a machine) and still going.
    InProgress,
    /// Over; [`ProviderCall::result`] holds the outcome.
    Ended,
}

/// How an ended call went, after the provider's post-processing.
///
/// `Debug` prints the transcript's length only and hides the recording URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResult {
    /// The attempt's outcome.
    pub outcome: AttemptOutcome,
    /// Post-processing flags, as the provider reported them.
    pub flags: Vec<Flag>,
    /// The conversation text. Personal data: never log it.
    pub transcript: Option<String>,
    /// Where the recording is (may be a signed link).
    pub recording_url: Option<String>,
}

impl fmt::Debug for CallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transcript = self
            .transcript
            .as_ref()
            .map(|t| format!("<{} chars>", t.chars().count()));
        f.debug_struct("CallResult")
            .field("outcome", &self.outcome)
            .field("flags", &self.flags)
            .field("transcript", &transcript)
            .field(
                "recording_url",
                &self.recording_url.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A call placed under an idempotency key, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCall {
    /// The provider's id for the call (stored as the attempt's `provider_ref`).
    pub id: String,
    /// The key it was placed under.
    pub key: IdempotencyKey,
    /// Where it is now.
    pub state: CallState,
    /// When the provider accepted it.
    pub created_at: DateTime<Utc>,
    /// When it was answered, if it was and that has happened.
    pub answered_at: Option<DateTime<Utc>>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// The result, once [`CallState::Ended`].
    pub result: Option<CallResult>,
}

impl ProviderCall {
    /// The status outdial gives a call in this state: `in_progress` while ringing or
    /// connected, the outcome's terminal status once ended.
    pub fn status(&self) -> CallStatus {
        match (&self.state, &self.result) {
            (CallState::Ended, Some(result)) => result.outcome.status(),
            (CallState::Ended, None) => CallStatus::Failed,
            (CallState::Ringing | CallState::InProgress, _) => CallStatus::InProgress,
        }
    }

    /// Whether the call is over.
    pub fn is_ended(&self) -> bool {
        self.state == CallState::Ended
    }
}

/// The provider's answer to a place request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The call (already ended when the provider answers instantly).
    pub call: ProviderCall,
    /// The provider had a call under this key already and returned it: no new call was made.
    pub replayed: bool,
}
