//! TLS to this machine's PostgreSQL (`ssl = on`, Debian's self-signed
//! "snakeoil" certificate for `localhost`): each `sslmode` does what libpq's
//! does, checked from the server's side in `pg_stat_ssl` for the ledger's
//! own connection. Fails, never skips, when PostgreSQL is down.
// Test code: a failed set-up should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use token_refresh::{PostgresLedger, PostgresOptions};

/// `postgres://…@HOST:5432/test` with `query`: this machine's server (the
/// certificate tests need its certificate). The password is there to check
/// that no error repeats it; trust authentication ignores it.
fn url(host: &str, query: &str) -> String {
    format!("postgres://postgres:s3cret-pw@{host}:5432/test{query}")
}

async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresLedger, String> {
    PostgresLedger::connect(url, options).await.map_err(|e| format!("{e} {e:?}"))
}

/// Whether the ledger's own connection is encrypted, as the server sees it.
async fn encrypted(ledger: &PostgresLedger) -> bool {
    let client = ledger.pool().get().await.expect("a pooled connection");
    let row =
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.expect("pg_stat_ssl");
    row.get(0)
}

/// The server's certificate, read where the server reads it.
async fn server_certificate() -> Vec<u8> {
    let ledger = connect(&url("127.0.0.1", "?sslmode=require"), PostgresOptions::new()).await.expect("connects");
    let client = ledger.pool().get().await.expect("a pooled connection");
    let path: String = client.query_one("SHOW ssl_cert_file", &[]).await.expect("ssl_cert_file").get(0);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn require_encrypts_and_disable_does_not() {
    for (query, expected) in [("?sslmode=require", true), ("?sslmode=disable", false), ("", true)] {
        // No sslmode on a loopback host means prefer: encrypted, since the
        // server offers TLS.
        let ledger = connect(&url("127.0.0.1", query), PostgresOptions::new()).await.expect("connects");
        assert_eq!(encrypted(&ledger).await, expected, "{query:?}");
    }
}

/// verify-full checks the chain and the host name; verify-ca the chain
/// only. The snakeoil certificate is self-signed and names `localhost`.
#[tokio::test]
async fn verifying_modes_check_what_they_promise() {
    let snakeoil = server_certificate().await;
    let trusting = || PostgresOptions::new().trust_pem(snakeoil.clone());

    // Only another CA trusted: refused, without the password. (Not the
    // platform's roots: Debian lists the snakeoil certificate among them,
    // in /etc/ssl/certs.)
    let other_ca = token_refresh_test_support::tls::Certificates::make().pem("other-ca.crt");
    for mode in ["verify-full", "verify-ca"] {
        let error =
            connect(&url("127.0.0.1", &format!("?sslmode={mode}")), PostgresOptions::new().trust_pem(other_ca.clone()))
                .await
                .expect_err("an untrusted certificate must be refused");
        assert!(!error.contains("s3cret-pw"), "{error}");
        assert!(error.to_lowercase().contains("certificate"), "{mode}: {error}");
    }
    // Trusted, reached by the name it carries: verify-full passes.
    let ledger = connect(&url("localhost", "?sslmode=verify-full"), trusting()).await.expect("verify-full localhost");
    assert!(encrypted(&ledger).await);
    // Trusted, reached by an address it does not name: verify-full refuses
    // (with the bundle, and with the platform's roots), verify-ca passes.
    for options in [trusting(), PostgresOptions::new()] {
        let error = connect(&url("127.0.0.1", "?sslmode=verify-full"), options).await.expect_err("wrong name");
        assert!(!error.contains("s3cret-pw"), "{error}");
        assert!(error.to_lowercase().contains("certificate"), "{error}");
    }
    let ledger = connect(&url("127.0.0.1", "?sslmode=verify-ca"), trusting()).await.expect("verify-ca");
    assert!(encrypted(&ledger).await);
    // A bundle that is not PEM is refused at connect.
    let error = connect(&url("localhost", "?sslmode=verify-full"), PostgresOptions::new().trust_pem(b"junk".to_vec()))
        .await
        .expect_err("junk roots");
    assert!(error.contains("no trusted root") || error.contains("PEM"), "{error}");
    // from_pool cannot apply a trust setting: refused, not ignored.
    let pool = ledger.pool().clone();
    assert!(PostgresLedger::from_pool(pool, trusting()).is_err());
}

#[tokio::test]
async fn allow_is_refused() {
    let error = connect(&url("127.0.0.1", "?sslmode=allow"), PostgresOptions::new()).await.expect_err("allow");
    assert!(error.contains("sslmode"), "{error}");
}
