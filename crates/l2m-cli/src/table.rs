//! The comparison table printed at the end of `l2m compare`.

use std::io::Write;

use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};

use l2m_engine::{Comparison, ExperimentConfig};

/// The longest class or strategy name a table cell shows, in characters.
const MAX_LABEL: usize = 40;

/// Up to this many classes the table has a column per class; above, the worst three.
pub const MAX_CLASS_COLUMNS: usize = 12;

/// The classes `worst` of `per_class` (by `direction`), as `name value` items.
fn worst_classes(
    names: &[String],
    per_class: &[f64],
    direction: l2m_engine::Direction,
    n: usize,
) -> String {
    let mut order: Vec<usize> = (0..per_class.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (per_class[a], per_class[b]);
        match direction {
            l2m_engine::Direction::LowerIsBetter => y.total_cmp(&x),
            l2m_engine::Direction::HigherIsBetter => x.total_cmp(&y),
        }
    });
    order
        .iter()
        .take(n)
        .map(|&i| {
            let name = names.get(i).map_or("?", String::as_str);
            format!(
                "{} {:.3}",
                l2m_engine::text::shorten(name, 16),
                per_class[i]
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The training samples per class: every class up to [`MAX_CLASS_COLUMNS`], else the
/// count and the largest and smallest.
pub fn class_sizes(names: &[String], sizes: &[usize]) -> String {
    if names.len() <= MAX_CLASS_COLUMNS {
        return names
            .iter()
            .zip(sizes)
            .map(|(n, s)| format!("{} {s}", label(n)))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let by_size = |pick: fn(usize, usize) -> bool| {
        let mut best: Option<(usize, usize)> = None;
        for (i, &s) in sizes.iter().enumerate() {
            if best.is_none_or(|(_, b)| pick(s, b)) {
                best = Some((i, s));
            }
        }
        best.map_or(String::new(), |(i, s)| {
            format!("{} {s}", label(names.get(i).map_or("?", String::as_str)))
        })
    };
    format!(
        "{} classes, {} in all; largest {}, smallest {} (every class in per_class.csv)",
        names.len(),
        sizes.iter().sum::<usize>(),
        by_size(|a, b| a > b),
        by_size(|a, b| a < b)
    )
}

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
    writeln!(
        out,
        "training samples per class: {}",
        class_sizes(&c.class_names, &c.train_class_sizes)
    )?;
    let every_class = c.class_names.len() <= MAX_CLASS_COLUMNS;

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
    if every_class {
        header.extend(c.class_names.iter().map(|n| label(n)));
    } else {
        header.push(format!("worst 3 of {} classes", c.class_names.len()));
    }
    header.push("epochs to target".into());
    header.push(if every_class {
        "final alpha".into()
    } else {
        "final alpha (min-max)".into()
    });
    header.push("s/epoch".into());
    if !every_class {
        // Many classes: the long headers on two lines, so that the table stays narrow.
        for h in &mut header {
            if let Some(i) = h.find(" (") {
                h.replace_range(i..=i, "\n");
            } else if h == "epochs to target" {
                *h = "epochs to\ntarget".into();
            }
        }
    }
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
        if every_class {
            row.extend(s.final_test_per_class.iter().map(|v| Cell::new(fmt(*v))));
        } else {
            row.push(Cell::new(worst_classes(
                &c.class_names,
                &s.final_test_per_class,
                c.direction,
                3,
            )));
        }
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
        let spread = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            format!("{lo:.3}-{hi:.3}")
        };
        let shown = |v: &[f64]| if every_class { join(v) } else { spread(v) };
        row.push(Cell::new(match &s.final_loss_weights {
            // Group DRO draws classical batches; its loss weights are what it moves.
            Some(w) => format!("loss weights {}", shown(w)),
            None => shown(&s.final_alpha),
        }));
        row.push(Cell::new(format!("{:.4}", s.train_seconds_per_epoch)));
        table.add_row(row);
    }
    writeln!(out, "{table}")?;
    if every_class {
        writeln!(
            out,
            "per-class columns: final test {} per class, mean over seeds; paired: per-seed difference \
             of final test {} (same data and initial weights), mean ± 95% CI",
            c.metric, c.metric
        )?;
    } else {
        writeln!(
            out,
            "worst 3: the classes with the worst final test {} (mean over seeds); every class is in \
             per_class.csv and report.md\npaired: per-seed difference of final test {} (same data \
             and initial weights), mean ± 95% CI",
            c.metric, c.metric
        )?;
    }
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
