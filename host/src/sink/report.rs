//! What a writer reports besides its commits: the chain's step counters and
//! the sink's row, drop and dead-letter counters as metrics, and a sample of
//! dead letters and canary differences as log lines, rate-limited per writer.

use std::time::{Duration, Instant};

use tracing::warn;

use super::encode::Encoded;
use crate::chain::{Chain, ChainOutput, Outcome, StepStats};
use crate::event::batch::Batch;
use crate::ops::metrics;
use crate::store::offsets::Totals;

/// One writer's reporting, with when it last logged.
#[derive(Debug)]
pub struct Reporter {
    pipeline: String,
    /// When each step's dead letters were last logged.
    last_step_log: Vec<Option<Instant>>,
    /// When a canary difference was last logged.
    last_canary_log: Option<Instant>,
}

impl Reporter {
    pub fn new(pipeline: &str) -> Reporter {
        Reporter {
            pipeline: pipeline.to_owned(),
            last_step_log: Vec::new(),
            last_canary_log: None,
        }
    }

    /// Adds what the chain's steps did since `before` to the metrics.
    pub fn steps(&self, chain: &Chain, before: &[StepStats]) {
        let pipeline = self.pipeline.as_str();
        let m = metrics::get();
        for ((name, now), was) in chain.names().iter().zip(&chain.stats).zip(before) {
            let count = |outcome: &str, n: u64| {
                if n > 0 {
                    m.step_events
                        .get_or_create(&metrics::OutcomeLabels {
                            pipeline: pipeline.to_owned(),
                            step: name.clone(),
                            outcome: outcome.to_owned(),
                        })
                        .inc_by(n);
                }
            };
            count("in", now.events_in - was.events_in);
            count("kept", now.kept - was.kept);
            count("dropped", now.dropped - was.dropped);
            count("dead_letter", now.dead_letters - was.dead_letters);
            let labels = metrics::StepLabels {
                pipeline: pipeline.to_owned(),
                step: name.clone(),
            };
            if now.undeclared_dropped > was.undeclared_dropped {
                m.undeclared_dropped
                    .get_or_create(&labels)
                    .inc_by(now.undeclared_dropped - was.undeclared_dropped);
            }
            if now.settled > was.settled {
                m.settled
                    .get_or_create(&labels)
                    .inc_by(now.settled - was.settled);
            }
            for (result, n) in [
                ("same", now.canary_same - was.canary_same),
                ("different", now.canary_different - was.canary_different),
            ] {
                if n > 0 {
                    m.canary_events
                        .get_or_create(&metrics::CanaryLabels {
                            pipeline: pipeline.to_owned(),
                            step: name.clone(),
                            result: result.to_owned(),
                        })
                        .inc_by(n);
                }
            }
            let peak = m.memory_peak.get_or_create(&metrics::StepLabels {
                pipeline: pipeline.to_owned(),
                step: name.clone(),
            });
            if now.memory_peak as i64 > peak.get() {
                peak.set(now.memory_peak as i64);
            }
            if now.events_in > was.events_in {
                m.step_seconds
                    .get_or_create(&metrics::StepLabels {
                        pipeline: pipeline.to_owned(),
                        step: name.clone(),
                    })
                    .observe((now.time - was.time).as_secs_f64());
            }
            for (kind, n) in &now.traps {
                let n = n - was.traps.get(kind).copied().unwrap_or(0);
                if n > 0 {
                    m.traps
                        .get_or_create(&metrics::TrapLabels {
                            pipeline: pipeline.to_owned(),
                            step: name.clone(),
                            kind: (*kind).to_owned(),
                        })
                        .inc_by(n);
                }
            }
        }
    }

    /// One warning per step and batch that dead-lettered events, at most one a
    /// second per step and writer: the pipeline, the plugin with its version
    /// and hash, and the first event's partition, offset and reason.
    pub fn step_dead_letters(&mut self, chain: &Chain, batch: &Batch, out: &ChainOutput) {
        let mut first: Vec<Option<(usize, &str, usize)>> = vec![None; chain.names().len()];
        for (i, o) in out.outcomes.iter().enumerate() {
            if let Outcome::Dead { step, reason } = o {
                let entry = &mut first[*step];
                match entry {
                    Some((_, _, n)) => *n += 1,
                    None => *entry = Some((i, reason.as_str(), 1)),
                }
            }
        }
        for (step, found) in first.into_iter().enumerate() {
            let Some((i, reason, n)) = found else {
                continue;
            };
            let now = Instant::now();
            if self.last_step_log.len() <= step {
                self.last_step_log.resize(step + 1, None);
            }
            if self.last_step_log[step]
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                continue;
            }
            self.last_step_log[step] = Some(now);
            warn!(
                pipeline = %self.pipeline,
                plugin = %chain.plugin_label(step),
                partition = batch.partition,
                offset = batch.offsets[i],
                dead_letters = n,
                "events dead-lettered by a step; the first: {reason}"
            );
        }
    }

    /// A sample of canary differences: at most one line every ten seconds per writer.
    pub fn canary(&mut self, chain: &Chain, batch: &Batch, out: &ChainOutput) {
        let Some(d) = out.canary_diffs.first() else {
            return;
        };
        let now = Instant::now();
        if self
            .last_canary_log
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.last_canary_log = Some(now);
        warn!(
            pipeline = %self.pipeline,
            step = %chain.names()[d.step],
            candidate = %chain.canary_label(d.step).unwrap_or_default(),
            partition = batch.partition,
            offset = batch.offsets[d.event],
            "canary differs from the live step: live {}; candidate {} (nothing of the candidate's is written)",
            d.live,
            d.candidate
        );
    }

    /// After a commit of `written`: the metrics count it.
    pub fn committed(&self, batch: &Batch, written: &Encoded, totals: Totals) {
        let m = metrics::get();
        let labels = metrics::pipeline(&self.pipeline);
        m.rows.get_or_create(&labels).inc_by(totals.rows);
        m.filtered.get_or_create(&labels).inc_by(totals.filtered);
        m.batch_events
            .get_or_create(&labels)
            .observe(batch.len() as f64);
        let mut stages: Vec<(&str, u64)> = Vec::new();
        for d in &written.dead {
            match stages.iter_mut().find(|(s, _)| *s == d.stage.as_str()) {
                Some((_, n)) => *n += 1,
                None => stages.push((d.stage.as_str(), 1)),
            }
        }
        for (stage, n) in stages {
            m.dead_letters
                .get_or_create(&metrics::StageLabels {
                    pipeline: self.pipeline.clone(),
                    stage: stage.to_owned(),
                })
                .inc_by(n);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let freshness = m.freshness.get_or_create(&labels);
        for &i in &written.row_events {
            let ts = batch.timestamps[i];
            if ts >= 0 {
                freshness.observe((now - ts).max(0) as f64 / 1000.0);
            }
        }
        m.health.progressed(&self.pipeline);
    }
}
