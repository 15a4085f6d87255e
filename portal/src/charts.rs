//! Charts as plain SVG, rendered on the server (they need no JavaScript), and the reduction
//! of platform records to chart points.

use leptos::prelude::*;

use crate::model::Point;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 16.0;

/// A bar chart of `points`; the accessible name says what it shows and its total.
#[component]
pub fn BarChart(title: String, unit: String, points: Vec<Point>) -> impl IntoView {
    let max = points.iter().map(|p| p.value).fold(0.0_f64, f64::max);
    let scale_max = nice_ceiling(max);
    let total: f64 = points.iter().map(|p| p.value).sum();
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).max(2.0);
    // At most ~8 labels on the x axis.
    let every = (points.len() / 8).max(1);
    let summary = format!(
        "{title}: {} {unit} in total over {} {}",
        format_value(total),
        points.len(),
        if points.len() == 1 {
            "entry"
        } else {
            "entries"
        }
    );
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = if scale_max > 0.0 {
                p.value / scale_max * plot_h
            } else {
                0.0
            };
            let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
            let y = TOP + plot_h - h;
            let label = (i % every == 0).then(|| {
                view! {
                    <text
                        x=format!("{:.1}", x + bar_w / 2.0)
                        y=format!("{:.1}", HEIGHT - 10.0)
                        class="axis-label"
                        text-anchor="middle"
                    >
                        {short_label(&p.label)}
                    </text>
                }
            });
            view! {
                <g class="bar">
                    <rect
                        x=format!("{x:.1}")
                        y=format!("{y:.1}")
                        width=format!("{bar_w:.1}")
                        height=format!("{h:.1}")
                        rx="2"
                    >
                        <title>{format!("{}: {} {unit}", p.label, format_value(p.value))}</title>
                    </rect>
                    {label}
                </g>
            }
        })
        .collect_view();
    let grid = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| {
            let y = TOP + plot_h - f * plot_h;
            view! {
                <g>
                    <line
                        x1=format!("{LEFT}")
                        x2=format!("{}", WIDTH - 8.0)
                        y1=format!("{y:.1}")
                        y2=format!("{y:.1}")
                        class="grid"
                    />
                    <text x=format!("{}", LEFT - 6.0) y=format!("{:.1}", y + 4.0) class="axis-label" text-anchor="end">
                        {format_value(scale_max * f)}
                    </text>
                </g>
            }
        })
        .collect_view();
    let label = summary.clone();
    view! {
        <svg
            class="chart"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            role="img"
            aria-label=label
            preserveAspectRatio="xMidYMid meet"
        >
            <title>{summary}</title>
            {grid}
            {bars}
        </svg>
    }
}

/// A round number at or above `max` for the top of the axis.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if max <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

pub fn format_value(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `2026-05-03` → `05-03`; other labels shortened to 12 characters.
fn short_label(label: &str) -> String {
    let b = label.as_bytes();
    if label.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return label[5..].to_owned();
    }
    let mut s: String = label.chars().take(12).collect();
    if label.chars().count() > 12 {
        s.push('…');
    }
    s
}

/// Days as `YYYY-MM-DD`, from `days` days ago up to `today` (a day number since 1970-01-01).
pub fn last_days(today: i64, days: i64) -> Vec<String> {
    (0..days)
        .rev()
        .map(|back| civil_date(today - back))
        .collect()
}

/// The date of a day number (days since 1970-01-01), proleptic Gregorian.
pub fn civil_date(day: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Counts of records per day over `days`, from each record's timestamp (its first ten
/// characters are the day).
pub fn per_day<'a>(timestamps: impl Iterator<Item = &'a str>, days: &[String]) -> Vec<Point> {
    let mut points: Vec<Point> = days
        .iter()
        .map(|d| Point {
            label: d.clone(),
            value: 0.0,
        })
        .collect();
    for at in timestamps {
        let day = at.get(..10).unwrap_or_default();
        if let Some(p) = points.iter_mut().find(|p| p.label == day) {
            p.value += 1.0;
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert_eq!(
            last_days(19_723, 3),
            ["2023-12-30", "2023-12-31", "2024-01-01"]
        );
    }

    #[test]
    fn records_are_counted_per_day() {
        let days = last_days(19_723, 2);
        let points = per_day(
            [
                "2024-01-01T10:00:00",
                "2024-01-01T11:00:00",
                "2023-12-31T09:00:00Z",
                "2020-01-01",
            ]
            .into_iter(),
            &days,
        );
        assert_eq!(
            points.iter().map(|p| p.value).collect::<Vec<_>>(),
            [1.0, 2.0]
        );
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(240.0), 250.0);
    }
}
