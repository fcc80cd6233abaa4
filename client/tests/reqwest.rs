//! `BearerMiddleware` in a `reqwest-middleware` client against a loopback
//! resource server: the header, one retry of a 401 through the session
//! (body and all), and what is not retried.
#![cfg(feature = "reqwest")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a failure here is a failed test

mod fake;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fake::Fake;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use token_refresh_client::{BearerMiddleware, Config, Credentials, MemoryTokenStore, Session};
use tokio::net::TcpListener;

/// What the resource saw: each request's `Authorization` and body.
type Seen = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A loopback resource that answers 200 to `Bearer <accepted>` and 401 to
/// anything else, recording every request.
async fn resource(accepted: &'static str) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Seen::default();
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let seen = Arc::clone(&recorded);
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let seen = Arc::clone(&seen);
                async move {
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .map(|value| value.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let body = request.into_body().collect().await?.to_bytes();
                    let status = if authorization == format!("Bearer {accepted}") { 200 } else { 401 };
                    seen.lock().unwrap().push((authorization, body));
                    Ok::<_, hyper::Error>(
                        http::Response::builder().status(status).body(Full::new(Bytes::new())).unwrap(),
                    )
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (base, seen)
}

async fn session(fake: &Fake) -> Session {
    let credentials = Credentials::sign("carol@example.com", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    Session::login(fake.clone(), MemoryTokenStore::new(), &credentials, Config::default()).await.unwrap()
}

fn client(session: &Session) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new()).with(BearerMiddleware::new(session.clone())).build()
}

fn bearers(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().iter().map(|(authorization, _)| authorization.clone()).collect()
}

#[tokio::test]
async fn every_request_carries_the_current_token() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let (base, seen) = resource("a1.1").await;
    let client = client(&session);
    for _ in 0..3 {
        assert_eq!(client.get(format!("{base}/orders")).send().await.unwrap().status(), 200);
    }
    assert_eq!(bearers(&seen), vec!["Bearer a1.1"; 3]);
    assert_eq!(fake.refreshes(), 0);
}

#[tokio::test]
async fn a_401_refreshes_once_and_the_request_is_replayed_with_its_body() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    // The resource already wants the next generation's token.
    let (base, seen) = resource("a1.2").await;
    let client = client(&session);
    let answer = client.post(format!("{base}/orders")).body("{\"item\":7}").send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(fake.refreshes(), 1);
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now.len(), 2);
    assert_eq!(seen_now[1], ("Bearer a1.2".to_owned(), Bytes::from_static(b"{\"item\":7}")));
    // The next request carries the new token at once.
    assert_eq!(client.get(format!("{base}/orders")).send().await.unwrap().status(), 200);
    assert_eq!((seen.lock().unwrap().len(), fake.refreshes()), (3, 1));
}

#[tokio::test]
async fn many_requests_refused_at_once_refresh_once() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let (base, _) = resource("a1.2").await;
    let client = client(&session);
    let calls = (0..16).map(|_| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move { client.get(format!("{base}/orders")).send().await.unwrap().status() })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(fake.refreshes(), 1, "one refresh for every request the old token failed");
}

#[tokio::test]
async fn a_second_401_is_returned_not_retried_again() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let (base, seen) = resource("never").await;
    let answer = client(&session).get(format!("{base}/orders")).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!((seen.lock().unwrap().len(), fake.refreshes()), (2, 1));
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_gets_its_401_after_the_refresh() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let (base, seen) = resource("a1.2").await;
    let stream = reqwest::Body::wrap(Full::new(Bytes::from_static(b"upload")));
    let answer = client(&session).post(format!("{base}/upload")).body(stream).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!((seen.lock().unwrap().len(), fake.refreshes()), (1, 1));
    assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2");
}

#[tokio::test]
async fn an_ended_session_is_the_error_and_nothing_is_sent() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    session.logout().await.unwrap();
    let (base, seen) = resource("a1.1").await;
    let error = client(&session).get(format!("{base}/orders")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else { panic!("{error:?}") };
    let error = error.downcast::<token_refresh_client::Error>().unwrap();
    assert!(error.ends_session(), "{error}");
    assert!(seen.lock().unwrap().is_empty());
}
