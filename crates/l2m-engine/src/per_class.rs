//! `per_class.csv`: every class of a comparison, which the terminal shows only up to a
//! dozen of.

use crate::{Comparison, EngineError, Result};

/// `per_class.csv` of a comparison: one row per class (its name and training samples),
/// and per strategy its final test metric (mean over seeds) and final proportion. The
/// terminal shows at most a dozen classes; this file has them all.
pub fn per_class_csv(c: &Comparison) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["class".to_string(), "train_samples".to_string()];
    for x in &c.strategies {
        header.push(format!("{} final test {}", x.strategy, c.metric));
    }
    for x in &c.strategies {
        header.push(format!("{} final alpha", x.strategy));
    }
    let err = |source| EngineError::Csv {
        path: std::path::PathBuf::from(l2m_run::PER_CLASS),
        source,
    };
    w.write_record(&header).map_err(err)?;
    for (i, name) in c.class_names.iter().enumerate() {
        let mut row = vec![
            name.clone(),
            c.train_class_sizes
                .get(i)
                .map_or(String::new(), usize::to_string),
        ];
        for x in &c.strategies {
            row.push(
                x.final_test_per_class
                    .get(i)
                    .map_or(String::new(), f64::to_string),
            );
        }
        for x in &c.strategies {
            row.push(x.final_alpha.get(i).map_or(String::new(), f64::to_string));
        }
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| EngineError::Config(format!("per_class.csv: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
