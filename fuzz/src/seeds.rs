//! The seed corpus: small valid inputs of every target and mode, made here rather than
//! committed, so that a format change updates them.

use std::io::Cursor;
use std::sync::Arc;

use crate::{CHECKPOINT_STRATEGIES, Target, gzip};

/// A valid `winequality-white.csv` beside a fuzzed red one (Wine Quality needs both).
pub(crate) const WINE_WHITE: &str = "\"fixed acidity\";\"volatile acidity\";\"citric acid\";\"residual sugar\";\"chlorides\";\"free sulfur dioxide\";\"total sulfur dioxide\";\"density\";\"pH\";\"sulphates\";\"alcohol\";\"quality\"
7;0.27;0.36;20.7;0.045;45;170;1.001;3;0.45;8.8;6
6.3;0.3;0.34;1.6;0.049;14;132;0.994;3.3;0.49;9.5;6
8.1;0.28;0.4;6.9;0.05;30;97;0.9951;3.26;0.44;10.1;5
7.2;0.23;0.32;8.5;0.058;47;186;0.9956;3.19;0.4;9.9;5
7.2;0.23;0.32;8.5;0.058;47;186;0.9956;3.19;0.4;9.9;7
8.1;0.28;0.4;6.9;0.05;30;97;0.9951;3.26;0.44;10.1;7
";

/// A valid own-data CSV: a numeric, a categorical and a quoted text feature, a label.
pub(crate) const OWN_CSV: &str = "x,colour,note,label
1.5,red,\"a, b\",cat
2.0,blue,c,dog
0.5,red,d,cat
3.5,green,e,dog
1.0,blue,f,cat
2.5,red,g,dog
0.0,green,h,cat
4.0,blue,i,dog
";

