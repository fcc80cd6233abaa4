//! Refresh throughput through each ledger: N concurrent tasks, each with a
//! session of its own, refresh in a loop through `TokenService::refresh` (verify,
//! rotate in the ledger, sign). Prints ops/s and p50/p99 latency per
//! backend. Bounded: a fixed number of refreshes per backend.
//!
//! ```text
//! cargo run --release -p token-refresh-tools --features ledgers --bin ledger_throughput -- [TASKS] [REFRESHES]
//! ```
//!
//! PostgreSQL at `TOKEN_REFRESH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), Redis at
//! `TOKEN_REFRESH_REDIS_URL` (default `redis://127.0.0.1:6379/0`), a Redis
//! Cluster at `TOKEN_REFRESH_REDIS_CLUSTER_URL` (default
//! `redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103`, as
//! `scripts/redis-cluster.sh start` runs it). The run uses a schema and key
//! prefix of its own and removes them afterwards.

use std::time::{Duration, Instant};

use token_refresh::redis::AsyncCommands;
use token_refresh::{
    Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, PostgresLedger, PostgresOptions, RedisLedger, SessionId,
    SystemClock, TokenService, User, ledger::SessionLedger,
};

/// Refresh throughput through each ledger (memory, PostgreSQL, Redis, Redis
/// Cluster): ops/s and p50/p99 latency.
#[derive(Debug, clap::Parser)]
#[command(name = "ledger_throughput", version)]
struct Args {
    /// Concurrent tasks, each refreshing a session of its own.
    #[arg(default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    tasks: u16,
    /// Refreshes per backend, spread over the tasks.
    #[arg(default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..))]
    refreshes: u32,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = <Args as clap::Parser>::parse();
    let (tasks, refreshes) = (usize::from(args.tasks), usize::try_from(args.refreshes)?);
    let suffix = SessionId::random().to_string().replace('-', "");
    let suffix = suffix.get(..8).unwrap_or("run");
    println!("{tasks} concurrent tasks, {refreshes} refreshes per backend, {} cores", num_cores());

    bench("memory", MemoryLedger::new(), tasks, refreshes).await?;

    let pg_url = std::env::var("TOKEN_REFRESH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("tr_bench_{suffix}");
    let options = PostgresOptions::new().schema(&schema).pool_size(tasks.clamp(1, 32));
    let postgres = PostgresLedger::connect(&pg_url, options).await?;
    postgres.migrate().await?;
    let result = bench("postgres", postgres.clone(), tasks, refreshes).await;
    postgres.pool().get().await?.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await?;
    result?;

    let redis_url = std::env::var("TOKEN_REFRESH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let prefix = format!("tr_bench:{suffix}:");
    let redis = RedisLedger::connect(&redis_url, prefix.clone()).await?;
    let result = bench("redis", redis, tasks, refreshes).await;
    delete_keys(&[redis_url], &prefix).await?;
    result?;

    let cluster_url = std::env::var("TOKEN_REFRESH_REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103".into());
    let cluster = RedisLedger::connect(&cluster_url, prefix.clone()).await?;
    let result = bench("cluster", cluster, tasks, refreshes).await;
    let nodes: Vec<String> =
        cluster_url.trim_start_matches("redis-cluster://").split(',').map(|host| format!("redis://{host}")).collect();
    delete_keys(&nodes, &prefix).await?;
    result
}

/// Deletes the keys under `prefix` on each of `nodes` (every primary of a
/// cluster holds some).
async fn delete_keys(nodes: &[String], prefix: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for node in nodes {
        let mut connection =
            token_refresh::redis::Client::open(node.as_str())?.get_multiplexed_async_connection().await?;
        let keys: Vec<Vec<u8>> = {
            let mut iter = connection.scan_match::<_, Vec<u8>>(format!("{prefix}*")).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            keys
        };
        // One key a command: a cluster node refuses a DEL across slots.
        for key in keys {
            let _: () = connection.del(key).await?;
        }
    }
    Ok(())
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn bench<L: SessionLedger + 'static>(
    name: &str,
    ledger: L,
    tasks: usize,
    refreshes: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let users: Vec<User> = (0..tasks).map(|i| User::new(format!("user{i}@bench"), "acc", "ROLE_USER")).collect();
    let signer = Ed25519Signer::from_seed(&[0x5e; 32])?;
    let service = TokenService::new(Policy::default(), MemoryUserStore::new(users), ledger, signer, SystemClock);
    let per_task = refreshes.div_ceil(tasks.max(1));
    let started = Instant::now();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let service = service.clone();
        handles.push(tokio::spawn(async move {
            let mut pair = service.issue(&format!("user{i}@bench")).await?;
            let mut latencies = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let header = format!("Bearer {}", pair.refresh_token);
                let start = Instant::now();
                pair = service.refresh(Some(header.as_bytes())).await?;
                latencies.push(start.elapsed());
            }
            Ok::<_, token_refresh::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(index).copied().unwrap_or(Duration::ZERO)
    };
    println!(
        "{name:>8}: {:>8.0} refresh/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} refreshes in {:.2} s)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.len(),
        elapsed.as_secs_f64(),
    );
    Ok(())
}
