//! `BearerLayer` around a fake resource: the header, one retry of a 401
//! through the session, and what is not retried.
#![cfg(feature = "tower")]

mod fake;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use fake::Fake;
use http_body_util::Full;
use token_refresh_client::layer::ReplayableBody;
use token_refresh_client::{BearerLayer, Config, Credentials, MemoryTokenStore, Session};
use tower::{Service, ServiceExt, service_fn};
use tower_layer::Layer;

type BoxError = token_refresh_client::layer::BoxError;

#[allow(clippy::unwrap_used)] // a fixture: a failure here is a failed test
async fn session(fake: &Fake) -> Session {
    let credentials = Credentials::sign("carol@example.com", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    Session::login(fake.clone(), MemoryTokenStore::new(), &credentials, Config::default()).await.unwrap()
}

#[allow(clippy::unwrap_used)] // a fixture: a failure here is a failed test
/// A resource that accepts exactly `accepted` as the bearer token and counts
/// its calls.
fn resource<B: Send + 'static>(
    accepted: &'static str,
    calls: Arc<AtomicUsize>,
) -> impl Service<http::Request<B>, Response = http::Response<String>, Error = BoxError, Future: Send> + Clone + Send + 'static
{
    service_fn(move |request: http::Request<B>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let authorized = request.headers().get("authorization").and_then(|v| v.to_str().ok())
            == Some(&*format!("Bearer {accepted}"));
        let status = if authorized { 200 } else { 401 };
        async move { Ok::<_, BoxError>(http::Response::builder().status(status).body(String::new()).unwrap()) }
    })
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_once_and_the_request_is_replayed() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let calls = Arc::new(AtomicUsize::new(0));
    // The resource already wants the next generation's token.
    let mut client = BearerLayer::new(session.clone()).layer(resource::<Full<Bytes>>("a1.2", Arc::clone(&calls)));
    let request = http::Request::post("http://api.test/orders").body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!((calls.load(Ordering::SeqCst), fake.refreshes()), (2, 1));
    // The next request carries the new token at once.
    let request = http::Request::get("http://api.test/orders").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(client.ready().await.unwrap().call(request).await.unwrap().status(), 200);
    assert_eq!((calls.load(Ordering::SeqCst), fake.refreshes()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_second_401_is_returned_not_retried_again() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut client = BearerLayer::new(session).layer(resource::<String>("never", Arc::clone(&calls)));
    let request = http::Request::get("http://api.test/orders").body(String::new()).unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!((calls.load(Ordering::SeqCst), fake.refreshes()), (2, 1));
}

/// A body that cannot be sent twice.
struct Stream;

impl ReplayableBody for Stream {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_cannot_be_replayed_gets_its_401_after_the_refresh() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut client = BearerLayer::new(session.clone()).layer(resource::<Stream>("a1.2", Arc::clone(&calls)));
    let request = http::Request::post("http://api.test/upload").body(Stream).unwrap();
    let response = client.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!((calls.load(Ordering::SeqCst), fake.refreshes()), (1, 1));
    assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2");
}

#[tokio::test(start_paused = true)]
async fn an_ended_session_is_the_error() {
    let fake = Fake::new(300);
    let session = session(&fake).await;
    session.logout().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut client = BearerLayer::new(session).layer(resource::<String>("a1.1", Arc::clone(&calls)));
    let request = http::Request::get("http://api.test/orders").body(String::new()).unwrap();
    let error = client.ready().await.unwrap().call(request).await.unwrap_err();
    let error = error.downcast::<token_refresh_client::Error>().unwrap();
    assert!(error.ends_session());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
