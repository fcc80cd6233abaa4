//! A 500's cause is logged (feature `tracing`) and never sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use token_refresh::{
    Ed25519Signer, Error, MemoryLedger, Policy, Reply, StoreError, SystemClock, TokenService, User, UserStore,
};

/// A user directory whose database is down.
struct Down;

impl UserStore for Down {
    async fn find(&self, _subject: &str) -> Result<Option<Arc<User>>, StoreError> {
        Err(StoreError::new("connection refused by users-db.internal:5432"))
    }
}

/// A `MakeWriter` that keeps everything written in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_500_logs_its_cause_and_sends_none() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let service = TokenService::new(
        Policy::default(),
        Down,
        MemoryLedger::new(),
        Ed25519Signer::from_seed(&[7; 32]).unwrap(),
        SystemClock,
    );
    let error = service.issue("bob@mail.com").await.expect_err("the directory is down");
    assert!(matches!(error, Error::Internal(_)), "{error:?}");
    let body = String::from_utf8(Reply::from_error(&error).into_body()).unwrap();
    assert_eq!(
        body,
        r#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("ERROR"), "{logs}");
    assert_eq!(logs.matches("request failed with 500").count(), 1, "logged once, at the core's entry: {logs}");
    assert!(logs.contains("component=Users"), "{logs}");
    assert!(logs.contains("connection refused by users-db.internal:5432"), "the cause is logged: {logs}");
}
