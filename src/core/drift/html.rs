//! The drift report as one self-contained HTML page: inline CSS and SVG, no
//! script, nothing fetched (no fonts, no external URLs), so it opens from S3,
//! a mail attachment or a laptop alike. The alert comes first, then an
//! overview of every feature, then per feature the training split's and the
//! file's shares of rows in each bin side by side.
//!
//! Built with maud: the markup is checked at compile time and every value
//! spliced in is escaped unless marked `PreEscaped` (only the constant CSS).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{DriftReport, FeatureDrift};

/// What the page says about where the rows came from (all optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct PageContext<'a> {
    /// The file (or batch) the report is about, e.g. an S3 key.
    pub source: Option<&'a str>,
    pub model_version: Option<&'a str>,
}

/// Features with at most this many bins share a row, two to a row.
const NARROW_BINS: usize = 6;

/// PSI above this is a moderate shift (the usual convention), below it stable.
const MODERATE_PSI: f64 = 0.1;

const TRAINING_COLOUR: &str = "#9aa9bb";
const FILE_COLOUR: &str = "#2563a8";

/// Renders the page. Every string spliced in is escaped.
pub fn render(report: &DriftReport, context: &PageContext<'_>) -> String {
    let mut order: Vec<&FeatureDrift> = report.features.iter().collect();
    // Largest shift first: what needs looking at is at the top.
    order.sort_by(|a, b| b.psi.unwrap_or(-1.0).total_cmp(&a.psi.unwrap_or(-1.0)));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Drift report" @if let Some(s) = context.source { ": " (s) } }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    (header(report, context))
                    (alert(report))
                    (overview(report))
                    section.features {
                        @for f in order { (feature(report, f)) }
                    }
                    (footer(report))
                }
            }
        }
    };
    page.into_string()
}

