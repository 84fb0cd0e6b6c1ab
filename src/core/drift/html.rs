//! The drift report as one self-contained HTML page: inline CSS and SVG, no
//! script, nothing fetched (no fonts, no external URLs), so it opens from S3,
//! a mail attachment or a laptop alike. The alert comes first (with one plain
//! sentence per alerting feature), then an overview of every feature, then
//! per feature the training split's and the file's shares of rows in each bin
//! side by side, and at the bottom how to read it all, for a lab person.
//! Features are named as the file's header named them, the API name beside.
//! A file too small to assess shows its counts, grey: no PSI grade anywhere.
//!
//! Built with maud: the markup is checked at compile time and every value
//! spliced in is escaped unless marked `PreEscaped` (only the constant CSS).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::plain::{Shift, MODERATE_PSI};
use super::{DriftReport, FeatureDrift};

mod chart;
mod format;

use chart::{chart, psi_bar};
use format::{fmt_num, fmt_pct, fmt_psi, opt_num, opt_pct, thousands};

/// What the page says about where the rows came from (all optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct PageContext<'a> {
    /// The file (or batch) the report is about, e.g. an S3 key.
    pub source: Option<&'a str>,
    pub model_version: Option<&'a str>,
}

/// Features with at most this many bins share a row, two to a row.
const NARROW_BINS: usize = 6;

const TRAINING_COLOUR: &str = "#9aa9bb";
const FILE_COLOUR: &str = "#2563a8";

