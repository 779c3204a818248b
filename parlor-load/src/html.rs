//! `--report FILE.html`: the run as one self-contained page (no other
//! host is fetched): its settings, the summary table, and charts drawn as
//! SVG here: round-trip percentiles over time, their distribution,
//! deliveries offered and delivered a second, and the server's CPU and
//! memory over time (with `--server-pid`).

use std::{fmt::Write as _, path::Path};

use crate::report::Report;

/// The charts' drawing box and margins.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 32.0;

/// One line of a chart: its name, colour and points.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// Writes the report page to `path`.
pub(crate) fn write(path: &Path, report: &Report, command: &str) -> std::io::Result<()> {
    std::fs::write(path, page(report, command))
}

fn page(report: &Report, command: &str) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>parlor-load {scenario}</title><style>{STYLE}</style></head><body>\
         <h1>parlor-load: {scenario}</h1><p class=\"cmd\"><code>{command}</code></p>",
        scenario = escape(&report.scenario),
        command = escape(command),
    );
    html.push_str(&summary(report));
    let seconds = &report.timeline;
    let at = |f: &dyn Fn(&crate::timeline::SecondSummary) -> Option<f64>| -> Vec<(f64, f64)> {
        seconds
            .iter()
            .filter_map(|s| f(s).map(|v| (s.second as f64, v)))
            .collect()
    };
    if seconds.is_empty() {
        html.push_str(
            "<p>No time series: nothing was measured in this process \
             (with several worker processes, only the summary is merged).</p>",
        );
    } else {
        html.push_str(&line_chart(
            "Round trip over time (ms)",
            "seconds",
            &[
                Series {
                    name: "p50",
                    color: "#3a7bd5",
                    points: at(&|s| Some(s.p50_ms)),
                },
                Series {
                    name: "p90",
                    color: "#e0a100",
                    points: at(&|s| Some(s.p90_ms)),
                },
                Series {
                    name: "p99",
                    color: "#d1345b",
                    points: at(&|s| Some(s.p99_ms)),
                },
            ],
        ));
        html.push_str(&bar_chart("Round-trip distribution", &report.distribution));
        html.push_str(&line_chart(
            "Offered and delivered a second",
            "seconds",
            &[
                Series {
                    name: "offered",
                    color: "#8a8a8a",
                    points: at(&|s| Some(s.offered as f64)),
                },
                Series {
                    name: "delivered",
                    color: "#1f9d55",
                    points: at(&|s| Some(s.delivered as f64)),
                },
            ],
        ));
        let cpu = at(&|s| s.server_cpu);
        let rss = at(&|s| s.server_rss_mib);
        if cpu.is_empty() {
            html.push_str(
                "<p>Server CPU and memory: give <code>--server-pid</code> to chart them.</p>",
            );
        } else {
            html.push_str(&line_chart(
                "Server CPU (% of a core)",
                "seconds",
                &[Series {
                    name: "CPU",
                    color: "#7c5cff",
                    points: cpu,
                }],
            ));
            html.push_str(&line_chart(
                "Server memory (MiB resident)",
                "seconds",
                &[Series {
                    name: "RSS",
                    color: "#0f766e",
                    points: rss,
                }],
            ));
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn summary(report: &Report) -> String {
    let mut rows = vec![
        ("URL", report.url.clone()),
        (
            "sessions",
            format!(
                "{} ({} connected, {} failed)",
                report.sessions, report.connected, report.failed
            ),
        ),
        ("measured", format!("{:.1} s", report.seconds)),
        ("sent", report.sent.to_string()),
        (
            "delivered",
            format!(
                "{} of {} offered ({:.0}/s of {:.0}/s), {} missing, {} duplicated",
                report.answered,
                report.expected,
                report.per_second,
                report.expected_per_second,
                report.missing,
                report.duplicated
            ),
        ),
        (
            "round trip",
            format!(
                "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                report.rtt_ms.p50, report.rtt_ms.p90, report.rtt_ms.p99, report.rtt_ms.max
            ),
        ),
    ];
    if let Some(server) = &report.server {
        rows.push((
            "server",
            format!(
                "CPU {:.1} % of a core; RSS {} → {} KiB ({} bytes a session)",
                server.cpu_percent,
                server.rss_kib_before,
                server.rss_kib_after,
                server.bytes_per_session
            ),
        ));
    }
    if let Some(load) = report.load_cpu_percent {
        rows.push(("load generator", format!("CPU {load:.1} % of a core")));
    }
    let mut table = String::from("<table>");
    for (name, value) in rows {
        let _ = write!(
            table,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    table.push_str("</table>");
    table
}

/// A line chart of `series` with axes from zero to the largest value.
fn line_chart(title: &str, x_label: &str, series: &[Series]) -> String {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max)
        .max(f64::EPSILON);
    let x = |v: f64| LEFT + v / x_max * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / y_max * (HEIGHT - TOP - BOTTOM);
    let mut svg = frame(title, x_label, x_max, y_max);
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            s.color,
            points.join(" ")
        );
    }
    let legend: Vec<String> = series
        .iter()
        .map(|s| {
            format!(
                "<span style=\"color:{}\">■ {}</span>",
                s.color,
                escape(s.name)
            )
        })
        .collect();
    let _ = write!(
        svg,
        "</svg><p class=\"legend\">{}</p></figure>",
        legend.join(" ")
    );
    svg
}

/// A bar chart of (upper bound ms, count) buckets.
fn bar_chart(title: &str, buckets: &[(f64, u64)]) -> String {
    let most = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let width = (WIDTH - LEFT - RIGHT) / buckets.len().max(1) as f64;
    let mut svg = frame(title, "round trip, ms (up to)", 0.0, most);
    for (i, &(upper, count)) in buckets.iter().enumerate() {
        let height = count as f64 / most * (HEIGHT - TOP - BOTTOM);
        let left = LEFT + i as f64 * width;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3a7bd5\"><title>≤ {upper} ms: {count}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            left + 1.0,
            HEIGHT - BOTTOM - height,
            (width - 2.0).max(1.0),
            height,
            left + width / 2.0,
            HEIGHT - BOTTOM + 14.0,
            trim(upper),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The chart's frame: title, axes and their end labels.
fn frame(title: &str, x_label: &str, x_max: f64, y_max: f64) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\
         <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" class=\"axis\"/>\
         <text x=\"{lx}\" y=\"{ty}\" class=\"tick\" text-anchor=\"end\">{}</text>\
         <text x=\"{lx}\" y=\"{b}\" class=\"tick\" text-anchor=\"end\">0</text>\
         <text x=\"{r}\" y=\"{xl}\" class=\"tick\" text-anchor=\"end\">{}</text>",
        escape(title),
        escape(title),
        trim(y_max),
        if x_max > 0.0 { format!("{} {}", trim(x_max), escape(x_label)) } else { escape(x_label) },
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT,
        lx = LEFT - 6.0,
        ty = TOP + 4.0,
        xl = HEIGHT - 6.0,
    );
    svg
}

/// A number without needless decimals.
fn trim(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:780px;margin:2rem auto;padding:0 1rem;color:#1d1b22}\
table{border-collapse:collapse;margin:1rem 0}th{text-align:left;padding:.25rem 1rem .25rem 0;color:#555}\
td{padding:.25rem 0}figure{margin:1.5rem 0}figcaption{font-weight:700;margin-bottom:.25rem}\
svg{width:100%;height:auto;background:#faf8f5;border:1px solid #e4dfd6;border-radius:8px}\
.axis{stroke:#999;stroke-width:1}.tick{font-size:11px;fill:#555}.legend{margin:.25rem 0;font-size:.9rem}\
.cmd code{font-size:.85rem;word-break:break-all}";
