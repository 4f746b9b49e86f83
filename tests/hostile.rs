//! The own-data paths under hostile input, each test replaying a reproduction through the
//! binary (docs/reliability.md, "Guarantees"): a user's folder is never adopted (so never
//! wiped), classes are what the user meant, file contents never drive the terminal, and a
//! model is verified like a checkpoint.

use std::path::Path;

use super::l2m;
use super::own_data::{customers_csv, fails, ok, png, s};

/// The quickest training that still writes a whole run directory.
const QUICK: [&str; 5] = ["--epochs", "1", "--seeds", "1", "-q"];

fn compare(data: &Path, extra: &[&str], out: &Path) -> std::process::Output {
    let mut a = vec!["compare", "--data", s(data)];
    a.extend_from_slice(extra);
    a.extend_from_slice(&QUICK);
    a.extend_from_slice(&["--out", s(out)]);
    l2m(&a)
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).expect("read_dir") {
            let p = e.expect("entry").path();
            let rel = p.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().into_owned());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Neither an escape character nor a bidirectional override reaches the terminal.
fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
        "{what} carries control characters: {text:?}"
    );
}

/// Defect 1: `compare --out` into a folder of the user's is refused and writes nothing
/// there, so the next `--fresh` cannot take it for l2m's; the same for `run`,
/// `reproduce` and `sweep`. `--fresh` in l2m's own run directory removes only what l2m
/// wrote.
#[test]
fn a_users_folder_is_never_adopted_and_fresh_removes_only_what_l2m_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.csv");
    customers_csv(&base);
    let ud = dir.path().join("ud");
    std::fs::create_dir_all(ud.join("photos")).expect("mkdir");
    std::fs::write(ud.join("notes.txt"), "precious").expect("write");
    std::fs::write(ud.join("photos/p.jpg"), "x").expect("write");
    let before = tree(&ud);

    let e = fails(&compare(&base, &["--target", "churned"], &ud));
    assert!(
        e.contains("already holds files l2m did not write (such as \"notes.txt\")")
            && e.contains("choose a new or empty --out"),
        "{e}"
    );
    assert_eq!(tree(&ud), before, "nothing written into the user's folder");
    let e = fails(&compare(&base, &["--target", "churned", "--fresh"], &ud));
    assert!(e.contains("is not a run directory of l2m"), "{e}");
    assert_eq!(tree(&ud), before, "--fresh removed nothing");

    // Every other command that takes --out.
    let config = dir.path().join("exp.toml");
    let toml = ok(&l2m(&[
        "compare",
        "--data",
        s(&base),
        "--target",
        "churned",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--print-config",
    ]));
    std::fs::write(&config, toml).expect("write config");
    for args in [
        vec!["run", s(&config), "-q", "--out", s(&ud)],
        vec![
            "reproduce",
            "mean-estimation",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "-q",
            "--out",
            s(&ud),
        ],
        vec![
            "sweep",
            "mean-estimation",
            "--gamma",
            "0.1,0.2",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "-q",
            "--out",
            s(&ud),
        ],
    ] {
        let e = fails(&l2m(&args));
        assert!(
            e.contains("l2m did not write") || e.contains("is not a sweep directory"),
            "{args:?}: {e}"
        );
        assert_eq!(tree(&ud), before, "{args:?} wrote into the user's folder");
    }

    // An empty folder is fine, and becomes l2m's.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    ok(&compare(&base, &["--target", "churned"], &empty));
    assert!(empty.join(".l2m-run").is_file());

    // A file the user later puts into l2m's run directory survives --fresh.
    std::fs::write(empty.join("mine.txt"), "mine").expect("write");
    std::fs::write(empty.join("seed-0/learn2mix/notes.md"), "mine").expect("write");
    let o = compare(&base, &["--target", "churned", "--fresh"], &empty);
    ok(&o);
    let stderr = super::text(&o.stderr);
    assert!(
        stderr.contains("left 2 entries it did not write"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(empty.join("mine.txt")).expect("kept"),
        "mine"
    );
    assert!(empty.join("seed-0/learn2mix/notes.md").is_file());
    assert!(empty.join("seed-0/learn2mix/records.jsonl").is_file());
}

