//! The burn-loop example end to end (the checks shared by both framework examples).

#[path = "../../candle-own-loop/tests/common/mod.rs"]
mod common;

#[test]
fn learn2mix_moves_alpha_toward_the_harder_class_and_the_seed_fixes_the_numbers() {
    common::check(env!("CARGO_BIN_EXE_burn-loop"));
}
