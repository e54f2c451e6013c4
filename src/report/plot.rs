//! Grouped bar charts (plotters, the plotting crate Criterion itself uses): one group per
//! label, one bar per series; an absent value leaves a gap.

use anyhow::{anyhow, Result};
use std::path::Path;

const COLORS: [plotters::style::RGBColor; 4] = [
    plotters::style::RGBColor(214, 96, 39),   // mistral.rs
    plotters::style::RGBColor(60, 110, 180),  // candle
    plotters::style::RGBColor(120, 120, 120), // PyTorch
    plotters::style::RGBColor(90, 160, 70),   // llama.cpp
];

/// The label of the bar (or group) at x = 0, 1, 2, ... (none between them).
fn label_at(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
        labels[i as usize].clone()
    } else {
        String::new()
    }
}

/// A grouped bar chart: one group per label, one bar per series (absent values leave a gap).
/// `values[group][series]`; each series names its colour (0–3: mistral.rs, candle, PyTorch,
/// llama.cpp), so an engine keeps its colour when another is left out.
pub fn bar_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(&str, usize)],
    labels: &[String],
    values: &[Vec<Option<f64>>],
    log: bool,
) -> Result<()> {
    use plotters::prelude::*;
    // room for each group's label (about 7 px per character at the axis font)
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10);
    let per_group = (longest as u32 * 7 + 30).max(150);
    let w = per_group * labels.len().max(3) as u32 + 120;
    let root = SVGBackend::new(path, (w.min(4000), 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let vmax = values
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |a, &b| a.max(b))
        .max(1e-9);
    let vmin = values
        .iter()
        .flatten()
        .flatten()
        .fold(f64::INFINITY, |a, &b| a.min(b));
    let n = labels.len() as f64;
    let draw = |chart_lo: f64, chart_hi: f64, log: bool| -> Result<()> {
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(80);
        let label_of = |x: &f64| label_at(labels, *x);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(labels.len() + 1)
                    .x_label_formatter(&label_of)
                    .y_desc(y_desc)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                let bw = 0.8 / series.len().max(1) as f64;
                for (e, (name, colour)) in series.iter().enumerate() {
                    let color = COLORS[colour % COLORS.len()];
                    let bars: Vec<Rectangle<(f64, f64)>> = values
                        .iter()
                        .enumerate()
                        .filter_map(|(g, v)| {
                            let y = (*v.get(e)?)?;
                            let x0 = g as f64 - 0.4 + e as f64 * bw;
                            Some(Rectangle::new(
                                [(x0, chart_lo), (x0 + bw * 0.92, y)],
                                color.filled(),
                            ))
                        })
                        .collect();
                    chart
                        .draw_series(bars)
                        .map_err(|e| anyhow!("{e}"))?
                        .label(*name)
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                        });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.9))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
            }};
        }
        if log {
            body!(b
                .build_cartesian_2d(-0.5f64..n - 0.5, (chart_lo..chart_hi).log_scale())
                .map_err(|e| anyhow!("{e}"))?);
        } else {
            body!(b
                .build_cartesian_2d(-0.5f64..n - 0.5, chart_lo..chart_hi)
                .map_err(|e| anyhow!("{e}"))?);
        }
        Ok(())
    };
    if log {
        let lo = 10f64.powf((vmin.max(1e-9)).log10().floor());
        draw(lo, vmax * 3.0, true)?;
    } else {
        draw(0.0, vmax * 1.2, false)?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

/// Colours of the segments of a stacked bar (one per series, repeating after 18).
const PALETTE: [plotters::style::RGBColor; 18] = [
    plotters::style::RGBColor(214, 96, 39),
    plotters::style::RGBColor(60, 110, 180),
    plotters::style::RGBColor(90, 160, 70),
    plotters::style::RGBColor(200, 170, 40),
    plotters::style::RGBColor(140, 80, 170),
    plotters::style::RGBColor(40, 160, 160),
    plotters::style::RGBColor(220, 120, 160),
    plotters::style::RGBColor(120, 90, 60),
    plotters::style::RGBColor(160, 200, 90),
    plotters::style::RGBColor(100, 160, 220),
    plotters::style::RGBColor(240, 160, 90),
    plotters::style::RGBColor(180, 60, 60),
    plotters::style::RGBColor(80, 80, 140),
    plotters::style::RGBColor(150, 150, 50),
    plotters::style::RGBColor(60, 120, 90),
    plotters::style::RGBColor(190, 190, 190),
    plotters::style::RGBColor(110, 110, 110),
    plotters::style::RGBColor(30, 30, 30),
];

/// A stacked bar chart: one bar per label, one segment per series (`values[bar][series]`,
/// zero for none), with a legend of the series.
pub fn stacked_bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[String],
    labels: &[String],
    values: &[Vec<f64>],
) -> Result<()> {
    use plotters::prelude::*;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10);
    let per_bar = (longest as u32 * 6 + 20).max(110);
    let w = per_bar * labels.len().max(2) as u32 + 320;
    let w = w.min(4000);
    let root = SVGBackend::new(path, (w, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(w - 220);
    let vmax = values
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .fold(0f64, f64::max)
        .max(1e-9);
    let n = labels.len() as f64;
    let label_of = |x: &f64| label_at(labels, *x);
    let mut chart = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..vmax * 1.1)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len() + 1)
        .x_label_formatter(&label_of)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (s, name) in series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = values
            .iter()
            .enumerate()
            .filter_map(|(b, v)| {
                let y = *v.get(s)?;
                if y <= 0.0 {
                    return None;
                }
                let base: f64 = v[..s].iter().sum();
                Some(Rectangle::new(
                    [(b as f64 - 0.35, base), (b as f64 + 0.35, base + y)],
                    color.filled(),
                ))
            })
            .collect();
        chart.draw_series(bars).map_err(|e| anyhow!("{e}"))?;
        // The legend, top-down in stacking order reversed (the top segment first).
        let y = 40 + 22 * (series.len() - 1 - s) as i32;
        right
            .draw(&Rectangle::new([(10, y - 6), (24, y + 6)], color.filled()))
            .map_err(|e| anyhow!("{e}"))?;
        right
            .draw(&Text::new(name.clone(), (32, y - 7), ("sans-serif", 14)))
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}
