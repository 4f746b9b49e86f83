//! Tabular regression data: Wine Quality, California Housing, and any CSV with a target
//! column and a group column.
//!
//! Rows become samples, numeric columns features, one categorical column the group
//! (learn2mix's "class"). The split is stratified by group and seeded; features are
//! standardised with the training split's statistics only.

use std::path::Path;

use crate::load::split::stratified_indices;
use crate::load::{format_err, io_err};
use crate::{ClassDataset, DataError, Features, Result, Targets};

/// A parsed CSV: header and rows of fields.
struct Table {
    path: std::path::PathBuf,
    headers: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

fn read_table(path: &Path, delimiter: u8) -> Result<Table> {
    crate::load::regular_file(path)?;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(std::io::BufReader::new(file));
    let bad = |e: csv::Error| format_err(path, format!("malformed CSV: {e}"));
    let headers: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(|h| h.trim().trim_matches('"').to_string())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(|f| f.trim().to_string()).collect()));
    }
    if rows.is_empty() {
        return Err(format_err(path, "no data rows"));
    }
    Ok(Table {
        path: path.to_path_buf(),
        headers,
        rows,
    })
}

impl Table {
    fn column(&self, name: &str) -> Result<usize> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            format_err(
                &self.path,
                format!(
                    "missing column {name:?}; the columns are {}",
                    self.headers.join(", ")
                ),
            )
        })
    }

    fn number(&self, line: u64, col: usize, field: &str) -> Result<f32> {
        field
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                format_err(
                    &self.path,
                    format!(
                        "line {line}, column {:?}: {:?} is not a number",
                        self.headers[col],
                        crate::load::clip(field)
                    ),
                )
            })
    }
}

/// Rows gathered for a regression dataset, before splitting.
struct Rows {
    features: Vec<f32>,
    targets: Vec<f32>,
    groups: Vec<u32>,
    dim: usize,
}

/// Splits, standardises with training statistics, and wraps into two views of one store.
fn finish(
    name: &str,
    rows: Rows,
    group_names: Vec<String>,
    test_fraction: f64,
    seed: u64,
) -> Result<(ClassDataset, ClassDataset)> {
    let Rows {
        mut features,
        targets,
        groups,
        dim,
    } = rows;
    let mut members = vec![Vec::new(); group_names.len()];
    for (i, &g) in groups.iter().enumerate() {
        members[g as usize].push(i as u32);
    }
    if let Some(g) = members.iter().position(Vec::is_empty) {
        return Err(DataError::EmptyClass {
            class: group_names[g].clone(),
            context: format!(" in {name}"),
        });
    }
    let (train, test) = stratified_indices(&members, test_fraction, seed)?;
    let train_rows: Vec<usize> = train.iter().flatten().map(|&i| i as usize).collect();
    for c in 0..dim {
        let n = train_rows.len() as f64;
        let mean = train_rows
            .iter()
            .map(|&r| f64::from(features[r * dim + c]))
            .sum::<f64>()
            / n;
        let var = train_rows
            .iter()
            .map(|&r| (f64::from(features[r * dim + c]) - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        for r in 0..groups.len() {
            let v = &mut features[r * dim + c];
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
    }
    let all = ClassDataset::new(
        name,
        Features::F32(features),
        vec![dim],
        Targets::Regression(targets),
        groups,
        group_names,
    )?;
    Ok((
        all.with_members(train, " in the training split")?
            .renamed(format!("{name}/train")),
        all.with_members(test, " in the test split")?
            .renamed(format!("{name}/test")),
    ))
}

/// The 11 physicochemical features of the Wine Quality CSVs.
pub const WINE_FEATURES: [&str; 11] = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
];

/// Wine Quality from `winequality-red.csv` and `winequality-white.csv` (UCI, `;`-separated)
/// in `dir`: 11 features, target `quality`, group the wine type (red = 0, white = 1), split
/// 50/50 stratified by type.
pub fn load_wine_quality(dir: &Path, seed: u64) -> Result<(ClassDataset, ClassDataset)> {
    let mut rows = Rows {
        features: Vec::new(),
        targets: Vec::new(),
        groups: Vec::new(),
        dim: WINE_FEATURES.len(),
    };
    for (g, file) in ["winequality-red.csv", "winequality-white.csv"]
        .iter()
        .enumerate()
    {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(DataError::Missing {
                what: "Wine Quality CSV".into(),
                tried: vec![path],
            });
        }
        let t = read_table(&path, b';')?;
        let cols: Vec<usize> = WINE_FEATURES
            .iter()
            .map(|c| t.column(c))
            .collect::<Result<_>>()?;
        let target = t.column("quality")?;
        for (line, fields) in &t.rows {
            for &c in &cols {
                rows.features.push(t.number(*line, c, &fields[c])?);
            }
            rows.targets.push(t.number(*line, target, &fields[target])?);
            rows.groups.push(g as u32);
        }
    }
    finish(
        "wine-quality",
        rows,
        vec!["red".into(), "white".into()],
        0.5,
        seed,
    )
}

/// The 8 numeric features of California Housing.
pub const HOUSING_FEATURES: [&str; 8] = [
    "longitude",
    "latitude",
    "housing_median_age",
    "total_rooms",
    "total_bedrooms",
    "population",
    "households",
    "median_income",
];

/// The groups of California Housing (`ocean_proximity` without ISLAND), in label order.
pub const HOUSING_GROUPS: [&str; 4] = ["<1H OCEAN", "INLAND", "NEAR BAY", "NEAR OCEAN"];

/// What loading California Housing dropped or converted, for the run record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HousingNotes {
    /// Rows dropped for a missing value (207 `total_bedrooms` in the original file).
    pub dropped_missing: usize,
    /// Rows dropped for `ocean_proximity` = ISLAND.
    pub dropped_island: usize,
    /// Whether `median_house_value` was in dollars and has been divided by 100,000 (Géron's
    /// file); false for the authors' copy, already in units of 100,000.
    pub rescaled_target: bool,
}

