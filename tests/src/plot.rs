//! `--svg`: the dissemination curve (fraction of nodes informed over time) as an SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::scenario::Outcome;

/// Draws `outcome.curve` to `path`.
pub fn dissemination(path: &Path, outcome: &Outcome) -> Result<(), Box<dyn std::error::Error>> {
    // Keep the SVG small: at most one point per pixel column.
    let points = thin(&outcome.curve, 1600);
    let end = points.last().map_or(1.0, |p| p.0).max(1e-3) * 1.05;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} {} N={} seed={} loss={}",
        outcome.implementation, outcome.scenario, outcome.nodes, outcome.seed, outcome.loss
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..1.02)?;
    chart
        .configure_mesh()
        .x_desc("virtual seconds since the phase began")
        .y_desc("fraction of nodes informed")
        .draw()?;
    chart.draw_series(LineSeries::new(points, &BLUE))?;
    root.present()?;
    Ok(())
}

/// Keeps the last point of each of `buckets` time buckets, so steps stay sharp.
fn thin(curve: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    let Some(&(end, _)) = curve.last() else {
        return Vec::new();
    };
    let width = (end / buckets as f64).max(1e-9);
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &(t, f) in curve {
        match out.last_mut() {
            Some(last) if (last.0 / width).floor() == (t / width).floor() => *last = (t, f),
            _ => out.push((t, f)),
        }
    }
    out
}
