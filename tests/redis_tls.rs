//! The Redis ledger over TLS (`rediss://`, `rediss-cluster://`), against
//! `redis-server`s this test starts on spare loopback ports with
//! certificates it makes (openssl), and stops by PID. Their plain port is
//! off, so a ledger that works talked TLS.
//!
//! Fails, never skips, when `redis-server` or `openssl` is missing.
// Test code: a failed set-up should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use token_refresh::RedisLedger;
use token_refresh::ledger::SessionLedger as _;
use token_refresh::ledger::conformance::{self, Harness};
use token_refresh::{StoreError, ledger::redis::RedisLedgerBuilder};
use token_refresh_test_support::ledger::new_session;
use token_refresh_test_support::tls::{Certificates, TlsRedis as TlsServer};

/// Connects until the server is up (it takes a moment to listen), at most
/// 5 s.
async fn connect(builder: impl Fn() -> RedisLedgerBuilder) -> Result<RedisLedger, StoreError> {
    let mut last = None;
    for _ in 0..50 {
        match builder().connect().await {
            Ok(ledger) => return Ok(ledger),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.unwrap())
}

struct Tls {
    url: String,
    ca: Vec<u8>,
}

impl Harness for Tls {
    type Ledger = RedisLedger;
    async fn handle(&self) -> Result<RedisLedger, StoreError> {
        RedisLedger::builder(&self.url).prefix("tls:").trust_pem(self.ca.clone()).connect().await
    }

    /// Redis expires every record by its TTL.
    fn expires_by_itself(&self) -> bool {
        true
    }
}

/// With the server's CA trusted, the ledger works over TLS: it passes the
/// whole conformance suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_tls_redis_passes_the_conformance_suite() {
    let certs = Certificates::make();
    let server = TlsServer::start(&certs, &[], certs.dir());
    let url = format!("rediss://127.0.0.1:{}/0", server.port);
    let ca = certs.pem("ca.crt");
    connect(|| RedisLedger::builder(&url).prefix("tls:").trust_pem(ca.clone())).await.unwrap();
    let report = conformance::run(&Tls { url: url.clone(), ca }).await;
    assert!(report.is_success(), "{report}");
    // Retention is the store's, and lost connections are
    // conformance_redis's to cut (TLS changes nothing there).
    let skipped: Vec<_> = report.skipped.iter().map(|(check, _)| *check).collect();
    assert_eq!(skipped, ["purge_removes_what_has_ended", "lost_connections_never_leave_half_a_rotation"], "{report}");
}

/// A certificate that does not chain to a trusted root is refused at
/// connect: with the platform's roots (the default) and with another CA
/// trusted. The error never repeats the URL's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_at_connect() {
    let certs = Certificates::make();
    let server = TlsServer::start(&certs, &[], certs.dir());
    let url = format!("rediss://:s3cret-pw@127.0.0.1:{}/0", server.port);
    // The server is up when a trusting client gets an answer (AUTH with a
    // password the server does not have fails after the handshake).
    let _ = connect(|| {
        RedisLedger::builder(&format!("rediss://127.0.0.1:{}/0", server.port)).trust_pem(certs.pem("ca.crt"))
    })
    .await
    .unwrap();
    let other = certs.pem("other-ca.crt");
    for builder in [RedisLedger::builder(&url), RedisLedger::builder(&url).trust_pem(other)] {
        let error = builder.connect().await.expect_err("an untrusted certificate must be refused");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(text.to_lowercase().contains("certificate"), "the refusal names the certificate: {text}");
    }
}

/// A Redis Cluster of three TLS-only masters (`tls-cluster yes`), reached as
/// `rediss-cluster://`: logins land on every master and list back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_serves_sessions() {
    let certs = Certificates::make();
    let dirs: Vec<PathBuf> = (0..3).map(|i| certs.dir().join(format!("node{i}"))).collect();
    let servers: Vec<TlsServer> = dirs
        .iter()
        .map(|dir| {
            std::fs::create_dir_all(dir).unwrap();
            TlsServer::start(&certs, &["--cluster-enabled", "yes", "--tls-cluster", "yes"], dir)
        })
        .collect();
    let nodes: Vec<String> = servers.iter().map(|server| format!("127.0.0.1:{}", server.port)).collect();
    let cli = || {
        let mut command = Command::new("redis-cli");
        command.args(["--tls", "--cacert", &certs.path("ca.crt")]).stdout(Stdio::null()).stderr(Stdio::null());
        command
    };
    // Every node answers before the cluster is made: a create that reaches
    // only some of them would leave the others' slots assigned.
    for server in &servers {
        let mut up = false;
        for _ in 0..50 {
            let ping = cli().args(["-p", &server.port.to_string(), "ping"]).status();
            if ping.expect("redis-cli must be installed for this test").success() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "TLS node {} did not come up", server.port);
    }
    let created =
        cli().args(["--cluster", "create"]).args(&nodes).args(["--cluster-replicas", "0", "--cluster-yes"]).status();
    let created = created.expect("redis-cli must be installed for this test").success();
    assert!(created, "redis-cli --cluster create over TLS failed");
    // The masters learn of each other by gossip: wait until every one says
    // the cluster is up, or a first write may meet CLUSTERDOWN.
    for server in &servers {
        let mut ok = false;
        for _ in 0..100 {
            let info = cli()
                .stdout(Stdio::piped())
                .args(["-p", &server.port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli must be installed for this test");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "TLS node {} never reported cluster_state:ok", server.port);
    }
    let url = format!("rediss-cluster://{}", nodes.join(","));
    let ca = certs.pem("ca.crt");
    let ledger = connect(|| RedisLedger::builder(&url).prefix("tlsc:").trust_pem(ca.clone())).await.unwrap();
    assert!(ledger.is_cluster());
    let now = 1_800_000_000;
    for i in 0..30 {
        let subject = format!("user{i}@example.com");
        ledger.create(&new_session(&subject, now, 10)).await.unwrap();
        assert_eq!(ledger.sessions(&subject, now).await.unwrap().len(), 1, "{subject}");
    }
}
