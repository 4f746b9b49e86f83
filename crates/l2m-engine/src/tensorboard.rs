//! Export of a run directory's per-epoch scalars as TensorBoard event files.
//!
//! One file per strategy-seed run, `<out>/<strategy>/seed-<seed>/events.out.tfevents.0.l2m`,
//! with the step the epoch and the wall time the run's cumulative seconds (training and
//! evaluation) at the end of it, so that the export of a resumed run is the export of an
//! uninterrupted one. Scalars: `test/<metric>` (and per class), `test/loss`, `train/loss`,
//! the imbalance-aware metrics, the class proportions `alpha/<class>` and the training
//! samples drawn per class.
//!
//! The format is TensorFlow's record framing (length, masked CRC-32C of the length, the
//! serialised `Event` protocol buffer, masked CRC-32C of it) around hand-encoded `Event` and
//! `Summary` messages: the few fields scalars need. The `crc32c` crate computes the
//! checksums. (No maintained Rust crate writes event files without pulling in a whole
//! protocol-buffer stack: `tensorboard-rs` was last released in 2022 and depends on
//! protobuf 2 and image 0.23.)

use std::path::{Path, PathBuf};

use crate::report::load_seed_runs;
use crate::{EngineError, EpochRecord, Result, write_atomic};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event` with `wall_time`, `step` and either a `file_version` or a `Summary` of
/// simple values.
fn event(
    wall_time: f64,
    step: i64,
    file_version: Option<&str>,
    values: &[(String, f32)],
) -> Vec<u8> {
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut e, 2, 0);
    varint(&mut e, step as u64);
    if let Some(v) = file_version {
        bytes_field(&mut e, 3, v.as_bytes());
    }
    if !values.is_empty() {
        let mut summary = Vec::new();
        for (tag, v) in values {
            let mut value = Vec::new();
            bytes_field(&mut value, 1, tag.as_bytes());
            key(&mut value, 2, 5);
            value.extend_from_slice(&v.to_le_bytes());
            bytes_field(&mut summary, 1, &value);
        }
        bytes_field(&mut e, 5, &summary);
    }
    e
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the data, its masked CRC.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// The scalars of one epoch.
fn scalars(r: &EpochRecord, metric: &str, classes: &[String]) -> Vec<(String, f32)> {
    let class = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    let mut v = vec![
        (format!("test/{metric}"), r.test_metric as f32),
        ("test/loss".to_string(), r.test_loss as f32),
        ("train/loss".to_string(), r.train_loss as f32),
    ];
    for (name, x) in [
        ("test/worst_class", r.test_worst_class),
        ("test/balanced_accuracy", r.test_balanced_accuracy),
        ("test/macro_f1", r.test_macro_f1),
    ] {
        if let Some(x) = x {
            v.push((name.to_string(), x as f32));
        }
    }
    for (i, x) in r.test_metric_per_class.iter().enumerate() {
        v.push((format!("test/{metric}/{}", class(i)), *x as f32));
    }
    for (i, x) in r.alpha.iter().enumerate() {
        v.push((format!("alpha/{}", class(i)), *x as f32));
    }
    for (i, x) in r.train_samples_per_class.iter().enumerate() {
        v.push((format!("train/samples/{}", class(i)), *x as f32));
    }
    v
}

/// The event file of one run's records.
pub fn events(records: &[EpochRecord], metric: &str, classes: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    record(&mut out, &event(0.0, 0, Some("brain.Event:2"), &[]));
    let mut seconds = 0.0;
    for r in records {
        seconds += r.train_seconds + r.eval_seconds;
        let step = i64::try_from(r.epoch).unwrap_or(i64::MAX);
        record(
            &mut out,
            &event(seconds, step, None, &scalars(r, metric, classes)),
        );
    }
    out
}

/// Writes the event files of every strategy-seed run of `run_dir` under `out`; returns
/// the files written.
pub fn export_run(run_dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let (cfg, runs) = load_seed_runs(run_dir)?;
    let metric = cfg.task.metric_name().to_lowercase();
    let mut written = Vec::new();
    for (spec, seeds) in cfg.strategies.iter().zip(&runs) {
        for (records, info) in seeds {
            // One event folder per strategy and seed: `<strategy>/seed-<s>` under `out`,
            // named like a run directory's seed folders.
            let seed_name = l2m_run::Layout::new("").seed(info.seed);
            let dir = out.join(spec.name()).join(seed_name);
            std::fs::create_dir_all(&dir).map_err(|source| EngineError::Io {
                path: dir.clone(),
                source,
            })?;
            let file = dir.join("events.out.tfevents.0.l2m");
            write_atomic(&file, &events(records, &metric, &info.class_names))?;
            written.push(file);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads TFRecords back, checking both checksums of each.
    fn read_records(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let len_bytes: [u8; 8] = b[..8].try_into().expect("length");
            let crc = u32::from_le_bytes(b[8..12].try_into().expect("crc"));
            assert_eq!(crc, masked_crc(&len_bytes), "length checksum");
            let len = u64::from_le_bytes(len_bytes) as usize;
            let data = &b[12..12 + len];
            let crc = u32::from_le_bytes(b[12 + len..16 + len].try_into().expect("crc"));
            assert_eq!(crc, masked_crc(data), "data checksum");
            out.push(data.to_vec());
            b = &b[16 + len..];
        }
        out
    }

    #[test]
    fn records_are_framed_and_checksummed_as_tensorflow_does() {
        // TensorFlow's masked CRC of an empty string, and CRC-32C's check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        let e = event(1.5, 3, None, &[("test/mse".into(), 0.25)]);
        // wall_time (double), step 3, summary { value { tag "test/mse", simple_value 0.25 } }
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 3, 0x2a, 17, 0x0a, 15, 0x0a, 8]);
        expected.extend_from_slice(b"test/mse");
        expected.push(0x15);
        expected.extend_from_slice(&0.25f32.to_le_bytes());
        assert_eq!(e, expected);
        let mut out = Vec::new();
        record(&mut out, &e);
        record(&mut out, b"");
        assert_eq!(read_records(&out), vec![e, Vec::new()]);
    }

    #[test]
    fn varints_follow_protocol_buffers() {
        let enc = |v: u64| {
            let mut o = Vec::new();
            varint(&mut o, v);
            o
        };
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }
}
