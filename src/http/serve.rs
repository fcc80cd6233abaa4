//! [`serve`]: an HTTP/1 server loop with the limits a public token
//! endpoint needs (feature `server`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::http::header::{CONNECTION, HeaderValue};
use ::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// An error a service or a body may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper refuses a read buffer smaller than this (`max_buf_size` panics
/// below it), so a smaller head limit is enforced by `max_header_size`
/// alone on a buffer of this size.
const HYPER_MIN_BUF_SIZE: usize = 8192;

/// At the connection cap, how long the loop waits for the idle connection
/// it asked to close before it asks the next: an idle keep-alive
/// connection closes at once, but one still receiving its first request
/// head finishes that request first.
const RECLAIM_INTERVAL: Duration = Duration::from_millis(100);

/// How a [`serve`] loop limits its clients.
///
/// ```
/// use std::time::Duration;
/// use token_refresh::http::ServeOptions;
///
/// let options = ServeOptions::new()
///     .max_connections(2_000)
///     .header_read_timeout(Duration::from_secs(5))
///     .max_header_bytes(32 * 1024)
///     .max_requests_per_connection(100)
///     .max_connection_age(Duration::from_secs(30));
/// assert_eq!(options.connections(), 2_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    max_connections: usize,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    max_requests_per_connection: usize,
    max_connection_age: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeOptions {
    /// The defaults:
    ///
    /// | limit | default |
    /// | --- | --- |
    /// | [`max_connections`](Self::max_connections) | 10 000 |
    /// | [`header_read_timeout`](Self::header_read_timeout) | 10 s |
    /// | [`drain_timeout`](Self::drain_timeout) | 10 s |
    /// | [`max_header_bytes`](Self::max_header_bytes) | 16 KiB |
    /// | [`max_headers`](Self::max_headers) | 64 |
    /// | [`max_requests_per_connection`](Self::max_requests_per_connection) | 1 000 |
    /// | [`max_connection_age`](Self::max_connection_age) | 60 s |
    pub fn new() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            // The API's largest header, `Authorization`, is limited to
            // 8 KiB; twice that leaves room for the rest of a browser's or
            // a proxy's headers.
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_requests_per_connection: 1_000,
            max_connection_age: Duration::from_secs(60),
        }
    }

    /// Connections served at once (at least 1). At the cap the loop accepts
    /// one more connection and makes room for it: it asks the connections
    /// that are between requests to close, the oldest first (an idle
    /// keep-alive connection closes at once, a busy one is never cut
    /// short). Until one closes, the newcomer waits unanswered and further
    /// connections wait in the kernel's listen queue, instead of the
    /// process running out of files and failing everyone's requests. Keep
    /// it below the process's open-file limit
    /// ([`fit_open_file_limit`](Self::fit_open_file_limit)).
    #[must_use]
    pub fn max_connections(self, connections: usize) -> Self {
        Self { max_connections: connections.clamp(1, Semaphore::MAX_PERMITS), ..self }
    }

    /// How long a client may take to send its request headers, and how long
    /// a keep-alive connection may wait for its next request; a client
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

    /// The largest request head (request line and headers) in bytes; a
    /// larger one is answered 431 and its connection closed. It bounds the
    /// memory a connection holds while its head arrives: hyper's own
    /// default lets each connection buffer about 400 KiB, which the
    /// connection cap multiplies. hyper's read buffer is at least 8 KiB,
    /// whatever the limit.
    #[must_use]
    pub fn max_header_bytes(self, bytes: usize) -> Self {
        Self { max_header_bytes: bytes.max(1), ..self }
    }

    /// The most header fields in a request head; more are answered 431.
    #[must_use]
    pub fn max_headers(self, headers: usize) -> Self {
        Self { max_headers: headers.max(1), ..self }
    }

    /// Requests served on one connection (at least 1): the last answer
    /// carries `Connection: close` and the connection closes after it, so
    /// no client keeps a connection, and its place under the cap, forever.
    /// `usize::MAX`: no limit.
    #[must_use]
    pub fn max_requests_per_connection(self, requests: usize) -> Self {
        Self { max_requests_per_connection: requests.max(1), ..self }
    }

    /// How long one connection is served: past it an idle connection is
    /// closed, and a busy one after its current answer, which carries
    /// `Connection: close`. `Duration::MAX`: no limit.
    #[must_use]
    pub fn max_connection_age(self, age: Duration) -> Self {
        Self { max_connection_age: age, ..self }
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

    /// hyper's HTTP/1 connection settings for these limits.
    fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_header_size(self.max_header_bytes)
            .max_buf_size(self.max_header_bytes.max(HYPER_MIN_BUF_SIZE))
            .max_headers(self.max_headers);
        builder
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
/// long as it likes. This loop bounds what a client can hold
/// ([`ServeOptions`]):
///
/// - the time and the bytes of a request head;
/// - the connections at once; at the cap, idle keep-alive connections are
///   closed, the oldest first, to admit a newcomer, so clients that hold
///   every connection with a cheap request now and then cannot lock others
///   out;
/// - the requests and the time one connection is served.
///
/// What it cannot see is who is connecting: per-address connection and
/// request limits belong to a proxy in front.
///
/// Any tower service of `http::Request<hyper::body::Incoming>` serves: an
/// axum `Router`, an [`Endpoint`](super::Endpoint).
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
    let http1 = options.http1();
    let registry = Arc::new(Registry::default());
    let mut shutdown = std::pin::pin!(shutdown);
    // One permit per open connection.
    let permits = Arc::new(Semaphore::new(options.max_connections));
    loop {
        // Accept before taking a permit: at the cap the loop must know a
        // newcomer is waiting to make room for it, and holding one socket
        // beyond the cap is cheap.
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
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::select! {
                permit = make_room(&permits, &registry) => match permit {
                    Some(permit) => permit,
                    None => break,
                },
                () = &mut shutdown => break,
            },
        };
        let open = registry.register(permit);
        let service = Tracked {
            service: TowerToHyperService::new(service.clone()),
            connection: Arc::clone(&open.connection),
            max_requests: options.max_requests_per_connection,
        };
        let connection = http1.serve_connection(TokioIo::new(stream), service);
        let max_age = options.max_connection_age;
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let asked_to_close = async {
                tokio::select! {
                    () = open.connection.close.notified() => {}
                    // `sleep` saturates a `Duration::MAX` to "never".
                    () = tokio::time::sleep(max_age) => {}
                }
            };
            // A client going away mid-request is routine, not worth a log.
            tokio::select! {
                _ = connection.as_mut() => {}
                () = asked_to_close => {
                    // hyper closes an idle connection at once and a busy
                    // one after its current answer (`Connection: close`).
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            // Leaving the registry frees the permit.
            drop(open);
        });
    }
    drop(listener);
    registry.close_all();
    if tokio::time::timeout(options.drain_timeout, registry.drained()).await.is_err() {
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "token_refresh", "connections still open after the drain timeout");
    }
}

