//! The user's own data through the `l2m` binary: CSV, Parquet, text, image folders, the
//! Hub (against a local server), `l2m predict`, and every mistake a user can make.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{l2m, text};

/// A deterministic pseudo-random number in [0, 1) (no RNG crate needed here).
fn noise(i: usize, salt: usize) -> f64 {
    let x = ((i * 7919 + salt * 104_729) % 10_007) as f64;
    x / 10_007.0
}

/// 300 customers: two numeric features, a categorical one, and an imbalanced label that
/// depends on them.
pub(super) fn customers_csv(path: &Path) {
    let mut s = String::from("age,income,plan,churned\n");
    for i in 0..300 {
        let age = 20.0 + 50.0 * noise(i, 1);
        let income = 1000.0 + 9000.0 * noise(i, 2);
        let plan = ["basic", "pro", "team"][i % 3];
        let churned = if age < 35.0 && plan == "basic" {
            "yes"
        } else {
            "no"
        };
        s += &format!("{age:.2},{income:.1},{plan},{churned}\n");
    }
    std::fs::write(path, s).expect("write csv");
}

pub(super) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

pub(super) fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        text(&o.stdout)
    );
    text(&o.stderr)
}

pub(super) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `row -> values` of a predictions file.
fn predictions(path: &Path) -> HashMap<String, Vec<String>> {
    let mut r = csv::Reader::from_path(path).expect("predictions");
    r.records()
        .map(|rec| {
            let rec = rec.expect("row");
            (
                rec[0].to_string(),
                rec.iter().skip(1).map(String::from).collect(),
            )
        })
        .collect()
}

/// Every test row the run saved is predicted again by `l2m predict` on the training file,
/// to float rounding (different batches may sum in another order).
fn assert_reproduced(saved: &Path, predicted: &Path) -> usize {
    let a = predictions(saved);
    let b = predictions(predicted);
    assert!(!a.is_empty());
    for (row, values) in &a {
        let other = b
            .get(row)
            .unwrap_or_else(|| panic!("row {row} not predicted"));
        match (values[0].parse::<f64>(), other[0].parse::<f64>()) {
            (Ok(x), Ok(y)) => assert!(
                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                "row {row}: {x} vs {y}"
            ),
            _ => assert_eq!(values[0], other[0], "row {row}: predicted class"),
        }
        for (x, y) in values.iter().zip(other).skip(1) {
            let (x, y): (f64, f64) = (x.parse().expect("number"), y.parse().expect("number"));
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                "row {row}: {x} vs {y}"
            );
        }
    }
    a.len()
}

