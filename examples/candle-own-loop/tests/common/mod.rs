//! The checks both framework examples must pass (a module of each example's tests): the
//! example runs, prints its table, moves alpha toward the harder class, and gives the same
//! numbers for the same seed.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the example runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("utf-8")
}

/// (per-class test MSE, alpha at the start, alpha at the end) of a table row.
fn row(table: &str, strategy: &str) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {strategy} |")))
        .unwrap_or_else(|| panic!("no row {strategy} in\n{table}"));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    let nums = |s: &str| -> Vec<f64> {
        s.split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    let (start, end) = cells[4].split_once("->").expect("start -> end");
    (nums(cells[3]), nums(start), nums(end))
}

/// Runs the example binary `bin` and checks its table.
pub fn check(bin: &str) {
    let a = run(bin, &["--epochs", "8", "--seed", "3"]);
    assert_eq!(
        a,
        run(bin, &["--epochs", "8", "--seed", "3"]),
        "same seed, same numbers"
    );
    assert_ne!(a, run(bin, &["--epochs", "8", "--seed", "4"]));
    let (classical_mse, _, fixed_end) = row(&a, "classical (stratified)");
    let (_, start, end) = row(&a, "learn2mix");
    let hardest = classical_mse
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map(|(i, _)| i)
        .expect("classes");
    assert!(end[hardest] > start[hardest], "{a}");
    assert_eq!(fixed_end, start, "fixed proportions do not move");
}
