//! End-to-end tests of the `l2m` binary: what a user types, what they get back.

use std::path::Path;
use std::process::{Command, Output};

mod hostile;
mod own_data;
mod terminal;

#[cfg(feature = "mpi")]
mod distributed;

fn l2m(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args)
        .output()
        .expect("the l2m binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn compare_trains_both_strategies_and_writes_the_run_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--epochs",
        "3",
        "--seeds",
        "2",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("mean-estimation: FC 10-64-1, Adam lr 0.00005, B 500, 3 epochs, seeds 0-1"),
        "{stdout}"
    );
    assert!(stdout.contains(
        "training samples per class: normal 1000, exponential 1000, chi-squared 800, uniform 200"
    ));
    assert!(stdout.contains("learn2mix") && stdout.contains("classical"));
    assert!(stdout.contains("target: test MSE <="));
    assert!(stdout.contains(&format!("run directory: {}", out.display())));

    for f in ["config.json", "summary.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(config["seeds"], serde_json::json!([0, 1]));
    assert_eq!(config["optimizer"]["lr"], serde_json::json!(5e-5));
    for seed in 0..2 {
        for s in ["learn2mix", "classical"] {
            let d = out.join(format!("seed-{seed}")).join(s);
            assert_records(&d, 3);
        }
    }
    // Both strategies of a seed started from the same weights.
    let checksum = |s: &str| {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("seed-1").join(s).join("run.json")).expect("read"),
        )
        .expect("json");
        v["init_checksum"].clone()
    };
    assert_eq!(checksum("learn2mix"), checksum("classical"));
}

fn assert_records(dir: &Path, epochs: usize) {
    let jsonl = std::fs::read_to_string(dir.join("records.jsonl")).expect("records.jsonl");
    let records: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), epochs);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["epoch"], serde_json::json!(i + 1));
        assert_eq!(r["alpha"].as_array().expect("alpha").len(), 4);
        assert_eq!(
            r["test_loss_per_class"]
                .as_array()
                .expect("per class")
                .len(),
            4
        );
        assert!(r["test_loss"].as_f64().expect("number").is_finite());
    }
    let csv = std::fs::read_to_string(dir.join("records.csv")).expect("records.csv");
    assert_eq!(csv.lines().count(), epochs + 1);
}

