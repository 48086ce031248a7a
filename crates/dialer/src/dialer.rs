//! The [`Dialer`] trait: place a call under an idempotency key, look a key up.

use std::fmt;

use async_trait::async_trait;

use crate::{DialError, DialRequest, IdempotencyKey, Placed, ProviderCall};

/// A telephony / voice-agent provider.
///
/// # The contract the worker relies on
///
/// - **One key, at most one call.** [`Dialer::place`] with a key the provider has seen
///   returns the first call (`Placed::replayed = true`) and creates nothing. outdial's key is
///   `"{call_id}:{attempt}"`, so a new attempt is the only way to get a new call.
/// - **After [`DialError::Unavailable`], look up before anything else.** A timeout or a 5xx
///   may hide a call the provider did create. The worker calls [`Dialer::lookup`] with the
///   same key: `Some(call)` is that attempt's call (record it, wait for its end);
///   `None` means the provider has no call under the key, and only then may the worker place
///   again — with the same key, never a new attempt number. The same holds for a worker that
///   restarts and finds a dial intent without a result. Why not just re-send the place
///   request and trust the dedupe: a provider keeps keys for a limited time, a re-send whose
///   payload changed (another caller ID) is rejected, and a lookup returns the result of a
///   call that already ended. [`lookup_then_place`] does exactly this.
/// - **Errors are a closed set** ([`DialError`]): rate limited (no attempt consumed, slow
///   the company down), unauthorized (configuration), rejected (attempt failed),
///   unavailable (unknown: look up).
///
/// Implementations: [`crate::HttpDialer`] (a provider over HTTP) and [`crate::Simulator`].
#[async_trait]
pub trait Dialer: Send + Sync + fmt::Debug {
    /// Places the call described by `request`, or returns the call already placed under its
    /// key.
    async fn place(&self, request: DialRequest) -> Result<Placed, DialError>;

    /// The call placed under `key`, or `None` if the provider has none.
    async fn lookup(&self, key: &IdempotencyKey) -> Result<Option<ProviderCall>, DialError>;
}

/// Resolves an attempt whose earlier place request may or may not have reached the provider
/// (after [`DialError::Unavailable`], or on recovery after a crash): the call under the key
/// if there is one (`replayed = true`), otherwise a place request with the same key.
pub async fn lookup_then_place(
    dialer: &dyn Dialer,
    request: DialRequest,
) -> Result<Placed, DialError> {
    if let Some(call) = dialer.lookup(&request.key).await? {
        return Ok(Placed {
            call,
            replayed: true,
        });
    }
    dialer.place(request).await
}
