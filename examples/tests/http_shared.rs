//! Several server instances on one shared ledger behave as one service, and
//! a restart with a new signing key keeps the sessions of the old one.
//!
//! Every instance is the built reference server (`examples/src/bin/server.rs`, axum;
//! `cargo test` builds it into `target/<profile>/examples/server`) run as a
//! child process, so the `--store`, `--store-prefix`, `--signing-key`,
//! `--kid` and `--verify-key` flags are exercised as an operator types them;
//! each listens on an ephemeral loopback port with its own connections to
//! the backend, and stops on SIGTERM. What an instance reports (its ledger,
//! a refused start) is read from outside: HTTP answers, the JWKS, its exit
//! code and its logs on stderr.
//!
//! Needs PostgreSQL at `TOKEN_REFRESH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and Redis at
//! `TOKEN_REFRESH_REDIS_URL` (default `redis://127.0.0.1:6379/0`); `.ci/run`
//! starts both. The Redis Cluster tests use a three-node cluster this test
//! binary starts on spare loopback ports (`redis-server` must be installed)
//! and stops by PID when it exits, or the cluster
//! `TOKEN_REFRESH_REDIS_CLUSTER_URL` names when it is set. An unreachable
//! backend or a missing `redis-server` fails these tests, it never skips
//! them. Every test works under a schema / key prefix of its own (random
//! name) and removes it at the end.

// Test code: helpers outside #[test] functions may panic on a failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use token_refresh::redis::AsyncCommands as _;
use token_refresh::{PostgresLedger, PostgresOptions, SessionId};
use tokio::net::TcpListener;

use token_refresh_test_support::http_client::{Http, TestResult};
use token_refresh_test_support::keys::{NEXT_SEED, SEED, jwk_x, private_pem, public_pem};
use token_refresh_test_support::process::{self, Server, StartFailure};
use token_refresh_test_support::tokens::{bearer, jose_header, signed_by};
use token_refresh_test_support::users::{BOB, BOB_LOGIN_SEED};

/// The reference server, as built by Cargo for this package's tests.
const SERVER: &str = env!("CARGO_BIN_EXE_server");

const REUSED: &str = "refresh token was already used; the session is revoked";
const SESSION_REVOKED: &str = "session has been revoked";

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Redis,
    RedisCluster,
}

