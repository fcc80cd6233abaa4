//! The session: one token pair, refreshed once per generation however many
//! tasks and processes use it.
//!
//! How a call finds its token:
//! 1. **Fast path** (no lock, no await): the current pair is an
//!    [`ArcSwap`]; while the monotonic clock is before its refresh instant,
//!    `access_token` returns it.
//! 2. **Single flight**: otherwise the caller queues on the session's
//!    flight mutex. The first one through runs a *round* in a spawned task
//!    (so a caller that gives up cannot cancel a refresh that is on the
//!    wire); the others, once through, see that the round counter or the
//!    generation moved and take the round's result without refreshing
//!    again — success or failure.
//! 3. **A round** takes the store's lock (other processes), adopts a newer
//!    generation if the store has one, else sends the refresh, retrying a
//!    lost answer with the *same* refresh token, and writes the new pair by
//!    compare-and-swap.
//! 4. **After a failed round** the session cools down: callers get the
//!    still-valid token, or the error at once, instead of retrying the
//!    refresh one after another.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, watch};
use tokio::time::{Instant, timeout};

use crate::config::Config;
use crate::error::{EndReason, Error, Outcome, Refusal, StoreError, Transient, TransientKind, classify, end_reason};
use crate::login::Credentials;
use crate::store::{DynStore, StoreLock, StoredSession, Swap, TokenStore};
use crate::transport::{Call, DynTransport, Request, Transport};
use crate::wire::{GRACE_HEADER, ServerGrace, TokenPair, server_grace};

/// No access lifetime is taken to be longer than this (keeps instant
/// arithmetic far from overflow).
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// What a session is doing, as [`Session::state`] and [`Session::watch`]
/// report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// A usable pair of this generation.
    Fresh {
        /// The pair's generation in the store.
        generation: u64,
    },
    /// A refresh round is running; callers that need a new token wait.
    Refreshing,
    /// The last round failed transiently; the session is kept and the next
    /// round waits until `until`.
    CoolingDown {
        /// The earliest instant of the next round (monotonic clock).
        until: Instant,
    },
    /// The session has ended; log in again.
    Ended(EndReason),
}

/// An access token of a session: cheap to clone (it shares the session's
/// pair), redacted in `Debug`.
#[derive(Clone)]
pub struct AccessToken {
    current: Arc<Current>,
}

impl AccessToken {
    /// The token.
    pub fn as_str(&self) -> &str {
        self.current.pair.access_token()
    }

    /// The `Authorization` header value: `Bearer <token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.as_str())
    }

    /// The generation of the pair it belongs to.
    pub fn generation(&self) -> u64 {
        self.current.generation
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("generation", &self.current.generation).finish_non_exhaustive()
    }
}

/// The session's pair and what it knows about it. Replaced whole, never
/// changed in place.
struct Current {
    generation: u64,
    pair: TokenPair,
    refresh_at: Instant,
    expires_at: Instant,
    ended: Option<EndReason>,
    /// Rounds settled so far; a waiter that sees it move takes the result.
    round: u64,
    /// The error of the last round when it failed, handed to its waiters.
    failure: Option<Error>,
    /// No new round before this instant.
    cooldown_until: Option<Instant>,
    failures_in_a_row: u32,
    /// Whether the store holds (or held) this generation: a store emptied
    /// since then means another process ended the session.
    persisted: bool,
    /// The grace window for this pair's rotation: what the server stated
    /// with it, else the configured assumption.
    grace: ServerGrace,
}

impl Current {
    fn fresh(
        config: &Config,
        generation: u64,
        pair: TokenPair,
        received: Instant,
        round: u64,
        stated: Option<ServerGrace>,
    ) -> Self {
        let lifetime = Duration::from_secs(pair.expiration_time()).min(MAX_LIFETIME);
        let grace = config.grace_for(stated);
        let (refresh_at, expires_at) = config.schedule(received, lifetime, grace.window);
        Self {
            generation,
            pair,
            refresh_at,
            expires_at,
            ended: None,
            round,
            failure: None,
            cooldown_until: None,
            failures_in_a_row: 0,
            persisted: true,
            grace,
        }
    }

    /// A pair another process stored: its age by this machine's clock, or
    /// due at once when that is unknown.
    fn adopted(config: &Config, stored: StoredSession, round: u64) -> Self {
        let now = Instant::now();
        let generation = stored.generation();
        let stated = stored.server_grace();
        match stored.age_at(config.wall_now()) {
            Some(age) => {
                let received = now.checked_sub(age).unwrap_or(now);
                Self::fresh(config, generation, stored.pair().clone(), received, round, stated)
            }
            None => Self {
                refresh_at: now,
                expires_at: now,
                ..Self::fresh(config, generation, stored.pair().clone(), now, round, stated)
            },
        }
    }

