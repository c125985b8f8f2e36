//! Outbound network for sandboxed functions. An environment's network namespace has no
//! route to the host; what leaves it goes through Nimbus, which dials the destination from
//! the host after checking it against [`allowed`]:
//!
//! - [`stack`] (the default): the namespace's TUN device is served by a user-mode TCP/IP
//!   stack, so any TCP or UDP client works as on Lambda, DNS included;
//! - [`proxy`]: an HTTP/HTTPS proxy inside the namespace, for hosts without `/dev/net/tun`.

pub mod proxy;
pub mod stack;

use std::net::{IpAddr, SocketAddr};

/// How sandboxed functions reach the outside.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// No network beyond the environment's own loopback.
    None,
    /// HTTP(S) only, through [`proxy`].
    Proxy,
    /// Any TCP or UDP, DNS included, through [`stack`] (`--function-network nat`).
    Nat(std::sync::Arc<stack::Config>),
}

/// Whether a function may connect to `addr`: never the host's loopback (the control plane,
/// other environments' listeners), unspecified, multicast or link-local addresses (instance
/// metadata), nor Nimbus' own port on any of the host's addresses.
pub fn allowed(addr: &SocketAddr, api_port: u16) -> bool {
    let ip = addr.ip();
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_broadcast(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || link_local {
        return false;
    }
    // One of the host's own addresses (binding to it succeeds): not Nimbus' own port.
    let local = std::net::UdpSocket::bind((ip, 0)).is_ok();
    !(local && addr.port() == api_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_and_nimbus_itself_are_refused() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(!allowed(&a("127.0.0.1:9600"), 9600));
        assert!(!allowed(&a("127.0.0.53:53"), 9600));
        assert!(!allowed(&a("[::1]:80"), 9600));
        assert!(!allowed(&a("169.254.169.254:80"), 9600));
        assert!(!allowed(&a("0.0.0.0:80"), 9600));
        assert!(!allowed(&a("255.255.255.255:67"), 9600));
        assert!(!allowed(&a("224.0.0.251:5353"), 9600));
        assert!(allowed(&a("93.184.216.34:443"), 9600));
    }
}
