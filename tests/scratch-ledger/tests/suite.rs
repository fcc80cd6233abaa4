//! The scratch ledger against the whole conformance suite, faults and
//! purge included; and a ledger that writes a rotation in two steps with
//! an `.await` between them, which the suite must catch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use scratch_ledger::ScratchLedger;
use token_refresh::ledger::conformance::{self, Checked, Harness};
use token_refresh::ledger::{
    AccessState, Created, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
};
use token_refresh::token::TokenId;
use token_refresh::{SessionId, StoreError};

struct Scratch(Arc<ScratchLedger>);

impl Harness for Scratch {
    type Ledger = Arc<ScratchLedger>;

    async fn handle(&self) -> Result<Self::Ledger, StoreError> {
        Ok(Arc::clone(&self.0))
    }

    async fn disrupt(&self) -> Result<Option<u64>, StoreError> {
        self.0.cut();
        Ok(Some(1))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scratch_ledger_passes_the_whole_suite() {
    let report = conformance::run(&Scratch(Arc::new(ScratchLedger::new()))).await;
    println!("{report}");
    assert!(report.is_complete(), "every check runs and passes, faults and purge included: {report}");
}

/// Pending once, then ready: an `.await` that gives the executor (and a
/// deadline) its turn.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A broken ledger: a rotation is written in two steps with an `.await`
/// between them: first the presented token is rotated to a placeholder
/// pair, then the placeholder to the successor. A deadline that drops it
/// in between leaves the presented token consumed and its successor
/// unknown: half a rotation.
struct TwoSteps(ScratchLedger);

impl SessionLedger for TwoSteps {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        self.0.create(new).await
    }
    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        let session = request.presented.session();
        let placeholder = PairClaims {
            access_id: session.new_token_id(),
            refresh_id: session.new_token_id(),
            ..request.successor.clone()
        };
        let first = RotationRequest { successor: placeholder.clone(), ..request.clone() };
        let Rotation::Rotated { .. } = self.0.rotate(&first).await? else {
            return self.0.rotate(request).await;
        };
        YieldOnce(false).await;
        self.0.rotate(&RotationRequest { presented: placeholder.refresh_id, ..request.clone() }).await
    }
    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.0.revoke_session(subject, session, now).await
    }
    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.0.revoke_user(subject, now).await
    }
    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.0.sessions(subject, now).await
    }
    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        self.0.access_state(subject, access_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.0.purge(now).await
    }
}

struct Broken(Arc<TwoSteps>);

impl Harness for Broken {
    type Ledger = Arc<TwoSteps>;

    async fn handle(&self) -> Result<Self::Ledger, StoreError> {
        Ok(Arc::clone(&self.0))
    }
}

/// The cancellation check can fail: it catches the two-step rotation.
#[tokio::test]
async fn a_rotation_written_in_two_steps_fails_the_cancellation_check() {
    let broken = Broken(Arc::new(TwoSteps(ScratchLedger::new())));
    let outcome = conformance::dropped_rotation_is_all_or_nothing(&broken).await;
    let failure = outcome.expect_err("a rotation dropped between its two writes leaves half of it");
    assert!(failure.message.contains("left half of it"), "{failure}");
}

/// Without a `disrupt` hook the fault check does not pass: it is skipped,
/// and says so.
#[tokio::test]
async fn a_harness_without_a_hook_skips_the_fault_check_and_says_so() {
    let broken = Broken(Arc::new(TwoSteps(ScratchLedger::new())));
    let outcome = conformance::lost_connections_never_leave_half_a_rotation(&broken).await;
    assert!(matches!(outcome, Ok(Checked::Skipped(_))), "{outcome:?}");
}

/// A broken client: it sends a rotation again when the reply is lost, as
/// a driver that retries on its own would. The second send finds the
/// token consumed: reuse, and the session revoked.
struct Retrying(ScratchLedger);

impl SessionLedger for Retrying {
    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        self.0.create(new).await
    }
    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        match self.0.rotate(request).await {
            Err(_) => self.0.rotate(request).await,
            outcome => outcome,
        }
    }
    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.0.revoke_session(subject, session, now).await
    }
    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.0.revoke_user(subject, now).await
    }
    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.0.sessions(subject, now).await
    }
    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        self.0.access_state(subject, access_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.0.purge(now).await
    }
}

struct Cut(Arc<Retrying>);

impl Harness for Cut {
    type Ledger = Arc<Retrying>;

    async fn handle(&self) -> Result<Self::Ledger, StoreError> {
        Ok(Arc::clone(&self.0))
    }

    async fn disrupt(&self) -> Result<Option<u64>, StoreError> {
        self.0.0.cut();
        Ok(Some(1))
    }
}

/// The fault check can fail: it catches the repeated rotation.
#[tokio::test]
async fn a_rotation_sent_again_after_a_lost_reply_fails_the_fault_check() {
    let outcome =
        conformance::lost_connections_never_leave_half_a_rotation(&Cut(Arc::new(Retrying(ScratchLedger::new())))).await;
    let failure = outcome.expect_err("a repeated rotation is reuse");
    assert!(failure.message.contains("must rotate"), "{failure}");
}