/// At the connection cap: asks the oldest idle connection to close, then
/// the next every [`RECLAIM_INTERVAL`] while none has closed, until a
/// permit is free. `None` if the semaphore is closed (it never is).
async fn make_room(permits: &Arc<Semaphore>, registry: &Registry) -> Option<OwnedSemaphorePermit> {
    loop {
        let _asked = registry.close_oldest_idle();
        #[cfg(feature = "tracing")]
        if _asked {
            tracing::debug!(target: "token_refresh", "at the connection cap: closing the oldest idle connection");
        }
        match tokio::time::timeout(RECLAIM_INTERVAL, Arc::clone(permits).acquire_owned()).await {
            Ok(Ok(permit)) => return Some(permit),
            Ok(Err(_closed)) => return None,
            Err(_elapsed) => {}
        }
    }
}

/// The open connections in the order they were accepted, which is the
/// order they are asked to close in at the cap.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<Open>,
    /// Woken when the last connection leaves (the drain waits for it).
    emptied: Notify,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    connections: BTreeMap<u64, Arc<Connection>>,
}

/// What the loop knows of one connection.
#[derive(Debug, Default)]
struct Connection {
    /// Requests being answered now: 0 between requests.
    in_flight: AtomicUsize,
    /// Requests received so far.
    requests: AtomicUsize,
    /// Already asked to close (at the cap it is not picked again).
    closing: AtomicBool,
    /// Asks the connection's task to shut the connection down gracefully.
    close: Notify,
}

impl Registry {
    /// The connection map. Nothing panics while holding it, but a poisoned
    /// map is still the right map: the loop goes on with it.
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a new connection holding `permit`.
    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Registered {
        let connection = Arc::new(Connection::default());
        let mut open = self.lock();
        let id = open.next_id;
        open.next_id = id.wrapping_add(1);
        open.connections.insert(id, Arc::clone(&connection));
        Registered { registry: Arc::clone(self), id, connection, _permit: permit }
    }

    /// Asks the oldest connection that is between requests, and not asked
    /// yet, to close; false if there is none.
    fn close_oldest_idle(&self) -> bool {
        let open = self.lock();
        let idle = open.connections.values().find(|connection| {
            connection.in_flight.load(Ordering::Relaxed) == 0 && !connection.closing.load(Ordering::Relaxed)
        });
        idle.is_some_and(|connection| {
            connection.ask_to_close();
            true
        })
    }

    /// Asks every open connection to close (the shutdown signal).
    fn close_all(&self) {
        for connection in self.lock().connections.values() {
            connection.ask_to_close();
        }
    }

    /// Resolves once no connection is open.
    async fn drained(&self) {
        loop {
            let emptied = self.emptied.notified();
            let mut emptied = std::pin::pin!(emptied);
            // Registered before looking, so a last connection leaving in
            // between still wakes this.
            emptied.as_mut().enable();
            if self.lock().connections.is_empty() {
                return;
            }
            emptied.await;
        }
    }
}

impl Connection {
    fn ask_to_close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        // Stored if the task is not waiting yet, so the request is never lost.
        self.close.notify_one();
    }
}

/// A connection's place in the [`Registry`] and its permit, both given up
/// when its task ends.
#[derive(Debug)]
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    connection: Arc<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        open.connections.remove(&self.id);
        if open.connections.is_empty() {
            self.registry.emptied.notify_waiters();
        }
    }
}

/// The application's service as one connection calls it: marks the
/// connection busy while a request is answered, and closes it after its
/// last allowed request.
struct Tracked<S> {
    service: TowerToHyperService<S>,
    connection: Arc<Connection>,
    max_requests: usize,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    // Boxed: naming the answer's future type without an unsafe pin
    // projection; one allocation per request, as axum's router makes too.
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(Arc::clone(&self.connection));
        // The counter cannot wrap: the connection closes at `max_requests`.
        let served = self.connection.requests.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let last = served >= self.max_requests;
        let answer = hyper::service::Service::call(&self.service, request);
        Box::pin(async move {
            let mut response = answer.await?;
            drop(busy);
            if last {
                // hyper closes the connection after an answer that says so.
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

/// A request in flight on a connection, from its head to its answer (or to
/// its future being dropped when the client goes away).
struct Busy(Arc<Connection>);

impl Busy {
    fn new(connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(connection)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
