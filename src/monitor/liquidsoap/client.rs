//! A Liquidsoap server client over TCP (telnet server) or a Unix socket: one command in
//! flight, replies read up to `END` under a deadline, and a fresh connection after any failure
//! (a half-read reply would desynchronise the next one).

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use super::protocol::{error_of, take_reply, ServerError};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port` of the telnet server.
    Tcp(String),
    /// Path of the Unix socket server.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    /// `unix:///run/liquidsoap.sock`, `/run/liquidsoap.sock`, `tcp://127.0.0.1:1234` or `127.0.0.1:1234`.
    fn from_str(s: &str) -> Result<Endpoint, String> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(s)));
        }
        let addr = s.strip_prefix("tcp://").unwrap_or(s);
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Endpoint::Tcp(addr.to_string()))
            }
            _ => Err(format!(
                "{s:?} is not a Liquidsoap server address (host:port or a socket path)"
            )),
        }
    }
}

/// Why a command got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to Liquidsoap at {endpoint}: {source}")]
    Connect {
        endpoint: Endpoint,
        source: std::io::Error,
    },
    #[error("Liquidsoap at {0} did not accept the connection within {1:?}")]
    ConnectTimeout(Endpoint, Duration),
    #[error("Liquidsoap did not answer {command:?} within {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("Liquidsoap closed the connection during {0:?}")]
    Closed(String),
    #[error("I/O error talking to Liquidsoap: {0}")]
    Io(#[from] std::io::Error),
    #[error("Liquidsoap refused {command:?}: {error:?}")]
    Server { command: String, error: ServerError },
    #[error("{0:?} is not a command that can be sent")]
    BadCommand(String),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Deadlines for one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            reply: Duration::from_secs(5),
        }
    }
}

/// The client; `&mut self` on `command` keeps one command in flight.
pub struct Client {
    endpoint: Endpoint,
    timeouts: Timeouts,
    stream: Option<Box<dyn Stream>>,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(endpoint: Endpoint, timeouts: Timeouts) -> Client {
        Client {
            endpoint,
            timeouts,
            stream: None,
            buf: Vec::new(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let endpoint = self.endpoint.clone();
        let connecting = async {
            Ok::<Box<dyn Stream>, std::io::Error>(match &endpoint {
                Endpoint::Tcp(addr) => Box::new(TcpStream::connect(addr).await?),
                Endpoint::Unix(path) => Box::new(UnixStream::connect(path).await?),
            })
        };
        let stream = timeout(self.timeouts.connect, connecting)
            .await
            .map_err(|_| ClientError::ConnectTimeout(endpoint.clone(), self.timeouts.connect))?
            .map_err(|source| ClientError::Connect { endpoint, source })?;
        self.stream = Some(stream);
        self.buf.clear();
        Ok(())
    }

    /// Sends one command and returns its reply (without `END`). Server error replies are
    /// `ClientError::Server`; on any other failure the connection is dropped, so the next call
    /// starts afresh.
    pub async fn command(&mut self, command: &str) -> Result<String, ClientError> {
        if command.contains(['\n', '\r']) || command.is_empty() {
            return Err(ClientError::BadCommand(command.to_string()));
        }
        if self.stream.is_none() {
            self.connect().await?;
        }
        let result = self.exchange(command).await;
        if result.is_err() {
            self.stream = None;
            self.buf.clear();
        }
        let reply = result?;
        match error_of(&reply) {
            Some(error) => Err(ClientError::Server {
                command: command.to_string(),
                error,
            }),
            None => Ok(reply),
        }
    }

    async fn exchange(&mut self, command: &str) -> Result<String, ClientError> {
        let deadline = self.timeouts.reply;
        let stream = self.stream.as_mut().expect("connected");
        let buf = &mut self.buf;
        let work = async {
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            stream.flush().await?;
            let mut chunk = [0u8; 8192];
            loop {
                if let Some((used, reply)) = take_reply(buf) {
                    buf.drain(..used);
                    return Ok(reply);
                }
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(ClientError::Closed(command.to_string()));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        timeout(deadline, work)
            .await
            .map_err(|_| ClientError::Timeout {
                command: command.to_string(),
                after: deadline,
            })?
    }

    /// Closes the connection politely (`quit`), ignoring failures.
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = timeout(Duration::from_millis(200), stream.write_all(b"quit\n")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_from_config_text() {
        assert_eq!(
            "127.0.0.1:1234".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp("127.0.0.1:1234".into())
        );
        assert_eq!(
            "tcp://localhost:1234".parse::<Endpoint>().unwrap(),
            Endpoint::Tcp("localhost:1234".into())
        );
        assert_eq!(
            "/run/ls.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/ls.sock".into())
        );
        assert_eq!(
            "unix:///run/ls.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/run/ls.sock".into())
        );
        assert!("localhost".parse::<Endpoint>().is_err());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_and_the_client_reconnects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // First connection: reads and never answers. Second: answers properly.
        tokio::spawn(async move {
            let (mut hang, _) = listener.accept().await.unwrap();
            let mut sink = [0u8; 64];
            let _ = hang.read(&mut sink).await;
            let (mut ok, _) = listener.accept().await.unwrap();
            let _ = ok.read(&mut sink).await;
            ok.write_all("4 5\r\nEND\r\n".as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(hang);
        });
        let mut client = Client::new(
            Endpoint::Tcp(addr),
            Timeouts {
                connect: Duration::from_secs(1),
                reply: Duration::from_millis(300),
            },
        );
        let err = client.command("request.on_air").await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(!client.is_connected());
        assert_eq!(client.command("request.on_air").await.unwrap(), "4 5");
    }
}