/// Defect 2: the class of an image is its top-level folder; a link to another class's
/// folder or a link loop is refused by name, never counted twice.
#[cfg(unix)]
#[test]
fn image_classes_are_top_level_folders_and_links_never_count_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = dir.path().join("photos");
    for i in 0..6 {
        png(&photos.join(format!("cat/{i}.png")), [200, 10, 10]);
        png(&photos.join(format!("cat/sub/{i}.png")), [200, 10, 10]);
        png(&photos.join(format!("dog/{i}.png")), [10, 10, 200]);
    }
    let run = dir.path().join("run");
    let o = l2m(&[
        "compare",
        "--data",
        s(&photos),
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--out",
        s(&run),
        "-b",
        "4",
    ]);
    let stdout = ok(&o);
    // 12 cat images (6 in cat/sub) and 6 dog images; a fifth of each class is held out.
    assert!(
        stdout.contains("training samples per class: cat 10, dog 5"),
        "{stdout}"
    );
    assert!(!stdout.contains("sub"), "{stdout}");
    let stderr = super::text(&o.stderr);
    assert!(
        stderr.contains("6 image(s) sit in folders nested inside a class folder")
            && stderr.contains("cat/sub/ is labelled cat"),
        "{stderr}"
    );

    std::os::unix::fs::symlink("../dog", photos.join("cat/todog")).expect("link");
    let run2 = dir.path().join("run2");
    let e = fails(&compare(&photos, &["-b", "4"], &run2));
    assert!(
        e.contains("the same folder as cat/todog (through a link)"),
        "{e}"
    );
    assert!(!run2.exists());
    std::fs::remove_file(photos.join("cat/todog")).expect("unlink");

    std::os::unix::fs::symlink("../..", photos.join("cat/sub/loop")).expect("link");
    let e = fails(&compare(&photos, &["-b", "4"], &run2));
    assert!(
        e.contains("a link back to ., a folder that holds it (a loop)"),
        "{e}"
    );
    assert!(e.matches("loop").count() <= 2, "named once: {e}");
    assert!(!run2.exists());
}

/// Defect 3: `1`, `01` and `1.0` in a column of numbers are one class.
#[test]
fn numeric_labels_are_compared_as_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("num.csv");
    let mut body = String::from("x,label\n");
    for i in 0..60 {
        let label = ["1", "01", "1.0", "2", "2.0", "02"][i % 6];
        body += &format!("{},{label}\n", i % 7);
    }
    std::fs::write(&csv, body).expect("write");
    let o = compare(&csv, &["--target", "label"], &dir.path().join("run"));
    let stdout = ok(&o);
    assert!(
        stdout.contains("training samples per class: 1 24, 2 24"),
        "{stdout}"
    );
    assert!(
        super::text(&o.stderr).contains("holds 2 distinct whole numbers"),
        "{}",
        super::text(&o.stderr)
    );
}

/// Defects 4 and 5: column names, labels and paths with escape sequences, bells and a
/// right-to-left override are printed escaped, in errors, the class counts and the table;
/// a label of megabytes is an error naming its row, printed short.
#[test]
fn file_contents_never_drive_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evil_col = "a\u{1b}[2J\u{1b}[31mEVIL\u{7}";
    let csv = dir.path().join("evil\u{1b}[2J.csv");
    let mut body = format!("{evil_col},x2,label\n");
    for i in 0..80 {
        let label = ["b\u{1b}[2Jx", "\u{202e}good"][i % 2];
        body += &format!("{},{},{label}\n", i % 5, i % 3);
    }
    std::fs::write(&csv, body).expect("write");

    let run = dir.path().join("run");
    let e = fails(&compare(&csv, &["--target", "nope"], &run));
    assert_inert("the columns error", &e);
    assert!(
        e.contains("the columns are a\\u{1b}[2J\\u{1b}[31mEVIL\\u{7}, x2, label"),
        "{e}"
    );

    let o = compare(&csv, &["--target", "label"], &run);
    let stdout = ok(&o);
    assert_inert("the table", &stdout);
    assert_inert("the messages", &super::text(&o.stderr));
    assert!(
        stdout.contains("training samples per class: \\u{202e}good 32, b\\u{1b}[2Jx 32")
            || stdout.contains("training samples per class: b\\u{1b}[2Jx 32, \\u{202e}good 32"),
        "{stdout}"
    );
    let report = ok(&l2m(&["report", s(&run)]));
    assert_inert("the report", &report);

    // A label of 5 MB: an error naming its row, a few hundred bytes long.
    let big = dir.path().join("big.csv");
    let mut body = String::from("x,label\n");
    for i in 0..50 {
        body += &format!("{i},{}\n", ["a", "b"][i % 2]);
    }
    body += &format!("1,{}\n", "L".repeat(5_000_000));
    std::fs::write(&big, body).expect("write");
    let run2 = dir.path().join("run2");
    let o = compare(&big, &["--target", "label"], &run2);
    let e = fails(&o);
    assert!(
        e.contains("row 51, column \"label\": a class label of 5000000 bytes")
            && e.contains("at most 1024 bytes"),
        "{e}"
    );
    assert!(
        o.stderr.len() < 2000,
        "{} bytes of messages",
        o.stderr.len()
    );
    assert!(!run2.exists());
    // A column name above the limit names the column.
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, format!("{},label\n1,a\n2,b\n", "c".repeat(2000))).expect("write");
    let e = fails(&compare(&wide, &["--target", "label"], &run2));
    assert!(e.contains("column 1 has a name of 2000 bytes"), "{e}");
}

