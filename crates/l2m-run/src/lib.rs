//! The run directory of `l2m`, as a library: where every file of a run lives ([`Layout`],
//! [`RunFiles`]) and the versioned schema of what the files hold ([`Comparison`] in
//! `summary.json`, [`EpochRecord`] on each line of `records.jsonl`).
//!
//! ```text
//! <root>/
//!   .l2m-run                 marker and lock of a run directory
//!   config.json              the experiment
//!   summary.json             the comparison across seeds (schema SUMMARY_SCHEMA)
//!   per_class.csv            every class's final metric and proportion per strategy
//!   report.md, *.png, *.svg  the report and its plots
//!   seed-<s>/
//!     preprocessing.json     own data: what was fitted on this seed's training split
//!     vocab.txt              text: this seed's vocabulary
//!     <strategy>/
//!       records.jsonl, records.csv, run.json
//!       checkpoint.json, checkpoint.prev.json, checkpoint-e<epoch>.safetensors
//!       model.safetensors, model.json, predictions.csv
//! ```
//!
//! Writers and readers go through [`Layout`], so the layout is spelled here only; a file
//! name a run writes is recognised by [`written_at_root`], [`written_in_seed`] and
//! [`written_in_run`] (which is what `--fresh` removes, and all it removes).
//!
//! ```
//! use l2m_run::Layout;
//!
//! let run = Layout::new("runs/mnist-1234");
//! assert!(run.summary().ends_with("summary.json"));
//! let files = run.run(3, "learn2mix");
//! assert!(files.records_jsonl().ends_with("seed-3/learn2mix/records.jsonl"));
//! assert_eq!(Layout::seed_of("seed-12"), Some(12));
//! ```

mod layout;
mod schema;

pub use layout::{
    CHECKPOINT_PREVIOUS, CHECKPOINT_STATE, CONFIG, Layout, MARKER, MODEL, MODEL_CONFIG, PER_CLASS,
    PREDICTIONS, PREPROCESSING, RECORDS_CSV, RECORDS_JSONL, REPORT, RUN_INFO, RunFiles, SUMMARY,
    VOCAB, is_temporary, written_at_root, written_in_run, written_in_seed,
};
pub use schema::{
    Comparison, EpochRecord, SUMMARY_SCHEMA, SchemaError, StrategySummary, check_schema,
};
