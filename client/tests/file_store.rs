//! The file store: compare-and-swap across handles, owner-only files, the
//! cross-process lock, and sessions of several "processes" (separate store
//! handles: separate open file descriptions, as separate processes have)
//! sharing one login and one refresh.

mod fake;

use std::time::Duration;

use fake::Fake;
use token_refresh_client::store::Swap;
use token_refresh_client::{Config, Credentials, FileTokenStore, Session, StoredSession, TokenPair, TokenStore};

fn record(generation: u64) -> StoredSession {
    StoredSession::new(
        generation,
        TokenPair::new(format!("a{generation}"), format!("r{generation}"), 300),
        Duration::ZERO,
    )
}

#[tokio::test]
async fn compare_and_swap_across_two_handles() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.json");
    let (one, two) = (FileTokenStore::new(&path), FileTokenStore::new(&path));
    let (first, second) = (record(1), record(2));
    assert_eq!(one.load().await.unwrap(), None);

    let lock = one.lock().await.unwrap();
    assert_eq!(one.compare_and_swap(&lock, None, Some(first.clone())).await.unwrap(), Swap::Done);
    drop(lock);

    let lock = two.lock().await.unwrap();
    // A blind "create" loses to the record already there, and is told what it is.
    assert_eq!(two.compare_and_swap(&lock, None, Some(record(9))).await.unwrap(), Swap::Conflict(Some(first)));
    assert_eq!(two.compare_and_swap(&lock, Some(1), Some(second.clone())).await.unwrap(), Swap::Done);
    drop(lock);

    assert_eq!(one.load().await.unwrap(), Some(second.clone()));
    let lock = one.lock().await.unwrap();
    assert_eq!(one.compare_and_swap(&lock, Some(1), None).await.unwrap(), Swap::Conflict(Some(second)));
    assert_eq!(one.compare_and_swap(&lock, Some(2), None).await.unwrap(), Swap::Done);
    assert_eq!(two.load().await.unwrap(), None);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(directory.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("session.json.lock")]);
}

#[cfg(unix)]
#[tokio::test]
async fn the_record_and_its_lock_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.json");
    let store = FileTokenStore::new(&path);
    let lock = store.lock().await.unwrap();
    store.compare_and_swap(&lock, None, Some(record(1))).await.unwrap();
    // A record made world-readable by something else is replaced by an 0600 one.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    store.compare_and_swap(&lock, Some(1), Some(record(2))).await.unwrap();
    for file in [path.clone(), directory.path().join("session.json.lock")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn the_lock_excludes_other_handles_until_dropped() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.json");
    let (one, two) = (FileTokenStore::new(&path), FileTokenStore::new(&path));
    let held = one.lock().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(100), two.lock()).await.is_err());
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), two.lock()).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreadable_record_is_an_error_not_an_empty_store() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.json");
    std::fs::write(&path, b"not json").unwrap();
    assert!(FileTokenStore::new(&path).load().await.is_err());
}

/// Three "processes" with 16 tasks each: one login, then one refresh per
/// generation for all of them; the others adopt the stored pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_share_one_login_and_one_refresh() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("session.json");
    let fake = Fake::new(1);
    let credentials = Credentials::sign("carol@example.com", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let store = FileTokenStore::new(&path);
        sessions.push(Session::resume_or_login(fake.clone(), store, &credentials, Config::default()).await.unwrap());
    }
    assert_eq!(fake.count(|s| &s.logins), 1);

    for round in 2..=4u64 {
        // The 1 s token is due after half of it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut tasks = Vec::new();
        for session in &sessions {
            for _ in 0..16 {
                let session = session.clone();
                tasks.push(tokio::spawn(async move { session.access_token().await.unwrap() }));
            }
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().generation(), round);
        }
        assert_eq!(fake.refreshes() as u64, round - 1, "one refresh per generation for 3 processes");
    }
    assert_eq!(fake.count(|s| &s.reuse_detected), 0);
    assert_eq!(FileTokenStore::new(&path).load().await.unwrap().unwrap().generation(), 4);
}
