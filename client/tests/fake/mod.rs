//! A fake session endpoint with the reference server's rotation rules:
//! single-use refresh tokens, reuse revokes the session, an optional grace
//! window that answers the immediate predecessor with the identical pair,
//! and scripted faults (lost answers, 503s, connection failures, delays).

// Test support: a panic here is a failed test.
#![allow(dead_code, unreachable_pub, missing_docs, missing_debug_implementations)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use token_refresh_client::{Call, Request, Response, Transport, TransportError};

/// What the next refresh request meets.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The server rotates, the answer is lost (reset after sending).
    LoseAnswer,
    /// The server rotates, then the answer never comes (a timeout).
    Hang,
    /// The request never leaves (connection refused).
    NotSent,
    /// This status and `Retry-After`, no rotation.
    Status(u16, Option<&'static str>),
}

#[derive(Default)]
struct State {
    session: u64,
    generation: u64,
    current: Option<String>,
    previous: Option<String>,
    /// Every refresh token the session has had (for reuse detection).
    spent: Vec<String>,
    revoked: Option<&'static str>,
    faults: VecDeque<Fault>,
    user_gone: bool,
}

#[derive(Default)]
pub struct Server {
    state: Mutex<State>,
    pub logins: AtomicUsize,
    pub refresh_requests: AtomicUsize,
    pub rotations: AtomicUsize,
    pub grace_replays: AtomicUsize,
    pub reuse_detected: AtomicUsize,
    pub logouts: AtomicUsize,
    /// Access lifetime in seconds (`expirationTime`).
    pub lifetime: AtomicUsize,
    /// Whether the grace window is on (unbounded in time for the tests).
    pub grace: std::sync::atomic::AtomicBool,
    /// How long every refresh takes, in milliseconds.
    pub delay_ms: AtomicUsize,
    /// JWT-shaped access tokens whose `exp` is this (unix seconds), to show
    /// the client never reads it.
    pub exp_claim: AtomicUsize,
    /// The `Token-Refresh-Grace` value every pair is sent with, if any.
    pub grace_header: Mutex<Option<&'static str>>,
}

/// A transport to one fake server; cheap to clone.
#[derive(Clone)]
pub struct Fake(pub Arc<Server>);

impl Fake {
    pub fn new(lifetime: u64) -> Self {
        let server = Server::default();
        server.lifetime.store(lifetime as usize, Ordering::SeqCst);
        server.grace.store(true, Ordering::SeqCst);
        Self(Arc::new(server))
    }

    pub fn strict(self) -> Self {
        self.0.grace.store(false, Ordering::SeqCst);
        self
    }

    /// Every pair states `value` as its grace window.
    pub fn stating_grace(self, value: &'static str) -> Self {
        *self.0.grace_header.lock().unwrap() = Some(value);
        self
    }

    pub fn fault(&self, fault: Fault) {
        self.0.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.0.state.lock().unwrap().faults.clear();
    }

    pub fn revoke(&self) {
        self.0.state.lock().unwrap().revoked = Some("session has been revoked");
    }

    pub fn delete_user(&self) {
        self.0.state.lock().unwrap().user_gone = true;
    }

    pub fn count(&self, counter: fn(&Server) -> &AtomicUsize) -> usize {
        counter(&self.0).load(Ordering::SeqCst)
    }

    pub fn refreshes(&self) -> usize {
        self.count(|s| &s.refresh_requests)
    }

    pub fn rotations(&self) -> usize {
        self.count(|s| &s.rotations)
    }

    fn pair(&self, state: &State) -> Response {
        let access = match self.0.exp_claim.load(Ordering::SeqCst) {
            0 => format!("a{}.{}", state.session, state.generation),
            exp => format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.{}.sig{}", jwt_payload(exp), state.generation),
        };
        let body = format!(
            r#"{{"status":{{"code":200,"name":"OK"}},"data":{{"accessToken":"{access}","refreshToken":"{}","expirationTime":{}}}}}"#,
            state.current.as_deref().unwrap_or_default(),
            self.0.lifetime.load(Ordering::SeqCst)
        );
        let response = Response::new(200, body);
        match *self.0.grace_header.lock().unwrap() {
            Some(value) => response.with_header("Token-Refresh-Grace", value),
            None => response,
        }
    }

