//! Tests of the own-data loaders, on files they write themselves.

use super::*;
use crate::Features;

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.to_str().expect("utf-8").to_string()
}

fn spec(path: &str, target: &str) -> OwnData {
    OwnData {
        target: Some(target.into()),
        ..OwnData::new(path)
    }
}

fn features(d: &ClassDataset) -> Vec<f32> {
    match d.samples().features() {
        Features::F32(v) => v.clone(),
        other => panic!("expected f32 features, got {other:?}"),
    }
}

/// Standardisation uses the training rows only: their mean is 0 and their (population)
/// standard deviation 1, whatever the test rows hold.
#[test]
fn standardisation_uses_training_statistics_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("x,y\n");
    for i in 0..100 {
        // The test rows cannot be told apart by x, so the split is by class only.
        body += &format!("{},{}\n", (i * 37 % 101) as f64 * 0.5, i % 2);
    }
    let path = write(dir.path(), "t.csv", &body);
    let l = load(SourceKind::CSV, &spec(&path, "y"), 3).expect("loads");
    let x = features(&l.train);
    let train = l.train.all_members();
    let mean = train.iter().map(|&i| f64::from(x[i as usize])).sum::<f64>() / train.len() as f64;
    let var = train
        .iter()
        .map(|&i| (f64::from(x[i as usize]) - mean).powi(2))
        .sum::<f64>()
        / train.len() as f64;
    assert!(mean.abs() < 1e-6, "{mean}");
    assert!((var - 1.0).abs() < 1e-5, "{var}");
    let Input::Table { numeric, .. } = &l.preprocessing.input else {
        panic!("table input");
    };
    assert_eq!(numeric.len(), 1);
    // The stored mean is the training rows' mean, not all rows'.
    let raw: Vec<f64> = (0..100).map(|i| (i * 37 % 101) as f64 * 0.5).collect();
    let all_mean = raw.iter().sum::<f64>() / 100.0;
    let train_mean = train.iter().map(|&i| raw[i as usize]).sum::<f64>() / train.len() as f64;
    assert!((numeric[0].mean - train_mean).abs() < 1e-9);
    assert!((numeric[0].mean - all_mean).abs() > 1e-9);
    assert_eq!((l.train.len(), l.test.len()), (80, 20));
}

#[test]
fn categories_are_one_hot_and_missing_values_follow_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("n,colour,label\n");
    for i in 0..40 {
        let colour = if i == 7 {
            ""
        } else {
            ["red", "green", "blue"][i % 3]
        };
        let n = if i == 9 {
            "NA".to_string()
        } else {
            i.to_string()
        };
        body += &format!("{n},{colour},{}\n", if i % 4 == 0 { "b" } else { "a" });
    }
    let path = write(dir.path(), "m.csv", &body);
    let e = load(SourceKind::CSV, &spec(&path, "label"), 0)
        .expect_err("missing")
        .to_string();
    assert!(e.contains("row 8, column \"colour\": missing value"), "{e}");

    let dropped = load(
        SourceKind::CSV,
        &OwnData {
            missing: Missing::Drop,
            ..spec(&path, "label")
        },
        0,
    )
    .expect("drop");
    assert_eq!(dropped.train.len() + dropped.test.len(), 38);
    assert!(
        dropped
            .notes
            .iter()
            .any(|n| n.contains("2 rows with a missing value left out"))
    );

    let filled = load(
        SourceKind::CSV,
        &OwnData {
            missing: Missing::Mean,
            ..spec(&path, "label")
        },
        0,
    )
    .expect("mean");
    let Input::Table { categorical, .. } = &filled.preprocessing.input else {
        panic!("table");
    };
    assert_eq!(categorical[0].categories, ["blue", "green", "red"]);
    let freq: f32 = categorical[0].frequencies.iter().sum();
    assert!((freq - 1.0).abs() < 1e-6, "{freq}");
    let x = features(&filled.train);
    let dim = filled.train.samples().feature_dim();
    assert_eq!(dim, 4);
    // Row 8 (store index 7) has no colour: its one-hot part is the training frequencies;
    // row 10 (index 9) has no n: its standardised value is the mean, 0.
    assert_eq!(&x[7 * dim + 1..8 * dim], &categorical[0].frequencies[..]);
    assert_eq!(x[9 * dim], 0.0);
    // Every other row is one-hot.
    for r in (0..40).filter(|&r| r != 7) {
        let hot: f32 = x[r * dim + 1..(r + 1) * dim].iter().sum();
        assert_eq!(hot, 1.0, "row {r}");
    }
}

#[test]
fn the_task_is_inferred_and_classes_sort_numerically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("x,grade,price\n");
    for i in 0..60 {
        body += &format!("{i},{},{}.5\n", [2, 10, 1][i % 3], i * 3);
    }
    let path = write(dir.path(), "g.csv", &body);
    let c = inspect(SourceKind::CSV, &spec(&path, "grade")).expect("inspect");
    assert_eq!(c.task, TaskKind::Classification);
    assert!(c.why.contains("3 distinct whole numbers"), "{}", c.why);
    let l = load(SourceKind::CSV, &spec(&path, "grade"), 0).expect("loads");
    assert_eq!(l.train.class_names(), ["1", "2", "10"]);
    let r = inspect(
        SourceKind::CSV,
        &OwnData {
            group: Some("grade".into()),
            ..spec(&path, "price")
        },
    )
    .expect("inspect");
    assert_eq!(r.task, TaskKind::Regression);
}