/// Renders the page. Every string spliced in is escaped.
pub fn render(report: &DriftReport, context: &PageContext<'_>) -> String {
    let mut order: Vec<&FeatureDrift> = report.features.iter().collect();
    // Largest shift first: what needs looking at is at the top. Not assessed,
    // the PSI is noise: the model's order.
    if report.alert_assessed {
        order.sort_by(|a, b| b.psi.unwrap_or(-1.0).total_cmp(&a.psi.unwrap_or(-1.0)));
    }
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
footer h2{font-size:16px;color:var(--ink);margin:0 0 6px}
footer dl{display:grid;grid-template-columns:210px 1fr;gap:4px 14px;margin:0 0 10px;color:var(--ink);font-size:14px}
footer dt{font-weight:600}
footer dd{margin:0}
.api{color:var(--muted);font-size:12px;font-weight:400;margin-left:6px}
.notes{margin:8px 0 0;padding-left:20px}
.notes li{margin:2px 0}
.card .note{margin:2px 0 4px;font-size:14px;color:#7a1a10}
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

/// The name a person reads: the file's header, else the API name.
fn label(f: &FeatureDrift) -> &str {
    f.column.as_deref().unwrap_or(&f.name)
}

/// The file's name for the feature with the API name beside (once when they are the same).
fn feature_name(f: &FeatureDrift) -> Markup {
    match f.column.as_deref().filter(|c| *c != f.name) {
        Some(column) => html! { span.col { (column) } " " span.api { "API " code { (f.name) } } },
        None => html! { code { (f.name) } },
    }
}

/// Every feature's plain sentence, as a list (nothing when none has one).
fn notes(report: &DriftReport) -> Markup {
    let notes: Vec<&str> = report.features.iter().filter_map(|f| f.note.as_deref()).collect();
    html! {
        @if !notes.is_empty() {
            ul.notes { @for n in notes { li { (n) } } }
        }
    }
}

fn alert(report: &DriftReport) -> Markup {
    let threshold = fmt_psi(report.psi_threshold);
    if report.alert {
        let named: Vec<String> = report
            .features
            .iter()
            .filter(|f| f.shift == Shift::Major)
            .map(|f| format!("{} (PSI {})", label(f), f.psi.map_or("–".into(), fmt_psi)))
            .collect();
        html! {
            section.banner.bad {
                strong { "Drift alert: " (named.join(", ")) }
                p {
                    "These features are distributed differently from the training data (PSI above " (threshold)
                    "), so predictions on this file may be less reliable than the model's test metrics say: check \
                     units, instruments and protocol before relying on them."
                }
                (notes(report))
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
                (notes(report))
            }
        }
    } else {
        let why = if report.training_rows.is_none() {
            "The model export has no training profile (format version 1), so there is nothing to compare with."
                .to_owned()
        } else {
            format!(
                "Only {} rows were scored, and drift is assessed from {} scored rows on: with fewer, even data \
                 just like the training data differs from it by chance, so no PSI is graded and no alert is raised \
                 either way. The counts below are shown as they are.",
                thousands(report.scored),
                thousands(report.min_rows_for_alert)
            )
        };
        html! { section.banner.na { strong { "Drift not assessed" } p { (why) } (notes(report)) } }
    }
}

fn overview(report: &DriftReport) -> Markup {
    let training_malignant =
        report.training_predicted_malignant_share.map_or(String::new(), |s| format!("training split: {}", fmt_pct(s)));
    let reasons: Vec<String> =
        report.rejected_by_reason.iter().map(|(code, r)| format!("{code} {}", thousands(r.rows))).collect();
    let reasons = if reasons.is_empty() { "no rows rejected".to_owned() } else { reasons.join(", ") };
    let over = report.features.iter().filter(|f| f.shift == Shift::Major).count();
    let (over, over_sub) = if report.alert_assessed {
        (format!("{over} of {}", report.features.len()), format!("threshold {}", fmt_psi(report.psi_threshold)))
    } else {
        (
            "not assessed".to_owned(),
            format!("needs {} scored rows, has {}", thousands(report.min_rows_for_alert), thousands(report.scored)),
        )
    };
    html! {
        div.tiles {
            (tile("Predicted malignant", &opt_pct(report.predicted_malignant_share), &training_malignant))
            (tile(
                "Rows with a value outside the training range",
                &opt_pct(report.out_of_range_share),
                &format!("{} of {} scored rows", thousands(report.rows_out_of_range), thousands(report.scored)),
            ))
            (tile("Rows rejected", &opt_pct(report.rejected_share), &reasons))
            (tile("Features over the PSI threshold", &over, &over_sub))
        }
        table {
            tr {
                th { "feature (as in the file)" } th { "PSI" } th.num { "outside training range" }
                th.num { "mean (training)" } th.num { "min – max (training)" }
            }
            @for f in &report.features {
                tr {
                    td { (feature_name(f)) }
                    td {
                        (psi_badge(f))
                        @if let (Some(p), false) = (f.psi, f.shift == Shift::NotAssessed) {
                            " " (psi_bar(p, shift_colour(f.shift), report.psi_threshold))
                        }
                    }
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
            "Per feature below"
            @if report.alert_assessed { ", largest PSI first" }
            ": the share of rows in each of the model's bins "
            span.sw style={ "background:" (TRAINING_COLOUR) } {} "training split "
            span.sw style={ "background:" (FILE_COLOUR) } {} "this file"
        }
    }
}

fn tile(key: &str, value: &str, sub: &str) -> Markup {
    html! { div.tile { div.k { (key) } div.v { (value) } div.s { (sub) } } }
}

fn feature(report: &DriftReport, f: &FeatureDrift) -> Markup {
    let alerting = f.shift == Shift::Major;
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
            header { h2 { (feature_name(f)) } (psi_badge(f)) }
            @if let Some(note) = &f.note { p.note { (note) } }
            p.facts {
                "outside the training range (" (fmt_num(f.training_min)) " – " (fmt_num(f.training_max)) "): "
                (opt_pct(f.out_of_range_share)) " of rows"
                @if f.shift == Shift::NotAssessed && report.training_rows.is_some() {
                    " · " (thousands(report.scored)) " scored rows, too few to grade a shift"
                }
            }
            (chart(f, if wide { 1060.0 } else { 520.0 }))
        }
    }
}

fn footer(report: &DriftReport) -> Markup {
    let training_rows = report.training_rows.map_or("–".into(), thousands);
    let threshold = fmt_psi(report.psi_threshold);
    let moderate = fmt_psi(MODERATE_PSI);
    html! {
        footer {
            h2 { "How to read this" }
            dl {
                dt { "What is compared" }
                dd {
                    "Each measurement of the rows the model scored, feature by feature, with the " (training_rows)
                    " cases the model learnt from (the training split). Rows that could not be scored do not count."
                }
                dt { "Bins and bars" }
                dd {
                    "The model only tells a few ranges of each measurement apart: it cuts them at its split \
                     thresholds, and every value between two thresholds is treated the same. Those ranges are the \
                     bins. The grey bars are the share of training cases in each bin, the blue bars this file's."
                }
                dt { "PSI" }
                dd {
                    "One number for how different the blue bars are from the grey ones (population stability \
                     index; 0 means the same). Up to " (moderate) " the feature looks like the training data; \
                     above " (moderate) " is a moderate shift; above " (threshold) " a major one, which raises the \
                     alert."
                }
                dt { "Too few rows" }
                dd {
                    "Below " (thousands(report.min_rows_for_alert)) " scored rows even a sample of the training \
                     data itself would show large differences by chance, so the page shows the counts but grades \
                     no PSI."
                }
                dt { "Outside the training range" }
                dd {
                    "Values smaller or larger than any seen in training. The model has never seen such cases: \
                     often the units differ (cm instead of mm) or the instrument does."
                }
                dt { "When a feature is flagged" }
                dd {
                    "Check that measurement's units, the instrument's calibration and the protocol before relying \
                     on this file's predictions, and tell whoever looks after the model."
                }
            }
            p { b { "Convention" } ": " (report.psi_convention) "." }
            p {
                "Min, max and mean are shown from " (thousands(report.min_rows_for_extremes))
                " scored rows on. The training profile describes the " (training_rows)
                " rows of the training split of a 1990s study, not any clinic's patients."
            }
        }
    }
}

/// The class (and colour) of a grade.
fn shift_class(shift: Shift) -> &'static str {
    match shift {
        Shift::Major => "bad",
        Shift::Moderate => "warn",
        Shift::Stable => "ok",
        Shift::NotAssessed => "na",
    }
}

fn shift_colour(shift: Shift) -> &'static str {
    match shift {
        Shift::Major => "#d4442e",
        Shift::Moderate => "#d98b1c",
        Shift::Stable => "#4a9a6a",
        Shift::NotAssessed => "#9aa3ae",
    }
}

/// The PSI graded, or a grey "not assessed" (no PSI) when the file was not.
fn psi_badge(f: &FeatureDrift) -> Markup {
    match (f.shift, f.psi) {
        (Shift::NotAssessed, _) => html! { span.badge.na { "not assessed" } },
        (shift, Some(p)) => html! { span class={ "badge " (shift_class(shift)) } { "PSI " (fmt_psi(p)) } },
        (_, None) => html! { span.badge.na { "PSI –" } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
