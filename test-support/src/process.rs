//! The built example servers (the `token-refresh-examples` crate's `server`,
//! `actix` and `hyper` binaries) as child processes: what an operator runs,
//! flags and all. The tests pass `env!("CARGO_BIN_EXE_server")` and the like
//! (Cargo builds a package's binaries before its integration tests).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::watch;

use crate::http_client::{Http, TestResult};

/// How long a server may take to start (a shared ledger's connect and
/// migration included).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A binary in the target directory, for a package's tests that run
/// another package's binaries (the client's chaos test runs the reference
/// server and its own `soak` example): the test binary is
/// `target/<profile>/deps/<test>-<hash>`, so `relative` is taken from
/// `target/<profile>/` (`"server"`, `"examples/soak"`). A package's own
/// binaries are `env!("CARGO_BIN_EXE_<name>")` instead.
pub fn target_binary(relative: &str) -> TestResult<String> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join(relative))
        .ok_or("no target dir")?;
    if !binary.exists() {
        let hint = "cargo test --workspace builds it; or cargo build -p token-refresh-examples";
        return Err(format!("{} is not built ({hint})", binary.display()).into());
    }
    Ok(binary.to_string_lossy().into_owned())
}

/// A running example server.
#[derive(Debug)]
pub struct Server {
    /// A client for it.
    pub http: Http,
    /// The address it listens on, as it printed it.
    pub address: String,
    /// What it printed on stdout up to and including the `listening on` line,
    /// and after it (the demo walkthrough) as far as it was read.
    pub stdout: String,
    child: Child,
    /// stderr, read as it comes so the server never blocks on a full pipe.
    stderr: tokio::task::JoinHandle<String>,
    /// All of stdout so far (what `stdout` holds and what followed), read as
    /// it comes; its sender goes at the end of stdout.
    printed: watch::Receiver<Vec<u8>>,
}

/// A server that did not start: its exit code and what it wrote on stderr.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// stderr, whole.
    pub stderr: String,
    /// stdout, whole.
    pub stdout: String,
}

/// Starts the server binary at `binary` with `args`; `Ok(Err(_))` when it exits before
/// printing `listening on http://ADDR`.
pub async fn start(binary: &str, args: &[String]) -> TestResult<Result<Server, StartFailure>> {
    start_with(binary, args, &[]).await
}

/// [`start`] with environment variables set.
pub async fn start_with(
    binary: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> TestResult<Result<Server, StartFailure>> {
    let mut command = Command::new(binary);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("stdout")?);
    let mut printed = String::new();
    let address = loop {
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await??;
        printed.push_str(&line);
        if read == 0 {
            let status = tokio::time::timeout(START_TIMEOUT, child.wait()).await??;
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                pipe.read_to_string(&mut stderr).await?;
            }
            return Ok(Err(StartFailure { code: status.code(), stderr, stdout: printed }));
        }
        if let Some(address) = line.trim_end().strip_prefix("listening on http://") {
            break address.to_owned();
        }
    };
    // The demo walkthrough follows the address line: read what is there
    // without waiting for more.
    let mut rest = vec![0u8; 64 * 1024];
    if let Ok(Ok(read)) = tokio::time::timeout(Duration::from_millis(300), stdout.read(&mut rest)).await {
        printed.push_str(&String::from_utf8_lossy(rest.get(..read).unwrap_or_default()));
    }
    // Keep stdout drained so the server never blocks writing it.
    let (sender, receiver) = watch::channel(printed.clone().into_bytes());
    tokio::spawn(collect(stdout, sender));
    let http = Http::new(address.parse()?);
    let stderr = drain(child.stderr.take());
    Ok(Ok(Server { http, address, stdout: printed, child, stderr, printed: receiver }))
}

/// Appends what `stdout` carries to `all` until its end.
async fn collect(mut stdout: BufReader<ChildStdout>, all: watch::Sender<Vec<u8>>) {
    let mut chunk = vec![0u8; 8 * 1024];
    while let Ok(read @ 1..) = stdout.read(&mut chunk).await {
        all.send_modify(|all| all.extend_from_slice(chunk.get(..read).unwrap_or_default()));
    }
}

/// Reads `stderr` to its end in a task.
fn drain(stderr: Option<ChildStderr>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut logs = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut logs).await;
        }
        logs
    })
}

