//! The SVG pictures of the page: a feature's bars per bin (training split
//! and file side by side) and the small PSI bar of the overview table.

use maud::{html, Markup};

use super::super::FeatureDrift;
use super::format::{fmt_num, fmt_pct, thousands};
use super::{FILE_COLOUR, TRAINING_COLOUR};

/// One decimal, as SVG coordinates are written.
fn d1(x: f64) -> String {
    format!("{x:.1}")
}

/// Grouped bars: per bin, the training share and the file's share. SVG
/// elements are closed explicitly (`{}`): in HTML an unclosed `<line>` inside
/// `<svg>` would hold the elements after it.
pub(super) fn chart(f: &FeatureDrift, width: f64) -> Markup {
    let (height, left, right, top, bottom) = (190.0, 42.0, 8.0, 10.0, 40.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let n = f.bins.counts.len();
    let shares = f.bins.shares.as_deref();
    let training = f.bins.training_shares.as_deref();
    let largest = shares.into_iter().chain(training).flatten().fold(0.0f64, |m, &s| m.max(s));
    let step = nice_step(largest);
    let y_max = (largest / step).ceil().max(1.0) * step;
    let y = |s: f64| top + plot_h * (1.0 - s / y_max);
    let mut ticks = Vec::new();
    let mut tick = 0.0;
    while tick <= y_max + 1e-12 {
        ticks.push(tick);
        tick += step;
    }
    let group = plot_w / n as f64;
    let bar = (group * 0.36).min(30.0);
    let label_size = if group < 62.0 { 10 } else { 11 };
    html! {
        svg viewBox={ "0 0 " (width) " " (height) } role="img"
            aria-label={ "shares of rows per bin of " (f.column.as_deref().unwrap_or(&f.name)) ": training split and this file" } {
            @for tick in ticks {
                line x1=(left) x2=(width - right) y1=(d1(y(tick))) y2=(d1(y(tick))) stroke="#e6eaef" {}
                text x=(left - 6.0) y=(d1(y(tick) + 4.0)) font-size="11" text-anchor="end" { (fmt_pct(tick)) }
            }
            @for j in 0..n {
                @let x0 = left + group * j as f64 + group / 2.0;
                g {
                    title {
                        (bin_range(&f.bins.edges, j)) ": this file " (shares.map_or("–".into(), |s| fmt_pct(s[j])))
                        " (" (thousands(f.bins.counts[j])) " rows), training "
                        (training.map_or("–".into(), |t| fmt_pct(t[j])))
                    }
                    @for (share, colour, x) in [(training, TRAINING_COLOUR, x0 - bar - 1.0), (shares, FILE_COLOUR, x0 + 1.0)] {
                        @if let Some(s) = share {
                            @let h = (plot_h * s[j] / y_max).max(if s[j] > 0.0 { 1.0 } else { 0.0 });
                            rect x=(d1(x)) y=(d1(top + plot_h - h)) width=(d1(bar)) height=(d1(h)) fill=(colour) rx="1.5" {}
                        }
                    }
                    text x=(d1(x0)) y=(d1(top + plot_h + 15.0)) font-size=(label_size) text-anchor="middle" {
                        (bin_label(&f.bins.edges, j))
                    }
                }
            }
            line x1=(left) x2=(width - right) y1=(d1(top + plot_h)) y2=(d1(top + plot_h)) stroke="#9aa3ae" {}
            text x=(left + plot_w / 2.0) y=(height - 4.0) font-size="11" text-anchor="middle" {
                "bins of " (f.column.as_deref().unwrap_or(&f.name)) " (the model's split thresholds)"
            }
        }
    }
}

/// A small horizontal bar of the PSI, in its grade's colour, with the threshold marked.
pub(super) fn psi_bar(p: f64, colour: &str, threshold: f64) -> Markup {
    let scale = (threshold * 4.0).max(p.min(threshold * 8.0));
    let (w, h) = (160.0, 12.0);
    let len = (w * p / scale).min(w);
    let mark = w * threshold / scale;
    html! {
        svg viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h)
            style={ "display:inline-block;width:" (w) "px;vertical-align:-1px" } aria-hidden="true" {
            rect width=(w) height=(h) fill="#eef1f4" rx="2" {}
            rect width=(d1(len)) height=(h) fill=(colour) rx="2" {}
            line x1=(d1(mark)) x2=(d1(mark)) y1="0" y2=(h) stroke="#1d2430" stroke-width="1.5" {}
        }
    }
}

/// The axis label of bin `j`: its upper edge, or "> last edge".
fn bin_label(edges: &[f64], j: usize) -> String {
    match edges.get(j) {
        Some(&t) => format!("≤ {}", fmt_num(t)),
        None => match edges.last() {
            Some(&t) => format!("> {}", fmt_num(t)),
            None => "all".to_owned(),
        },
    }
}

fn bin_range(edges: &[f64], j: usize) -> String {
    match (j.checked_sub(1).and_then(|i| edges.get(i)), edges.get(j)) {
        (None, Some(hi)) => format!("at most {}", fmt_num(*hi)),
        (Some(lo), Some(hi)) => format!("above {} up to {}", fmt_num(*lo), fmt_num(*hi)),
        (Some(lo), None) => format!("above {}", fmt_num(*lo)),
        (None, None) => "every value".to_owned(),
    }
}

/// 1, 2 or 5 times a power of ten, giving 3 to 6 grid lines up to `max`.
fn nice_step(max: f64) -> f64 {
    if max <= 0.0 {
        return 0.25;
    }
    let raw = max / 4.0;
    let power = 10f64.powf(raw.log10().floor());
    let m = raw / power;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_lines_fall_on_round_shares() {
        assert_eq!(nice_step(0.47), 0.2);
        assert_eq!(nice_step(0.2), 0.05);
    }
}