const CSS: &str = "
:root{--ink:#1d2430;--muted:#5b6675;--line:#dfe4ea;--bg:#f5f7fa;--card:#fff;--ok:#2f7d4f;--warn:#a86200;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0}
.meta{color:var(--muted);margin:0 0 16px}
.meta b{color:var(--ink);font-weight:600}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.banner{border-radius:8px;padding:14px 18px;margin:0 0 18px;border:1px solid}
.banner strong{font-size:17px;display:block;margin-bottom:2px}
.banner p{margin:0}
.banner.bad{background:#fdecea;border-color:#f4b4ab;color:#7a1a10}
.banner.ok{background:#eaf6ee;border-color:#b5dcc2;color:#1e5434}
.banner.na{background:#eef1f5;border-color:#cfd6df;color:#3b4552}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:0 0 18px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile .k{color:var(--muted);font-size:13px}
.tile .v{font-size:22px;font-weight:600}
.tile .s{color:var(--muted);font-size:13px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 18px}
th,td{text-align:left;padding:7px 12px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{font-size:13px;color:var(--muted);font-weight:600}
tr:last-child td{border-bottom:none}
td.num{text-align:right}
.features{display:grid;grid-template-columns:1fr 1fr;grid-auto-flow:row dense;gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px 6px}
.card.wide{grid-column:1/-1}
.card.alerting{border-color:#f0a196;box-shadow:inset 4px 0 0 var(--bad)}
.card header{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
.card .facts{color:var(--muted);font-size:13px;margin:2px 0 4px}
.badge{font-size:13px;font-weight:600;border-radius:999px;padding:1px 10px;white-space:nowrap}
.badge.ok{background:#e3f3e8;color:var(--ok)}
.badge.warn{background:#fdf0d9;color:var(--warn)}
.badge.bad{background:#fde2de;color:var(--bad)}
.badge.na{background:#eceff3;color:var(--muted)}
.legend{color:var(--muted);font-size:13px;margin:0 0 10px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;vertical-align:-1px;margin:0 4px 0 10px}
svg{display:block;width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;fill:#5b6675}
footer{color:var(--muted);font-size:13px;margin-top:20px;border-top:1px solid var(--line);padding-top:10px}
footer p{margin:4px 0}
";

fn header(report: &DriftReport, context: &PageContext<'_>) -> Markup {
    html! {
        h1 { "Drift report" }
        p.meta {
            @if let Some(s) = context.source { "file " b { (s) } " · " }
            @if let Some(v) = context.model_version { "model " code { (v) } " · " }
            b { (thousands(report.rows)) } " rows: "
            b { (thousands(report.scored)) } " scored, "
            b { (thousands(report.rejected)) } " rejected"
            @if let Some(n) = report.training_rows {
                " · compared with the " (thousands(n)) " rows of the training split"
            }
        }
    }
}

fn alert(report: &DriftReport) -> Markup {
    let threshold = fmt_psi(report.psi_threshold);
    if report.alert {
        let named: Vec<String> = report
            .alert_features
            .iter()
            .map(|name| {
                let psi = report.features.iter().find(|f| f.name == *name).and_then(|f| f.psi);
                format!("{name} (PSI {})", psi.map_or("–".into(), fmt_psi))
            })
            .collect();
        html! {
            section.banner.bad {
                strong { "Drift alert: " (named.join(", ")) }
                p {
                    "These features are distributed differently from the training data (PSI above " (threshold)
                    "), so predictions on this file may be less reliable than the model's test metrics say: check \
                     units, instruments and protocol before relying on them."
                }
            }
        }
    } else if report.alert_assessed {
        html! {
            section.banner.ok {
                strong { "No drift alert" }
                p {
                    "Every feature's PSI is at most " (threshold) ": the scored rows are distributed over the \
                     model's bins much like the training data."
                }
            }
        }
    } else {
        let why = if report.training_rows.is_none() {
            "The model export has no training profile (format version 1), so there is nothing to compare with."
                .to_owned()
        } else {
            format!(
                "Only {} rows were scored; below {} the PSI of even training-like data is mostly sampling noise, \
                 so no alert is raised either way.",
                thousands(report.scored),
                thousands(report.min_rows_for_alert)
            )
        };
        html! { section.banner.na { strong { "Drift not assessed" } p { (why) } } }
    }
}

fn overview(report: &DriftReport) -> Markup {
    let training_malignant =
        report.training_predicted_malignant_share.map_or(String::new(), |s| format!("training split: {}", fmt_pct(s)));
    let reasons: Vec<String> =
        report.rejected_by_reason.iter().map(|(code, r)| format!("{code} {}", thousands(r.rows))).collect();
    let reasons = if reasons.is_empty() { "no rows rejected".to_owned() } else { reasons.join(", ") };
    let over = report.features.iter().filter(|f| f.psi.is_some_and(|p| p > report.psi_threshold)).count();
    html! {
        div.tiles {
            (tile("Predicted malignant", &opt_pct(report.predicted_malignant_share), &training_malignant))
            (tile(
                "Rows with a value outside the training range",
                &opt_pct(report.out_of_range_share),
                &format!("{} of {} scored rows", thousands(report.rows_out_of_range), thousands(report.scored)),
            ))
            (tile("Rows rejected", &opt_pct(report.rejected_share), &reasons))
            (tile(
                "Features over the PSI threshold",
                &format!("{over} of {}", report.features.len()),
                &format!("threshold {}", fmt_psi(report.psi_threshold)),
            ))
        }
        table {
            tr {
                th { "feature" } th { "PSI" } th.num { "outside training range" }
                th.num { "mean (training)" } th.num { "min – max (training)" }
            }
            @for f in &report.features {
                tr {
                    td { code { (f.name) } }
                    td { (psi_badge(f.psi, report.psi_threshold)) " " (psi_bar(f.psi, report.psi_threshold)) }
                    td.num { (opt_pct(f.out_of_range_share)) }
                    td.num { (opt_num(f.mean)) " (" (opt_num(f.training_mean)) ")" }
                    td.num {
                        (opt_num(f.min)) " – " (opt_num(f.max))
                        " (" (fmt_num(f.training_min)) " – " (fmt_num(f.training_max)) ")"
                    }
                }
            }
        }
        p.legend {
            "Per feature below, largest PSI first: the share of rows in each of the model's bins "
            span.sw style={ "background:" (TRAINING_COLOUR) } {} "training split "
            span.sw style={ "background:" (FILE_COLOUR) } {} "this file"
        }
    }
}

fn tile(key: &str, value: &str, sub: &str) -> Markup {
    html! { div.tile { div.k { (key) } div.v { (value) } div.s { (sub) } } }
}

fn feature(report: &DriftReport, f: &FeatureDrift) -> Markup {
    let alerting = report.alert_features.contains(&f.name);
    // Many bins need the full width for their labels to stay legible.
    let wide = f.bins.counts.len() > NARROW_BINS;
    let class = match (wide, alerting) {
        (true, true) => "card wide alerting",
        (true, false) => "card wide",
        (false, true) => "card alerting",
        (false, false) => "card",
    };
    html! {
        article class=(class) {
            header { h2 { code { (f.name) } } (psi_badge(f.psi, report.psi_threshold)) }
            p.facts {
                "outside the training range (" (fmt_num(f.training_min)) " – " (fmt_num(f.training_max)) "): "
                (opt_pct(f.out_of_range_share)) " of rows"
            }
            (chart(f, if wide { 1060.0 } else { 520.0 }))
        }
    }
}

/// One decimal, as SVG coordinates are written.
fn d1(x: f64) -> String {
    format!("{x:.1}")
}

/// Grouped bars: per bin, the training share and the file's share. SVG
/// elements are closed explicitly (`{}`): in HTML an unclosed `<line>` inside
/// `<svg>` would hold the elements after it.
fn chart(f: &FeatureDrift, width: f64) -> Markup {
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
            aria-label={ "shares of rows per bin of " (f.name) ": training split and this file" } {
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
                "bins of " (f.name) " (the model's split thresholds)"
            }
        }
    }
}

fn footer(report: &DriftReport) -> Markup {
    html! {
        footer {
            p {
                b { "How to read PSI" } " (population stability index): below " (fmt_psi(MODERATE_PSI))
                " the feature looks like the training data; " (fmt_psi(MODERATE_PSI)) " to "
                (fmt_psi(report.psi_threshold)) " is a moderate shift; above " (fmt_psi(report.psi_threshold))
                " a major one, which raises the alert. Rows that could not be scored do not count."
            }
            p { b { "Convention" } ": " (report.psi_convention) "." }
            p {
                "Bins are the distinctions the model can see: a value's bin decides its contribution to the score, \
                 so a shift inside one bin changes no prediction and no PSI. Min, max and mean are shown from "
                (thousands(report.min_rows_for_extremes)) " scored rows on. The training profile describes the "
                (report.training_rows.map_or("–".into(), thousands))
                " rows of the training split of a 1990s study, not any clinic's patients."
            }
        }
    }
}

fn psi_badge(psi: Option<f64>, threshold: f64) -> Markup {
    match psi {
        None => html! { span.badge.na { "PSI –" } },
        Some(p) => {
            let class = if p > threshold {
                "bad"
            } else if p > MODERATE_PSI {
                "warn"
            } else {
                "ok"
            };
            html! { span class={ "badge " (class) } { "PSI " (fmt_psi(p)) } }
        }
    }
}

/// A small horizontal bar of the PSI with the threshold marked.
fn psi_bar(psi: Option<f64>, threshold: f64) -> Markup {
    let Some(p) = psi else { return html! {} };
    let scale = (threshold * 4.0).max(p.min(threshold * 8.0));
    let (w, h) = (160.0, 12.0);
    let len = (w * p / scale).min(w);
    let mark = w * threshold / scale;
    let colour = if p > threshold {
        "#d4442e"
    } else if p > MODERATE_PSI {
        "#d98b1c"
    } else {
        "#4a9a6a"
    };
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

fn fmt_pct(share: f64) -> String {
    let pct = share * 100.0;
    if share == 0.0 {
        "0%".to_owned()
    } else if pct < 0.1 {
        "<0.1%".to_owned()
    } else if pct >= 10.0 || (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

fn opt_pct(share: Option<f64>) -> String {
    share.map_or("–".into(), fmt_pct)
}

fn fmt_psi(psi: f64) -> String {
    if (psi * 100.0 - (psi * 100.0).round()).abs() < 1e-9 {
        // A round threshold (0.25, 0.1) reads better without trailing zeros.
        format!("{}", (psi * 100.0).round() / 100.0)
    } else if psi >= 10.0 {
        format!("{psi:.1}")
    } else if psi >= 1.0 {
        format!("{psi:.2}")
    } else {
        format!("{psi:.3}")
    }
}

/// Four significant digits, no exponent for the magnitudes of measurements.
fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if magnitude >= 3 {
        thousands(x.round() as u64)
    } else if magnitude < -6 {
        format!("{x:.3e}")
    } else {
        let decimals = (3 - magnitude).max(0) as usize;
        let s = format!("{x:.decimals$}");
        // 4 significant digits may end in zeros: 20.00 -> 20
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map_or("–".into(), fmt_num)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(fmt_num(0.020289999432861805), "0.02029");
        assert_eq!(fmt_num(515.26), "515.3");
        assert_eq!(fmt_num(1717.0), "1,717");
        assert_eq!(fmt_num(20.0), "20");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_pct(0.0), "0%");
        assert_eq!(fmt_pct(0.123), "12%");
        assert_eq!(fmt_pct(0.0123), "1.2%");
        assert_eq!(fmt_pct(0.00001), "<0.1%");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(fmt_psi(0.41234), "0.412");
        assert_eq!(fmt_psi(0.25), "0.25");
        assert_eq!(fmt_psi(0.0), "0");
        assert_eq!(nice_step(0.47), 0.2);
        assert_eq!(nice_step(0.2), 0.05);
    }

    #[test]
    fn text_from_outside_is_escaped_wherever_it_is_shown() {
        let model = crate::core::model::Model::embedded().unwrap();
        let report = super::super::DriftStats::new(&model).report(&model, &super::super::DriftOptions::default());
        let hostile = "<a href=\"x\">'&'</a>";
        let page = render(&report, &PageContext { source: Some(hostile), model_version: Some(hostile) });
        assert!(!page.contains(hostile) && !page.contains("<a "), "{page}");
        let escaped = "&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;";
        assert_eq!(page.matches(escaped).count(), 3, "title, file and model: {page}");
    }
}
