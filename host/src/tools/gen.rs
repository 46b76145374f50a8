//! `weir gen`: realistic Pinterest engagement events, produced into Kafka at a
//! target rate.
//!
//! Users and pins are Zipf-distributed (a few are very popular), client IPs are
//! real public addresses drawn from the GeoLite2 City networks, user agents are
//! real browsers and apps with a share of bots, and a set share of records is
//! deliberately bad: malformed JSON, non-object payloads, oversized records and
//! ill-typed values. The producer is idempotent, so broker restarts and retries
//! do not duplicate events inside Kafka.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

/// What to produce.
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "WEIR_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to produce to (created if missing).
    #[arg(long, default_value = "pin-engagement")]
    pub topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Events to produce.
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Target events per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// GeoLite2-City.mmdb whose networks give the client IPs.
    #[arg(long, env = "WEIR_GEOLITE2")]
    pub geolite2: Option<PathBuf>,
    /// Distinct users (Zipf-distributed).
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    /// Distinct pins (Zipf-distributed).
    #[arg(long, default_value_t = 200_000)]
    pub pins: u64,
    /// Zipf exponent for users and pins.
    #[arg(long, default_value_t = 1.07)]
    pub zipf: f64,
    /// Share of events from bots (crawler user agents).
    #[arg(long, default_value_t = 0.04)]
    pub bot_share: f64,
    /// Share of records that are malformed JSON.
    #[arg(long, default_value_t = 0.002)]
    pub malformed: f64,
    /// Share of records that are valid JSON but not an object.
    #[arg(long, default_value_t = 0.001)]
    pub non_object: f64,
    /// Share of records with a value of the wrong type.
    #[arg(long, default_value_t = 0.002)]
    pub ill_typed: f64,
    /// Share of oversized records.
    #[arg(long, default_value_t = 0.0005)]
    pub oversized: f64,
    /// Size of an oversized record in bytes.
    #[arg(long, default_value_t = 300_000)]
    pub oversized_bytes: usize,
    /// Random seed (the same seed gives the same events, timestamps aside).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the events to this file as JSON lines instead of producing them.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// What was produced, by kind.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub topic: String,
    pub produced: u64,
    pub good: u64,
    pub bots: u64,
    pub malformed: u64,
    pub non_object: u64,
    pub ill_typed: u64,
    pub oversized: u64,
    pub delivery_failures: u64,
    pub seconds: f64,
}

impl Summary {
    /// Records that cannot become rows whatever the chain does: malformed,
    /// non-object, ill-typed and oversized ones (the last with the default limits).
    pub fn bad(&self) -> u64 {
        self.malformed + self.non_object + self.ill_typed + self.oversized
    }
}

/// The kind of a generated record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Good,
    Bot,
    Malformed,
    NonObject,
    IllTyped,
    Oversized,
}

const ACTIONS: &[(&str, u32)] = &[
    ("impression", 50),
    ("closeup", 20),
    ("click", 15),
    ("save", 10),
    ("hide", 3),
    ("share", 2),
];

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 [Pinterest/Android]",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];

const BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.31.0",
    "curl/8.5.0",
];

#[derive(Clone, Copy)]
struct Shares {
    malformed: f64,
    non_object: f64,
    ill_typed: f64,
    oversized: f64,
    bot_share: f64,
    oversized_bytes: usize,
}

impl Shares {
    fn of(a: &GenArgs) -> Shares {
        Shares {
            malformed: a.malformed,
            non_object: a.non_object,
            ill_typed: a.ill_typed,
            oversized: a.oversized,
            bot_share: a.bot_share,
            oversized_bytes: a.oversized_bytes,
        }
    }
}

/// Draws engagement events.
pub struct Generator {
    rng: StdRng,
    users: Zipf<f64>,
    pins: Zipf<f64>,
    networks: Vec<(u32, u8)>,
    args: GenArgs,
    action_total: u32,
    seq: u64,
}

