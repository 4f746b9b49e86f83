//! What a terminal shows with many classes: narrow lines, a handful of warnings, no
//! escape codes when the output is not a terminal, the data notes once.

use super::l2m;
use super::own_data::{ok, s};

/// A long-tailed table of 100 classes (class k keeps about 120 * exp(-k / 25) rows, at
/// least 6), three numeric features.
fn long_tailed_csv(path: &std::path::Path) {
    let mut body = String::from("x1,x2,x3,species\n");
    let mut n = 0usize;
    for k in 0..100usize {
        let rows = ((120.0 * (-(k as f64) / 25.0).exp()) as usize).max(6);
        for i in 0..rows {
            n += 1;
            let a = (k as f64) / 50.0 + ((n * 7919) % 101) as f64 / 101.0;
            let b = -(k as f64) / 50.0 + ((n * 104_729) % 97) as f64 / 97.0;
            body += &format!("{a:.3},{b:.3},{},sp{k:03}\n", i % 5);
        }
    }
    std::fs::write(path, body).expect("write");
}

#[test]
fn a_hundred_classes_stay_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("k100.csv");
    long_tailed_csv(&csv);
    let run = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--data",
        s(&csv),
        "--target",
        "species",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--out",
        s(&run),
    ]);
    let stdout = ok(&o);
    let stderr = super::text(&o.stderr);
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(
            widest <= 200,
            "{what}: a line of {widest} characters:\n{text}"
        );
        assert!(!text.contains('\u{1b}'), "{what} has escape codes:\n{text}");
    }
    let warnings = stderr.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 4, "{warnings} warning lines:\n{stderr}");
    assert!(
        stdout.contains("worst 3 of 100 classes") && stdout.contains("100 classes,"),
        "{stdout}"
    );
    // The data notes once per run, the class counts per seed.
    assert_eq!(stderr.matches("note: read from").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("k100/train:").count(), 2, "{stderr}");
    // An inferred task is announced as inferred.
    assert!(!stderr.contains("as given by --task"), "{stderr}");
    // Every class is in per_class.csv.
    let per_class = std::fs::read_to_string(run.join("per_class.csv")).expect("per_class.csv");
    assert_eq!(per_class.lines().count(), 101, "{per_class}");
    assert!(per_class.starts_with("class,train_samples,learn2mix final test accuracy,"));
}

/// Columns that cannot be one-hot encoded are named together, in one error.
#[test]
fn every_column_that_cannot_be_encoded_is_named_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("ids.csv");
    let mut body = String::from("id,name,x,code,label\n");
    for i in 0..300 {
        body += &format!(
            "u{i},n{},{},c{},{}\n",
            i * 7,
            i % 10,
            i * 3,
            ["a", "b"][i % 2]
        );
    }
    std::fs::write(&csv, body).expect("write");
    let o = l2m(&[
        "compare",
        "--data",
        s(&csv),
        "--target",
        "label",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "-q",
        "--out",
        s(&dir.path().join("run")),
    ]);
    assert!(!o.status.success());
    let e = super::text(&o.stderr);
    assert!(
        e.contains("columns \"id\" (from row 101), \"name\" (from row 101), \"code\" (from row 101): more than 100 distinct values"),
        "{e}"
    );
}