/// California Housing from `housing.csv` (Géron's version with `ocean_proximity`): rows
/// with a missing value and ISLAND rows dropped, 8 features, target `median_house_value`
/// in units of 100,000 dollars, group `ocean_proximity`, split 50/50 stratified by group.
pub fn load_california_housing(
    path: &Path,
    seed: u64,
) -> Result<(ClassDataset, ClassDataset, HousingNotes)> {
    let t = read_table(path, b',')?;
    let cols: Vec<usize> = HOUSING_FEATURES
        .iter()
        .map(|c| t.column(c))
        .collect::<Result<_>>()?;
    let target = t.column("median_house_value")?;
    let group = t.column("ocean_proximity")?;
    let mut rows = Rows {
        features: Vec::new(),
        targets: Vec::new(),
        groups: Vec::new(),
        dim: cols.len(),
    };
    let mut notes = HousingNotes {
        dropped_missing: 0,
        dropped_island: 0,
        rescaled_target: false,
    };
    for (line, fields) in &t.rows {
        if fields.len() != t.headers.len() {
            return Err(format_err(
                path,
                format!(
                    "line {line}: {} fields, expected {}",
                    fields.len(),
                    t.headers.len()
                ),
            ));
        }
        if fields.iter().any(String::is_empty) {
            notes.dropped_missing += 1;
            continue;
        }
        let g = &fields[group];
        if g == "ISLAND" {
            notes.dropped_island += 1;
            continue;
        }
        let g = HOUSING_GROUPS.iter().position(|h| h == g).ok_or_else(|| {
            format_err(
                path,
                format!(
                    "line {line}, column \"ocean_proximity\": unknown value {g:?}; expected one of {} or ISLAND",
                    HOUSING_GROUPS.join(", ")
                ),
            )
        })?;
        for &c in &cols {
            rows.features.push(t.number(*line, c, &fields[c])?);
        }
        rows.targets.push(t.number(*line, target, &fields[target])?);
        rows.groups.push(g as u32);
    }
    // Géron's file is in dollars (up to 500,001); the authors' copy in units of 100,000
    // (up to 5.00001). Anything above 1,000 can only be dollars.
    if rows.targets.iter().any(|&v| v > 1000.0) {
        rows.targets.iter_mut().for_each(|v| *v /= 100_000.0);
        notes.rescaled_target = true;
    }
    let (train, test) = finish(
        "california-housing",
        rows,
        HOUSING_GROUPS.iter().map(|s| s.to_string()).collect(),
        0.5,
        seed,
    )?;
    Ok((train, test, notes))
}

