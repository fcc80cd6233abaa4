//! A user directory on your own PostgreSQL `users` table, beside the
//! PostgreSQL session ledger, served with the axum integration.
//!
//! ```text
//! cargo run -p token-refresh-examples --features postgres --bin postgres_users             # check and exit
//! cargo run -p token-refresh-examples --features postgres --bin postgres_users -- --serve  # serve on 127.0.0.1:8080
//! ```
//!
//! It creates `app_users` (if missing) in the database at
//! `TOKEN_REFRESH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! adds bob, starts a session for him through [`TokenService`], checks its
//! access token against the ledger, and exits; with `--serve` it serves the
//! session endpoint, the JWKS and `GET /api/v1/me` instead.

use std::sync::Arc;

use axum::{Router, routing::get};
use token_refresh::axum::{AccessToken, jwks, session_routes};
use token_refresh::deadpool_postgres::tokio_postgres::{Config, NoTls};
use token_refresh::deadpool_postgres::{Manager, Pool};
use token_refresh::{
    Ed25519Signer, Policy, PostgresLedger, PostgresOptions, StoreError, SystemClock, TokenService, User, UserStore,
};

/// Your users, in your table: `UserStore` is one lookup by subject.
struct PgUsers {
    pool: Pool,
}

impl UserStore for PgUsers {
    async fn find(&self, subject: &str) -> Result<Option<Arc<User>>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let row = client
            .query_opt("SELECT email, account, role, enabled FROM app_users WHERE email = $1", &[&subject])
            .await
            .map_err(StoreError::new)?;
        Ok(row.map(|row| {
            let user = User::new(row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2));
            Arc::new(if row.get::<_, bool>(3) { user } else { user.disabled() })
        }))
    }
}

async fn me(AccessToken(claims): AccessToken) -> String {
    format!("{} ({}, {})", claims.subject, claims.account, claims.role)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TOKEN_REFRESH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());

    // Your application's pool and table.
    let config: Config = url.parse()?;
    let manager = Manager::new(config, NoTls);
    let pool = Pool::builder(manager).max_size(4).build()?;
    pool.get()
        .await?
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS app_users (
                email text PRIMARY KEY, account text NOT NULL, role text NOT NULL, enabled boolean NOT NULL);
             INSERT INTO app_users VALUES ('bob@mail.com', 'bob@admin', 'ROLE_ADMIN', true)
             ON CONFLICT (email) DO NOTHING;",
        )
        .await?;

    // The session ledger, in its own schema, shared by every instance.
    let ledger = PostgresLedger::connect(&url, PostgresOptions::new()).await?;
    ledger.migrate().await?;

    // Replace with your key: Ed25519Signer::new(SecretKey::from_text(&std::env::var("SIGNING_KEY")?)?)
    let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
    let service = TokenService::new(Policy::default(), PgUsers { pool }, ledger, signer, SystemClock);

    if std::env::args().any(|arg| arg == "--serve") {
        let app = Router::new()
            .route("/auth/api/v1/authentication-management/session", session_routes())
            .route("/.well-known/jwks.json", get(jwks))
            .route("/api/v1/me", get(me))
            .with_state(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        return Ok(());
    }

    let pair = service.issue("bob@mail.com").await?;
    let claims = service.verify_access_unrevoked(Some(format!("Bearer {}", pair.access_token).as_bytes())).await?;
    let next = service.refresh(Some(pair.refresh_token.as_bytes())).await?;
    service.logout(Some(next.refresh_token.as_bytes())).await?;
    println!("bob's session: issued, verified as {} ({}), refreshed, logged out", claims.subject, claims.role);
    match service.issue("nobody@mail.com").await {
        Err(unknown) => println!("an unknown user: {} {}", unknown.status_code(), unknown.name()),
        Ok(_) => return Err("a user missing from app_users got a session".into()),
    }
    Ok(())
}