    fn handle(&self, request: &Request) -> Result<Response, TransportError> {
        let mut state = self.0.state.lock().unwrap();
        match request.call() {
            Call::Login => {
                self.0.logins.fetch_add(1, Ordering::SeqCst);
                state.session += 1;
                state.generation = 1;
                state.revoked = None;
                state.previous = None;
                state.spent.clear();
                state.current = Some(format!("r{}.1", state.session));
                Ok(self.pair(&state))
            }
            Call::Logout => {
                self.0.logouts.fetch_add(1, Ordering::SeqCst);
                state.revoked = Some("session has been revoked");
                Ok(Response::new(200, r#"{"status":{"code":200,"name":"OK"},"data":null}"#))
            }
            Call::Refresh => {
                self.0.refresh_requests.fetch_add(1, Ordering::SeqCst);
                let token = request.authorization().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
                let fault = state.faults.pop_front();
                match fault {
                    Some(Fault::NotSent) => return Err(TransportError::not_sent("connection refused")),
                    Some(Fault::Status(status, retry_after)) => {
                        let body = format!(
                            r#"{{"status":{{"code":{status},"name":"SERVICE_UNAVAILABLE","message":"retry later"}},"data":null}}"#
                        );
                        let response = Response::new(status, body);
                        return Ok(match retry_after {
                            Some(value) => response.with_header("Retry-After", value),
                            None => response,
                        });
                    }
                    _ => {}
                }
                let answer = self.refresh(&mut state, &token);
                match fault {
                    Some(Fault::LoseAnswer) => Err(TransportError::maybe_sent("connection reset by peer")),
                    Some(Fault::Hang) => Err(TransportError::maybe_sent("hang")),
                    _ => Ok(answer),
                }
            }
            _ => unreachable!(),
        }
    }

    fn refresh(&self, state: &mut State, token: &str) -> Response {
        if state.user_gone {
            return failure(404, "NOT_FOUND", "user not found");
        }
        if let Some(message) = state.revoked {
            return failure(401, "UNAUTHORIZED", message);
        }
        if state.current.as_deref() == Some(token) {
            self.0.rotations.fetch_add(1, Ordering::SeqCst);
            state.generation += 1;
            state.spent.push(token.to_owned());
            state.previous = state.current.take();
            state.current = Some(format!("r{}.{}", state.session, state.generation));
            return self.pair(state);
        }
        if state.previous.as_deref() == Some(token) && self.0.grace.load(Ordering::SeqCst) {
            self.0.grace_replays.fetch_add(1, Ordering::SeqCst);
            return self.pair(state);
        }
        if state.spent.iter().any(|spent| spent == token) {
            self.0.reuse_detected.fetch_add(1, Ordering::SeqCst);
            state.revoked = Some("session has been revoked");
            return failure(401, "UNAUTHORIZED", "refresh token was already used; the session is revoked");
        }
        failure(401, "UNAUTHORIZED", "refresh token is not valid")
    }
}

fn failure(code: u16, name: &str, message: &str) -> Response {
    Response::new(code, format!(r#"{{"status":{{"code":{code},"name":"{name}","message":"{message}"}},"data":null}}"#))
}

/// base64url of `{"exp":<exp>}` without padding.
fn jwt_payload(exp: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let input = format!(r#"{{"exp":{exp}}}"#).into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

impl Transport for Fake {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let delay = self.0.delay_ms.load(Ordering::SeqCst);
        if delay > 0 && request.call() == Call::Refresh {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        let hang =
            matches!(self.0.state.lock().unwrap().faults.front(), Some(Fault::Hang)) && request.call() == Call::Refresh;
        let answer = self.handle(&request);
        if hang {
            std::future::pending::<()>().await;
        }
        answer
    }
}