#[test]
fn same_seed_same_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str| {
        let o = l2m(&[
            "compare",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--quiet",
            "--out",
            dir.path().join(name).to_str().expect("utf-8"),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(name).join("summary.json")).expect("summary"),
        )
        .expect("json");
        s["strategies"]
            .as_array()
            .expect("strategies")
            .iter()
            .map(|x| x["mean_test_curve"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(run("a"), run("b"));
}

#[test]
fn bad_flags_exit_non_zero_with_the_flag_named() {
    let o = l2m(&["compare", "--gamma", "2"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--gamma"), "{}", text(&o.stderr));
    let o = l2m(&["compare", "--strategies", "learn2mix,bogus", "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("l2m: --strategies: ") && err.contains("unknown strategy \"bogus\""),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("never-created");
    let o = l2m(&[
        "compare",
        "--device",
        "cuda",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("--device: device cuda:0 needs l2m built with `--features cuda`"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written for an unusable device");
}

#[test]
fn list_shows_the_twelve_presets() {
    let o = l2m(&["list"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for name in [
        "mnist ",
        "fashion-mnist ",
        "cifar10 ",
        "imagenette",
        "cifar100",
        "imdb",
        "mean-estimation",
        "wine-quality",
        "california-housing",
        "mnist-reconstruction",
        "fashion-mnist-reconstruction",
        "cifar10-reconstruction",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(out.contains("learn2mix,classical,focal,smote"));
    assert!(out.contains("cargo xtask fetch-data cifar100"));
}

/// `../shared/data` (CI has it), or `None`.
fn shared_data() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("L2M_SHARED_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    p.is_dir().then_some(p)
}

#[test]
fn data_prints_class_counts_after_the_experiments_imbalance() {
    let Some(shared) = shared_data() else { return };
    let o = l2m(&[
        "data",
        "wine-quality",
        "--data-dir",
        shared.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("wine-quality/train: 1043 samples: red 799, white 244"),
        "{out}"
    );
    assert!(
        out.contains("wine-quality/test: 3249 samples: red 800, white 2449"),
        "{out}"
    );
    assert!(out.contains("peak resident memory"), "{out}");
    let o = l2m(&[
        "data",
        "cifar100",
        "--data-dir",
        shared.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cargo xtask fetch-data cifar100"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn compare_runs_real_regression_and_classification_experiments() {
    let Some(shared) = shared_data() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str], name: &str| {
        let out = dir.path().join(name);
        let mut all = vec![
            "compare",
            "--data-dir",
            shared.to_str().expect("utf-8"),
            "--seeds",
            "1",
            "--quiet",
        ];
        all.extend_from_slice(args);
        all.extend(["--out", out.to_str().expect("utf-8")]);
        let o = l2m(&all);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        (text(&o.stdout), out)
    };
    let (stdout, _) = run(&["--experiment", "wine-quality", "--epochs", "2"], "wine");
    assert!(
        stdout.contains("wine-quality: FC 11-64-1, Adam lr 0.0001, B 100, 2 epochs, seed 0"),
        "{stdout}"
    );
    let (stdout, out) = run(
        &[
            "-e",
            "mnist",
            "--epochs",
            "1",
            "--limit",
            "50",
            "-b",
            "100",
            "--strategies",
            "learn2mix,classical,focal,smote",
        ],
        "mnist",
    );
    assert!(stdout.contains("final test accuracy"), "{stdout}");
    for s in ["learn2mix", "classical", "focal", "smote"] {
        assert!(stdout.contains(s), "{stdout}");
        let info: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("seed-0").join(s).join("run.json")).expect("run.json"),
        )
        .expect("json");
        assert_eq!(info["confusion"].as_array().expect("confusion").len(), 10);
    }
}

#[test]
fn reproduce_prints_a_config_that_run_accepts_and_writes_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = l2m(&["reproduce", "--list"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("cifar10-reconstruction"));
    let o = l2m(&[
        "reproduce",
        "mean-estimation",
        "--print-config",
        "--epochs",
        "3",
        "--seeds",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let toml_text = text(&o.stdout);
    assert!(
        toml_text.contains("epochs = 3") && toml_text.contains("kind = \"learn2mix\""),
        "{toml_text}"
    );
    let cfg_path = dir.path().join("me.toml");
    std::fs::write(&cfg_path, &toml_text).expect("write");
    let out = dir.path().join("run");
    let o = l2m(&[
        "run",
        cfg_path.to_str().expect("utf-8"),
        "-q",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        report.contains("| strategy | epoch 1 (25%) | epoch 2 (50%) | epoch 3 (100%) | seeds |"),
        "{report}"
    );
    assert!(report.contains("## Verdict"), "{report}");
    // `l2m report` rewrites the same report from the run directory.
    let o = l2m(&["report", out.to_str().expect("utf-8")]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), report);
    // A broken file names itself.
    std::fs::write(&cfg_path, "name = 3\n").expect("write");
    let o = l2m(&["run", cfg_path.to_str().expect("utf-8"), "-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("me.toml: not a valid experiment"),
        "{}",
        text(&o.stderr)
    );
    let o = l2m(&[
        "report",
        dir.path().join("nothing").to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("config.json"),
        "{}",
        text(&o.stderr)
    );
}

/// Records of every run of a run directory, without the wall-clock fields.
/// `l2m compare` on the default Mean Estimation set, 2 seeds, quietly, into `out`.
fn small_compare(epochs: usize, out: &Path) -> Vec<String> {
    let epochs = epochs.to_string();
    [
        "compare", "--epochs", &epochs, "--seeds", "2", "--lr", "1e-3", "-b", "100", "-q", "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.to_string_lossy().into_owned()])
    .collect()
}

/// Runs `l2m args` to its end and returns the records it wrote into `out`.
fn uninterrupted(args: &[String], out: &Path) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    records_without_time(out)
}

fn records_without_time(dir: &Path) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for seed in 0..2 {
        for s in ["learn2mix", "classical"] {
            let p = dir
                .join(format!("seed-{seed}"))
                .join(s)
                .join("records.jsonl");
            let text = std::fs::read_to_string(&p).expect("records");
            for line in text.lines() {
                let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
                let o = v.as_object_mut().expect("object");
                o.remove("train_seconds");
                o.remove("eval_seconds");
                all.push(v);
            }
        }
    }
    all
}

fn wait_for_checkpoint(dir: &Path, child: &mut std::process::Child) {
    let commit = dir.join("seed-0/learn2mix/checkpoint.json");
    let started = std::time::Instant::now();
    while !commit.is_file() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_killed_or_interrupted_run_resumes_with_the_same_command_and_the_same_curves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |out: &Path| small_compare(150, out);
    let straight = dir.path().join("straight");
    let expected = uninterrupted(&args(&straight), &straight);
    assert_eq!(expected.len(), 4 * 150);

    // Killed (SIGKILL: no chance to clean up), then the same command again.
    let killed = dir.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&killed))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    wait_for_checkpoint(&killed, &mut child);
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(
        !killed.join("summary.json").exists(),
        "killed before the end"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&killed))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("resuming"), "{}", text(&o.stderr));
    assert_eq!(records_without_time(&killed), expected);

    // Ctrl-C (SIGINT): stops after the current epoch with exit status 130.
    let interrupted = dir.path().join("interrupted");
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&interrupted))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    wait_for_checkpoint(&interrupted, &mut child);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let o = child.wait_with_output().expect("wait");
    let stderr = text(&o.stderr);
    if !interrupted.join("summary.json").exists() {
        assert_eq!(o.status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains("run the same command again to resume"),
            "{stderr}"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&interrupted))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(records_without_time(&interrupted), expected);

    // The same directory with other settings is refused, by name.
    let mut other = args(&interrupted);
    other[2] = "20".into();
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(&other)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("epochs is 150 there, 20 now"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_authors_variant_is_listed_printed_and_runs() {
    let o = l2m(&["reproduce", "--list", "--variant", "authors"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let listed = text(&o.stdout);
    for row in [
        ["california-housing", "learn2mix gamma", "0.01", "0.05"],
        [
            "mnist-reconstruction",
            "optimiser",
            "Adam",
            "AdamW (weight decay 0.01)",
        ],
    ] {
        assert!(
            listed
                .lines()
                .any(|l| row.iter().all(|cell| l.contains(cell))),
            "{row:?} not in\n{listed}"
        );
    }
    assert!(
        listed.contains("Not copied from the authors' code"),
        "{listed}"
    );

    let o = l2m(&[
        "reproduce",
        "mnist-reconstruction",
        "--variant",
        "authors",
        "--print-config",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let toml = text(&o.stdout);
    assert!(toml.contains("variant = \"authors\""), "{toml}");
    assert!(toml.contains("init_noise = 0.05"), "{toml}");
    assert!(toml.contains("weight_decay = 0.01"), "{toml}");
    let o = l2m(&["reproduce", "mnist-reconstruction", "--print-config"]);
    let table3 = text(&o.stdout);
    assert!(
        !table3.contains("variant") && !table3.contains("init_noise"),
        "{table3}"
    );

    let o = l2m(&["reproduce", "mean-estimation", "--variant", "theirs"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--variant"), "{}", text(&o.stderr));

    // A short run of the variant: stratified batches instead of shuffled ones, and the
    // same numbers twice.
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = l2m(&[
            "compare",
            "-e",
            "mean-estimation",
            "--variant",
            "authors",
            "--epochs",
            "3",
            "--seeds",
            "1",
            "-q",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(o.status.success(), "stderr: {}", text(&o.stderr));
        out
    };
    let (a, b) = (run("a"), run("b"));
    let records = |dir: &Path, s: &str| -> Vec<serde_json::Value> {
        let p = dir.join("seed-0").join(s).join("records.jsonl");
        std::fs::read_to_string(&p)
            .expect("records")
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
                let o = v.as_object_mut().expect("object");
                o.remove("train_seconds");
                o.remove("eval_seconds");
                v
            })
            .collect()
    };
    for s in ["learn2mix", "stratified"] {
        let ra = records(&a, s);
        assert_eq!(ra.len(), 3, "{s}");
        assert_eq!(ra, records(&b, s), "{s}");
    }
    assert!(!a.join("seed-0/classical").exists());
}

#[test]
fn new_strategies_and_learn2mix_options_from_the_command_line() {
    let Some(shared) = shared_data() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = shared.to_str().expect("utf-8").to_string();
    let run = |args: &[&str], name: &str| {
        let out = dir.path().join(name);
        let mut all = vec!["compare", "--data-dir", &data_dir, "--quiet"];
        all.extend_from_slice(args);
        all.extend(["--out", out.to_str().expect("utf-8")]);
        let o = l2m(&all);
        (o, out)
    };
    // The Wine Quality command, shortened to 3 epochs and 2 seeds.
    let (o, out) = run(
        &[
            "--experiment",
            "wine-quality",
            "--strategies",
            "learn2mix,classical,group-dro",
            "--rule",
            "eg",
            "--eta",
            "0.05",
            "--floor",
            "0.01",
            "--update-every",
            "10",
            "--epochs",
            "3",
            "--seeds",
            "2",
        ],
        "wine",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("loss weights"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).expect("config"))
            .expect("json");
    let l2m_cfg = &config["strategies"][0];
    assert_eq!(l2m_cfg["rule"], "eg");
    assert_eq!(l2m_cfg["eta"], 0.05);
    assert_eq!(l2m_cfg["floor"], 0.01);
    assert_eq!(l2m_cfg["update_every"], 10);
    assert_eq!(
        config["strategies"][2]["eta"], 0.05,
        "--eta reaches group-dro too"
    );
    let records = |s: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join("seed-1").join(s).join("records.jsonl"))
            .expect("records")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let l = records("learn2mix");
    assert_eq!(l.len(), 3);
    assert_ne!(l[0]["alpha"], l[2]["alpha"], "alpha moves every 10 steps");
    for a in l[2]["alpha"].as_array().expect("alpha") {
        assert!(
            a.as_f64().expect("number") >= 0.01 / 2.0 - 1e-12,
            "the floor holds"
        );
    }
    let g = records("group-dro");
    assert_eq!(g[0]["loss_weights"], serde_json::json!([0.5, 0.5]));
    assert_ne!(
        g[2]["loss_weights"], g[0]["loss_weights"],
        "the weights move"
    );
    assert!(l[0].get("loss_weights").is_none());

    // The MNIST command.
    let (o, _) = run(
        &[
            "--experiment",
            "mnist",
            "--strategies",
            "learn2mix,stratified,balanced,group-dro,focal",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--limit",
            "500",
        ],
        "mnist",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for s in ["stratified", "balanced", "group-dro", "focal"] {
        assert!(text(&o.stdout).contains(s));
    }

    // One kind twice, with options; a flag no strategy takes; a bad value.
    let (o, out) = run(
        &[
            "--experiment",
            "mean-estimation",
            "--strategies",
            "learn2mix,learn2mix:update_every=2:loss_source=held-out:0.2",
            "--epochs",
            "2",
            "--seeds",
            "1",
        ],
        "twice",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.join("seed-0/learn2mix+update_every=2+loss_source=held-out+0.2/records.jsonl")
            .is_file()
    );
    let (o, _) = run(
        &[
            "--strategies",
            "classical",
            "--floor",
            "0.1",
            "--epochs",
            "1",
        ],
        "floor",
    );
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("--floor: none of the strategies classical takes it"),
        "{e}"
    );
    let (o, _) = run(&["--rule", "softmax"], "rule");
    assert!(text(&o.stderr).contains("--rule"), "{}", text(&o.stderr));
    let (o, _) = run(&["--eta", "0.1", "--epochs", "1"], "eta");
    let e = text(&o.stderr);
    assert!(
        !o.status.success() && e.contains("--eta") && e.contains("rule eg"),
        "{e}"
    );
}

#[test]
fn fresh_removes_only_run_directories_and_a_run_directory_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A user's folder that happens to hold a config.json: never removed.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).expect("dir");
    std::fs::write(project.join("config.json"), "{}").expect("config");
    std::fs::write(project.join("thesis.tex"), "precious").expect("file");
    let o = l2m(&[
        "compare",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "-q",
        "--fresh",
        "--out",
        project.to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("not a run directory of l2m") && e.contains("not removing it"),
        "{e}"
    );
    assert!(project.join("thesis.tex").is_file());

    // A real run directory carries the marker and is removed by --fresh.
    let run = dir.path().join("run");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "compare",
            "--seeds",
            "1",
            "-q",
            "--out",
            run.to_str().expect("utf-8"),
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let o = l2m(&args(&["--epochs", "1"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(run.join(".l2m-run").is_file());
    std::fs::write(run.join("summary.json"), "stale").expect("write");
    let o = l2m(&args(&["--epochs", "1", "--fresh"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_ne!(
        std::fs::read_to_string(run.join("summary.json")).expect("summary"),
        "stale"
    );

    // While one process trains in it, a second one (and --fresh) is refused with its PID.
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&["--epochs", "100000", "--fresh"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    let marker = run.join(".l2m-run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&marker)
        .map(|s| s.trim().to_string())
        .ok()
        != Some(pid.clone())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for extra in [
        &["--epochs", "100000"][..],
        &["--epochs", "100000", "--fresh"][..],
    ] {
        let o = l2m(&args(extra).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!o.status.success());
        let e = text(&o.stderr);
        assert!(
            e.contains(&format!("in use by another l2m process (PID {pid})")),
            "{e}"
        );
    }
    assert!(run.join("config.json").is_file(), "--fresh removed nothing");
    child.kill().expect("kill");
    child.wait().expect("wait");
    // kill -9 leaves no stale lock: the same command continues.
    let o = l2m(&args(&["--epochs", "1", "--fresh"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn configuration_files_refuse_unknown_keys_and_names_that_leave_the_output_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = l2m(&["reproduce", "mean-estimation", "--print-config"]);
    let toml = text(&o.stdout);
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let typo = write("typo.toml", &format!("data-dir = \"/x\"\n{toml}"));
    let o = l2m(&["run", typo.to_str().expect("utf-8"), "--epochs", "1"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("unknown field `data-dir`") && e.contains("did you mean `data_dir`?"),
        "{e}"
    );
    let escape = write(
        "escape.toml",
        &toml.replace("name = \"mean-estimation\"", "name = \"../../x\""),
    );
    let o = l2m(&["run", escape.to_str().expect("utf-8"), "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("name must be"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_first_seed_near_the_largest_is_a_clear_error() {
    let o = l2m(&[
        "compare",
        "--first-seed",
        "18446744073709551615",
        "--seeds",
        "2",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("--first-seed") && e.contains("passes the largest seed"),
        "{e}"
    );
}

#[test]
fn the_metric_that_judges_a_comparison_can_be_chosen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--epochs",
        "3",
        "--seeds",
        "2",
        "-q",
        "--metric",
        "worst-class",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("final test worst-class MSE"), "{stdout}");
    assert!(
        stdout.contains("target: test worst-class MSE <="),
        "{stdout}"
    );
    let o = l2m(&[
        "report",
        out.to_str().expect("utf-8"),
        "--metric",
        "worst-class",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Test worst-class MSE (lower is better)"));
    let o = l2m(&["compare", "--metric", "macro-f1", "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--metric: macro-F1 needs a classification experiment"));
    let o = l2m(&["report", out.to_str().expect("utf-8"), "--metric", "f1"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("unknown metric \"f1\""),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_error_prints_its_cause_once_and_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let out = file.join("run");
    let o = l2m(&[
        "compare",
        "--epochs",
        "1",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains(&out.display().to_string()), "{e}");
    assert_eq!(e.matches("Not a directory").count(), 1, "{e}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A full disk, stood in for by a file-size limit (RLIMIT_FSIZE, set by the shell's
/// `ulimit -f`; SIGXFSZ ignored, so a write past the limit fails with EFBIG as one on a
/// full disk fails with ENOSPC): the run stops with an error naming the file it was
/// writing, leaves no temporary file, and the same command without the limit resumes to
/// exactly the records of an uninterrupted run.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_naming_the_file_and_the_run_resumes_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |out: &Path| small_compare(60, out);
    let straight = dir.path().join("straight");
    let expected = uninterrupted(&args(&straight), &straight);
    // Half the largest file the run writes: the limit is reached part-way through.
    let largest = files_under(&straight)
        .iter()
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .max()
        .expect("files");
    let limit_kib = (largest / 2048).max(1);

    let full = dir.path().join("full");
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_kib}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&full))
        .output()
        .expect("runs under bash");
    let stderr = text(&o.stderr);
    assert!(
        !o.status.success(),
        "a write past {limit_kib} KiB must fail"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(
        stderr.contains(&*full.to_string_lossy()),
        "the error names the file: {stderr}"
    );
    let temporary: Vec<_> = files_under(&full)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");

    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args(args(&full))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(records_without_time(&full), expected);
}

/// `l2m sweep` over two options: a grid table, a heat map (when a font is there) and a
/// recommendation; an option the strategy lacks is refused by name.
#[test]
fn sweep_over_two_options_writes_a_grid_and_a_recommendation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("sweep");
    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args([
            "sweep",
            "mean-estimation",
            "--gamma",
            "0.1,0.5",
            "--floor",
            "0,0.05",
            "--seeds",
            "2",
            "--epochs",
            "3",
            "-q",
            "-o",
        ])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("The best final MSE is at"),
        "{}",
        text(&o.stdout)
    );
    let md = std::fs::read_to_string(out.join("sweep.md")).expect("sweep.md");
    assert!(md.contains("| gamma \\ floor | 0 | 0.05 |"), "{md}");
    assert!(md.contains("gamma = 0.5, floor = 0.05"), "{md}");
    assert_eq!(
        out.join("sweep-heatmap.svg").is_file(),
        md.contains("![sweep-heatmap.svg]"),
        "{md}"
    );
    for point in ["gamma=0.1+floor=0", "gamma=0.5+floor=0.05"] {
        assert!(
            out.join("points").join(point).join("config.json").is_file(),
            "{point}"
        );
    }

    let o = Command::new(env!("CARGO_BIN_EXE_l2m"))
        .args([
            "sweep",
            "mean-estimation",
            "--option",
            "gama=0.1,0.2",
            "-q",
            "-o",
        ])
        .arg(dir.path().join("bad"))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(stderr.contains("no option \"gama\""), "{stderr}");
    assert!(
        !dir.path().join("bad").exists(),
        "nothing written for a refused sweep"
    );
}