#[test]
fn a_csv_of_ones_own_trains_predicts_and_reproduces_its_final_evaluation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("customers.csv");
    customers_csv(&csv);
    let run = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--data",
        s(&csv),
        "--target",
        "churned",
        "--epochs",
        "3",
        "--seeds",
        "1",
        "-q",
        "--out",
        s(&run),
    ]);
    let stdout = ok(&o);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("classification (the target \"churned\" holds text labels)"),
        "{stderr}"
    );
    for strategy in ["learn2mix", "classical", "focal", "smote"] {
        assert!(stdout.contains(strategy), "{strategy}: {stdout}");
        let d = run.join("seed-0").join(strategy);
        assert!(d.join("model.safetensors").is_file(), "{strategy}");
        assert!(d.join("predictions.csv").is_file(), "{strategy}");
    }
    let prep: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run.join("seed-0/preprocessing.json")).expect("preprocessing"),
    )
    .expect("json");
    assert_eq!(prep["classes"], serde_json::json!(["no", "yes"]));
    assert_eq!(
        prep["input"]["categorical"][0]["categories"],
        serde_json::json!(["basic", "pro", "team"])
    );

    let out = dir.path().join("predictions.csv");
    let p = ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]));
    assert!(p.contains("300 predictions by learn2mix (seed 0"), "{p}");
    let header = std::fs::read_to_string(&out).expect("read");
    assert!(
        header.starts_with("row,prediction,p_no,p_yes\n"),
        "{header}"
    );
    assert_eq!(header.lines().count(), 301);
    let n = assert_reproduced(&run.join("seed-0/learn2mix/predictions.csv"), &out);
    assert_eq!(n, 60, "a fifth of the rows are test rows");

    // Another strategy's model; an existing output file is never replaced.
    let out2 = dir.path().join("focal.csv");
    ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&out2),
        "--strategy",
        "focal",
    ]));
    assert_reproduced(&run.join("seed-0/focal/predictions.csv"), &out2);
    let e = fails(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]));
    assert!(e.contains("exists"), "{e}");
    let e = fails(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&dir.path().join("x.csv")),
        "--strategy",
        "balanced",
    ]));
    assert!(
        e.contains("--strategy: the run has no strategy \"balanced\""),
        "{e}"
    );

    // New data without a training column.
    let fewer = dir.path().join("fewer.csv");
    std::fs::write(&fewer, "age,plan\n30,basic\n").expect("write");
    let e = fails(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&fewer),
        "--out",
        s(&dir.path().join("y.csv")),
    ]));
    assert!(
        e.contains("the model was trained on columns it lacks: \"income\""),
        "{e}"
    );
    // New data with a category training never saw.
    let unseen = dir.path().join("unseen.csv");
    std::fs::write(&unseen, "age,income,plan\n30,5000,enterprise\n").expect("write");
    let e = fails(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&unseen),
        "--out",
        s(&dir.path().join("z.csv")),
    ]));
    assert!(
        e.contains(
            "row 1, column \"plan\": \"enterprise\" is a category the training data does not have"
        ),
        "{e}"
    );
}

#[test]
fn regression_with_groups_from_parquet_and_its_config_file() {
    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("houses.parquet");
    let n = 400;
    let rooms: Vec<f64> = (0..n).map(|i| 1.0 + 6.0 * noise(i, 3)).collect();
    let region: Vec<&str> = (0..n)
        .map(|i| if i % 5 == 0 { "coast" } else { "inland" })
        .collect();
    let price: Vec<f64> = (0..n)
        .map(|i| 100.0 * rooms[i] + if region[i] == "coast" { 300.0 } else { 0.0 })
        .collect();
    let batch = RecordBatch::try_from_iter([
        (
            "rooms",
            Arc::new(Float64Array::from(rooms)) as arrow_array::ArrayRef,
        ),
        ("region", Arc::new(StringArray::from(region)) as _),
        ("price", Arc::new(Float64Array::from(price)) as _),
    ])
    .expect("batch");
    let f = std::fs::File::create(&file).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");

    let args = [
        "--data",
        s(&file),
        "--target",
        "price",
        "--group",
        "region",
        "--epochs",
        "2",
        "--seeds",
        "1",
        "-q",
    ];
    let toml = ok(&l2m(&[&["compare", "--print-config"][..], &args].concat()));
    assert!(
        toml.contains("kind = \"parquet\"") && toml.contains("group = \"region\""),
        "{toml}"
    );
    let cfg = dir.path().join("houses.toml");
    std::fs::write(&cfg, &toml).expect("write");
    let run = dir.path().join("run");
    let stdout = ok(&l2m(&["run", s(&cfg), "-q", "--out", s(&run)]));
    assert!(
        stdout.contains("coast") && stdout.contains("inland"),
        "{stdout}"
    );
    assert!(stdout.contains("test MSE"), "{stdout}");
    let out = dir.path().join("p.csv");
    ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&file),
        "--out",
        s(&out),
    ]));
    assert_reproduced(&run.join("seed-0/learn2mix/predictions.csv"), &out);
    let preds = predictions(&out);
    // Predictions are in the target's own units (hundreds), not standardised ones.
    let mean: f64 = preds
        .values()
        .map(|v| v[0].parse::<f64>().expect("value"))
        .sum::<f64>()
        / preds.len() as f64;
    assert!(mean > 50.0, "{mean}");

    // Regression without a group is refused, naming the candidates.
    let e = fails(&l2m(&[
        "compare",
        "--data",
        s(&file),
        "--target",
        "price",
        "--out",
        s(&dir.path().join("r2")),
    ]));
    assert!(
        e.contains("--group: regression needs a column") && e.contains("region"),
        "{e}"
    );
}