    fn ended(&self, reason: EndReason) -> Self {
        let now = Instant::now();
        Self {
            generation: self.generation,
            pair: TokenPair::new("", "", 0),
            refresh_at: now,
            expires_at: now,
            ended: Some(reason),
            round: self.round + 1,
            failure: None,
            cooldown_until: None,
            failures_in_a_row: 0,
            persisted: self.persisted,
            grace: self.grace,
        }
    }

    fn failed(&self, config: &Config, error: Error) -> Self {
        let failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let cooldown = config.cooldown(failures_in_a_row, error.retry_after());
        Self {
            generation: self.generation,
            pair: self.pair.clone(),
            refresh_at: self.refresh_at,
            expires_at: self.expires_at,
            ended: None,
            round: self.round + 1,
            failure: Some(error),
            cooldown_until: Some(Instant::now() + cooldown),
            failures_in_a_row,
            persisted: self.persisted,
            grace: self.grace,
        }
    }

    fn state(&self) -> SessionState {
        match (&self.ended, self.cooldown_until) {
            (Some(reason), _) => SessionState::Ended(reason.clone()),
            (None, Some(until)) => SessionState::CoolingDown { until },
            (None, None) => SessionState::Fresh { generation: self.generation },
        }
    }

    /// The cooling-down error for a caller arriving after the round.
    fn cooling_error(&self, now: Instant) -> Option<Error> {
        let until = self.cooldown_until.filter(|until| now < *until)?;
        Some(Error::Transient(Transient::new(TransientKind::CoolingDown, Some(until - now))))
    }
}

struct Inner {
    transport: Box<dyn DynTransport>,
    store: Box<dyn DynStore>,
    config: Config,
    current: ArcSwap<Current>,
    /// Held by whoever runs a round (and by logout).
    flight: Arc<Mutex<()>>,
    state: watch::Sender<SessionState>,
}

/// A logged-in session: cheap to clone, `Send + Sync`; every clone shares
/// one pair and one refresh.
///
/// ```no_run
/// # async fn run(transport: impl token_refresh_client::Transport) -> Result<(), Box<dyn std::error::Error>> {
/// use token_refresh_client::{Config, Credentials, MemoryTokenStore, Session};
/// # let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
/// let credentials = Credentials::sign("carol@example.com", &key);
/// let session = Session::login(transport, MemoryTokenStore::new(), &credentials, Config::default()).await?;
/// let token = session.access_token().await?;
/// // … send `Authorization: {token.bearer()}`; on a 401 from the resource:
/// let token = session.on_unauthorized(&token).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("state", &self.state()).finish_non_exhaustive()
    }
}

impl Session {
    fn from_current(
        transport: Box<dyn DynTransport>,
        store: Box<dyn DynStore>,
        config: Config,
        current: Current,
    ) -> Self {
        let (state, _) = watch::channel(current.state());
        Self {
            inner: Arc::new(Inner {
                transport,
                store,
                config,
                current: ArcSwap::from_pointee(current),
                flight: Arc::new(Mutex::new(())),
                state,
            }),
        }
    }

    /// Logs in with `credentials` and stores the new session (generation
    /// one above whatever the store held; other processes adopt it).
    ///
    /// A login is sent once and never retried here: were its answer lost, a
    /// retry would start a second session. On [`Error::Transient`] retry
    /// yourself after [`Error::retry_after`] (the server answers 429 or 503
    /// with `Retry-After: 60`).
    pub async fn login(
        transport: impl Transport,
        store: impl TokenStore,
        credentials: &Credentials,
        config: Config,
    ) -> Result<Self, Error> {
        let transport: Box<dyn DynTransport> = Box::new(transport);
        let store: Box<dyn DynStore> = Box::new(store);
        let lock = lock_store(&*store, &config).await?;
        let current = login_locked(&*transport, &*store, &lock, credentials, &config).await?;
        drop(lock);
        Ok(Self::from_current(transport, store, config, current))
    }

    /// Resumes the session in `store`, if there is one. Nothing is sent; a
    /// pair that is due is refreshed by the first call that needs it.
    pub async fn resume(
        transport: impl Transport,
        store: impl TokenStore,
        config: Config,
    ) -> Result<Option<Self>, Error> {
        let Some(stored) = store.load().await? else { return Ok(None) };
        let current = Current::adopted(&config, stored, 0);
        Ok(Some(Self::from_current(Box::new(transport), Box::new(store), config, current)))
    }

