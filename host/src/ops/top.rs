//! `weir top`: a running instance's figures, read from its `/metrics` and
//! shown as rates over the refresh interval.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// One sample: metric name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text exposition format (comments skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            map.insert(
                key.trim_start_matches(',').trim().to_owned(),
                after[..end].replace("\\\"", "\"").replace("\\\\", "\\"),
            );
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push((name.to_owned(), map, value));
    }
    out
}

/// The sum of metric `name`'s samples whose labels include `filter`.
pub fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && filter
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
        .fold(0.0, |a, b| a + b)
}

/// The `q` quantile of a histogram's observations between two scrapes, as
/// the upper bound of the bucket it falls in.
fn quantile(
    now: &[Sample],
    was: &[Sample],
    name: &str,
    filter: &[(&str, &str)],
    q: f64,
) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut bounds: Vec<(f64, f64)> = now
        .iter()
        .filter(|(n, l, _)| {
            *n == bucket
                && filter
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .filter_map(|(_, l, v)| {
            let le = l.get("le")?;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let before = was
                .iter()
                .find(|(n, l2, _)| *n == bucket && l2 == l)
                .map_or(0.0, |s| s.2);
            Some((le, v - before))
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = bounds.last()?.1;
    if total <= 0.0 {
        return None;
    }
    bounds
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}

/// One frame of the view, from two scrapes `dt` apart.
pub fn frame(now: &[Sample], was: &[Sample], dt: f64) -> String {
    let mut out = String::new();
    let rate =
        |name: &str, f: &[(&str, &str)]| (sum(now, name, f) - sum(was, name, f)).max(0.0) / dt;
    let pipelines: std::collections::BTreeSet<&str> = now
        .iter()
        .filter(|(n, _, _)| n == "weir_events_consumed_total")
        .filter_map(|(_, l, _)| l.get("pipeline").map(String::as_str))
        .collect();
    for p in pipelines {
        let f = [("pipeline", p)];
        let ms = |v: Option<f64>| {
            v.map_or("-".to_string(), |s| {
                if s.is_infinite() {
                    ">16000".into()
                } else {
                    format!("{:.0}", s * 1000.0)
                }
            })
        };
        let _ = writeln!(
            out,
            "pipeline {p}: in {:.0}/s  rows {:.0}/s  filtered {:.0}/s  dead letters {:.1}/s  lag {:.0}  retries {:.0}",
            rate("weir_events_consumed_total", &f),
            rate("weir_rows_written_total", &f),
            rate("weir_events_filtered_total", &f),
            rate("weir_dead_letters_total", &f),
            sum(now, "weir_consumer_lag", &f),
            sum(now, "weir_sink_retries_total", &f),
        );
        let _ = writeln!(
            out,
            "  freshness p50 {} ms  p99 {} ms   batch write p99 {} ms",
            ms(quantile(now, was, "weir_freshness_seconds", &f, 0.5)),
            ms(quantile(now, was, "weir_freshness_seconds", &f, 0.99)),
            ms(quantile(now, was, "weir_sink_write_seconds", &f, 0.99)),
        );
        // Steps in chain order, from `weir_step_info`.
        let mut steps: Vec<(u32, &str)> = now
            .iter()
            .filter(|(n, l, _)| {
                n == "weir_step_info" && l.get("pipeline").map(String::as_str) == Some(p)
            })
            .filter_map(|(_, l, _)| {
                Some((l.get("position")?.parse().ok()?, l.get("step")?.as_str()))
            })
            .collect();
        steps.sort();
        steps.dedup();
        let steps: Vec<&str> = steps.into_iter().map(|(_, s)| s).collect();
        if !steps.is_empty() {
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>8} {:>10} {:>12} {:>8} {:>11}",
                "step", "in/s", "kept%", "dropped/s", "dead/s", "traps", "µs/event"
            );
        }
        for s in steps {
            let sf = [("pipeline", p), ("step", s)];
            let with = |outcome: &'static str| [("pipeline", p), ("step", s), ("outcome", outcome)];
            let events_in = rate("weir_step_events_total", &with("in"));
            let kept = rate("weir_step_events_total", &with("kept"));
            let seconds = rate("weir_step_batch_seconds_sum", &sf);
            let _ = writeln!(
                out,
                "  {:<24} {:>10.0} {:>8.1} {:>10.0} {:>12.1} {:>8.0} {:>11.2}",
                s,
                events_in,
                if events_in > 0.0 {
                    kept / events_in * 100.0
                } else {
                    0.0
                },
                rate("weir_step_events_total", &with("dropped")),
                rate("weir_step_events_total", &with("dead_letter")),
                sum(now, "weir_plugin_traps_total", &sf),
                if events_in > 0.0 {
                    seconds / events_in * 1e6
                } else {
                    0.0
                },
            );
        }
    }
    if out.is_empty() {
        out.push_str("no pipeline has reported yet\n");
    }
    out
}

/// Refreshes the view every `interval` until interrupted (or `frames` frames).
pub async fn run(address: &str, interval: Duration, frames: Option<u64>) -> anyhow::Result<()> {
    let scrape = || async {
        let (status, body) = crate::ops::metrics::fetch(address, "/metrics").await?;
        anyhow::ensure!(status == 200, "{address}/metrics answered {status}");
        Ok::<_, anyhow::Error>(parse(&body))
    };
    let mut was = scrape().await?;
    let mut at = Instant::now();
    let mut shown = 0;
    loop {
        tokio::time::sleep(interval).await;
        let now = scrape().await?;
        let dt = at.elapsed().as_secs_f64();
        at = Instant::now();
        let (ready, why) = crate::ops::metrics::fetch(address, "/readyz").await?;
        let mut text = String::new();
        if frames.is_none() {
            text.push_str("\x1b[2J\x1b[H");
        }
        let _ = writeln!(
            text,
            "weir at {address}: {}",
            if ready == 200 {
                "ready".to_string()
            } else {
                why.replace('\n', " ")
            }
        );
        text.push_str(&frame(&now, &was, dt));
        print!("{text}");
        was = now;
        shown += 1;
        if frames.is_some_and(|f| shown >= f) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_quantiles_come_from_two_scrapes() {
        let was = parse(
            "# TYPE weir_events_consumed counter\n\
             weir_events_consumed_total{pipeline=\"e\"} 100\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"0.05\"} 10\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"0.1\"} 10\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"+Inf\"} 10\n",
        );
        let now = parse(
            "weir_events_consumed_total{pipeline=\"e\"} 300\n\
             weir_consumer_lag{pipeline=\"e\",partition=\"0\"} 7\n\
             weir_step_info{pipeline=\"e\",step=\"b-second\",position=\"2\"} 1\n\
             weir_step_info{pipeline=\"e\",step=\"a-first\",position=\"1\"} 1\n\
             weir_step_events_total{pipeline=\"e\",step=\"b-second\",outcome=\"in\"} 10\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"0.05\"} 100\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"0.1\"} 110\n\
             weir_freshness_seconds_bucket{pipeline=\"e\",le=\"+Inf\"} 110\n\
             # EOF\n",
        );
        let text = frame(&now, &was, 2.0);
        assert!(text.contains("pipeline e: in 100/s"), "{text}");
        assert!(text.contains("lag 7"), "{text}");
        assert!(text.contains("freshness p50 50 ms  p99 100 ms"), "{text}");
        let first = text.find("a-first").expect("first step shown");
        assert!(
            text.find("b-second").is_some_and(|second| second > first),
            "{text}"
        );
        assert!(!text.contains("-0"), "{text}");
    }
}
