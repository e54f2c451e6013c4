//! Grouped bar charts (plotters, the plotting crate Criterion itself uses): one group per
//! label, one bar per series; an absent value leaves a gap.

use anyhow::{anyhow, Result};
use std::path::Path;

const COLORS: [plotters::style::RGBColor; 3] = [
    plotters::style::RGBColor(214, 96, 39),   // mistral.rs
    plotters::style::RGBColor(60, 110, 180),  // candle
    plotters::style::RGBColor(120, 120, 120), // PyTorch
];

/// A grouped bar chart: one group per label, one bar per series (absent values leave a gap).
pub fn bar_chart<const N: usize>(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[&str; N],
    labels: &[String],
    values: &[[Option<f64>; N]],
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
        let label_of = |x: &f64| -> String {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
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
                let bw = 0.8 / N as f64;
                for (e, name) in series.iter().enumerate() {
                    let color = COLORS[e % COLORS.len()];
                    let bars: Vec<Rectangle<(f64, f64)>> = values
                        .iter()
                        .enumerate()
                        .filter_map(|(g, v)| {
                            let y = v[e]?;
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
