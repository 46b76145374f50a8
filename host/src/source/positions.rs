//! Where each partition of a pipeline stands: its stored next offset against
//! Kafka's log, the lag, and events lost upstream; and setting where a
//! pipeline resumes (`weir offsets show|set`).

use std::ops::Range;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::{Config, PipelineConfig};
use crate::store::db;
use crate::store::offsets::{OffsetRow, OffsetTable};

/// One partition of the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    /// Its row in `weir_offsets` (`None`: not yet claimed).
    pub stored: Option<OffsetRow>,
    /// Kafka's first and next offsets (`None`: not readable).
    pub log: Option<(i64, i64)>,
}

impl Position {
    /// Events in Kafka not yet committed by the pipeline.
    pub fn lag(&self) -> Option<i64> {
        let (row, (_, end)) = (self.stored.as_ref()?, self.log?);
        Some((end - row.next_offset).max(0))
    }

    /// Offsets deleted from Kafka (retention) before the pipeline read them.
    pub fn lost(&self) -> Option<Range<i64>> {
        lost(self.stored.as_ref()?.next_offset, self.log?.0)
    }
}

/// The offsets `stored..log_start` when Kafka deleted them before they were
/// read (`log_start` < 0: unknown).
pub fn lost(stored: i64, log_start: i64) -> Option<Range<i64>> {
    (log_start >= 0 && stored < log_start).then_some(stored..log_start)
}

/// Where a pipeline is to resume: `earliest`, `latest` or an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Earliest,
    Latest,
    Offset(i64),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "earliest" => Ok(Target::Earliest),
            "latest" => Ok(Target::Latest),
            n => n
                .parse()
                .map(Target::Offset)
                .map_err(|_| format!("`{n}`: expected an offset, earliest or latest")),
        }
    }
}

/// A Kafka client in the pipeline's group (it joins nothing), and the
/// partitions of its topic.
pub fn kafka_client(
    config: &Config,
    p: &PipelineConfig,
) -> anyhow::Result<(BaseConsumer, Vec<i32>)> {
    let mut client = rdkafka::ClientConfig::new();
    client
        .set("bootstrap.servers", config.brokers()?)
        .set("group.id", p.group());
    for (k, v) in config.kafka_properties()? {
        client.set(k, v);
    }
    let consumer: BaseConsumer = client.create().context("creating a Kafka client")?;
    let metadata = consumer
        .fetch_metadata(Some(&p.topic), Duration::from_secs(10))
        .with_context(|| format!("reading metadata of topic {}", p.topic))?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    Ok((consumer, partitions))
}

/// A pipeline's offsets table and a Kafka client on its topic.
pub struct Positions {
    table: OffsetTable,
    pool: mysql_async::Pool,
    consumer: BaseConsumer,
    /// The topic's partitions, as Kafka lists them.
    pub partitions: Vec<i32>,
}

impl Positions {
    /// Connects to the database (creating Weir's tables if missing) and to Kafka.
    pub async fn open(config: &Config, p: &PipelineConfig) -> anyhow::Result<Positions> {
        let pool = db::pool_for(config)?;
        let mut conn = db::connect(&pool, Duration::from_secs(15))
            .await
            .context("connecting to the database")?;
        db::ensure_own_tables(&mut conn).await?;
        let (consumer, partitions) = kafka_client(config, p)?;
        Ok(Positions {
            table: OffsetTable::new(p.group(), &p.topic),
            pool,
            consumer,
            partitions,
        })
    }

    fn log(&self, partition: i32) -> Option<(i64, i64)> {
        self.consumer
            .fetch_watermarks(self.table.topic(), partition, Duration::from_secs(10))
            .ok()
    }

    /// Every partition: those with a stored row, then those Kafka lists that
    /// have none yet.
    pub async fn all(&self) -> anyhow::Result<Vec<Position>> {
        let mut conn = db::connect(&self.pool, Duration::from_secs(15)).await?;
        let rows = self.table.all(&mut conn).await?;
        let unclaimed: Vec<i32> = self
            .partitions
            .iter()
            .copied()
            .filter(|x| !rows.iter().any(|r| r.partition == *x))
            .collect();
        let mut out: Vec<Position> = rows
            .into_iter()
            .map(|row| Position {
                partition: row.partition,
                log: self.log(row.partition),
                stored: Some(row),
            })
            .collect();
        out.extend(unclaimed.into_iter().map(|partition| Position {
            partition,
            stored: None,
            log: self.log(partition),
        }));
        Ok(out)
    }

    /// Sets where `partition` (default: every partition of the topic)
    /// resumes; returns each partition and its new next offset.
    pub async fn set(&self, partition: Option<i32>, to: Target) -> anyhow::Result<Vec<(i32, i64)>> {
        let mut conn = db::connect(&self.pool, Duration::from_secs(15)).await?;
        let targets = match partition {
            Some(x) => vec![x],
            None => self.partitions.clone(),
        };
        let mut set = Vec::new();
        for part in targets {
            let (low, high) = self
                .log(part)
                .with_context(|| format!("reading watermarks of partition {part}"))?;
            let next = match to {
                Target::Earliest => low,
                Target::Latest => high,
                Target::Offset(n) => n,
            };
            self.table.set(&mut conn, part, next).await?;
            set.push((part, next));
        }
        Ok(set)
    }

    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_only_below_a_known_log_start() {
        assert_eq!(lost(10, 25), Some(10..25));
        assert_eq!(lost(25, 25), None);
        assert_eq!(lost(30, 25), None);
        assert_eq!(lost(0, -1), None, "an unreadable log start loses nothing");
    }

    #[test]
    fn targets_parse_and_refuse_words() {
        assert_eq!("earliest".parse(), Ok(Target::Earliest));
        assert_eq!("latest".parse(), Ok(Target::Latest));
        assert_eq!("42".parse(), Ok(Target::Offset(42)));
        assert!("soon".parse::<Target>().unwrap_err().contains("soon"));
    }

    #[test]
    fn lag_counts_from_the_stored_offset() {
        let row = OffsetRow {
            partition: 0,
            next_offset: 40,
            rows_total: 0,
            filtered_total: 0,
            dead_letters_total: 0,
            updated_at: String::new(),
        };
        let at = |log| Position {
            partition: 0,
            stored: Some(row.clone()),
            log,
        };
        assert_eq!(at(Some((0, 100))).lag(), Some(60));
        assert_eq!(at(Some((50, 100))).lost(), Some(40..50));
        assert_eq!(at(None).lag(), None);
        assert_eq!(
            Position {
                partition: 0,
                stored: None,
                log: Some((0, 9))
            }
            .lag(),
            None
        );
    }
}
