//! US state, district and territory codes (USPS two-letter abbreviations).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! states {
    ($($code:ident => $name:literal,)*) => {
        /// A US state, the District of Columbia, or an inhabited US territory.
        /// Military "states" (AA, AE, AP) are not locations and are rejected.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum UsState { $($code,)* }

        impl UsState {
            /// Every code, in alphabetical order.
            pub const ALL: &'static [UsState] = &[$(UsState::$code,)*];

            /// The two-letter USPS code.
            pub fn code(self) -> &'static str {
                match self { $(UsState::$code => stringify!($code),)* }
            }

            /// The full name.
            pub fn name(self) -> &'static str {
                match self { $(UsState::$code => $name,)* }
            }
        }

        impl FromStr for UsState {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_uppercase().as_str() {
                    $(stringify!($code) => Ok(UsState::$code),)*
                    _ => Err(UnknownState(s.to_owned())),
                }
            }
        }
    };
}

states! {
    AK => "Alaska", AL => "Alabama", AR => "Arkansas", AS => "American Samoa", AZ => "Arizona",
    CA => "California", CO => "Colorado", CT => "Connecticut", DC => "District of Columbia",
    DE => "Delaware", FL => "Florida", GA => "Georgia", GU => "Guam", HI => "Hawaii", IA => "Iowa",
    ID => "Idaho", IL => "Illinois", IN => "Indiana", KS => "Kansas", KY => "Kentucky",
    LA => "Louisiana", MA => "Massachusetts", MD => "Maryland", ME => "Maine", MI => "Michigan",
    MN => "Minnesota", MO => "Missouri", MP => "Northern Mariana Islands", MS => "Mississippi",
    MT => "Montana", NC => "North Carolina", ND => "North Dakota", NE => "Nebraska",
    NH => "New Hampshire", NJ => "New Jersey", NM => "New Mexico", NV => "Nevada", NY => "New York",
    OH => "Ohio", OK => "Oklahoma", OR => "Oregon", PA => "Pennsylvania", PR => "Puerto Rico",
    RI => "Rhode Island", SC => "South Carolina", SD => "South Dakota", TN => "Tennessee",
    TX => "Texas", UT => "Utah", VA => "Virginia", VI => "U.S. Virgin Islands", VT => "Vermont",
    WA => "Washington", WI => "Wisconsin", WV => "West Virginia", WY => "Wyoming",
}

/// A string that is not a US state or territory code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown US state or territory code {0:?}")]
pub struct UnknownState(pub String);

impl TryFrom<String> for UsState {
    type Error = UnknownState;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<UsState> for &'static str {
    fn from(s: UsState) -> Self {
        s.code()
    }
}

impl fmt::Display for UsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        assert_eq!(UsState::ALL.len(), 56);
        for s in UsState::ALL {
            assert_eq!(s.code().parse::<UsState>(), Ok(*s));
        }
    }

    #[test]
    fn lowercase_is_accepted_and_military_codes_are_not() {
        assert_eq!("ny".parse::<UsState>(), Ok(UsState::NY));
        assert!("AE".parse::<UsState>().is_err());
        assert!("XX".parse::<UsState>().is_err());
        assert!("".parse::<UsState>().is_err());
    }
}