/// Defect 6: a model file swapped for another strategy's is refused by name.
#[test]
fn a_swapped_model_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("customers.csv");
    customers_csv(&csv);
    let run = dir.path().join("run");
    ok(&compare(&csv, &["--target", "churned"], &run));
    let out = dir.path().join("p.csv");
    ok(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&out),
    ]));
    std::fs::copy(
        run.join("seed-0/classical/model.safetensors"),
        run.join("seed-0/learn2mix/model.safetensors"),
    )
    .expect("copy");
    let out2 = dir.path().join("p2.csv");
    let e = fails(&l2m(&[
        "predict",
        s(&run),
        "--data",
        s(&csv),
        "--out",
        s(&out2),
    ]));
    assert!(
        e.contains("learn2mix/model.safetensors is not the model this run trained"),
        "{e}"
    );
    assert!(!e.contains("cannot resume"), "{e}");
    assert!(!out2.exists());
}

/// Defect 7: the wording of numbers too large for 32-bit floats, a float16 Parquet
/// column, a tiny image folder on the default batch, a constant regression target.
#[test]
fn the_wording_says_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    for (value, what) in [("1e300", "1e300"), ("1e308", "1e308")] {
        let csv = dir.path().join("huge.csv");
        let mut body = String::from("x,y,g\n");
        for i in 0..40 {
            body += &format!("{i},{}.25,{}\n", i % 7, ["a", "b"][i % 2]);
        }
        body += &format!("{value},1,a\n");
        std::fs::write(&csv, body).expect("write");
        let e = fails(&compare(&csv, &["--target", "y", "--group", "g"], &run));
        assert!(
            e.contains(&format!(
                "row 41, column \"x\": {what} is too large for 32-bit floats"
            )),
            "{e}"
        );
    }

    // A float16 feature is read like any number.
    {
        use arrow_array::{Float16Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let file = dir.path().join("half.parquet");
        let x: Vec<half::f16> = (0..60)
            .map(|i| half::f16::from_f32(i as f32 / 7.0))
            .collect();
        let y: Vec<&str> = (0..60).map(|i| ["a", "b"][i % 2]).collect();
        let batch = RecordBatch::try_from_iter([
            (
                "x",
                Arc::new(Float16Array::from(x)) as arrow_array::ArrayRef,
            ),
            ("y", Arc::new(StringArray::from(y)) as arrow_array::ArrayRef),
        ])
        .expect("batch");
        let f = std::fs::File::create(&file).expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let stdout = ok(&compare(
            &file,
            &["--target", "y"],
            &dir.path().join("run16"),
        ));
        assert!(
            stdout.contains("training samples per class: a 24, b 24"),
            "{stdout}"
        );
    }

    // A folder of 10 images trains on the default batch.
    let photos = dir.path().join("tiny");
    for i in 0..5 {
        png(&photos.join(format!("cat/{i}.png")), [200, 10, 10]);
        png(&photos.join(format!("dog/{i}.png")), [10, 10, 200]);
    }
    let stdout = ok(&compare(&photos, &[], &dir.path().join("run-tiny")));
    assert!(stdout.contains("cat 4, dog 4"), "{stdout}");
    // A batch the folder cannot fill names the split and the largest batch, not a folder
    // `tiny/train` that does not exist.
    let e = fails(&compare(
        &photos,
        &["-b", "128"],
        &dir.path().join("run-tiny2"),
    ));
    assert!(
        e.contains("exceeds the 8 training samples of")
            && e.contains("(its training split); choose a batch of at most 8 (-b)")
            && !e.contains("tiny/train"),
        "{e}"
    );

    // A constant regression target is said, even with -q.
    let csv = dir.path().join("const.csv");
    let mut body = String::from("x,y,g\n");
    for i in 0..40 {
        body += &format!("{i},3.5,{}\n", ["a", "b"][i % 2]);
    }
    std::fs::write(&csv, body).expect("write");
    let o = compare(
        &csv,
        &["--target", "y", "--group", "g"],
        &dir.path().join("run-c"),
    );
    ok(&o);
    let stderr = super::text(&o.stderr);
    assert!(
        stderr.contains("the regression target \"y\" is 3.5 in every training row"),
        "{stderr}"
    );
    // And an inferred task is announced as inferred.
    assert!(!stderr.contains("as given by --task"), "{stderr}");
}
