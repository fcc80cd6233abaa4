//! TLS fixtures: certificates made with the `openssl` command line, and
//! TLS-only `redis-server`s on spare loopback ports, stopped by PID when
//! dropped. Both fail loudly (never skip) when the program is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "fixtures: a failed set-up stops the test")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A CA, a server certificate it signed for 127.0.0.1 and localhost, and a
/// second CA that signed nothing here.
#[derive(Debug)]
pub struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    /// Makes them in a directory of their own (removed when dropped).
    pub fn make() -> Self {
        // One directory per call: the tests run at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tr-redis-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl must be installed for these tests");
            assert!(status.success(), "openssl {args:?}");
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-subj",
                &format!("/CN=token-refresh {ca}"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "server.crt",
            "-extfile",
            "san.cnf",
        ]);
        Self { dir }
    }

    /// The path of `name` (`ca.crt`, `server.crt`, `server.key`, `other-ca.crt`).
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// The contents of `name`.
    pub fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }
}

impl Certificates {
    /// Their directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free loopback port.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A spare port whose cluster bus port (10 000 above) is a valid, free port
/// too.
pub fn spare_cluster_port() -> u16 {
    loop {
        let port = spare_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A TLS-only `redis-server`, killed when dropped.
#[derive(Debug)]
pub struct TlsRedis {
    child: Child,
    /// Its TLS port on 127.0.0.1.
    pub port: u16,
}

impl TlsRedis {
    /// Starts one with the server certificate of `certs`, its files in
    /// `dir`, and `extra` arguments.
    ///
    /// A spare port can be taken between the probe and the server's bind
    /// (other tests start servers too): a server that exits at once is
    /// started again on another port, up to five times.
    pub fn start(certs: &Certificates, extra: &[&str], dir: &Path) -> Self {
        for _ in 0..5 {
            let port = if extra.contains(&"--cluster-enabled") { spare_cluster_port() } else { spare_port() };
            let mut child = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--tls-cert-file", &certs.path("server.crt"), "--tls-key-file", &certs.path("server.key")])
                .args(["--tls-ca-cert-file", &certs.path("ca.crt"), "--tls-auth-clients", "no"])
                .args(["--save", "", "--appendonly", "no", "--dir", &dir.to_string_lossy()])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed for these tests");
            if listening(&mut child, port) {
                return Self { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start on any of five spare ports");
    }
}

/// Whether `child` listens on `port` within 10 s (false when it exited:
/// the port was taken).
fn listening(child: &mut Child, port: u16) -> bool {
    for _ in 0..200 {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Another process may hold the port while ours fails to bind.
            std::thread::sleep(std::time::Duration::from_millis(50));
            return child.try_wait().ok().flatten().is_none();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
