//! Hostile load, measured on the server: what a client that never reads,
//! sends huge or cleverly shaped frames, reconnects to dodge limits, or
//! never finishes its handshake can make the server hold, and what
//! everyone else still gets.

mod connections;
mod folder;
mod memory;
mod protocol;
mod rates;

use std::time::Duration;

use integration_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket spoken by hand, to send what no library would.
pub(crate) struct RawWs {
    stream: TcpStream,
}

impl RawWs {
    /// Upgrades `path` on `addr`.
    pub(crate) async fn connect(addr: std::net::SocketAddr, path: &str) -> Self {
        Self::connect_with(addr, path, "").await.0
    }

    /// Upgrades `path` on `addr` with `headers` (each line ending in
    /// CRLF) added; returns the socket and the response head.
    pub(crate) async fn connect_with(
        addr: std::net::SocketAddr,
        path: &str,
        headers: &str,
    ) -> (Self, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.expect("response");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (Self { stream }, head)
    }

    /// Sends one frame: `first` is FIN/RSV/opcode, masked unless `unmasked`.
    pub(crate) async fn frame(&mut self, first: u8, payload: &[u8], unmasked: bool) {
        self.try_frame(first, payload, unmasked)
            .await
            .expect("write frame");
    }

    /// As [`RawWs::frame`], for a server that may have closed already.
    pub(crate) async fn try_frame(
        &mut self,
        first: u8,
        payload: &[u8],
        unmasked: bool,
    ) -> std::io::Result<()> {
        let mut out = vec![first];
        let mask_bit = if unmasked { 0 } else { 0x80 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if unmasked {
            out.extend_from_slice(payload);
        } else {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        self.stream.write_all(&out).await
    }

    /// Reads one server frame: its first byte (FIN, RSV bits, opcode)
    /// and its payload; `None` when the connection ended.
    pub(crate) async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).await.ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).await.ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((head[0], payload))
    }

    /// Reads server frames until a close; returns its code and reason
    /// (none when the connection ended without one).
    pub(crate) async fn close(&mut self) -> Option<(u16, String)> {
        tokio::time::timeout(WAIT, async {
            loop {
                let (first, payload) = self.read_frame().await?;
                if first & 0x0f == 0x8 {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))?;
                    return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
                }
            }
        })
        .await
        .expect("close in time")
    }
}

/// Polls until `f` is true, for up to `within`.
pub(crate) async fn within(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
