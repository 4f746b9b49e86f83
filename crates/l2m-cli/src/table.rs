//! The comparison table printed at the end of `l2m compare`.

use std::io::Write;

use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};

use l2m_engine::{Comparison, ExperimentConfig};

/// The longest class or strategy name a table cell shows, in characters.
const MAX_LABEL: usize = 40;

/// A class, group or strategy name as a table shows it: escaped and shortened.
pub fn label(name: &str) -> String {
    l2m_engine::text::shorten(name, MAX_LABEL)
}

fn fmt(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// Writes the table and the plain-language verdict.
pub fn print(out: &mut impl Write, cfg: &ExperimentConfig, c: &Comparison) -> std::io::Result<()> {
    let seeds = match (c.seeds.first(), c.seeds.last()) {
        (Some(a), Some(b)) if a != b => format!("seeds {a}-{b}"),
        (Some(a), _) => format!("seed {a}"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{}: {}, {} lr {}, B {}, {} epochs, {seeds}",
        label(&c.experiment),
        cfg.model.name(),
        cfg.optimizer.describe(),
        cfg.optimizer.lr,
        cfg.batch_size,
        c.epochs
    )?;
    let sizes: Vec<String> = c
        .class_names
        .iter()
        .zip(&c.train_class_sizes)
        .map(|(n, s)| format!("{} {s}", label(n)))
        .collect();
    writeln!(out, "training samples per class: {}", sizes.join(", "))?;

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![
        "strategy".to_string(),
        format!("final test {} (mean ± 95% CI)", c.metric),
    ];
    header.push(format!("minus {} (paired)", c.reference));
    // Classification: the imbalance-aware views beside accuracy.
    let classification = c
        .strategies
        .iter()
        .any(|s| s.final_balanced_accuracy.is_some());
    if classification {
        header.push("balanced accuracy".into());
        header.push("macro-F1".into());
    }
    header.extend(c.class_names.iter().map(|n| label(n)));
    header.push("epochs to target".into());
    header.push("final alpha".into());
    header.push("s/epoch".into());
    table.set_header(header);
    for s in &c.strategies {
        let mut row = vec![
            Cell::new(label(&s.strategy)),
            Cell::new(if s.final_test.n > 1 {
                format!("{} ± {}", fmt(s.final_test.mean), fmt(s.final_test.ci95))
            } else {
                format!("{} (one seed)", fmt(s.final_test.mean))
            }),
        ];
        row.push(Cell::new(match &s.final_minus_reference {
            None => "-".to_string(),
            Some(d) if d.n > 1 => format!("{:+.4} ± {:.4}", d.mean, d.ci95),
            Some(d) => format!("{:+.4}", d.mean),
        }));
        if classification {
            for m in [&s.final_balanced_accuracy, &s.final_macro_f1] {
                row.push(Cell::new(m.as_ref().map_or("-".to_string(), |m| {
                    if m.n > 1 {
                        format!("{} ± {}", fmt(m.mean), fmt(m.ci95))
                    } else {
                        fmt(m.mean)
                    }
                })));
            }
        }
        row.extend(s.final_test_per_class.iter().map(|v| Cell::new(fmt(*v))));
        row.push(Cell::new(
            s.epochs_to_target
                .map_or("-".to_string(), |e| e.to_string()),
        ));
        let join = |v: &[f64]| {
            v.iter()
                .map(|a| format!("{a:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        row.push(Cell::new(match &s.final_loss_weights {
            // Group DRO draws classical batches; its loss weights are what it moves.
            Some(w) => format!("loss weights {}", join(w)),
            None => join(&s.final_alpha),
        }));
        row.push(Cell::new(format!("{:.4}", s.train_seconds_per_epoch)));
        table.add_row(row);
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "per-class columns: final test {} per class, mean over seeds; paired: per-seed difference \
         of final test {} (same data and initial weights), mean ± 95% CI",
        c.metric, c.metric
    )?;
    if let Some(t) = c.target {
        writeln!(
            out,
            "target: test {} {} {} (the best seed-mean value that every strategy reaches)",
            c.metric,
            match c.direction {
                l2m_engine::Direction::LowerIsBetter => "<=",
                l2m_engine::Direction::HigherIsBetter => ">=",
            },
            fmt(t)
        )?;
        let reached: Vec<String> = c
            .strategies
            .iter()
            .map(|s| {
                format!(
                    "{} at epoch {}",
                    label(&s.strategy),
                    s.epochs_to_target.map_or("-".into(), |e| e.to_string())
                )
            })
            .collect();
        writeln!(out, "reached: {}", reached.join(", "))?;
    }
    Ok(())
}
