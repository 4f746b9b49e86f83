//! Plots of a run directory, as PNG and SVG: the test metric per epoch with 95% confidence
//! bands (one line per strategy), learn2mix's class proportions per epoch, and the final
//! test metric per class.
//!
//! Text needs a TrueType font: DejaVu Sans (or `L2M_PLOT_FONT`) is read from the system at
//! run time; without one, no plot is drawn and the report says so.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::Comparison;
use crate::{EngineError, ExperimentConfig, Result};

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers a system font for plot text once; false when none is found.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("L2M_PLOT_FONT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        candidates.extend(FONT_CANDIDATES.iter().map(PathBuf::from));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("cannot draw the plot: {e}")),
    }
}

fn colour(i: usize) -> RGBColor {
    // Matplotlib's tab10, then tab20's lighter shades: 20 distinct colours, enough for
    // the 10 classes of every dataset but CIFAR-100.
    const P: [RGBColor; 20] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(174, 199, 232),
        RGBColor(255, 187, 120),
        RGBColor(152, 223, 138),
        RGBColor(255, 152, 150),
        RGBColor(197, 176, 213),
        RGBColor(196, 156, 148),
        RGBColor(247, 182, 210),
        RGBColor(199, 199, 199),
        RGBColor(219, 219, 141),
        RGBColor(158, 218, 229),
    ];
    P[i % P.len()]
}

/// A series of points with an optional band, for one legend entry.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    band: Option<Vec<(f64, f64, f64)>>,
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let ys = lines.iter().flat_map(|l| {
        l.points
            .iter()
            .map(|p| p.1)
            .chain(l.band.iter().flatten().flat_map(|b| [b.1, b.2]))
    });
    let (y0, y1) = ys
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    if !(x0.is_finite() && y0.is_finite()) {
        return Err("no data".into());
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    // Epochs are whole numbers: label them so ("12", not "12.0").
    let whole = |x: &f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&whole)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, l) in lines.iter().enumerate() {
        let c = colour(i);
        if let Some(band) = &l.band {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(LineSeries::new(l.points.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(l.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Grouped bars: one group per class (labelled with its name), one bar per series.
struct Bars<'a> {
    classes: &'a [String],
    series: Vec<(String, Vec<f64>)>,
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    bars: &Bars,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let k = bars.classes.len();
    let top = bars
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if k == 0 {
        return Err("no classes".into());
    }
    // Headroom above the tallest bar for the legend.
    let top = if top > 0.0 { top * 1.3 } else { 1.0 };
    let rotate = k > 8;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(if rotate { 90 } else { 40 })
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..k as f64, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    // Class names under their groups (every n-th when more than 25 would crowd).
    let every = k.div_ceil(25).max(1);
    let style = ("sans-serif", 12).into_font();
    let style = if rotate {
        style.transform(FontTransform::Rotate90)
    } else {
        style
    };
    for i in (0..k).step_by(every) {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        let name = &bars.classes[i];
        let pos = if rotate {
            (px + 6, py + 10)
        } else {
            (px - 3 * name.chars().count() as i32, py + 8)
        };
        root.draw(&Text::new(name.clone(), pos, style.clone()))
            .map_err(|e| e.to_string())?;
    }
    let n = bars.series.len().max(1) as f64;
    let width = 0.8 / n;
    for (s, (label, values)) in bars.series.iter().enumerate() {
        let c = colour(s);
        chart
            .draw_series(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(i, &v)| {
                        let x0 = i as f64 + 0.1 + s as f64 * width;
                        Rectangle::new([(x0, 0.0), (x0 + width, v)], c.filled())
                    }),
            )
            .map_err(|e| e.to_string())?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A figure drawn the same way on any backend.
trait Figure {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// Lines with optional bands.
struct LinesFigure<'a> {
    title: &'a str,
    x: &'a str,
    y: &'a str,
    lines: &'a [Line],
}

impl Figure for LinesFigure<'_> {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self.title, self.x, self.y, self.lines)
    }
}

/// Grouped bars per class.
struct BarsFigure<'a> {
    title: &'a str,
    y: &'a str,
    bars: &'a Bars<'a>,
}

impl Figure for BarsFigure<'_> {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_bars(root, self.title, self.y, self.bars)
    }
}

/// Writes `figure` as `<stem>.png` and `<stem>.svg` in `dir`.
fn both(dir: &Path, stem: &str, figure: &impl Figure) -> Result<Vec<PathBuf>> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    figure
        .draw_on(BitMapBackend::new(&png, (900, 560)).into_drawing_area())
        .map_err(|e| plot_err(&png, e))?;
    figure
        .draw_on(SVGBackend::new(&svg, (900, 560)).into_drawing_area())
        .map_err(|e| plot_err(&svg, e))?;
    Ok(vec![png, svg])
}