    /// Resumes the session in `store`, or logs in when there is none, under
    /// the store's lock: processes that start together log in once.
    pub async fn resume_or_login(
        transport: impl Transport,
        store: impl TokenStore,
        credentials: &Credentials,
        config: Config,
    ) -> Result<Self, Error> {
        let transport: Box<dyn DynTransport> = Box::new(transport);
        let store: Box<dyn DynStore> = Box::new(store);
        let lock = lock_store(&*store, &config).await?;
        let current = match store.load_boxed().await? {
            Some(stored) => Current::adopted(&config, stored, 0),
            None => login_locked(&*transport, &*store, &lock, credentials, &config).await?,
        };
        drop(lock);
        Ok(Self::from_current(transport, store, config, current))
    }

    /// The current access token, refreshed first when it is due.
    ///
    /// While the token is fresh this reads one atomic pointer: no lock, no
    /// waiting. When it is due, one caller refreshes and every other caller
    /// of every clone waits for that refresh and shares its result.
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        let current = self.inner.current.load_full();
        let now = Instant::now();
        if let Some(reason) = &current.ended {
            return Err(Error::Ended(reason.clone()));
        }
        if now < current.refresh_at {
            return Ok(AccessToken { current });
        }
        if let Some(error) = current.cooling_error(now) {
            // The last round failed: the token while it lasts, else the
            // error at once.
            return if now < current.expires_at { Ok(AccessToken { current }) } else { Err(error) };
        }
        self.refresh(current, false).await
    }

    /// Call this when a resource answered 401 to `token`. Refreshes only if
    /// `token` is still the session's current one; a stale token (the
    /// session moved on meanwhile) just gets the current token back.
    pub async fn on_unauthorized(&self, token: &AccessToken) -> Result<AccessToken, Error> {
        let current = self.inner.current.load_full();
        if let Some(reason) = &current.ended {
            return Err(Error::Ended(reason.clone()));
        }
        if current.generation != token.current.generation {
            return self.access_token().await;
        }
        if let Some(error) = current.cooling_error(Instant::now()) {
            return Err(error);
        }
        self.refresh(current, true).await
    }

    /// Logs out: revokes the session on the server and removes it from the
    /// store. A transient failure keeps the session (call again); a 401
    /// means it had already ended and counts as success.
    pub async fn logout(&self) -> Result<(), Error> {
        let _flight = Arc::clone(&self.inner.flight).lock_owned().await;
        let inner = &*self.inner;
        let mut current = inner.current.load_full();
        if current.ended.is_some() {
            return Ok(());
        }
        let lock = lock_store(&*inner.store, &inner.config).await?;
        let stored = inner.store.load_boxed().await?;
        if let Some(stored) = stored.filter(|stored| stored.generation() > current.generation) {
            current = Arc::new(Current::adopted(&inner.config, stored, current.round));
        }
        let request = Request::with_token(Call::Logout, current.pair.refresh_token());
        match send(&*inner.transport, request, &inner.config).await {
            Outcome::Pair(..) | Outcome::Refused(_) => {}
            // 200 with `data: null` is logout's success.
            Outcome::Transient(transient) if matches!(transient.kind(), TransientKind::GarbledAnswer) => {}
            Outcome::Transient(transient) => return Err(Error::Transient(transient)),
            Outcome::Unexpected(refusal) => return Err(Error::Unexpected(refusal)),
        }
        let removed = forget(&*inner.store, &lock, current.generation).await;
        inner.publish(current.ended(EndReason::LoggedOut));
        removed
    }

    /// The grace window in force for the current pair's rotation: the one
    /// the server stated with it ([`GRACE_HEADER`](crate::GRACE_HEADER)),
    /// else [`Config::grace_window`]. The refresh margin is at least this,
    /// and a lost answer is retried with the same token only inside it.
    pub fn grace_window(&self) -> Duration {
        self.inner.current.load().grace.window
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.inner.current.load().state()
    }

    /// A receiver that sees every state change (fresh, refreshing, cooling
    /// down, ended).
    pub fn watch(&self) -> watch::Receiver<SessionState> {
        self.inner.state.subscribe()
    }

    /// The slow path: wait for the flight, then take a settled round's
    /// result or run a round.
    async fn refresh(&self, seen: Arc<Current>, forced: bool) -> Result<AccessToken, Error> {
        let flight = Arc::clone(&self.inner.flight).lock_owned().await;
        let current = self.inner.current.load_full();
        if current.round != seen.round || current.generation != seen.generation {
            // A round settled while we waited: its result is ours.
            return settled(current, seen.generation, forced);
        }
        let now = Instant::now();
        if let Some(error) = current.cooling_error(now) {
            return if !forced && now < current.expires_at { Ok(AccessToken { current }) } else { Err(error) };
        }
        if let Some(reason) = &current.ended {
            return Err(Error::Ended(reason.clone()));
        }
        // Spawned, holding the flight: a caller dropping its future must not
        // cancel a refresh whose request may already be on the wire.
        let inner = Arc::clone(&self.inner);
        let round = tokio::spawn(async move {
            inner.run_round(current).await;
            drop(flight);
        });
        if round.await.is_err() {
            // Only a panic gets here; the flight was released by unwinding.
            return Err(Error::Transient(Transient::new(TransientKind::CoolingDown, None)));
        }
        settled(self.inner.current.load_full(), seen.generation, forced)
    }
}