impl Backend {
    fn url(self) -> String {
        match self {
            Self::Postgres => std::env::var("TOKEN_REFRESH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            Self::Redis => {
                std::env::var("TOKEN_REFRESH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
            }
            Self::RedisCluster => token_refresh_test_support::redis_cluster::url(),
        }
    }

    /// One plain connection per server holding keys: the standalone server,
    /// or each node the cluster URL names (all primaries in the throwaway
    /// cluster the tests start).
    async fn redis_nodes(self) -> TestResult<Vec<token_refresh::redis::aio::MultiplexedConnection>> {
        let urls: Vec<String> = match self {
            Self::RedisCluster => {
                let url = self.url();
                let hosts = url.trim_start_matches("redis-cluster://").to_owned();
                hosts.split(',').map(|host| format!("redis://{host}")).collect()
            }
            _ => vec![self.url()],
        };
        let mut nodes = Vec::new();
        for url in urls {
            let client = token_refresh::redis::Client::open(url.as_str())?;
            nodes.push(client.get_multiplexed_async_connection().await.map_err(|e| format!("Redis at {url}: {e}"))?);
        }
        Ok(nodes)
    }

    /// What the start-up log line reports for `--store-prefix name`.
    fn label(self, name: &str) -> String {
        match self {
            Self::Postgres => format!("postgres, schema {name}"),
            Self::Redis => format!("redis, key prefix {name}:"),
            Self::RedisCluster => format!("redis cluster, key prefix {name}:"),
        }
    }

    async fn postgres(name: &str) -> TestResult<PostgresLedger> {
        let url = Self::Postgres.url();
        PostgresLedger::connect(&url, PostgresOptions::new().schema(name).pool_size(1))
            .await
            .map_err(|e| format!("PostgreSQL must be reachable at {url} for these tests: {e}").into())
    }

    /// The keys under the Redis prefix of `name`, each with the connection
    /// of the node holding it.
    async fn redis_keys(
        self,
        name: &str,
    ) -> TestResult<Vec<(token_refresh::redis::aio::MultiplexedConnection, Vec<u8>)>> {
        let mut found = Vec::new();
        for mut node in self.redis_nodes().await? {
            let mut iter: token_refresh::redis::AsyncIter<'_, Vec<u8>> = node.scan_match(format!("{name}:*")).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            drop(iter);
            found.extend(keys.into_iter().map(|key| (node.clone(), key)));
        }
        Ok(found)
    }

    /// How many sessions the backend holds under `name`: proof that the
    /// instances really share it rather than each keeping its own.
    async fn sessions(self, name: &str) -> TestResult<usize> {
        match self {
            Self::Postgres => {
                let ledger = Self::postgres(name).await?;
                let client = ledger.pool().get().await?;
                let row = client.query_one(&format!("SELECT count(*) FROM {name}.sessions"), &[]).await?;
                Ok(usize::try_from(row.get::<_, i64>(0))?)
            }
            Self::Redis | Self::RedisCluster => {
                // Session records are `<prefix>{<user hash>}s:<session tag>`.
                let keys = self.redis_keys(name).await?;
                let is_session = |key: &[u8]| key.windows(3).any(|w| w == b"}s:");
                Ok(keys.iter().filter(|(_, key)| is_session(key)).count())
            }
        }
    }

    /// Drops the schema / deletes the keys of `name`.
    async fn clean(self, name: &str) -> TestResult {
        match self {
            Self::Postgres => {
                let ledger = Self::postgres(name).await?;
                let client = ledger.pool().get().await?;
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await?;
            }
            Self::Redis | Self::RedisCluster => {
                for (mut node, key) in self.redis_keys(name).await? {
                    let _: () = node.del(key).await?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------

/// Key and users files in a directory of their own.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> TestResult<Self> {
        let dir = std::env::temp_dir().join(format!("token-refresh-shared-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let files = Self { dir };
        files.write("a.pem", &private_pem(&SEED))?;
        files.write("a.pub", &public_pem(&SEED))?;
        files.write("b.pem", &private_pem(&NEXT_SEED))?;
        let bob_key: String = ed25519_dalek::SigningKey::from_bytes(&BOB_LOGIN_SEED)
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let users =
            format!(r#"[{{"email":"{BOB}","account":"bob@admin","role":"ROLE_ADMIN","publicKey":"{bob_key}"}}]"#);
        files.write("users.json", &users)?;
        Ok(files)
    }

    fn write(&self, name: &str, text: &str) -> TestResult {
        std::fs::write(self.dir.join(name), text)?;
        Ok(())
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One server instance: the built `server` example, started from a command
/// line (killed if dropped without [`Instance::stop`]).
struct Instance {
    http: Http,
    server: Server,
}

impl Instance {
    async fn start(args: &[String]) -> TestResult<Self> {
        // A backend that cannot be reached fails here: the test fails.
        let server = process::running(SERVER, args).await?;
        Ok(Self { http: server.http.clone(), server })
    }

    /// SIGTERM, as an orchestrator stops it; the server must exit with 0.
    async fn stop(self) -> TestResult {
        self.stop_logs().await.map(drop)
    }

    /// [`Instance::stop`], returning the server's logs (its stderr).
    async fn stop_logs(self) -> TestResult<String> {
        self.server.stop().await
    }
}

/// `args` as a command line.
fn owned<'a>(args: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    args.into_iter().map(str::to_owned).collect()
}

/// Runs the server with `args`, which must not start: its exit code, stderr
/// and stdout.
async fn refused(args: &[String]) -> TestResult<StartFailure> {
    match process::start(SERVER, args).await? {
        Ok(server) => {
            server.stop().await?;
            Err("the server started; it must refuse this configuration".into())
        }
        Err(failure) => Ok(failure),
    }
}

/// Waits until something accepts TCP connections on loopback `port` (a
/// backend the test started).
async fn accepting(port: u16) -> TestResult {
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(format!("nothing listens on 127.0.0.1:{port}").into())
}

/// The start-up log line (`token-refresh listening …`) in `logs`.
fn startup_line(logs: &str) -> TestResult<&str> {
    Ok(logs.lines().find(|line| line.contains("token-refresh listening")).ok_or("no start-up log line")?)
}

/// The command line of an instance of `backend` under `name`, signing with
/// `a.pem`, with `extra` flags.
fn args(backend: Backend, name: &str, files: &Files, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--users",
        &files.path("users.json"),
        "--store",
        &backend.url(),
        "--store-prefix",
        name,
        // Strict rotation: these tests present rotated tokens at once, on
        // the other instance, and expect reuse.
        "--grace",
        "0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !extra.contains(&"--signing-key") {
        args.extend(["--signing-key".to_owned(), files.path("a.pem")]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Runs `body` with a fresh schema / key prefix name and key files, then
/// removes what it stored whatever happened, then passes on a failure.
async fn with_backend<F, Fut>(backend: Backend, test: &str, body: F) -> TestResult
where
    F: FnOnce(String, Arc<Files>) -> Fut,
    Fut: Future<Output = TestResult> + Send + 'static,
{
    let name = format!("tr_http_{}_{test}", &SessionId::random().to_string()[..8]);
    let files = Arc::new(Files::new()?);
    let outcome = tokio::spawn(body(name.clone(), Arc::clone(&files))).await;
    let cleaned = backend.clean(&name).await;
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        Ok(result) => result?,
    }
    cleaned
}

// ---------------------------------------------------------------------------
// Two instances, one backend
// ---------------------------------------------------------------------------

/// Login on A, refresh on A, reuse of the rotated token on B: 401, the
/// family is revoked, and the successor then fails on A too. A second
/// session hops between the instances at every step.
async fn two_instances_are_one_service(backend: Backend) -> TestResult {
    with_backend(backend, "one", move |name, files| async move {
        let a = Instance::start(&args(backend, &name, &files, &[])).await?;
        let b = Instance::start(&args(backend, &name, &files, &[])).await?;

        let (_, first) = a.http.session(BOB, &BOB_LOGIN_SEED).await?;
        assert_eq!(backend.sessions(&name).await?, 1, "the session is stored in {backend:?}");
        let refreshed = a.http.refresh(Some(&bearer(&first))).await?;
        assert_eq!(refreshed.status, 200, "{}", refreshed.message());
        let (access, successor) = (refreshed.data("accessToken")?, refreshed.data("refreshToken")?);
        assert_eq!(b.http.me(&bearer(&access)).await?.status, 200, "B accepts A's access token");

        let reuse = b.http.refresh(Some(&bearer(&first))).await?;
        assert_eq!((reuse.status, reuse.message().as_str()), (401, REUSED), "B detects reuse of a token A rotated");
        let after = a.http.refresh(Some(&bearer(&successor))).await?;
        assert_eq!((after.status, after.message().as_str()), (401, SESSION_REVOKED), "the family is revoked on A");
        assert_eq!(a.http.me(&bearer(&access)).await?.status, 401, "and its access token with it");

        // A session that alternates instances: each rotation is seen by the other.
        let (_, mut token) = b.http.session(BOB, &BOB_LOGIN_SEED).await?;
        let mut last_access = String::new();
        for step in 0..6 {
            let http = if step % 2 == 0 { &a.http } else { &b.http };
            let response = http.refresh(Some(&bearer(&token))).await?;
            assert_eq!(response.status, 200, "step {step}: {}", response.message());
            token = response.data("refreshToken")?;
            last_access = response.data("accessToken")?;
        }
        assert_eq!(a.http.me(&bearer(&last_access)).await?.status, 200);
        assert_eq!(a.http.logout(&bearer(&token)).await?.status, 200);
        let after_logout = b.http.refresh(Some(&bearer(&token))).await?;
        assert_eq!((after_logout.status, after_logout.message().as_str()), (401, SESSION_REVOKED));
        assert_eq!(b.http.me(&bearer(&last_access)).await?.status, 401, "logout on A revokes on B");
        assert_eq!(backend.sessions(&name).await?, 2);

        a.stop().await?;
        b.stop().await
    })
    .await
}

/// 24 concurrent refreshes of one token, alternating between A and B:
/// exactly one 200, every other one 401.
async fn concurrent_refreshes_across_instances(backend: Backend) -> TestResult {
    with_backend(backend, "race", move |name, files| async move {
        let a = Instance::start(&args(backend, &name, &files, &[])).await?;
        let b = Instance::start(&args(backend, &name, &files, &[])).await?;
        let (_, token) = a.http.session(BOB, &BOB_LOGIN_SEED).await?;
        let authorization = bearer(&token);

        const N: usize = 24;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..N {
            let http = if i % 2 == 0 { a.http.clone() } else { b.http.clone() };
            let (barrier, authorization) = (Arc::clone(&barrier), authorization.clone());
            tasks.spawn(async move {
                barrier.wait().await;
                http.refresh(Some(&authorization)).await.map(|response| (i % 2, response.status))
            });
        }
        let mut statuses = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            statuses.push(joined??);
        }
        let ok: Vec<_> = statuses.iter().filter(|(_, status)| *status == 200).collect();
        assert_eq!(ok.len(), 1, "exactly one refresh wins across both instances: {statuses:?}");
        assert_eq!(statuses.iter().filter(|(_, status)| *status == 401).count(), N - 1, "{statuses:?}");
        // Both instances answered (the alternation really split the load).
        assert!(
            statuses.iter().any(|(instance, _)| *instance == 0) && statuses.iter().any(|(instance, _)| *instance == 1)
        );

        a.stop().await?;
        b.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_are_one_service() -> TestResult {
    two_instances_are_one_service(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_two_instances_are_one_service() -> TestResult {
    two_instances_are_one_service(Backend::RedisCluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_concurrent_refreshes_across_instances_one_wins() -> TestResult {
    concurrent_refreshes_across_instances(Backend::RedisCluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_instances_are_one_service() -> TestResult {
    two_instances_are_one_service(Backend::Redis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_refreshes_across_instances_one_wins() -> TestResult {
    concurrent_refreshes_across_instances(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_refreshes_across_instances_one_wins() -> TestResult {
    concurrent_refreshes_across_instances(Backend::Redis).await
}

/// The server reports the ledger it connected to (the start-up log line),
/// and `--store-prefix` keeps deployments apart: the same token is unknown
/// under another name.
async fn store_prefix_isolates(backend: Backend) -> TestResult {
    with_backend(backend, "iso", move |name, files| async move {
        let a = Instance::start(&args(backend, &name, &files, &[])).await?;
        let other = format!("{name}_other");
        let elsewhere = Instance::start(&args(backend, &other, &files, &[])).await;
        let result = async {
            let elsewhere = elsewhere?;
            let (_, token) = a.http.session(BOB, &BOB_LOGIN_SEED).await?;
            let response = elsewhere.http.refresh(Some(&bearer(&token))).await?;
            assert_eq!(response.status, 401, "another prefix does not know the session");
            assert_eq!(a.http.refresh(Some(&bearer(&token))).await?.status, 200, "and changed nothing");
            elsewhere.stop().await
        }
        .await;
        backend.clean(&other).await?;
        result?;
        let logs = a.stop_logs().await?;
        let line = startup_line(&logs)?;
        assert!(line.ends_with(&format!(" store={}", backend.label(&name))), "{line}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_prefix_isolates_deployments() -> TestResult {
    store_prefix_isolates(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_prefix_isolates_deployments() -> TestResult {
    store_prefix_isolates(Backend::Redis).await
}

/// A backend that is down at start: exit code 2, a message naming the
/// backend, and neither the URL nor its password in it.
/// A Redis that evicts keys would drop sessions: the server refuses it at
/// start, with exit code 2 and a message naming the setting.
#[tokio::test]
async fn an_evicting_redis_is_refused_at_start() -> TestResult {
    let (port, mut child) = throwaway_redis(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])?;
    let url = format!("redis://127.0.0.1:{port}/0");
    let outcome = async {
        accepting(port).await?;
        let error = refused(&owned(["--listen", "127.0.0.1:0", "--store", &url])).await?;
        assert_eq!(error.code, Some(2), "{error:?}");
        assert!(error.stderr.contains("maxmemory-policy"), "{}", error.stderr);
        assert!(error.stderr.contains("noeviction"), "{}", error.stderr);
        Ok(())
    }
    .await;
    child.kill()?;
    child.wait()?;
    outcome
}

#[tokio::test]
async fn unreachable_store_is_a_configuration_error_without_the_password() -> TestResult {
    for (url, backend) in [
        ("redis://:s3cret-pw@127.0.0.1:1/0", "Redis"),
        ("postgres://app:s3cret-pw@127.0.0.1:1/test", "PostgreSQL"),
        ("postgresql://app:s3cret-pw@127.0.0.1:1/test", "PostgreSQL"),
    ] {
        // Nothing listens on port 1.
        let error = refused(&owned(["--listen", "127.0.0.1:0", "--store", url])).await?;
        assert_eq!(error.code, Some(2), "{error:?}");
        assert!(error.stderr.contains(backend), "{}", error.stderr);
        for output in [&error.stderr, &error.stdout] {
            assert!(!output.contains("s3cret") && !output.contains("127.0.0.1:1/"), "{output}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Key rotation across restarts (PostgreSQL keeps the sessions)
// ---------------------------------------------------------------------------

/// The JWKS of an instance: `(x, kid)` of each key, in order.
async fn jwks(http: &Http) -> TestResult<Vec<(String, String)>> {
    let response = http.send("GET", "/.well-known/jwks.json", &[], b"").await?;
    assert_eq!(response.status, 200);
    let json = response.json()?;
    let keys = json["keys"].as_array().ok_or("no keys")?;
    keys.iter()
        .map(|key| Ok((key["x"].as_str().ok_or("no x")?.to_owned(), key["kid"].as_str().ok_or("no kid")?.to_owned())))
        .collect()
}

/// The `x` of each key in the JWKS of an instance, in order; no key has a
/// `kid`.
async fn jwks_without_kids(http: &Http) -> TestResult<Vec<String>> {
    let response = http.send("GET", "/.well-known/jwks.json", &[], b"").await?;
    assert_eq!(response.status, 200);
    let json = response.json()?;
    let keys = json["keys"].as_array().ok_or("no keys")?;
    assert!(keys.iter().all(|key| key.get("kid").is_none()), "{json}");
    keys.iter().map(|key| Ok(key["x"].as_str().ok_or("no x")?.to_owned())).collect()
}

/// Start on key A; restart on key B with A verify-only: A's refresh token
/// still refreshes, into tokens signed by B, and the JWKS lists both; restart
/// on B alone: tokens signed by A are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_across_restarts_keeps_sessions() -> TestResult {
    let backend = Backend::Postgres;
    with_backend(backend, "keys", move |name, files| async move {
        let (key_a, key_b) = (jwk_x(&SEED), jwk_x(&NEXT_SEED));

        // 1. Key A.
        let first = Instance::start(&args(backend, &name, &files, &["--kid", "key-a"])).await?;
        assert_eq!(jwks(&first.http).await?, [(key_a.clone(), "key-a".to_owned())]);
        let (_, login) = first.http.session(BOB, &BOB_LOGIN_SEED).await?;
        let refreshed = first.http.refresh(Some(&bearer(&login))).await?;
        assert_eq!(refreshed.status, 200);
        let old = refreshed.data("refreshToken")?;
        // A second session that stays untouched until the last start.
        let (_, untouched) = first.http.session(BOB, &BOB_LOGIN_SEED).await?;
        for token in [&old, &untouched] {
            assert_eq!(jose_header(token)["kid"], "key-a");
            assert!(signed_by(token, &SEED));
        }
        first.stop().await?;

        // 2. Key B active, A verify-only (its public key file, under its kid).
        let verify_a = format!("{}#key-a", files.path("a.pub"));
        let second_args = args(
            backend,
            &name,
            &files,
            &["--signing-key", &files.path("b.pem"), "--kid", "key-b", "--verify-key", &verify_a],
        );
        let second = Instance::start(&second_args).await?;
        assert_eq!(
            jwks(&second.http).await?,
            [(key_b.clone(), "key-b".to_owned()), (key_a.clone(), "key-a".to_owned())]
        );
        let rotated = second.http.refresh(Some(&bearer(&old))).await?;
        assert_eq!(rotated.status, 200, "a token of the old key still refreshes: {}", rotated.message());
        let (access, new) = (rotated.data("accessToken")?, rotated.data("refreshToken")?);
        for token in [&access, &new] {
            assert_eq!(jose_header(token)["kid"], "key-b");
            assert!(signed_by(token, &NEXT_SEED), "new tokens are signed with key B");
            assert!(!signed_by(token, &SEED));
        }
        assert_eq!(second.http.me(&bearer(&access)).await?.status, 200);
        // The rotation was recorded in the shared ledger: reuse is still reuse.
        let reuse = second.http.refresh(Some(&bearer(&old))).await?;
        assert_eq!((reuse.status, reuse.message().as_str()), (401, REUSED));
        let (_, fresh) = second.http.session(BOB, &BOB_LOGIN_SEED).await?;
        second.stop().await?;

        // 3. Key B alone: key A is retired.
        let third =
            Instance::start(&args(backend, &name, &files, &["--signing-key", &files.path("b.pem"), "--kid", "key-b"]))
                .await?;
        assert_eq!(jwks(&third.http).await?, [(key_b, "key-b".to_owned())]);
        let refused = third.http.refresh(Some(&bearer(&untouched))).await?;
        assert_eq!(refused.status, 401, "a token signed by the retired key is refused");
        // Refused for its key (its kid names no key of this instance), not
        // by the ledger.
        assert_eq!(refused.message(), "token could not be parsed");
        let still = third.http.refresh(Some(&bearer(&fresh))).await?;
        assert_eq!(still.status, 200, "key B's sessions carry on: {}", still.message());
        third.stop().await
    })
    .await
}

/// The same rotation with the old key given as its private PEM (only the
/// public half is kept) and without key ids: tokens without `kid` are tried
/// against each key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_without_kids_from_a_private_pem() -> TestResult {
    let backend = Backend::Postgres;
    with_backend(backend, "nokid", move |name, files| async move {
        let first = Instance::start(&args(backend, &name, &files, &[])).await?;
        let (_, old) = first.http.session(BOB, &BOB_LOGIN_SEED).await?;
        assert!(jose_header(&old).get("kid").is_none());
        first.stop().await?;

        let second = Instance::start(&args(
            backend,
            &name,
            &files,
            &["--signing-key", &files.path("b.pem"), "--verify-key", &files.path("a.pem")],
        ))
        .await?;
        // Both keys are published, the active one first, without key ids.
        assert_eq!(jwks_without_kids(&second.http).await?, [jwk_x(&NEXT_SEED), jwk_x(&SEED)]);
        let rotated = second.http.refresh(Some(&bearer(&old))).await?;
        assert_eq!(rotated.status, 200, "{}", rotated.message());
        assert!(signed_by(&rotated.data("refreshToken")?, &NEXT_SEED));
        second.stop().await
    })
    .await
}

/// A Redis that stops answering (frozen with SIGSTOP, as a hung server or a
/// partition looks): `/readyz` turns 503 within 3 s, `/healthz` stays 200,
/// a refresh answers the 500 envelope within the request deadline instead
/// of hanging; once Redis answers again the same server is ready, and login
/// and refresh work, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_makes_the_server_unready_and_it_recovers() -> TestResult {
    let (port, mut child) = throwaway_redis(&[])?;
    let pid = child.id().to_string();
    let signal = |name: &str| std::process::Command::new("kill").args([name, &pid]).status();
    let outcome = async {
        accepting(port).await?;
        let url = format!("redis://127.0.0.1:{port}/0");
        // The refresh that timed out was queued on the frozen server and may
        // have run once it woke: its token is not retried (that is the
        // lost-answer case a grace window covers, § Running in production).
        let (stop, resume) = (|| signal("-STOP").map(drop), || signal("-CONT").map(drop));
        outage_and_recovery(&["--store", url.as_str()], stop, resume, false).await?;
        Ok(())
    }
    .await;
    let _ = signal("-CONT");
    child.kill()?;
    child.wait()?;
    outcome
}

/// A TCP proxy in front of PostgreSQL that a test can cut: every proxied
/// connection is dropped and new ones are closed at once until it is
/// restored (what a failover or a network cut looks like to the pool).
struct CuttableProxy {
    address: std::net::SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: std::net::SocketAddr) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, list) = (Arc::clone(&cut), Arc::clone(&connections));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                list.lock().map(|mut list| list.push(task.abort_handle())).ok();
            }
        });
        Ok(Self { address, cut, connections, accept })
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut list) = self.connections.lock() {
            list.drain(..).for_each(|task| task.abort());
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The PostgreSQL ledger's connections cut (every connection dropped, new
/// ones refused): `/readyz` turns 503 within 3 s, `/healthz` stays 200, a
/// refresh answers the 500 envelope within the request deadline; once
/// connections go through again, the same server is ready and logs in and
/// refreshes without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_postgres_connection_makes_the_server_unready_and_it_recovers() -> TestResult {
    let upstream: std::net::SocketAddr = "127.0.0.1:5432".parse()?;
    let proxy = CuttableProxy::start(upstream).await?;
    let name = format!("tr_cut_{}", std::process::id());
    let url = format!("postgres://postgres@{}/test", proxy.address);
    let outcome = async {
        let cut = || {
            proxy.cut();
            Ok(())
        };
        let restore = || {
            proxy.restore();
            Ok(())
        };
        // The refresh that failed never reached the ledger: its token still
        // rotates afterwards.
        outage_and_recovery(&["--store", url.as_str(), "--store-prefix", name.as_str()], cut, restore, true).await?;
        Ok(())
    }
    .await;
    let cleaned = Backend::Postgres.clean(&name).await;
    outcome.and(cleaned)
}

/// `--store rediss://…` with `--store-ca FILE`: the server starts and
/// serves over a TLS-only Redis whose certificate a private CA signed.
/// Without the flag (the platform's roots) or with another CA, the
/// certificate does not verify: exit code 2 at start, with a message that
/// names the certificate and never the URL's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_needs_its_ca_trusted() -> TestResult {
    use token_refresh_test_support::tls::{Certificates, TlsRedis};
    let certs = Certificates::make();
    let server = TlsRedis::start(&certs, &[], certs.dir());
    let url = format!("rediss://:s3cret-pw@127.0.0.1:{}/0", server.port);
    let store = format!("rediss://127.0.0.1:{}/0", server.port);
    let ca = certs.path("ca.crt");
    // The server takes a moment to listen.
    accepting(server.port).await?;
    let trusting = process::running(SERVER, &owned(["--listen", "127.0.0.1:0", "--store", &store, "--store-ca", &ca]))
        .await
        .map_err(|e| format!("the server did not start with its CA trusted: {e}"))?;
    let login = trusting.http.login(&trusting.stdout_line("login body: ").await?).await?;
    assert_eq!(login.status, 200, "{login:?}");
    let logs = trusting.stop().await?;
    let line = startup_line(&logs)?;
    assert!(line.ends_with(" store=redis, key prefix token_refresh:"), "{line}");

    for ca in [None, Some(certs.path("other-ca.crt"))] {
        let mut args = owned(["--listen", "127.0.0.1:0", "--store", &url]);
        if let Some(ca) = &ca {
            args.extend(owned(["--store-ca", ca]));
        }
        let error = refused(&args).await?;
        assert_eq!(error.code, Some(2), "{ca:?}: {error:?}");
        assert!(error.stderr.to_lowercase().contains("certificate"), "{ca:?}: {}", error.stderr);
        assert!(!error.stderr.contains("s3cret-pw") && !error.stdout.contains("s3cret-pw"), "{error:?}");
    }
    Ok(())
}

/// Starts a server with `store_args`, logs in, then `cut`s the ledger off:
/// `/readyz` 503 within 3 s, `/healthz` 200, a refresh answers the 500
/// envelope inside the request deadline. Then `restore`s it: ready again, a
/// new login refreshes, and, when `failed_refresh_never_ran`, the token
/// whose refresh failed still rotates.
async fn outage_and_recovery(
    store_args: &[&str],
    cut: impl FnOnce() -> std::io::Result<()>,
    restore: impl FnOnce() -> std::io::Result<()>,
    failed_refresh_never_ran: bool,
) -> TestResult {
    let args = owned(["--listen", "127.0.0.1:0"].into_iter().chain(store_args.iter().copied()));
    let server = process::running(SERVER, &args).await?;
    let login = server.stdout_line("login body: ").await?;
    let http = server.http.clone();

    assert_eq!(http.send("GET", "/readyz", &[], b"").await?.status, 200);
    let first = http.login(&login).await?;
    assert_eq!(first.status, 200, "{first:?}");
    let refresh_token = first.data("refreshToken")?;

    cut()?;
    let started = std::time::Instant::now();
    let ready = http.send("GET", "/readyz", &[], b"").await?;
    assert_eq!((ready.status, ready.name()), (503, "SERVICE_UNAVAILABLE".to_owned()));
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "/readyz took {:?}", started.elapsed());
    assert_eq!(http.send("GET", "/healthz", &[], b"").await?.status, 200);
    let started = std::time::Instant::now();
    let failed = http.refresh(Some(&format!("Bearer {refresh_token}"))).await?;
    assert_eq!((failed.status, failed.name()), (500, "INTERNAL_SERVER_ERROR".to_owned()));
    assert!(started.elapsed() < std::time::Duration::from_secs(11), "the refresh took {:?}", started.elapsed());

    restore()?;
    let mut ready = 0;
    for _ in 0..100 {
        ready = http.send("GET", "/readyz", &[], b"").await?.status;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200, "ready again once the ledger answers");
    let again = http.login(&login).await?;
    assert_eq!(again.status, 200, "{again:?}");
    let next = http.refresh(Some(&format!("Bearer {}", again.data("refreshToken")?))).await?;
    assert_eq!(next.status, 200, "{next:?}");
    if failed_refresh_never_ran {
        let retried = http.refresh(Some(&format!("Bearer {refresh_token}"))).await?;
        assert_eq!(retried.status, 200, "{retried:?}");
    }
    server.stop().await?;
    Ok(())
}

/// A `redis-server` with `extra` arguments on a spare loopback port; the
/// caller kills it.
fn throwaway_redis(extra: &[&str]) -> TestResult<(u16, std::process::Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server must be installed for this test: {e}"))?;
    Ok((port, child))
}

/// `--store postgres://…?sslmode=verify-full --store-ca FILE`: the server
/// starts when FILE holds the server's certificate (this machine's
/// self-signed one, for `localhost`); with another CA it exits 2 naming
/// the certificate, never the password.
#[tokio::test]
async fn a_verifying_postgres_store_needs_its_ca_trusted() -> TestResult {
    use token_refresh_test_support::tls::Certificates;
    let schema = format!("tr_pgca_{}", std::process::id());
    let certs = Certificates::make();
    let snakeoil = certs.dir().join("server-of-postgres.pem");
    let plain = PostgresLedger::connect(&Backend::Postgres.url(), PostgresOptions::new()).await?;
    let path: String = plain.pool().get().await?.query_one("SHOW ssl_cert_file", &[]).await?.get(0);
    std::fs::copy(path, &snakeoil)?;
    let url = "postgres://postgres:s3cret-pw@localhost:5432/test?sslmode=verify-full";
    let args =
        |ca: &str| owned(["--listen", "127.0.0.1:0", "--store", url, "--store-prefix", &schema, "--store-ca", ca]);
    let trusted = process::start(SERVER, &args(&snakeoil.to_string_lossy())).await?;
    let outcome = async {
        let trusted = trusted.map_err(|failure| format!("the server's own certificate must verify: {failure:?}"))?;
        trusted.stop().await?;
        let error = refused(&args(&certs.path("other-ca.crt"))).await?;
        assert_eq!(error.code, Some(2), "{error:?}");
        assert!(error.stderr.to_lowercase().contains("certificate"), "{}", error.stderr);
        assert!(!error.stderr.contains("s3cret-pw") && !error.stdout.contains("s3cret-pw"), "{error:?}");
        Ok(())
    }
    .await;
    let cleaned = Backend::Postgres.clean(&schema).await;
    outcome.and(cleaned)
}