/// `(name, bytes)` of every seed of `target`; the first byte of each is its mode.
pub fn seeds(target: Target) -> Vec<(String, Vec<u8>)> {
    let with = |mode: u8, body: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(body);
        v
    };
    let mut out = Vec::new();
    match target {
        Target::Idx => {
            let images = idx_images(3, 2, 2);
            let labels = idx_labels(&[0, 1, 2]);
            for (tag, mode, body) in [
                ("images", 0, images.clone()),
                ("images-gz", 2, images.clone()),
                ("images-gz-raw", 4, gzip(&images)),
                ("labels", 1, labels.clone()),
                ("labels-gz", 3, labels.clone()),
                ("labels-gz-raw", 5, gzip(&labels)),
            ] {
                out.push((tag.to_string(), with(mode, &body)));
            }
        }
        Target::Cifar => {
            let ten = cifar_tar(false);
            let hundred = cifar_tar(true);
            for mode in 0..4u8 {
                out.push((
                    format!("cifar10-mode{mode}"),
                    with(mode, &archive_body(mode, &ten)),
                ));
            }
            // CIFAR-100 needs 100 classes (600 KiB of tar): gzipped as given only.
            out.push((
                "cifar100-mode2".into(),
                with(4 | 2, &archive_body(2, &hundred)),
            ));
        }
        Target::ImageFolder => {
            let split = image_tar(true);
            let flat = image_tar(false);
            for mode in 0..4u8 {
                out.push((
                    format!("split-mode{mode}"),
                    with(mode, &archive_body(mode, &split)),
                ));
                out.push((
                    format!("flat-grey-mode{mode}"),
                    with(8 | 4 | mode, &archive_body(mode, &flat)),
                ));
                out.push((
                    format!("own-mode{mode}"),
                    with(16 | mode, &archive_body(mode, &split)),
                ));
            }
        }
        Target::Imdb => {
            let t = imdb_tar();
            for mode in 0..4u8 {
                out.push((
                    format!("imdb-mode{mode}"),
                    with(mode, &archive_body(mode, &t)),
                ));
            }
        }
        Target::Csv => {
            let generic = "a,b,g,y\n1,2,u,0\n3,4,v,1\n5,6,u,0\n7,8,v,1\n9,10,u,1\n11,12,v,0\n";
            out.push(("load-csv".into(), with(0, generic.as_bytes())));
            out.push((
                "load-csv-semicolon".into(),
                with(1, generic.replace(',', ";").as_bytes()),
            ));
            out.push((
                "load-csv-drop".into(),
                with(
                    6,
                    b"a,g,y\n1,u,0\n,v,1\n3,u,\n4,v,1\n5,u,0\n6,v,0\n7,u,1\n8,v,1\n9,u,0\n10,v,1\n",
                ),
            ));
            out.push(("wine".into(), with(2, WINE_WHITE.as_bytes())));
            out.push(("housing".into(), with(3, housing_csv().as_bytes())));
            out.push(("own".into(), with(4, OWN_CSV.as_bytes())));
            out.push(("own-regression".into(), with(132, b"a,g,label\n1,u,3.5\n2,v,4.5\n3,u,5.5\n4,v,6.5\n5,u,7.5\n6,v,8.25\n7,u,1.5\n8,v,2.5\n")));
            out.push((
                "own-missing".into(),
                with(5, OWN_CSV.replace("2.0", "").as_bytes()),
            ));
            // Numbers spelled several ways as labels, and a column name and labels that
            // would drive a terminal.
            out.push((
                "own-spelled-numbers".into(),
                with(
                    4,
                    b"x,label\n1,1\n2,01\n3,1.0\n4,2\n5,2.0\n6,02\n7,1\n8,2\n9,+1\n10,2e0\n",
                ),
            ));
            out.push((
                "own-escapes".into(),
                with(
                    4,
                    "x\u{1b}[2J,label\n1,a\u{1b}[31m\n2,\u{202e}b\n3,a\u{1b}[31m\n4,\u{202e}b\n5,a\u{1b}[31m\n6,\u{202e}b\n7,a\u{1b}[31m\n8,\u{202e}b\n"
                        .as_bytes(),
                ),
            ));
        }
        Target::Parquet => {
            out.push(("own".into(), with(0, &parquet_file())));
        }
        Target::Config => {
            for name in l2m_engine::PRESETS {
                if let Ok(cfg) = l2m_engine::preset(name)
                    && let Ok(text) = toml::to_string_pretty(&cfg)
                {
                    out.push((format!("preset-{name}"), with(0, text.as_bytes())));
                }
            }
        }
        Target::Checkpoint => {
            if let Ok(dir) = tempfile::tempdir() {
                for (i, s) in CHECKPOINT_STRATEGIES.iter().enumerate() {
                    let run = dir.path().join(s);
                    if std::fs::create_dir_all(&run).is_err()
                        || crate::checkpoint_template(s, &run).is_err()
                    {
                        continue;
                    }
                    let Ok(text) = std::fs::read(run.join("checkpoint.json")) else {
                        continue;
                    };
                    let mode = u8::try_from(i).unwrap_or(0);
                    out.push((format!("{s}-format3"), with(mode, &text)));
                    // Format 2 carries no checksums: the fuzzer reaches the checks that
                    // follow parsing without having to forge a SHA-256.
                    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&text)
                        && let Some(map) = v.as_object_mut()
                    {
                        map.insert("format".into(), 2.into());
                        map.remove("state_sha256");
                        map.remove("tensors_sha256");
                        if let Ok(t) = serde_json::to_vec_pretty(&v) {
                            out.push((format!("{s}-format2"), with(mode, &t)));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The archive body the harness expects for `mode`: a tar as given (0), a tar it gzips
/// itself (1), a gzipped tar as given (2), a tar it unpacks (3).
fn archive_body(mode: u8, tar: &[u8]) -> Vec<u8> {
    if mode % 4 == 2 {
        gzip(tar)
    } else {
        tar.to_vec()
    }
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let _ = b.append_data(&mut h, name, bytes.as_slice());
    }
    b.into_inner().unwrap_or_default()
}

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [count, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..count * rows * cols).map(|i| (i * 37 % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = 0x0000_0801u32.to_be_bytes().to_vec();
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

/// CIFAR-10 (or -100) with every class in the training and the test files.
fn cifar_tar(hundred: bool) -> Vec<u8> {
    let pixels = 3 * 32 * 32;
    let record = |label: u8| {
        let mut r = if hundred {
            vec![label / 5, label]
        } else {
            vec![label]
        };
        r.extend((0..pixels).map(|i| (i % 251) as u8));
        r
    };
    let batch = |labels: std::ops::Range<u8>| labels.map(record).collect::<Vec<_>>().concat();
    let mut files = Vec::new();
    if hundred {
        let names: String = (0..100).map(|c| format!("class{c}\n")).collect();
        files.push(("cifar-100-binary/train.bin".into(), batch(0..100)));
        files.push(("cifar-100-binary/test.bin".into(), batch(0..100)));
        files.push((
            "cifar-100-binary/fine_label_names.txt".into(),
            names.into_bytes(),
        ));
    } else {
        let names: String = (0..10).map(|c| format!("class{c}\n")).collect();
        for i in 1..=5u8 {
            files.push((
                format!("cifar-10-batches-bin/data_batch_{i}.bin"),
                batch(2 * i - 2..2 * i),
            ));
        }
        files.push(("cifar-10-batches-bin/test_batch.bin".into(), batch(0..10)));
        files.push((
            "cifar-10-batches-bin/batches.meta.txt".into(),
            names.into_bytes(),
        ));
    }
    tar_of(&files)
}

fn png(shade: u8) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([shade, x as u8 * 60, y as u8 * 90]));
    let mut out = Cursor::new(Vec::new());
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

fn image_tar(splits: bool) -> Vec<u8> {
    let mut files = Vec::new();
    let prefixes: &[&str] = if splits { &["train/", "test/"] } else { &[""] };
    for p in prefixes {
        for (c, shade) in [("ant", 10u8), ("bee", 200)] {
            for i in 0..2 {
                files.push((format!("{p}{c}/{i}.png"), png(shade + i)));
            }
            // An image in a folder nested inside the class folder: still of that class.
            files.push((format!("{p}{c}/nested/9.png"), png(shade)));
        }
    }
    tar_of(&files)
}

fn imdb_tar() -> Vec<u8> {
    let mut files = Vec::new();
    for split in ["train", "test"] {
        for (label, text) in [
            ("pos", "A fine, <br />moving film."),
            ("neg", "Dull. Too long!"),
        ] {
            for i in 0..3 {
                files.push((
                    format!("aclImdb/{split}/{label}/{i}_7.txt"),
                    format!("{text} {i}").into_bytes(),
                ));
            }
        }
    }
    tar_of(&files)
}

fn housing_csv() -> String {
    let mut s = String::from(
        "longitude,latitude,housing_median_age,total_rooms,total_bedrooms,population,households,median_income,median_house_value,ocean_proximity\n",
    );
    let groups = ["<1H OCEAN", "INLAND", "NEAR BAY", "NEAR OCEAN"];
    for i in 0..12 {
        s.push_str(&format!(
            "-122.{i},37.8,41,880,129,322,126,8.3,{},{}\n",
            100_000 + i * 1000,
            groups[i % 4]
        ));
    }
    s.push_str("-122.2,37.8,41,880,,322,126,8.3,100000,INLAND\n");
    s
}

fn parquet_file() -> Vec<u8> {
    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    let n = 12usize;
    let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let k: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
    let label: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    let Ok(batch) = RecordBatch::try_from_iter([
        (
            "x",
            Arc::new(Float64Array::from(x)) as arrow_array::ArrayRef,
        ),
        ("k", Arc::new(Int64Array::from(k)) as _),
        ("label", Arc::new(StringArray::from(label)) as _),
    ]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(mut w) = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None) {
        let _ = w.write(&batch);
        let _ = w.close();
    }
    out
}