/// The answer for a caller whose token was `seen_generation`, after a round.
fn settled(current: Arc<Current>, seen_generation: u64, forced: bool) -> Result<AccessToken, Error> {
    if let Some(reason) = &current.ended {
        return Err(Error::Ended(reason.clone()));
    }
    if current.generation != seen_generation {
        return Ok(AccessToken { current });
    }
    let now = Instant::now();
    let error = current.failure.clone().or_else(|| current.cooling_error(now));
    match error {
        // The refresh failed: the old token while it lasts (unless the
        // caller was told it is refused).
        Some(error) if forced || now >= current.expires_at => Err(error),
        _ => Ok(AccessToken { current }),
    }
}

impl Inner {
    fn publish(&self, next: Current) {
        let state = next.state();
        self.current.store(Arc::new(next));
        self.state.send_replace(state);
    }

    async fn run_round(&self, current: Arc<Current>) {
        self.state.send_replace(SessionState::Refreshing);
        let next = match self.round(&current).await {
            Ok(next) => next,
            Err(Error::Ended(reason)) => current.ended(reason),
            Err(error) => current.failed(&self.config, error),
        };
        self.publish(next);
    }

    /// One refresh round under the store's lock. `Ok` is the next pair
    /// (refreshed or adopted); `Err(Ended)` ends the session; any other
    /// error keeps it.
    async fn round(&self, current: &Current) -> Result<Current, Error> {
        let config = &self.config;
        let next_round = current.round + 1;
        let lock = lock_store(&*self.store, config).await?;
        let stored_generation = match self.store.load_boxed().await? {
            // Another process refreshed (or logged in) meanwhile: adopt it.
            Some(stored) if stored.generation() > current.generation => {
                let adopted = Current::adopted(config, stored, next_round);
                if Instant::now() < adopted.refresh_at {
                    return Ok(adopted);
                }
                // Due as well: refresh it, still under the lock.
                return self.refresh_locked(&lock, &adopted, Some(adopted.generation), next_round).await;
            }
            // The store was emptied after we wrote to it: another process
            // logged out or saw the session end.
            None if current.persisted => return Err(Error::Ended(EndReason::LoggedOut)),
            // The same generation, or an older one when our last write
            // failed: replace it.
            stored => stored.map(|stored| stored.generation()),
        };
        self.refresh_locked(&lock, current, stored_generation, next_round).await
    }

