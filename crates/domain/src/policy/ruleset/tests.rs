use super::*;

#[test]
fn bundled_ruleset_loads() {
    let set = Ruleset::bundled().unwrap();
    assert_eq!(set.version, "2026.11-1");
    assert_eq!(set.end_margin(), Duration::seconds(345));
    assert!(set.rule("fed.regf.1006.6.b.1.i").is_some());
}