/// Starts the server binary at `binary` with `args`, failing the test if it
/// does not start.
pub async fn running(binary: &str, args: &[String]) -> TestResult<Server> {
    match start(binary, args).await? {
        Ok(server) => Ok(server),
        Err(failure) => Err(format!("{binary} did not start: {failure:?}").into()),
    }
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> TestResult<u32> {
        Ok(self.child.id().ok_or("exited")?)
    }

    /// Stops the server with SIGTERM, as an orchestrator does; it must exit
    /// with 0. Returns its stderr (the logs).
    pub async fn stop(self) -> TestResult<String> {
        let pid = self.pid()?;
        let mut this = self;
        let status = terminate(pid).await?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        let exit = tokio::time::timeout(Duration::from_secs(30), this.child.wait()).await??;
        let logs = this.stderr.await?;
        if !exit.success() {
            return Err(format!("the server exited with {exit}: {logs}").into());
        }
        Ok(logs)
    }

    /// Everything the server printed on stdout so far, once `done` holds for
    /// it (waiting for more output at most as long as a start may take).
    pub async fn stdout_until(&self, done: impl Fn(&str) -> bool) -> TestResult<String> {
        let mut printed = self.printed.clone();
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            let all = printed.wait_for(|all| done(&String::from_utf8_lossy(all))).await;
            all.map(|all| String::from_utf8_lossy(&all).into_owned())
        })
        .await;
        match waited {
            Ok(Ok(all)) => Ok(all),
            _ => {
                let all = String::from_utf8_lossy(&self.printed.borrow()).into_owned();
                Err(format!("stdout did not show what the test waits for: {all}").into())
            }
        }
    }

    /// The rest of the first whole stdout line that starts with `prefix`
    /// (waiting for it as [`Server::stdout_until`] does).
    pub async fn stdout_line(&self, prefix: &str) -> TestResult<String> {
        let line = |all: &str| {
            all.split_inclusive('\n').find_map(|line| line.strip_prefix(prefix)?.strip_suffix('\n').map(str::to_owned))
        };
        let all = self.stdout_until(|all| line(all).is_some()).await?;
        Ok(line(&all).ok_or("no such line")?)
    }

    /// [`Server::stop`], returning the whole of stdout as well as stderr.
    pub async fn stop_with_stdout(self) -> TestResult<(String, String)> {
        let mut printed = self.printed.clone();
        let stderr = self.stop().await?;
        // The server has exited: its stdout ends, and the task reading it.
        tokio::time::timeout(Duration::from_secs(10), async { while printed.changed().await.is_ok() {} })
            .await
            .map_err(|_| "stdout did not end after the server exited")?;
        let stdout = String::from_utf8_lossy(&printed.borrow()).into_owned();
        Ok((stdout, stderr))
    }

    /// The server's resident memory now and its peak so far (`VmRSS` and
    /// `VmHWM` of `/proc/PID/status`), in bytes.
    pub fn memory(&self) -> TestResult<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let field = |name: &str| -> TestResult<u64> {
            let line = status.lines().find_map(|line| line.strip_prefix(name)).ok_or(format!("no {name}"))?;
            let kib: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
            Ok(kib * 1024)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Kills the server (SIGKILL).
    pub async fn kill(mut self) -> TestResult {
        self.child.kill().await?;
        Ok(())
    }

    /// Stops the server with SIGTERM and returns its exit status and logs,
    /// whatever they are.
    pub async fn stop_any(self) -> TestResult<(std::process::ExitStatus, String)> {
        let pid = self.pid()?;
        let _ = terminate(pid).await?;
        let mut child = self.child;
        let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
        Ok((exit, self.stderr.await?))
    }
}

/// Sends SIGTERM to `pid`, which must already catch it: a server that
/// prints `listening on` before it listens for SIGTERM would die of a
/// signal an orchestrator sends right then (status 143) instead of stopping
/// gracefully. The examples register the handler before they announce.
async fn terminate(pid: u32) -> TestResult<std::process::ExitStatus> {
    if catches_sigterm(pid) == Some(false) {
        return Err("the server announced itself before catching SIGTERM".into());
    }
    Ok(Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?)
}

/// Whether process `pid` has a SIGTERM handler installed (Linux: the
/// `SigCgt` mask of `/proc/PID/status`); `None` where that cannot be read.
fn catches_sigterm(pid: u32) -> Option<bool> {
    const SIGTERM: u32 = 15;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|line| line.strip_prefix("SigCgt:"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
    Some(mask & (1 << (SIGTERM - 1)) != 0)
}