    /// Sends the refresh and retries a lost answer with the same token.
    async fn refresh_locked(
        &self,
        lock: &StoreLock,
        current: &Current,
        stored_generation: Option<u64>,
        next_round: u64,
    ) -> Result<Current, Error> {
        let config = &self.config;
        let started = Instant::now();
        // Each attempt after the first may be a replay of a rotated token:
        // never more of them than the server said it tolerates.
        let max_attempts = match current.grace.replays {
            Some(replays) if !current.grace.window.is_zero() => config.max_attempts().min(replays.saturating_add(1)),
            _ => config.max_attempts(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = Request::with_token(Call::Refresh, current.pair.refresh_token());
            let transient = match send(&*self.transport, request, config).await {
                Outcome::Pair(pair, stated) => {
                    let received = Instant::now();
                    let generation = current.generation.max(stored_generation.unwrap_or(0)) + 1;
                    let stored = StoredSession::received_at(generation, pair.clone(), config.wall_now())
                        .with_server_grace(stated);
                    // A failed write keeps the new pair in memory: it is the
                    // only valid one now. Other processes then find the
                    // older record, and their refresh is reuse unless it
                    // falls in the server's grace window.
                    let written = self.store.cas_boxed(lock, stored_generation, Some(stored)).await;
                    let persisted = matches!(written, Ok(Swap::Done));
                    let fresh = Current::fresh(config, generation, pair, received, next_round, stated);
                    return Ok(Current { persisted, ..fresh });
                }
                Outcome::Refused(refusal) => return self.refused(lock, current, refusal, next_round).await,
                Outcome::Unexpected(refusal) => return Err(Error::Unexpected(refusal)),
                Outcome::Transient(transient) => transient,
            };
            let delay = config.backoff_after(attempt, transient.retry_after());
            if attempt >= max_attempts || started.elapsed() + delay > config.round_budget() {
                return Err(Error::Transient(transient));
            }
            tokio::time::sleep(delay).await;
            if started.elapsed() > current.grace.window {
                // Past the grace window a replay of a rotated token is reuse:
                // look at the store before sending it again.
                if let Some(stored) = self.store.load_boxed().await?
                    && stored.generation() > current.generation
                {
                    return Ok(Current::adopted(config, stored, next_round));
                }
            }
        }
    }

    /// A refused refresh ends the session, unless the store holds a newer
    /// generation (then that is the session).
    async fn refused(
        &self,
        lock: &StoreLock,
        current: &Current,
        refusal: Refusal,
        next_round: u64,
    ) -> Result<Current, Error> {
        if let Some(stored) = self.store.load_boxed().await?
            && stored.generation() > current.generation
        {
            return Ok(Current::adopted(&self.config, stored, next_round));
        }
        // Best effort: the session is over whether or not the store
        // forgets it.
        let _ = forget(&*self.store, lock, current.generation).await;
        Err(Error::Ended(end_reason(refusal)))
    }
}

/// Removes generation `generation` from the store (nothing if the store
/// holds another).
async fn forget(store: &dyn DynStore, lock: &StoreLock, generation: u64) -> Result<(), Error> {
    match store.cas_boxed(lock, Some(generation), None).await? {
        Swap::Done | Swap::Conflict(_) => Ok(()),
    }
}

async fn lock_store(store: &dyn DynStore, config: &Config) -> Result<StoreLock, Error> {
    match timeout(config.lock_timeout_value(), store.lock_boxed()).await {
        Ok(lock) => Ok(lock?),
        Err(_) => Err(Error::Transient(Transient::new(TransientKind::LockTimeout, None))),
    }
}

/// One request, timed out, classified.
async fn send(transport: &dyn DynTransport, request: Request, config: &Config) -> Outcome {
    match timeout(config.request_timeout_value(), transport.send_boxed(request)).await {
        Err(_) => Outcome::Transient(Transient::new(TransientKind::Timeout, None)),
        Ok(Err(error)) => Outcome::Transient(Transient::new(TransientKind::Transport(error), None)),
        Ok(Ok(response)) => match classify(response.status(), response.header("retry-after"), response.body()) {
            Outcome::Pair(pair, _) => Outcome::Pair(pair, server_grace(response.header(GRACE_HEADER))),
            outcome => outcome,
        },
    }
}

async fn login_locked(
    transport: &dyn DynTransport,
    store: &dyn DynStore,
    lock: &StoreLock,
    credentials: &Credentials,
    config: &Config,
) -> Result<Current, Error> {
    let (pair, stated) = match send(transport, Request::login(credentials.body()), config).await {
        Outcome::Pair(pair, stated) => (pair, stated),
        Outcome::Transient(transient) => return Err(Error::Transient(transient)),
        Outcome::Refused(refusal) => return Err(Error::LoginRefused(refusal)),
        Outcome::Unexpected(refusal) => return Err(Error::Unexpected(refusal)),
    };
    let received = Instant::now();
    let stored_generation = store.load_boxed().await?.map(|stored| stored.generation());
    let generation = stored_generation.unwrap_or(0) + 1;
    let record = StoredSession::received_at(generation, pair.clone(), config.wall_now()).with_server_grace(stated);
    match store.cas_boxed(lock, stored_generation, Some(record)).await? {
        Swap::Done => Ok(Current::fresh(config, generation, pair, received, 0, stated)),
        // Only a writer that ignores the lock gets here.
        Swap::Conflict(_) => {
            Err(Error::Store(StoreError::new("store the new session", "the store changed under its lock")))
        }
    }
}
