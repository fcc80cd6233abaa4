//! [`serve`]: an HTTP/1 server loop with the limits a public token
//! endpoint needs (feature `server`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// An error a service or a body may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a [`serve`] loop limits its clients.
///
/// ```
/// use std::time::Duration;
/// use token_refresh::http::ServeOptions;
///
/// let options = ServeOptions::new().max_connections(2_000).header_read_timeout(Duration::from_secs(5));
/// assert_eq!(options.connections(), 2_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    max_connections: usize,
    header_read_timeout: Duration,
    drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeOptions {
    /// 10 000 connections at once, 10 s to send the request headers, 10 s
    /// for open connections to finish after the shutdown signal.
    pub fn new() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Connections served at once (at least 1). At the cap the loop stops
    /// accepting and new connections wait in the kernel's listen queue,
    /// instead of the process running out of files and failing everyone's
    /// requests. Keep it below the process's open-file limit.
    #[must_use]
    pub fn max_connections(self, connections: usize) -> Self {
        Self { max_connections: connections.max(1), ..self }
    }

    /// How long a client may take to send its request headers; a client
    /// trickling them is cut off instead of holding a connection forever.
    #[must_use]
    pub fn header_read_timeout(self, timeout: Duration) -> Self {
        Self { header_read_timeout: timeout, ..self }
    }

    /// How long open connections get to finish their current request after
    /// the shutdown signal.
    #[must_use]
    pub fn drain_timeout(self, timeout: Duration) -> Self {
        Self { drain_timeout: timeout, ..self }
    }

    /// The connection cap.
    pub fn connections(&self) -> usize {
        self.max_connections
    }

    /// Makes the connection cap fit the process's open-file limit: raises
    /// the soft limit (no privilege needed) to the cap plus 256 files for
    /// everything else (the listener, a ledger's pool, logs), within the
    /// hard limit, and where the hard limit is lower, lowers the cap to
    /// fit. Many systems start services at 1 024 files, where a thousand
    /// idle connections would make `accept` fail for real clients. Call it
    /// once at start; elsewhere than Unix it changes nothing.
    #[must_use]
    pub fn fit_open_file_limit(self) -> Self {
        const OTHER_FILES: u64 = 256;
        let wanted = u64::try_from(self.max_connections).unwrap_or(u64::MAX).saturating_add(OTHER_FILES);
        let fitting = open_file_limit_for(wanted).saturating_sub(OTHER_FILES);
        let fitted = usize::try_from(fitting).unwrap_or(usize::MAX).clamp(1, self.max_connections);
        #[cfg(feature = "tracing")]
        if fitted < self.max_connections {
            tracing::warn!(target: "token_refresh", requested = self.max_connections, fitted, "the open-file limit lowers the connection cap");
        }
        self.max_connections(fitted)
    }
}

/// The soft open-file limit after trying to raise it to `wanted`.
#[cfg(unix)]
fn open_file_limit_for(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else { return u64::MAX };
    if soft >= wanted {
        return soft;
    }
    let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => {
            #[cfg(feature = "tracing")]
            tracing::info!(target: "token_refresh", from = soft, to = raised, "raised the open-file limit");
            raised
        }
        Err(_error) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(target: "token_refresh", error = %_error, soft, "could not raise the open-file limit");
            soft
        }
    }
}

#[cfg(not(unix))]
fn open_file_limit_for(wanted: u64) -> u64 {
    wanted
}

/// Serves `service` over HTTP/1 on `listener` until `shutdown` resolves,
/// then stops accepting and lets open connections finish their current
/// request (within the [drain timeout](ServeOptions::drain_timeout)).
///
/// `axum::serve` does the same but has no header-read timeout: a client
/// that sends half a request line holds its connection (and a file) for as
/// long as it likes. This loop bounds the headers' time and the number of
/// connections ([`ServeOptions`]). Any tower service of
/// `http::Request<hyper::body::Incoming>` serves: an axum `Router`, an
/// [`Endpoint`](super::Endpoint).
///
/// ```no_run
/// use axum::Router;
/// use token_refresh::axum::session_routes;
/// use token_refresh::http::{RequestScopeLayer, ServeOptions, serve};
/// # use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// # let service = TokenService::new(Policy::default(), MemoryUserStore::new([]), MemoryLedger::new(), signer, SystemClock);
/// let app = Router::new()
///     .route("/auth/api/v1/authentication-management/session", session_routes())
///     .layer(RequestScopeLayer::new())
///     .with_state(service);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let shutdown = async {
///     let _ = tokio::signal::ctrl_c().await;
/// };
/// serve(listener, app, ServeOptions::new(), shutdown).await;
/// # Ok(())
/// # }
/// ```
pub async fn serve<S, B>(listener: TcpListener, service: S, options: ServeOptions, shutdown: impl Future<Output = ()>)
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // One permit per open connection.
    let permits = Arc::new(tokio::sync::Semaphore::new(options.max_connections));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_error) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning.
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "token_refresh", error = %_error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client going away mid-request is routine, not worth a log.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(options.drain_timeout, graceful.shutdown()).await.is_err() {
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "token_refresh", "connections still open after the drain timeout");
    }
}
