//! The virtual network a sandboxed environment sees when it has outbound access: one TUN
//! device with a private address, the default route through a gateway that only the
//! server's user-mode stack answers for, and a DNS server address that stack forwards.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub const DEVICE: &[u8] = b"tun0";
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// Large frames: the stack is in memory, so fewer packets means less work.
pub const MTU: u16 = 65_000;

/// The server's end of an environment's TUN device: each read returns one IP packet the
/// environment sent, each write delivers one to it.
#[derive(Debug)]
pub struct TunDevice(AsyncFd<File>);

impl TunDevice {
    /// Wraps a non-blocking TUN descriptor (needs a Tokio runtime).
    pub(crate) fn new(fd: OwnedFd) -> std::io::Result<TunDevice> {
        let file = File::from(fd);
        // SAFETY: the `File` owns its descriptor, and the `AsyncFd` owns the `File` until it
        // is dropped: the descriptor is never closed or replaced while registered.
        Ok(TunDevice(unsafe { AsyncFd::register(file)? }))
    }
}

impl AsyncRead for TunDevice {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for TunDevice {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            if let Ok(result) = guard.try_io(|f| f.get_ref().write(buf)) {
                return Poll::Ready(result);
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