impl Generator {
    /// A generator over the given IPv4 networks (`(address, prefix length)`).
    pub fn new(args: &GenArgs, networks: Vec<(u32, u8)>) -> anyhow::Result<Generator> {
        if networks.is_empty() {
            bail!("no IPv4 networks to draw client addresses from");
        }
        Ok(Generator {
            rng: StdRng::seed_from_u64(args.seed),
            users: Zipf::new(args.users.max(1) as f64, args.zipf).context("bad --zipf/--users")?,
            pins: Zipf::new(args.pins.max(1) as f64, args.zipf).context("bad --zipf/--pins")?,
            networks,
            args: args.clone(),
            action_total: ACTIONS.iter().map(|a| a.1).sum(),
            seq: 0,
        })
    }

    fn ip(&mut self) -> Ipv4Addr {
        let (net, prefix) = self.networks[self.rng.random_range(0..self.networks.len())];
        let host_bits = 32 - u32::from(prefix);
        let host = if host_bits == 0 {
            0
        } else {
            self.rng.random_range(0..(1u64 << host_bits)) as u32
        };
        Ipv4Addr::from(net | host)
    }

    /// The next record: its key, its payload and its kind.
    pub fn next_event(&mut self, now_ms: i64, buf: &mut String) -> (String, Kind) {
        use std::fmt::Write as _;
        self.seq += 1;
        buf.clear();
        let user = self.users.sample(&mut self.rng) as u64;
        let pin = pin_id(self.pins.sample(&mut self.rng) as u64);
        let mut pick = self.rng.random_range(0..self.action_total);
        let action = ACTIONS
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or("click", |a| a.0);
        let roll: f64 = self.rng.random();
        let a = Shares::of(&self.args);
        let mut edge = a.malformed;
        let kind = if roll < edge {
            Kind::Malformed
        } else if roll < {
            edge += a.non_object;
            edge
        } {
            Kind::NonObject
        } else if roll < {
            edge += a.ill_typed;
            edge
        } {
            Kind::IllTyped
        } else if roll < {
            edge += a.oversized;
            edge
        } {
            Kind::Oversized
        } else if roll < edge + a.bot_share {
            Kind::Bot
        } else {
            Kind::Good
        };
        let ua = if kind == Kind::Bot {
            BOTS[self.rng.random_range(0..BOTS.len())]
        } else {
            BROWSERS[self.rng.random_range(0..BROWSERS.len())]
        };
        let app = if ua.contains("iOS") {
            "ios"
        } else if ua.contains("Android") {
            "android"
        } else {
            "web"
        };
        let ip = self.ip();
        let event_id = format!("{:016x}{:08x}", self.rng.random::<u64>(), self.seq as u32);
        match kind {
            Kind::NonObject => {
                let _ = match self.rng.random_range(0..3) {
                    0 => write!(buf, "[{user},{pin},\"{action}\"]"),
                    1 => write!(buf, "\"{action}\""),
                    _ => write!(buf, "{pin}"),
                };
            }
            _ => {
                let pin_value = if kind == Kind::IllTyped {
                    format!("\"pin-{pin}\"")
                } else {
                    pin.to_string()
                };
                let _ = write!(
                    buf,
                    "{{\"event_id\":\"{event_id}\",\"ts\":{now_ms},\"user_id\":{user},\"pin_id\":{pin_value},\
                     \"action\":\"{action}\",\"ip\":\"{ip}\",\"user_agent\":\"{ua}\",\"app\":\"{app}\""
                );
                if kind == Kind::Oversized {
                    let pad = a.oversized_bytes.saturating_sub(buf.len() + 16);
                    buf.push_str(",\"note\":\"");
                    buf.extend(std::iter::repeat_n('x', pad));
                    buf.push('"');
                }
                buf.push('}');
                if kind == Kind::Malformed {
                    let cut = self.rng.random_range(1..buf.len() - 1);
                    buf.truncate(cut);
                }
            }
        }
        (user.to_string(), kind)
    }
}

/// Reads every IPv4 network of a GeoLite2 City database that has a location.
pub fn ipv4_networks(path: &Path) -> anyhow::Result<Vec<(u32, u8)>> {
    let reader = maxminddb::Reader::open_readfile(path)
        .with_context(|| format!("cannot open GeoLite2 database {}", path.display()))?;
    let all: ipnetwork::IpNetwork = "0.0.0.0/0".parse().expect("valid network");
    let mut out = Vec::new();
    for item in reader
        .within::<serde::de::IgnoredAny>(all)
        .context("reading GeoLite2 networks")?
    {
        let item = item.context("reading a GeoLite2 network")?;
        if let ipnetwork::IpNetwork::V4(n) = item.ip_net {
            out.push((u32::from(n.network()), n.prefix()));
        }
    }
    Ok(out)
}

