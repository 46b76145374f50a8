//! `weir run`: the pipelines of a configuration, until SIGINT or SIGTERM.

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use weir::config::Config;
use weir::pipeline::reload::Supervisor;
use weir::store::db;

use super::{ConfigArgs, Failure};

pub async fn execute(args: ConfigArgs) -> Result<(), Failure> {
    let config = Config::load(&args.config)?;
    let uses_db = config.needs_database();
    let (url, pool) = if uses_db {
        (config.database_url()?, db::pool_for(&config)?)
    } else {
        ("none".to_owned(), db::unused_pool())
    };
    let (prepared, lookups) = weir::pipeline::prepare(&config, &pool, false).await?;
    if uses_db {
        weir::ops::metrics::spawn_database_check(pool.clone());
    } else {
        // Nothing waits on a database: readiness is the brokers' alone.
        weir::ops::metrics::get().health.set_database(None);
    }
    if let Some(address) = &config.metrics.address {
        let bound = weir::ops::metrics::serve(address).await?;
        info!(address = %bound, "serving /metrics, /healthz and /readyz");
    }
    let stop = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone()));
    info!(
        config = %args.config.display(),
        database = %if uses_db { db::describe_url(&url) } else { url.clone() },
        pipelines = prepared.len(),
        "weir running"
    );
    let (results, mut ended) = tokio::sync::mpsc::unbounded_channel();
    let tasks = TaskTracker::new();
    let mut supervisor = Supervisor::new(
        config,
        pool.clone(),
        lookups,
        stop.clone(),
        results,
        tasks.clone(),
    );
    for p in prepared {
        supervisor.start(p);
    }
    supervisor.watch()?;
    let mut failed = None;
    // A pipeline that fails stops the others.
    loop {
        tokio::select! {
            Some((name, result)) = ended.recv() => {
                if let Err(e) = result {
                    error!(pipeline = %name, "{e:#}");
                    stop.cancel();
                    failed.get_or_insert(e);
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    tasks.close();
    tasks.wait().await;
    while let Ok((name, result)) = ended.try_recv() {
        if let Err(e) = result {
            error!(pipeline = %name, "{e:#}");
            failed.get_or_insert(e);
        }
    }
    let _ = pool.disconnect().await;
    match failed {
        Some(e) => Err(Failure::Failed(e)),
        None => {
            info!("all batches in flight committed; bye");
            Ok(())
        }
    }
}

/// First SIGINT/SIGTERM: finish the batches in flight and exit 0. Second: exit now.
async fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if n == 0 {
            info!("signal received: finishing the batches in flight (again to exit at once)");
            stop.cancel();
        } else {
            warn!("second signal: exiting without waiting");
            std::process::exit(130);
        }
    }
}
