//! Every Redis key the limits use, derived from one namespace with a hash tag.

use outdial_domain::PhoneNumber;

use crate::{CompanyRef, Error, Result};

/// Key names under a namespace such as `outdial:{limits}`. The namespace's hash tag puts all
/// of them in one cluster slot, so one script may touch several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    namespace: String,
}

impl Keys {
    /// Keys under `namespace`, which must contain a non-empty hash tag (`{...}`).
    pub fn new(namespace: &str) -> Result<Self> {
        let tagged = namespace
            .find('{')
            .and_then(|open| namespace[open + 1..].find('}'))
            .is_some_and(|len| len > 0);
        if tagged {
            Ok(Self {
                namespace: namespace.to_owned(),
            })
        } else {
            Err(Error::Namespace(namespace.to_owned()))
        }
    }

    /// GCRA state of a company's calls-per-second limit.
    pub fn company_rate(&self, company: &CompanyRef) -> String {
        format!("{}:rate:company:{company}", self.namespace)
    }

    /// GCRA state of a caller ID's calls-per-second limit.
    pub fn caller_rate(&self, caller_id: &PhoneNumber) -> String {
        format!("{}:rate:caller:{}", self.namespace, caller_id.as_e164())
    }

    /// Until when a company is slowed down (after a provider 429).
    pub fn slow_down(&self, company: &CompanyRef) -> String {
        format!("{}:slow:{company}", self.namespace)
    }

    /// A company's live-call slots (ZSET holder → lease expiry).
    pub fn live_calls(&self, company: &CompanyRef) -> String {
        format!("{}:live:{company}", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_needs_a_hash_tag_and_every_key_keeps_it() {
        assert!(Keys::new("outdial:limits").is_err());
        assert!(Keys::new("outdial:{}").is_err());
        let keys = Keys::new("outdial:{limits}").unwrap();
        let company = CompanyRef::new("acme").unwrap();
        let caller = PhoneNumber::parse("+12125550100").unwrap();
        for key in [
            keys.company_rate(&company),
            keys.caller_rate(&caller),
            keys.slow_down(&company),
            keys.live_calls(&company),
        ] {
            assert!(key.starts_with("outdial:{limits}:"), "{key}");
        }
    }
}
