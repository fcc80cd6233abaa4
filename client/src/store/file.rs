//! A session in a file, shared by the processes of one user.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StoreLock, StoredSession, Swap, TokenStore};
use crate::error::StoreError;

/// How often a waiting process tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The file's format version, so a later layout can be told apart.
const FORMAT: u32 = 1;

/// A session stored in a file, shared by several processes of one user (CLI
/// tools, agents, workers): one login and one refresh per generation for
/// all of them.
///
/// - **Atomic replace**: a write goes to a temporary file beside the target
///   (synced), then is renamed over it, so a reader sees the old record or
///   the new one, never half of one.
/// - **Owner-only**: the record and the lock file are created `0600` on
///   Unix (the record holds bearer credentials). On Windows the file gets
///   the directory's ACL: put it in the user's profile.
/// - **Cross-process lock**: an advisory `flock`/`LockFileEx` lock (the
///   `fs4` crate, on rustix) on a separate `<file>.lock`, which is never
///   replaced; locking the record itself would lock the inode the next
///   rename throws away. The operating system drops the lock when its
///   process dies, so a crashed refresher never wedges the others.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileTokenStore {
    /// A store at `path`; its lock is `path` with `.lock` appended. Neither
    /// file needs to exist; the directory must.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self { path, lock_path: lock_path.into() }
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Serialize, Deserialize)]
struct FileRecord {
    format: u32,
    session: StoredSession,
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn read(path: &Path) -> Result<Option<StoredSession>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::new("read the token file", error)),
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    let record: FileRecord =
        serde_json::from_slice(&bytes).map_err(|error| StoreError::new("parse the token file", error))?;
    if record.format != FORMAT {
        return Err(StoreError::new("read the token file", format!("unknown format {}", record.format)));
    }
    Ok(Some(record.session))
}

fn write(path: &Path, session: &StoredSession) -> Result<(), StoreError> {
    let record = FileRecord { format: FORMAT, session: session.clone() };
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(&record).map_err(|error| StoreError::new("encode the token file", error))?,
    );
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let result = (|| {
        let mut file = owner_only(OpenOptions::new().write(true).create(true).truncate(true)).open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        // Make the rename itself durable (best effort: not every platform
        // can open a directory).
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(directory) = File::open(directory)
        {
            let _ = directory.sync_all();
        }
        Ok::<_, io::Error>(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(|error| StoreError::new("write the token file", error))
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(StoreError::new("remove the token file", error)),
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| StoreError::new("run the file operation", error))?
}

impl TokenStore for FileTokenStore {
    async fn lock(&self) -> Result<StoreLock, StoreError> {
        let path = self.lock_path.clone();
        let file = blocking(move || {
            owner_only(OpenOptions::new().read(true).write(true).create(true).truncate(false))
                .open(&path)
                .map_err(|error| StoreError::new("open the lock file", error))
        })
        .await?;
        loop {
            // Called through the trait: std's inherent `File::try_lock` is
            // newer than this crate's minimum Rust.
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(StoreLock::new(file)),
                Err(fs4::TryLockError::WouldBlock) => tokio::time::sleep(LOCK_POLL).await,
                Err(fs4::TryLockError::Error(error)) => return Err(StoreError::new("lock the lock file", error)),
            }
        }
    }

    async fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        let path = self.path.clone();
        blocking(move || read(&path)).await
    }

    async fn compare_and_swap(
        &self,
        _lock: &StoreLock,
        expected: Option<u64>,
        new: Option<StoredSession>,
    ) -> Result<Swap, StoreError> {
        let path = self.path.clone();
        blocking(move || {
            let current = read(&path)?;
            if current.as_ref().map(StoredSession::generation) != expected {
                return Ok(Swap::Conflict(current));
            }
            match &new {
                Some(session) => write(&path, session)?,
                None => remove(&path)?,
            }
            Ok(Swap::Done)
        })
        .await
    }
}
