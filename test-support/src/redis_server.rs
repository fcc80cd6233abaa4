//! A throwaway standalone `redis-server` on a spare loopback port, for tests
//! that need a Redis of their own: at `maxmemory`, frozen with SIGSTOP,
//! with an eviction policy or a renamed command. Persists nothing; stopped
//! by PID (after a SIGCONT, in case a test left it frozen) when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::redis_cluster::command;
use crate::tls::spare_port;

/// One `redis-server` this test started.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one with `extra` arguments and waits (at most 5 s) until it
    /// answers `PING`. A spare port taken by another process before the
    /// server binds it makes the server exit: it is started again on
    /// another port, up to five times.
    pub fn start(extra: &[&str]) -> Self {
        for _ in 0..5 {
            let port = spare_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed for these tests");
            let mut server = Self { child, port };
            for _ in 0..100 {
                if server.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if command(port, &["PING"]).is_ok_and(|reply| reply == "PONG") {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("a throwaway redis-server did not come up on any of five spare ports");
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to this server's process, by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(self.child.id().to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