#[test]
fn text_classification_on_a_column_of_reviews() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("reviews.csv");
    let mut body = String::from("review,sentiment\n");
    for i in 0..120 {
        let (t, l) = if i % 4 == 0 {
            ("a dull, slow and boring film", "negative")
        } else {
            ("a \"great\" film, moving and funny", "positive")
        };
        body += &format!("\"{} #{i}\",{l}\n", t.replace('"', "\"\""));
    }
    std::fs::write(&file, body).expect("write");
    let run = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--data",
        s(&file),
        "--text",
        "review",
        "--target",
        "sentiment",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "-q",
        "--out",
        s(&run),
        "-b",
        "16",
    ]);
    let stdout = ok(&o);
    assert!(
        text(&o.stderr).contains("model Transformer"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        stdout.contains("negative") && stdout.contains("positive"),
        "{stdout}"
    );
    let out = dir.path().join("p.csv");
    ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&file),
        "--out",
        s(&out),
    ]));
    assert_reproduced(&run.join("seed-0/learn2mix/predictions.csv"), &out);
}

pub(super) fn png(path: &Path, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    image::RgbImage::from_fn(12, 10, |x, y| {
        image::Rgb([
            rgb[0],
            rgb[1].wrapping_add((x * 9) as u8),
            rgb[2].wrapping_add((y * 7) as u8),
        ])
    })
    .save(path)
    .expect("png");
}

#[test]
fn an_image_folder_trains_and_predicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = dir.path().join("photos");
    for i in 0..12 {
        png(&photos.join(format!("cat/{i}.png")), [200, 10, 10]);
        if i < 6 {
            png(&photos.join(format!("dog/{i}.png")), [10, 10, 200]);
        }
    }
    let run = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--data",
        s(&photos),
        "--epochs",
        "2",
        "--seeds",
        "1",
        "-q",
        "--out",
        s(&run),
        "-b",
        "4",
    ]);
    let stdout = ok(&o);
    assert!(
        text(&o.stderr).contains("model LeNet-CIFAR"),
        "{}",
        text(&o.stderr)
    );
    assert!(stdout.contains("cat 10, dog 5"), "{stdout}");
    let out = dir.path().join("p.csv");
    let p = ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&photos),
        "--out",
        s(&out),
    ]));
    assert!(p.contains("18 predictions"), "{p}");
    assert!(
        std::fs::read_to_string(&out)
            .expect("read")
            .starts_with("file,prediction,p_cat,p_dog\n")
    );
    assert_reproduced(&run.join("seed-0/learn2mix/predictions.csv"), &out);

    // The train/ and test/ layout, resized, grey, with the MLP.
    let split = dir.path().join("split");
    for i in 0..6 {
        png(&split.join(format!("train/a/{i}.png")), [1, 2, 3]);
        png(&split.join(format!("train/b/{i}.png")), [200, 2, 3]);
    }
    png(&split.join("test/a/0.png"), [1, 2, 3]);
    png(&split.join("test/b/0.png"), [200, 2, 3]);
    let stdout = ok(&l2m(&[
        "compare",
        "--data",
        s(&split),
        "--image-size",
        "8",
        "--channels",
        "1",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "-q",
        "-b",
        "4",
        "--out",
        s(&dir.path().join("run2")),
    ]));
    assert!(stdout.contains("MLP (hidden 128-64)"), "{stdout}");
    assert!(stdout.contains("a 6, b 6"), "{stdout}");
}