/// How to read a user's CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The numeric target column.
    pub target: String,
    /// The categorical group column (learn2mix mixes its values).
    pub group: String,
    /// Field delimiter.
    pub delimiter: u8,
    /// Fraction of each group held out for testing.
    pub test_fraction: f64,
    /// Seed of the split.
    pub seed: u64,
    /// Drop rows with an empty field (otherwise an empty field is an error).
    pub drop_missing: bool,
}

/// Any CSV: every column but `target` and `group` must be numeric and is a feature; groups
/// are the distinct values of `group`, sorted.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<(ClassDataset, ClassDataset)> {
    let t = read_table(path, opts.delimiter)?;
    let target = t.column(&opts.target)?;
    let group = t.column(&opts.group)?;
    if target == group {
        return Err(DataError::InvalidParameter {
            what: "CSV columns",
            reason: format!(
                "the target and the group are the same column {:?}",
                opts.target
            ),
        });
    }
    let cols: Vec<usize> = (0..t.headers.len())
        .filter(|&c| c != target && c != group)
        .collect();
    let mut names: Vec<String> = t
        .rows
        .iter()
        .map(|(_, f)| f[group].clone())
        .filter(|g| !g.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let mut rows = Rows {
        features: Vec::new(),
        targets: Vec::new(),
        groups: Vec::new(),
        dim: cols.len(),
    };
    for (line, fields) in &t.rows {
        if fields.iter().any(String::is_empty) {
            if opts.drop_missing {
                continue;
            }
            let col = fields.iter().position(String::is_empty).unwrap_or(0);
            return Err(format_err(
                path,
                format!(
                    "line {line}, column {:?}: empty field (drop such rows with drop_missing)",
                    t.headers[col]
                ),
            ));
        }
        for &c in &cols {
            rows.features.push(t.number(*line, c, &fields[c])?);
        }
        rows.targets.push(t.number(*line, target, &fields[target])?);
        rows.groups
            .push(names.iter().position(|n| *n == fields[group]).unwrap_or(0) as u32);
    }
    let name = path
        .file_stem()
        .map_or("csv".into(), |s| s.to_string_lossy().into_owned());
    finish(&name, rows, names, opts.test_fraction, opts.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wine_csv(rows: usize, quality: &str) -> String {
        let header = WINE_FEATURES
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(";");
        let mut s = format!("{header};\"quality\"\n");
        for i in 0..rows {
            let vals: Vec<String> = (0..11).map(|c| format!("{}", i * 11 + c)).collect();
            s.push_str(&format!("{};{quality}\n", vals.join(";")));
        }
        s
    }

    #[test]
    fn wine_splits_by_type_and_standardises_with_train_statistics() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("winequality-red.csv"), wine_csv(10, "5")).expect("write");
        std::fs::write(dir.path().join("winequality-white.csv"), wine_csv(20, "6")).expect("write");
        let (train, test) = load_wine_quality(dir.path(), 0).expect("loads");
        assert_eq!(train.class_sizes(), vec![5, 10]);
        assert_eq!(test.class_sizes(), vec![5, 10]);
        let s = train.samples();
        let dim = s.feature_dim();
        let rows: Vec<usize> = train.all_members().iter().map(|&i| i as usize).collect();
        for c in 0..dim {
            let vals: Vec<f64> = rows
                .iter()
                .map(|&r| f64::from(s.features().sample_f32(r, dim)[c]))
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "column {c}: {mean} {var}"
            );
        }
        let Targets::Regression(t) = s.targets() else {
            panic!("regression")
        };
        assert_eq!(t[0], 5.0);
        assert_eq!(t[15], 6.0);
    }

    #[test]
    fn wine_errors_name_file_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("winequality-red.csv"), wine_csv(4, "five")).expect("write");
        std::fs::write(dir.path().join("winequality-white.csv"), wine_csv(4, "6")).expect("write");
        let e = load_wine_quality(dir.path(), 0)
            .expect_err("non-numeric")
            .to_string();
        assert!(
            e.contains("winequality-red.csv: line 2, column \"quality\": \"five\" is not a number"),
            "{e}"
        );

        std::fs::write(
            dir.path().join("winequality-red.csv"),
            "\"a\";\"quality\"\n1;2\n",
        )
        .expect("write");
        let e = load_wine_quality(dir.path(), 0)
            .expect_err("missing column")
            .to_string();
        assert!(
            e.contains("missing column \"fixed acidity\"; the columns are a, quality"),
            "{e}"
        );

        std::fs::remove_file(dir.path().join("winequality-white.csv")).expect("rm");
        std::fs::write(dir.path().join("winequality-red.csv"), wine_csv(4, "5")).expect("write");
        let e = load_wine_quality(dir.path(), 0)
            .expect_err("missing file")
            .to_string();
        assert!(e.starts_with("Wine Quality CSV not found"), "{e}");
    }

    fn housing_csv(dollars: bool) -> String {
        let mut s = String::from(
            "longitude,latitude,housing_median_age,total_rooms,total_bedrooms,population,households,median_income,median_house_value,ocean_proximity\n",
        );
        let groups = ["<1H OCEAN", "INLAND", "NEAR BAY", "NEAR OCEAN"];
        for i in 0..40 {
            let v = if dollars {
                100_000.0 + i as f64 * 1000.0
            } else {
                1.0 + i as f64 / 100.0
            };
            s.push_str(&format!(
                "-122.{i},37.8,41,880,129,322,126,8.3,{v},{}\n",
                groups[i % 4]
            ));
        }
        s.push_str("-122.2,37.8,41,880,,322,126,8.3,100000,INLAND\n");
        s.push_str("-118.3,33.4,52,2359,591,1100,431,2.8,414700,ISLAND\n");
        s
    }

    #[test]
    fn housing_drops_missing_and_island_and_rescales_dollars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("housing.csv");
        std::fs::write(&p, housing_csv(true)).expect("write");
        let (train, test, notes) = load_california_housing(&p, 0).expect("loads");
        assert_eq!(
            notes,
            HousingNotes {
                dropped_missing: 1,
                dropped_island: 1,
                rescaled_target: true
            }
        );
        assert_eq!(train.class_sizes(), vec![5; 4]);
        assert_eq!(test.class_sizes(), vec![5; 4]);
        let Targets::Regression(t) = train.samples().targets() else {
            panic!("regression")
        };
        assert!((t[0] - 1.0).abs() < 1e-6);
        std::fs::write(&p, housing_csv(false)).expect("write");
        let (_, _, notes) = load_california_housing(&p, 0).expect("loads");
        assert!(!notes.rescaled_target);
        std::fs::write(&p, housing_csv(false).replace("NEAR BAY", "NEAR LAKE")).expect("write");
        let e = load_california_housing(&p, 0)
            .expect_err("unknown group")
            .to_string();
        assert!(e.contains("unknown value \"NEAR LAKE\""), "{e}");
    }

    #[test]
    fn generic_csv_with_named_target_and_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("mine.csv");
        let mut s = String::from("x1,site,x2,y\n");
        for i in 0..20 {
            s.push_str(&format!(
                "{i},{},{},{}\n",
                if i % 2 == 0 { "b" } else { "a" },
                i * 2,
                i
            ));
        }
        s.push_str("1,a,,3\n");
        std::fs::write(&p, &s).expect("write");
        let opts = CsvOptions {
            target: "y".into(),
            group: "site".into(),
            delimiter: b',',
            test_fraction: 0.5,
            seed: 0,
            drop_missing: true,
        };
        let (train, test) = load_csv(&p, &opts).expect("loads");
        assert_eq!(train.class_names(), &["a".to_string(), "b".to_string()]);
        assert_eq!(train.samples().sample_shape(), &[2]);
        assert_eq!(train.len() + test.len(), 20);
        let strict = CsvOptions {
            drop_missing: false,
            ..opts.clone()
        };
        let e = load_csv(&p, &strict).expect_err("empty field").to_string();
        assert!(e.contains("line 22, column \"x2\": empty field"), "{e}");
        let bad = CsvOptions {
            target: "z".into(),
            ..opts
        };
        assert!(
            load_csv(&p, &bad)
                .expect_err("no column")
                .to_string()
                .contains("missing column \"z\"")
        );
    }
}
