//! The HTTP proxy mode: an environment's network namespace has only its loopback; on it,
//! at `127.0.0.1:3128`, listens an HTTP proxy that Nimbus serves from the host
//! (`HTTP_PROXY`/`HTTPS_PROXY` point at it, as most HTTP clients and the AWS SDKs honour).
//! It tunnels `CONNECT` (HTTPS) and forwards plain `http://` requests to what [`allowed`]
//! lets through.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::allowed;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy's port inside every environment.
pub const PROXY_PORT: u16 = 3128;
/// The proxy's address as functions see it.
pub const PROXY_URL: &str = "http://127.0.0.1:3128";
const HEAD_MAX: usize = 16 * 1024;

/// Serves the proxy on a listener opened inside an environment's namespace, adding the
/// bytes the function sends through it to `sent`.
pub fn serve(
    listener: std::net::TcpListener,
    api_port: u16,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(listener) = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        else {
            return;
        };
        while let Ok((client, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                if let Err(reason) = handle(client, api_port, &sent).await {
                    tracing::debug!(reason, "egress proxy request refused or failed");
                }
            });
        }
    })
}

async fn handle(
    mut client: TcpStream,
    api_port: u16,
    sent: &AtomicU64,
) -> Result<(), &'static str> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = client.read(&mut buf).await.map_err(|_| "read")?;
        if n == 0 {
            return Err("closed");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > HEAD_MAX {
            return refuse(&mut client, "431 Request Header Fields Too Large").await;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (authority, rest) = if method.eq_ignore_ascii_case("CONNECT") {
        (target.to_string(), None)
    } else if let Some(t) = target.strip_prefix("http://") {
        let (auth, path) = t.split_once('/').map_or((t, ""), |(a, p)| (a, p));
        (auth.to_string(), Some(format!("/{path}")))
    } else {
        return refuse(&mut client, "400 Bad Request").await;
    };
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority
    } else {
        format!("{authority}:{}", if rest.is_some() { 80 } else { 443 })
    };
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(authority.as_str()).await {
        Ok(a) => a.collect(),
        Err(_) => return refuse(&mut client, "502 Bad Gateway").await,
    };
    if addrs.is_empty() || !addrs.iter().all(|a| allowed(a, api_port)) {
        return refuse(&mut client, "403 Forbidden").await;
    }
    let Ok(mut upstream) = TcpStream::connect(&addrs[..]).await else {
        return refuse(&mut client, "502 Bad Gateway").await;
    };
    match rest {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await
                .map_err(|_| "write")?;
            // Bytes that came after the CONNECT head belong to the tunnel.
            upstream
                .write_all(&head[end..])
                .await
                .map_err(|_| "write")?;
        }
        Some(path) => {
            // Origin-form request line; the proxy's own headers stay here.
            let mut out = format!(
                "{method} {path} {}\r\n",
                text.lines()
                    .next()
                    .and_then(|l| l.rsplit(' ').next())
                    .unwrap_or("HTTP/1.1")
            );
            for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
                if !line.to_ascii_lowercase().starts_with("proxy-") {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
            out.push_str("\r\n");
            upstream
                .write_all(out.as_bytes())
                .await
                .map_err(|_| "write")?;
            upstream
                .write_all(&head[end..])
                .await
                .map_err(|_| "write")?;
        }
    }
    let (up, _) = tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .map_err(|_| "copy")?;
    sent.fetch_add(up + (head.len() - end) as u64, Ordering::Relaxed);
    Ok(())
}

async fn refuse(client: &mut TcpStream, status: &str) -> Result<(), &'static str> {
    let body = format!("Nimbus egress proxy: {status}\n");
    let _ = client
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    Err("refused")
}