/// Each mistake: one clear error, and no run directory left behind.
#[test]
fn every_mistake_is_named_before_training_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let run = d.join("run");
    let write = |name: &str, body: &str| -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let csv = d.join("customers.csv");
    customers_csv(&csv);
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    let args = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    cases.push((
        args(&["--data", s(&csv), "--target", "churn"]),
        "--target: there is no column \"churn\"; the columns are age, income, plan, churned",
    ));
    let one = write("one.csv", "x,y\n1,a\n2,a\n3,a\n");
    cases.push((
        args(&["--data", s(&one), "--target", "y"]),
        "has a single class (a)",
    ));
    let few = write("few.csv", "x,y\n1,a\n2,a\n3,a\n4,a\n5,a\n6,b\n");
    cases.push((
        args(&["--data", s(&few), "--target", "y"]),
        "class \"b\" has 1 row(s): too few to split",
    ));
    let mut body = String::from("x,y\n");
    for i in 0..50 {
        body += &format!(
            "{},{}\n",
            if i == 33 {
                "n/a?".to_string()
            } else {
                i.to_string()
            },
            i % 2
        );
    }
    let stray = write("stray.csv", &body);
    cases.push((
        args(&["--data", s(&stray), "--target", "y"]),
        "row 34, column \"x\": \"n/a?\" is not a number",
    ));
    let empty = write("empty.csv", "");
    cases.push((
        args(&["--data", s(&empty), "--target", "y"]),
        "empty.csv: empty file",
    ));
    let missing = write("missing.csv", "x,y\n1,a\n,b\n3,a\n4,b\n");
    cases.push((
        args(&["--data", s(&missing), "--target", "y"]),
        "row 2, column \"x\": missing value; pass --missing drop",
    ));
    let photos = d.join("photos");
    png(&photos.join("cat/0.png"), [1, 1, 1]);
    png(&photos.join("cat/1.png"), [1, 1, 1]);
    cases.push((
        args(&["--data", s(&photos)]),
        "an image folder with one class (cat)",
    ));
    let broken = d.join("broken");
    png(&broken.join("cat/0.png"), [1, 1, 1]);
    png(&broken.join("dog/0.png"), [1, 1, 1]);
    std::fs::write(broken.join("dog/1.png"), b"not a png").expect("write");
    cases.push((
        args(&["--data", s(&broken)]),
        "dog/1.png: cannot decode image",
    ));
    cases.push((
        args(&[
            "--data",
            s(&csv),
            "--target",
            "churned",
            "--model",
            "resnet18",
        ]),
        "--model resnet18: does not fit a table of features",
    ));
    for (case, expected) in cases {
        let mut a = vec!["compare".to_string()];
        a.extend(case.clone());
        a.extend(args(&[
            "--epochs",
            "1",
            "--seeds",
            "1",
            "-q",
            "--out",
            s(&run),
        ]));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let e = fails(&l2m(&refs));
        assert!(e.contains(expected), "{case:?}: {e}");
        assert_eq!(
            e.lines().filter(|l| l.contains(expected)).count(),
            1,
            "{case:?}: said once: {e}"
        );
        assert!(!run.exists(), "{case:?} left {}", run.display());
    }
    // Flags that need --data, and --data with a preset.
    let e = fails(&l2m(&["compare", "--target", "y"]));
    assert!(e.contains("--data"), "{e}");
    let e = fails(&l2m(&[
        "compare",
        "--data",
        s(&csv),
        "--experiment",
        "mnist",
    ]));
    assert!(
        e.contains("--experiment") && e.contains("cannot be used with"),
        "{e}"
    );
}

#[path = "../crates/l2m-data/tests/support/hub_server.rs"]
mod hub_server;

