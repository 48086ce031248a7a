//! US geography for candidate locations: ZIP code → (state, zone) and NANP area code →
//! (state, zones), derived from the `zipcodes` crate's embedded USPS dataset.
//!
//! Area codes: the dataset lists, per ZIP, the area codes in use there. An area code is
//! assigned to one state, so its state is the one with the most ZIPs listing it, and its
//! zones are the zones of that state's ZIPs that list it (907 → every Alaska zone, Adak
//! included; 850 → Chicago and New York for the Florida panhandle; 212 → New York only).
//! Border ZIPs that list a neighbour's area code thus add no foreign zone. Area codes newer
//! than the dataset, and non-geographic ones (8XX toll-free, 5XX, 900), contribute nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;

use crate::us_state::UsState;

/// What a ZIP code says about location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipInfo {
    /// The state the ZIP is in.
    pub state: UsState,
    /// Its zone; `None` for the few entries without one.
    pub zone: Option<Tz>,
}

/// What an area code says about location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCodeInfo {
    /// The state the area code is assigned to.
    pub state: UsState,
    /// Every zone in which the area code is in use within that state.
    pub zones: Vec<Tz>,
}

/// The lookup tables.
#[derive(Debug)]
pub struct Geo {
    zips: HashMap<u32, ZipInfo>,
    area_codes: HashMap<u16, AreaCodeInfo>,
}

static US: LazyLock<Geo> = LazyLock::new(Geo::build);

impl Geo {
    /// The tables, built once per process on first use (about 43,000 ZIPs).
    pub fn us() -> &'static Geo {
        &US
    }

    /// Look a ZIP up: `12345` or `12345-6789` (only the first five digits are used).
    pub fn zip(&self, zip: &str) -> Option<ZipInfo> {
        let five = zip.get(..5)?;
        if !five.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.zips.get(&five.parse::<u32>().ok()?).copied()
    }

    /// Every zone a ZIP may be in: its own when the dataset pins one; otherwise (a ZIP the
    /// dataset lacks, or lists without a zone) the zones of the ZIPs sharing its first three
    /// digits, its sectional centre, sorted by name. Empty when neither says anything.
    pub fn zip_zones(&self, zip: &str) -> Vec<Tz> {
        if let Some(zone) = self.zip(zip).and_then(|z| z.zone) {
            return vec![zone];
        }
        let Some(prefix) = zip
            .get(..3)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut zones: Vec<Tz> = (prefix * 100..prefix * 100 + 100)
            .filter_map(|n| self.zips.get(&n).and_then(|z| z.zone))
            .collect();
        zones.sort_by_key(|z| z.name());
        zones.dedup();
        zones
    }

    /// Look a NANP area code up.
    pub fn area_code(&self, npa: u16) -> Option<&AreaCodeInfo> {
        self.area_codes.get(&npa)
    }

    fn build() -> Geo {
        let mut zips = HashMap::new();
        // area code -> state -> (ZIP count, zones)
        let mut by_code: HashMap<u16, HashMap<UsState, (u32, Vec<Tz>)>> = HashMap::new();
        for z in zipcodes::database() {
            let Ok(state) = z.state.parse::<UsState>() else {
                continue;
            }; // AA/AE/AP
            let Ok(num) = z.zip_code.parse::<u32>() else {
                continue;
            };
            let zone = z.timezone.parse::<Tz>().ok();
            zips.insert(num, ZipInfo { state, zone });
            for code in &z.area_codes {
                let Ok(npa) = code.parse::<u16>() else {
                    continue;
                };
                let entry = by_code.entry(npa).or_default().entry(state).or_default();
                entry.0 += 1;
                if let Some(zone) = zone
                    && !entry.1.contains(&zone)
                {
                    entry.1.push(zone);
                }
            }
        }
        let area_codes = by_code
            .into_iter()
            .filter_map(|(npa, states)| {
                // The assigned state: most ZIPs; ties broken by code for determinism.
                let (state, (_, mut zones)) = states
                    .into_iter()
                    .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(&a.0)))?;
                zones.sort_by_key(|z| z.name());
                Some((npa, AreaCodeInfo { state, zones }))
            })
            .collect();
        Geo { zips, area_codes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America;

    #[test]
    fn zip_gives_state_and_zone() {
        let geo = Geo::us();
        assert_eq!(
            geo.zip("10001"),
            Some(ZipInfo {
                state: UsState::NY,
                zone: Some(America::New_York)
            })
        );
        assert_eq!(
            geo.zip("32501-1234").map(|z| z.zone),
            Some(Some(America::Chicago))
        );
        assert_eq!(geo.zip("1000"), None);
        assert_eq!(geo.zip("abcde"), None);
    }

    #[test]
    fn a_zip_the_dataset_lacks_takes_the_zones_of_its_sectional_centre() {
        let geo = Geo::us();
        assert_eq!(geo.zip_zones("10001"), vec![America::New_York]);
        // 324xx (Florida panhandle) spans Central and Eastern time.
        let unknown = (32400..32500)
            .map(|n| format!("{n}"))
            .find(|z| geo.zip(z).is_none())
            .expect("an unassigned 324xx ZIP");
        assert_eq!(
            geo.zip_zones(&unknown),
            vec![America::Chicago, America::New_York]
        );
        assert_eq!(geo.zip_zones("00000"), Vec::<Tz>::new());
        assert_eq!(geo.zip_zones("ab123"), Vec::<Tz>::new());
    }

    #[test]
    fn navajo_nation_zip_is_on_denver_time_and_phoenix_is_not() {
        let geo = Geo::us();
        assert_eq!(geo.zip("86515").and_then(|z| z.zone), Some(America::Denver)); // Window Rock
        assert_eq!(
            geo.zip("85001").and_then(|z| z.zone),
            Some(America::Phoenix)
        );
    }

    #[test]
    fn alaska_area_code_includes_adak() {
        let ak = Geo::us().area_code(907).unwrap();
        assert_eq!(ak.state, UsState::AK);
        assert!(ak.zones.contains(&America::Adak));
        assert!(ak.zones.contains(&America::Anchorage));
    }

    #[test]
    fn border_zips_do_not_leak_foreign_zones_into_an_area_code() {
        let ny = Geo::us().area_code(212).unwrap();
        assert_eq!(
            (ny.state, ny.zones.as_slice()),
            (UsState::NY, &[America::New_York][..])
        );
        let fl = Geo::us().area_code(850).unwrap();
        assert_eq!(fl.state, UsState::FL);
        assert!(fl.zones.contains(&America::Chicago) && fl.zones.contains(&America::New_York));
    }

    #[test]
    fn territories_have_their_zones() {
        let geo = Geo::us();
        assert_eq!(
            geo.area_code(787).unwrap().zones,
            vec![America::Puerto_Rico]
        );
        assert_eq!(
            geo.area_code(671).unwrap().zones,
            vec![chrono_tz::Pacific::Guam]
        );
        assert_eq!(geo.area_code(800), None);
    }
}