struct Delivery {
    failed: AtomicU64,
    delivered: AtomicU64,
}

struct GenContext(Arc<Delivery>);

impl ClientContext for GenContext {}

impl ProducerContext for GenContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .with_context(|| format!("creating topic {topic} on {brokers}"))?;
    for r in res {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("creating topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Produces `args.count` events and returns what was produced.
pub async fn run(args: &GenArgs, progress: bool) -> anyhow::Result<Summary> {
    let path = args.geolite2.clone().context(
        "no GeoLite2 database: pass --geolite2 or set WEIR_GEOLITE2 \
         (scripts/services geolite2 fetches it and prints its path)",
    )?;
    let networks = ipv4_networks(&path)?;
    let mut generator = Generator::new(args, networks)?;
    if let Some(out) = &args.output {
        return write_file(args, &mut generator, out);
    }
    ensure_topic(&args.brokers, &args.topic, args.partitions).await?;
    let delivery = Arc::new(Delivery {
        failed: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let producer: ThreadedProducer<GenContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("message.max.bytes", "2000000")
        .set("queue.buffering.max.kbytes", "262144")
        .create_with_context(GenContext(delivery.clone()))
        .context("creating the Kafka producer")?;
    // Connect and learn the topic's leaders before the first event is stamped, so
    // that the producer's start-up is not counted in the events' freshness.
    producer
        .client()
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .with_context(|| format!("reading metadata of {} from {}", args.topic, args.brokers))?;
    let bar = if progress {
        indicatif::ProgressBar::new(args.count)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} events  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    let mut summary = Summary {
        topic: args.topic.clone(),
        ..Summary::default()
    };
    let mut started = Instant::now();
    let mut payload = String::new();
    for n in 0..args.count {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(n as f64 / args.rate as f64);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let (key, kind) = generator.next_event(now_ms, &mut payload);
        count(&mut summary, kind);
        let mut record = BaseRecord::to(&args.topic)
            .key(key.as_str())
            .payload(payload.as_str())
            .timestamp(now_ms);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => bail!("producing to {}: {e}", args.topic),
            }
        }
        if n == 0 {
            // The idempotent producer asks the broker for its id with the first
            // send, and events wait in its queue meanwhile (sometimes ~0.5 s),
            // ageing before they reach Kafka. One event delivered before the
            // pacing clock starts keeps that out of the events' freshness.
            producer
                .flush(Duration::from_secs(30))
                .context("delivering the first event")?;
            started = Instant::now();
        }
        if n % 1024 == 0 {
            bar.set_position(n);
        }
    }
    bar.set_position(args.count);
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the producer")?;
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.delivery_failures = delivery.failed.load(Ordering::Relaxed);
    if summary.delivery_failures > 0 {
        bail!(
            "{} of {} events could not be delivered to {}",
            summary.delivery_failures,
            summary.produced,
            args.topic
        );
    }
    Ok(summary)
}

fn count(s: &mut Summary, kind: Kind) {
    s.produced += 1;
    match kind {
        Kind::Good => s.good += 1,
        Kind::Bot => s.bots += 1,
        Kind::Malformed => s.malformed += 1,
        Kind::NonObject => s.non_object += 1,
        Kind::IllTyped => s.ill_typed += 1,
        Kind::Oversized => s.oversized += 1,
    }
}

fn write_file(args: &GenArgs, g: &mut Generator, out: &Path) -> anyhow::Result<Summary> {
    use std::io::Write as _;
    let started = Instant::now();
    let mut summary = Summary {
        topic: args.topic.clone(),
        ..Summary::default()
    };
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut payload = String::new();
    let base_ms = 1_764_000_000_000i64;
    for n in 0..args.count {
        let (_, kind) = g.next_event(base_ms + n as i64 * 10, &mut payload);
        count(&mut summary, kind);
        writeln!(w, "{payload}")?;
    }
    w.flush()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The id of the pin of popularity rank `rank` (1: the most engaged).
pub fn pin_id(rank: u64) -> u64 {
    rank * 7919 % 1_000_000_007
}

/// Pinterest's top-level categories, the ones the catalog assigns pins to.
pub const CATEGORIES: &[&str] = &[
    "Home Decor",
    "Food & Drink",
    "Women's Fashion",
    "DIY & Crafts",
    "Beauty",
    "Travel",
    "Weddings",
    "Art",
    "Hair",
    "Health & Fitness",
    "Kids & Parenting",
    "Holidays & Events",
    "Design",
    "Gardening",
    "Men's Fashion",
    "Quotes",
    "Photography",
    "Animals",
    "Architecture",
    "Illustrations & Posters",
    "Education",
    "Humor",
    "Outdoors",
    "Technology",
    "Science & Nature",
    "Entertainment",
    "Products",
    "Cars & Motorcycles",
    "Sports",
    "History",
    "Tattoos",
    "Geek",
    "Celebrities",
];

/// The category (an index into [`CATEGORIES`]) of the pin of rank `rank`:
/// fixed by the rank, with earlier categories more common.
pub fn pin_category(rank: u64) -> usize {
    let mut z = rank.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let n = CATEGORIES.len() as u64;
    // The smaller of two uniform draws: index i has weight about 2(n - i).
    let (a, b) = (z % n, (z >> 32) % n);
    a.min(b) as usize
}

/// Writes the pin catalog the generator's pins come from: every category into
/// `categories` and pins of rank 1..=`pins` into `pins` (DDL in
/// examples/sql/*/pins.sql). Idempotent: rows are replaced.
pub async fn write_catalog(pool: &mysql_async::Pool, pins: u64) -> anyhow::Result<u64> {
    use mysql_async::prelude::Queryable as _;
    use std::fmt::Write as _;
    let mut conn = pool
        .get_conn()
        .await
        .context("connecting to the database")?;
    let mut sql = String::from("REPLACE INTO categories (category_id, name) VALUES ");
    for (i, name) in CATEGORIES.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(sql, "{sep}({}, '{}')", i + 1, name.replace('\'', "''"));
    }
    conn.query_drop(&sql).await.context("writing categories")?;
    let mut rank = 1;
    while rank <= pins {
        let end = (rank + 5000).min(pins + 1);
        sql.clear();
        sql.push_str("REPLACE INTO pins (pin_id, category_id) VALUES ");
        for r in rank..end {
            let sep = if r == rank { "" } else { "," };
            let _ = write!(sql, "{sep}({}, {})", pin_id(r), pin_category(r) + 1);
        }
        conn.query_drop(&sql).await.context("writing pins")?;
        rank = end;
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenArgs,
    }

    #[test]
    fn shares_of_bad_records_follow_the_arguments() {
        let cli = Cli::parse_from([
            "gen",
            "--malformed",
            "0.1",
            "--non-object",
            "0.1",
            "--ill-typed",
            "0.1",
            "--oversized",
            "0.01",
            "--oversized-bytes",
            "5000",
        ]);
        let mut g = Generator::new(&cli.args, vec![(0x5102_4500, 24)]).unwrap();
        let mut buf = String::new();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let (_, kind) = g.next_event(1, &mut buf);
            let parsed = serde_json::from_str::<serde_json::Value>(&buf);
            match kind {
                Kind::Malformed => assert!(parsed.is_err(), "{buf}"),
                Kind::NonObject => assert!(!parsed.unwrap().is_object()),
                Kind::IllTyped => assert!(parsed.unwrap()["pin_id"].is_string()),
                Kind::Oversized => assert!(buf.len() >= 4900),
                Kind::Good | Kind::Bot => {
                    let v = parsed.unwrap();
                    let ip: Ipv4Addr = v["ip"].as_str().unwrap().parse().unwrap();
                    assert_eq!(u32::from(ip) >> 8, 0x51_0245);
                    assert!(v["pin_id"].is_u64());
                }
            }
            *counts.entry(kind).or_insert(0) += 1;
        }
        let share = |k| f64::from(counts[&k]) / 20_000.0;
        assert!((share(Kind::Malformed) - 0.1).abs() < 0.02);
        assert!((share(Kind::NonObject) - 0.1).abs() < 0.02);
        assert!((share(Kind::Bot) - 0.04).abs() < 0.01);
    }
}