/// A Hub dataset served on the loopback address in the Hub's URL layout (`HF_ENDPOINT`):
/// downloaded into `HF_HOME`, then trained on again offline from the cache; an unknown
/// dataset and an uncached one offline are clear errors. No real host is contacted.
#[test]
fn a_hub_dataset_from_a_local_server_and_then_offline_from_the_cache() {
    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("hub");
    let data = root.join("someone/churn/data");
    std::fs::create_dir_all(&data).expect("mkdir");
    for (split, n, salt) in [("train", 200, 1), ("test", 60, 2)] {
        let x: Vec<f64> = (0..n).map(|i| noise(i, salt)).collect();
        let y: Vec<&str> = x
            .iter()
            .map(|&v| if v < 0.3 { "left" } else { "stayed" })
            .collect();
        let batch = RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float64Array::from(x)) as arrow_array::ArrayRef,
            ),
            ("label", Arc::new(StringArray::from(y)) as _),
        ])
        .expect("batch");
        let f = std::fs::File::create(data.join(format!("{split}-00000-of-00001.parquet")))
            .expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }
    let server = hub_server::serve(&root);
    let home = dir.path().join("hf-home");
    let hub = |args: &[&str], offline: bool| {
        std::process::Command::new(env!("CARGO_BIN_EXE_l2m"))
            .args(args)
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HOME", &home)
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN")
            .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
            .output()
            .expect("the l2m binary runs")
    };
    let run = dir.path().join("run");
    let args = [
        "compare",
        "--data",
        "hf://datasets/someone/churn",
        "--target",
        "label",
        "--split",
        "train",
        "--test-split",
        "test",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "-q",
        "--out",
    ];
    let stdout = ok(&hub(&[&args[..], &[s(&run)]].concat(), false));
    assert!(
        stdout.contains("left") && stdout.contains("stayed"),
        "{stdout}"
    );
    let cached = home.join("hub/datasets--someone--churn");
    assert!(cached.is_dir(), "nothing in {}", cached.display());

    let before = server.requests();
    let run2 = dir.path().join("run2");
    ok(&hub(&[&args[..], &[s(&run2)]].concat(), true));
    assert_eq!(server.requests(), before, "offline made requests");

    let e = fails(&hub(
        &[
            "compare",
            "--data",
            "hf://datasets/someone/missing",
            "--target",
            "label",
            "--out",
            s(&dir.path().join("r3")),
        ],
        false,
    ));
    assert!(e.contains("someone/missing"), "{e}");
    let e = fails(&hub(
        &[
            "compare",
            "--data",
            "hf://datasets/someone/other",
            "--target",
            "label",
            "--out",
            s(&dir.path().join("r4")),
        ],
        true,
    ));
    assert!(
        e.contains("someone/other") && e.contains("HF_HUB_OFFLINE"),
        "{e}"
    );
}

/// A malformed Parquet file that made the `parquet` crate panic (found by fuzzing, kept in
/// fuzz/regressions/parquet/, whose first byte is the harness's mode) is a clear error
/// naming the file: exit status 1, no panic message.
#[test]
fn a_parquet_file_that_panics_the_reader_is_a_named_error() {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/parquet");
    let mut inputs: Vec<_> = std::fs::read_dir(&regressions)
        .expect("fuzz/regressions/parquet")
        .flatten()
        .map(|e| e.path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    let dir = tempfile::tempdir().expect("tempdir");
    for input in inputs.iter().take(5) {
        let bytes = std::fs::read(input).expect("read");
        let file = dir.path().join("broken.parquet");
        std::fs::write(&file, &bytes[1..]).expect("write");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_l2m"))
            .args([
                "compare",
                "--data",
                s(&file),
                "--target",
                "label",
                "-q",
                "-o",
            ])
            .arg(dir.path().join("run"))
            .output()
            .expect("runs");
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {stderr}", input.display());
        assert!(stderr.contains("broken.parquet"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
