//! Charts drawn by the server: SVG bars (no script, nothing from elsewhere, so the
//! pages' CSP stays as it is), with their labels in HTML beside the drawing so they stay
//! readable when a phone shrinks it, and every figure in a table under it for screen
//! readers and for copying.

use maud::{Markup, html};

/// One stacked quantity: its name in the legend and table, and its colour class
/// (`bar-ok`, `bar-client`, `bar-limited`, `bar-server`, `bar-brand`: see the style).
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// The name shown in the legend and the table's header.
    pub name: &'static str,
    /// The CSS class that colours its bars and its swatch.
    pub class: &'static str,
}

/// One bar: its label (the table's first column, the axis' ends) and a value per
/// series, bottom first.
#[derive(Debug, Clone)]
pub struct Column {
    /// What the bar stands for, e.g. `Dec 5 14:00`.
    pub label: String,
    /// One value per series, in the series' order.
    pub values: Vec<u64>,
}

/// Width of one bar's slot in the drawing's own units (the drawing stretches to its
/// box; only the proportions matter).
const SLOT: u64 = 10;
/// Height of the drawing in its own units.
const HEIGHT: u64 = 100;

/// A stacked bar chart titled `title` (its `id` ties the caption to the drawing).
/// `empty` is said instead of a flat line when every value is zero.
pub fn stacked(
    id: &str,
    title: &str,
    series: &[Series],
    columns: &[Column],
    empty: &str,
) -> Markup {
    let totals: Vec<u64> = columns.iter().map(|c| c.values.iter().sum()).collect();
    let top = totals.iter().copied().max().unwrap_or(0);
    let sum: u64 = totals.iter().sum();
    let scale = nice_ceiling(top);
    let width = (columns.len() as u64).max(1) * SLOT;
    let summary = format!(
        "{title}: {sum} in all over {} bars, at most {top} in one",
        columns.len()
    );
    let gap = if columns.len() > 60 { 0 } else { 2 };
    html! {
        figure.chart aria-labelledby=(format!("{id}-title")) {
            figcaption #(format!("{id}-title")) { (title) }
            @if sum == 0 {
                p.muted.empty-chart { (empty) }
            } @else {
                div.plot {
                    div.yaxis aria-hidden="true" { span { (scale) } span { (scale / 2) } span { "0" } }
                    svg viewBox=(format!("0 0 {width} {HEIGHT}")) preserveAspectRatio="none"
                        role="img" aria-label=(summary) focusable="false" {
                        line.grid x1="0" y1="0" x2=(width) y2="0" {}
                        line.grid x1="0" y1=(HEIGHT / 2) x2=(width) y2=(HEIGHT / 2) {}
                        @for (i, column) in columns.iter().enumerate() {
                            @let x = i as u64 * SLOT;
                            @let mut base = HEIGHT as f64;
                            @for (value, one) in column.values.iter().zip(series) {
                                @if *value > 0 {
                                    @let height = *value as f64 * HEIGHT as f64 / scale as f64;
                                    @let y = { base -= height; base };
                                    rect class=(one.class) x=(x + gap / 2) y=(format!("{y:.2}"))
                                        width=(SLOT - gap) height=(format!("{height:.2}")) {
                                        title { (column.label) ": " (value) " " (one.name) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let (Some(first), Some(last)) = (columns.first(), columns.last()) {
                    div.xaxis aria-hidden="true" {
                        span { (first.label) }
                        @if columns.len() > 2 { span { (columns[columns.len() / 2].label) } }
                        span { (last.label) }
                    }
                }
                @if series.len() > 1 {
                    ul.legend {
                        @for one in series {
                            li { span class=(format!("swatch {}", one.class)) aria-hidden="true" {} (one.name) }
                        }
                    }
                }
            }
            details.figures {
                summary { "Figures" }
                // Wider than a phone with many series: it scrolls, so it takes the focus.
                div.scroll tabindex="0" role="region" aria-label=(format!("{title}: figures")) {
                    table {
                        thead { tr {
                            th scope="col" { "When" }
                            @for one in series { th scope="col" { (one.name) } }
                        } }
                        tbody {
                            @for column in columns {
                                tr {
                                    th scope="row" { (column.label) }
                                    @for value in &column.values { td { (value) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The axis' top for a largest bar of `top`: 1, 2 or 5 times a power of ten, and even
/// (so its half is a whole number), never below 2.
fn nice_ceiling(top: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [2, 5, 10] {
            let candidate = step * factor;
            if candidate >= top {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_a_round_even_number_at_or_above_the_largest_bar() {
        assert_eq!(nice_ceiling(0), 2);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(100), 100);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(4_321), 5_000);
    }

    #[test]
    fn bars_stack_to_their_totals_and_every_figure_is_in_the_table() {
        let series = [
            Series {
                name: "Succeeded",
                class: "bar-ok",
            },
            Series {
                name: "Failed",
                class: "bar-client",
            },
        ];
        let columns = vec![
            Column {
                label: "09:00".into(),
                values: vec![6, 4],
            },
            Column {
                label: "10:00".into(),
                values: vec![0, 0],
            },
            Column {
                label: "11:00".into(),
                values: vec![3, 0],
            },
        ];
        let html = stacked("c", "Requests", &series, &columns, "Nothing yet").into_string();
        // The top is 10: the first bar fills the height, 6 then 4 stacked.
        assert!(
            html.contains(r#"y="40.00" width="8" height="60.00""#),
            "{html}"
        );
        assert!(
            html.contains(r#"y="0.00" width="8" height="40.00""#),
            "{html}"
        );
        assert!(html.contains("<th scope=\"row\">10:00</th><td>0</td><td>0</td>"));
        assert!(html.contains("Requests: 13 in all over 3 bars, at most 10 in one"));
        let empty = vec![Column {
            label: "09:00".into(),
            values: vec![0, 0],
        }];
        let html = stacked("c", "Requests", &series, &empty, "Nothing yet").into_string();
        assert!(html.contains("Nothing yet") && !html.contains("<svg"));
    }
}