/// Draws every plot of a run into `dir`; returns the files written, or `None` when no font
/// is available for text.
pub fn write_plots(
    dir: &Path,
    cfg: &ExperimentConfig,
    c: &Comparison,
) -> Result<Option<Vec<PathBuf>>> {
    if !font_ready() {
        return Ok(None);
    }
    let metric = c.metric.as_str();
    let done = c.epochs_done;
    if done == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut files = Vec::new();
    // 1. Test metric per epoch, mean and 95% band over seeds.
    let lines: Vec<Line> = c
        .strategies
        .iter()
        .map(|x| {
            let stats: Vec<(f64, f64, f64)> = x
                .mean_test_curve
                .iter()
                .zip(&x.test_curve_ci95)
                .enumerate()
                .map(|(e, (m, h))| ((e + 1) as f64, m - h, m + h))
                .collect();
            Line {
                label: x.strategy.clone(),
                points: stats.iter().map(|s| (s.0, (s.1 + s.2) / 2.0)).collect(),
                band: Some(stats),
            }
        })
        .collect();
    files.extend(both(
        dir,
        "test_metric",
        &LinesFigure {
            title: &format!("{}: test {metric} (mean, 95% band)", cfg.name),
            x: "epoch",
            y: metric,
            lines: &lines,
        },
    )?);
    // 2. The reference strategy's class proportions per epoch (learn2mix's when it ran),
    //    mean over seeds.
    if let Some(l2m) = c
        .strategies
        .iter()
        .find(|x| x.strategy == c.reference && !x.mean_alpha_curve.is_empty())
    {
        let k = c.class_names.len();
        let lines: Vec<Line> = (0..k)
            .map(|class| Line {
                label: c.class_names[class].clone(),
                points: l2m
                    .mean_alpha_curve
                    .iter()
                    .enumerate()
                    .map(|(e, a)| ((e + 1) as f64, a.get(class).copied().unwrap_or(0.0)))
                    .collect(),
                band: None,
            })
            .collect();
        files.extend(both(
            dir,
            "alpha",
            &LinesFigure {
                title: &format!("{}: {} class proportions", cfg.name, l2m.strategy),
                x: "epoch",
                y: "alpha",
                lines: &lines,
            },
        )?);
    }
    // 3. Final test metric per class: grouped bars, one group per class.
    if !c.strategies.is_empty() {
        let bars = Bars {
            classes: &c.class_names,
            series: c
                .strategies
                .iter()
                .map(|x| (x.strategy.clone(), x.final_test_per_class.clone()))
                .collect(),
        };
        files.extend(both(
            dir,
            "per_class",
            &BarsFigure {
                title: &format!(
                    "{}: test {metric} per class after epoch {done} (mean over seeds)",
                    cfg.name
                ),
                y: metric,
                bars: &bars,
            },
        )?);
    }
    Ok(Some(files))
}

/// `(x, mean, 95% CI half-width)` points of one series of a sweep plot.
pub(crate) type SweepSeries = (String, Vec<(f64, f64, f64)>);

/// Series against a swept value, each with its 95% confidence band, as
/// `<stem>.png` and `<stem>.svg` in `dir`; `None` when no font is available.
pub(crate) fn write_sweep_lines(
    dir: &Path,
    stem: &str,
    title: &str,
    x: &str,
    y: &str,
    series: &[SweepSeries],
) -> Result<Option<Vec<PathBuf>>> {
    if !font_ready() {
        return Ok(None);
    }
    let lines: Vec<Line> = series
        .iter()
        .map(|(label, pts)| Line {
            label: label.clone(),
            points: pts.iter().map(|p| (p.0, p.1)).collect(),
            band: Some(pts.iter().map(|p| (p.0, p.1 - p.2, p.1 + p.2)).collect()),
        })
        .collect();
    let figure = LinesFigure {
        title,
        x,
        y,
        lines: &lines,
    };
    both(dir, stem, &figure).map(Some)
}

/// A grid of values (`values[row][column]`, NaN where missing) as coloured cells with
/// their numbers; darker is better.
struct HeatMap<'a> {
    title: &'a str,
    x: &'a str,
    y: &'a str,
    columns: &'a [String],
    rows: &'a [String],
    values: &'a [Vec<f64>],
    higher_is_better: bool,
}

impl Figure for HeatMap<'_> {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let finite = self
            .values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !lo.is_finite() {
            return Err("no data".into());
        }
        let (nx, ny) = (self.columns.len(), self.rows.len());
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(|e| e.to_string())?;
        let name = |names: &[String], v: f64| {
            let i = v.floor() as usize;
            if (v - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let (columns, rows) = (self.columns, self.rows);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x)
            .y_desc(self.y)
            .x_labels(2 * nx + 1)
            .y_labels(2 * ny + 1)
            .x_label_formatter(&|v| name(columns, *v))
            .y_label_formatter(&|v| name(rows, *v))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        let span = (hi - lo).max(1e-12);
        for (r, row) in self.values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let fill = if v.is_finite() {
                    let good = if self.higher_is_better {
                        (v - lo) / span
                    } else {
                        (hi - v) / span
                    };
                    // From a pale yellow (worst) to a deep blue (best).
                    let mix = |a: f64, b: f64| (a + (b - a) * good).round() as u8;
                    RGBColor(mix(255.0, 8.0), mix(247.0, 48.0), mix(188.0, 107.0))
                } else {
                    RGBColor(230, 230, 230)
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        fill.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                let text_colour = if v.is_finite() && fill.1 < 140 {
                    WHITE
                } else {
                    BLACK
                };
                let label = if v.is_finite() {
                    format!("{v:.4}")
                } else {
                    "-".into()
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        label,
                        (x + 0.3, y + 0.55),
                        ("sans-serif", 14).into_font().color(&text_colour),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())
    }
}

/// A heat map of `values[row][column]` as `<stem>.png` and `<stem>.svg`; `None` when no
/// font is available.
pub(crate) fn write_heat_map(
    dir: &Path,
    stem: &str,
    title: &str,
    (x, columns): (&str, &[String]),
    (y, rows): (&str, &[String]),
    values: &[Vec<f64>],
    higher_is_better: bool,
) -> Result<Option<Vec<PathBuf>>> {
    if !font_ready() {
        return Ok(None);
    }
    let figure = HeatMap {
        title,
        x,
        y,
        columns,
        rows,
        values,
        higher_is_better,
    };
    both(dir, stem, &figure).map(Some)
}