/// The parallel block reader and the record reader give the same table, and a quoted
/// field with a line break (which only the record reader can read) still loads.
#[test]
fn block_and_record_readers_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("a,b,c,label\n");
    // More than one 8 MiB block.
    let rows = 400_000;
    for i in 0..rows {
        body += &format!(
            "{},{}.25,k{},{}\n",
            i % 977,
            i % 13,
            i % 5,
            ["x", "y", "z"][i % 3]
        );
    }
    let plain = write(dir.path(), "plain.csv", &body);
    let quoted_body = body.replacen("k1,", "\"k1\",", 1);
    let quoted = write(dir.path(), "quoted.csv", &quoted_body);
    let a = load(SourceKind::CSV, &spec(&plain, "label"), 0).expect("plain");
    let b = load(SourceKind::CSV, &spec(&quoted, "label"), 0).expect("quoted");
    assert_eq!(a.train.len(), rows - a.test.len());
    assert_eq!(features(&a.train), features(&b.train));
    assert_eq!(a.train.members(), b.train.members());
    assert_eq!(a.preprocessing, b.preprocessing);
    assert_eq!(a.test_ids, b.test_ids);
    let multiline = write(
        dir.path(),
        "multi.csv",
        "note,label\n\"two\nlines\",x\none,y\nthree,x\nfour,y\nfive,x\nsix,y\n",
    );
    let m = load(
        SourceKind::CSV,
        &OwnData {
            test_fraction: 0.34,
            ..spec(&multiline, "label")
        },
        0,
    )
    .expect("multi-line field");
    assert_eq!(m.train.len() + m.test.len(), 6);
}

#[test]
fn a_separate_test_file_is_read_with_the_training_preprocessing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let train = write(
        dir.path(),
        "train.csv",
        "x,kind,y\n1,a,p\n2,b,q\n3,a,p\n4,b,q\n5,a,p\n6,b,q\n",
    );
    let test = write(dir.path(), "test.csv", "x,kind,y\n10,b,q\n0,a,p\n");
    let l = load(
        SourceKind::CSV,
        &OwnData {
            test: Some(PathBuf::from(&test)),
            ..spec(&train, "y")
        },
        0,
    )
    .expect("loads");
    assert_eq!((l.train.len(), l.test.len()), (6, 2));
    assert_eq!(*l.test_ids, RowIds::Rows(vec![1, 2]));
    let x = features(&l.test);
    // (10 - 3.5) / sd(1..6), with the training statistics.
    let sd = (35.0f64 / 12.0).sqrt();
    assert!((f64::from(x[0]) - 6.5 / sd).abs() < 1e-6, "{}", x[0]);
    assert_eq!(&x[1..3], &[0.0, 1.0]);
    let bad = write(dir.path(), "bad.csv", "x,kind,y\n1,c,p\n");
    let e = load(
        SourceKind::CSV,
        &OwnData {
            test: Some(PathBuf::from(&bad)),
            ..spec(&train, "y")
        },
        0,
    )
    .expect_err("unknown category")
    .to_string();
    assert!(
        e.contains(
            "bad.csv: row 1, column \"kind\": \"c\" is a category the training data does not have"
        ),
        "{e}"
    );
}

#[test]
fn too_many_categories_and_bad_options_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("id,y\n");
    for i in 0..300 {
        body += &format!("u{i},{}\n", i % 2);
    }
    let path = write(dir.path(), "ids.csv", &body);
    let e = load(SourceKind::CSV, &spec(&path, "y"), 0)
        .expect_err("cardinality")
        .to_string();
    assert!(
        e.contains("column \"id\" (from row 101): more than 100 distinct values"),
        "{e}"
    );
    let e = load(
        SourceKind::CSV,
        &OwnData {
            test_fraction: 1.5,
            ..spec(&path, "y")
        },
        0,
    )
    .expect_err("fraction")
    .to_string();
    assert!(e.contains("--test-fraction"), "{e}");
    let e = load(
        SourceKind::CSV,
        &OwnData {
            features: Some(vec!["nope".into()]),
            ..spec(&path, "y")
        },
        0,
    )
    .expect_err("feature")
    .to_string();
    assert!(e.contains("--features: there is no column \"nope\""), "{e}");
}

#[test]
fn the_kind_of_data_is_inferred_from_the_argument() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(SourceKind::infer("hf://datasets/a/b"), SourceKind::HUB);
    assert_eq!(SourceKind::infer("x.parquet"), SourceKind::PARQUET);
    assert_eq!(SourceKind::infer("x.csv"), SourceKind::CSV);
    assert_eq!(SourceKind::infer("x.tar.gz"), SourceKind::IMAGE_FOLDER);
    assert_eq!(
        SourceKind::infer(dir.path().to_str().expect("utf-8")),
        SourceKind::IMAGE_FOLDER
    );
    std::fs::write(dir.path().join("part-0.parquet"), b"").expect("write");
    assert_eq!(
        SourceKind::infer(dir.path().to_str().expect("utf-8")),
        SourceKind::PARQUET
    );
    assert_eq!(dataset_name("/data/My Houses.v2.csv"), "My-Houses");
    assert_eq!(dataset_name("hf://datasets/owner/name"), "name");
}
