//! One HTTP/1.1 connection driven by hand: requests written as bytes,
//! answers read one at a time, and the server's closing seen. For tests of
//! what a connection may do (keep-alive, request and age limits, head
//! limits, the connection cap) that a pooling client hides.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::http_client::TestResult;

/// How long an answer or a close may take before the test fails: a bound
/// that keeps a broken server from hanging the suite, not a latency claim.
const PATIENCE: Duration = Duration::from_secs(10);

/// A `GET /healthz` that keeps the connection open.
pub const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

/// One client connection.
#[derive(Debug)]
pub struct RawConnection {
    stream: BufReader<TcpStream>,
}

/// One answer: the status line and headers as sent, and the body.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status line and the header lines, CRLFs included.
    pub head: String,
    /// The body (by its `Content-Length`; none without one).
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The status code.
    pub fn status(&self) -> Option<u16> {
        self.head.split(' ').nth(1)?.parse().ok()
    }

    /// The value of header `name` (the first, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// Whether the answer says the connection closes after it.
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"))
    }
}

impl RawConnection {
    /// Connects to `address`.
    pub async fn connect(address: SocketAddr) -> TestResult<Self> {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(address)).await??;
        Ok(Self { stream: BufReader::new(stream) })
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> TestResult {
        self.stream.get_mut().write_all(bytes).await?;
        Ok(())
    }

    /// The next answer, or `None` if the server closed (or reset) the
    /// connection before sending one.
    pub async fn answer(&mut self) -> TestResult<Option<RawAnswer>> {
        self.answer_within(PATIENCE).await
    }

    /// [`RawConnection::answer`], failing if it takes longer than `limit`.
    pub async fn answer_within(&mut self, limit: Duration) -> TestResult<Option<RawAnswer>> {
        tokio::time::timeout(limit, self.read_answer()).await.map_err(|_| format!("no answer within {limit:?}"))?
    }

    /// [`RawConnection::send`], then [`RawConnection::answer`].
    pub async fn exchange(&mut self, request: &[u8]) -> TestResult<Option<RawAnswer>> {
        self.send(request).await?;
        self.answer().await
    }

    async fn read_answer(&mut self) -> TestResult<Option<RawAnswer>> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match self.stream.read_line(&mut line).await {
                Ok(0) if head.is_empty() => return Ok(None),
                Ok(0) => return Err(format!("the connection ended inside an answer head: {head}").into()),
                Ok(_) => {}
                Err(error) if head.is_empty() && closed(&error) => return Ok(None),
                Err(error) => return Err(error.into()),
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let answer = RawAnswer { head, body: Vec::new() };
        let length = answer.header("content-length").map_or(Ok(0), str::parse::<usize>)?;
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok(Some(RawAnswer { body, ..answer }))
    }

    /// Waits for the server to close the connection (an end of stream or a
    /// reset) without sending anything more, for at most `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> TestResult {
        let mut extra = Vec::new();
        let read = tokio::time::timeout(limit, self.stream.read_to_end(&mut extra))
            .await
            .map_err(|_| format!("still open after {limit:?}"))?;
        match read {
            Ok(_) if extra.is_empty() => Ok(()),
            Ok(_) => Err(format!("sent more before closing: {}", String::from_utf8_lossy(&extra)).into()),
            Err(error) if closed(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Whether `error` is the peer closing the connection abruptly.
fn closed(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted)
}
