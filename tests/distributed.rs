//! Data-parallel runs under `mpirun` (built with `--features mpi`; needs Open MPI, see
//! docs/distributed.md): the records of 2 and 3 processes equal one process's within
//! floating-point tolerance (the sums run in another order).

use std::path::Path;
use std::process::Command;

use super::{shared_data, text};

/// `mpirun -np <ranks> l2m <args>`, one thread per process.
fn mpirun(ranks: usize, args: &[&str]) -> std::process::Output {
    Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(ranks.to_string())
        .arg(env!("CARGO_BIN_EXE_l2m"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("mpirun runs (apt install openmpi-bin)")
}

fn records(dir: &Path, strategy: &str, seed: u64) -> Vec<serde_json::Value> {
    let path = dir.join(format!("seed-{seed}/{strategy}/records.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

/// Every number of every record within `tol` (relative), the per-class sample counts
/// exactly.
fn assert_close(a: &[serde_json::Value], b: &[serde_json::Value], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: epochs");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            x["train_samples_per_class"], y["train_samples_per_class"],
            "{what}: samples drawn"
        );
        for key in ["train_loss", "test_loss", "test_metric"] {
            let (p, q) = (x[key].as_f64().expect(key), y[key].as_f64().expect(key));
            assert!(
                (p - q).abs() <= tol * (1.0 + q.abs()),
                "{what}, epoch {}: {key} {p} against one process's {q}",
                x["epoch"]
            );
        }
        let (pa, qa) = (x["alpha"].as_array(), y["alpha"].as_array());
        for (p, q) in pa.into_iter().flatten().zip(qa.into_iter().flatten()) {
            let (p, q) = (p.as_f64().expect("alpha"), q.as_f64().expect("alpha"));
            assert!((p - q).abs() <= tol, "{what}: alpha {p} against {q}");
        }
    }
}

fn equal_to_one_process(ranks: usize, args: &[&str], strategies: &[&str], tol: f64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (one, many) = (tmp.path().join("one"), tmp.path().join("many"));
    let mut a = args.to_vec();
    a.extend(["-q", "-o"]);
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(&a)
        .arg(&one)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("l2m runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut a = a.clone();
    let many_s = many.to_string_lossy().to_string();
    a.push(&many_s);
    let o = mpirun(ranks, &a);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains(&format!("({ranks} processes, data-parallel)")),
        "{}",
        text(&o.stdout)
    );
    for s in strategies {
        assert_close(
            &records(&many, s, 0),
            &records(&one, s, 0),
            tol,
            &format!("{s} on {ranks} ranks"),
        );
    }
}

#[test]
fn two_ranks_train_wine_quality_like_one_process() {
    let Some(shared) = shared_data() else { return };
    let data = shared.to_string_lossy().to_string();
    equal_to_one_process(
        2,
        &[
            "compare",
            "--experiment",
            "wine-quality",
            "--data-dir",
            &data,
            "--seeds",
            "1",
            "--epochs",
            "20",
        ],
        &["learn2mix", "classical"],
        1e-5,
    );
}

#[test]
fn three_ranks_with_a_batch_that_does_not_divide_train_mean_estimation_like_one_process() {
    // Batch 500 over 3 ranks: 167 + 167 + 166.
    equal_to_one_process(
        3,
        &["compare", "--seeds", "1", "--epochs", "15"],
        &["learn2mix", "classical"],
        1e-5,
    );
}

#[test]
fn two_and_three_ranks_train_mnist_like_one_process() {
    let Some(shared) = shared_data() else { return };
    let data = shared.to_string_lossy().to_string();
    for ranks in [2, 3] {
        equal_to_one_process(
            ranks,
            &[
                "compare",
                "--experiment",
                "mnist",
                "--data-dir",
                &data,
                "--limit",
                "100",
                "--batch-size",
                "100",
                "--seeds",
                "1",
                "--epochs",
                "3",
                "--strategies",
                "learn2mix,classical",
            ],
            &["learn2mix", "classical"],
            1e-4,
        );
    }
}

#[test]
fn a_strategy_that_needs_the_whole_batch_stops_every_rank_with_its_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("dro");
    let o = mpirun(
        2,
        &[
            "compare",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--strategies",
            "group-dro",
            "-q",
            "-o",
            &out.to_string_lossy(),
        ],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("group-dro cannot run data-parallel"), "{err}");
}
