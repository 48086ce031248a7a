//! An HTTP/1.1 caller on one keep-alive connection (hyper's connection-level client, so
//! exactly one connection per caller and no pool in between), reconnecting after a
//! transport error.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::Caller;

/// Builds the next request (a fresh customer id, for example).
pub type MakeRequest = Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>;

/// One connection's caller: sends what `make` builds, expects `expect` back.
pub struct Http {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    make: MakeRequest,
    expect: StatusCode,
}

impl Http {
    pub fn new(addr: SocketAddr, make: MakeRequest, expect: StatusCode) -> Http {
        Http {
            addr,
            sender: None,
            make,
            expect,
        }
    }
}

/// Opens a keep-alive HTTP/1.1 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; errors surface on the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer: its status and body.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// One request on a fresh connection (setup and probes).
pub async fn once(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    let mut sender = connect(addr).await?;
    send(&mut sender, request).await
}

/// `status: first 300 bytes of the body`, for error reports.
pub fn describe(status: StatusCode, body: &[u8]) -> String {
    let shown = &body[..body.len().min(300)];
    format!("{status}: {}", String::from_utf8_lossy(shown))
}

impl Caller for Http {
    async fn call(&mut self) -> Result<(), String> {
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => connect(self.addr).await?,
        };
        // On a transport error the connection is dropped; the next call reconnects.
        let (status, body) = send(&mut sender, (self.make)()).await?;
        self.sender = Some(sender);
        if status == self.expect {
            Ok(())
        } else {
            Err(describe(status, &body))
        }
    }
}
