//! `sqlx::migrate!` embeds `../../migrations` at compile time; cargo does not know that, so a
//! new or changed migration would not rebuild this crate without this line.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
