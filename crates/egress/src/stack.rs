//! User-mode networking: the server's end of an environment's TUN device. One task per
//! environment owns a user-space TCP/IP stack ([`smoltcp`]) that answers for every address
//! the function dials; each TCP connection and UDP flow is dialed afresh from the host, if
//! [`Config::route`] allows it, and the bytes are copied both ways. The function sees an
//! ordinary network (any protocol over TCP or UDP, DNS at the address its `resolv.conf`
//! names), yet none of its packets reaches the host's network, and the host's loopback and
//! Nimbus itself stay out of reach.
//!
//! A connection's SYN is held while the destination is dialed, so the function sees what a
//! real network would: the handshake completes only if the destination accepted, a refused
//! or forbidden destination answers with a reset (`ECONNREFUSED`), an unreachable one
//! times out. ICMP does not leave the environment.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{
    HardwareAddress, IpCidr, IpListenEndpoint, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
    UdpPacket, UdpRepr,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// TCP connections (open or being dialed) one environment may have at once; each holds
/// up to three [`TCP_BUFFER`]s on the host.
const MAX_CONNECTIONS: usize = 512;
/// Connections the function has closed but the destination has not may linger this long
/// (as a NAT's half-closed entries do), and twice [`MAX_CONNECTIONS`] in all.
const HALF_CLOSED_TIMEOUT: Duration = Duration::from_secs(60);
/// UDP flows one environment may have at once.
const MAX_UDP_FLOWS: usize = 256;
/// The stack's receive and send buffers per connection, and the bytes read ahead from the
/// destination: the window, ample at in-memory round trips.
const TCP_BUFFER: usize = 64 * 1024;
/// How long dialing a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection whose packets go unacknowledged this long is dropped.
const TCP_ACK_TIMEOUT: Duration = Duration::from_secs(120);
/// A UDP flow with no traffic either way for this long is forgotten.
const UDP_IDLE: Duration = Duration::from_secs(60);
const TTL: u8 = 64;

/// What the stacks of all environments share.
#[derive(Debug)]
pub struct Config {
    /// The TUN device's MTU.
    pub mtu: u16,
    /// The environment's own address.
    pub address: Ipv4Addr,
    /// The gateway of its default route: the stack's own address.
    pub gateway: Ipv4Addr,
    /// The DNS server address inside environments (port 53), forwarded to `resolver`.
    pub dns: Ipv4Addr,
    /// Where DNS queries go: the host's resolver, unless configured otherwise.
    pub resolver: Option<SocketAddr>,
    /// Nimbus' own port, refused on the host's addresses.
    pub api_port: u16,
}

impl Config {
    /// Where a flow to `dst` is dialed on the host, if anywhere.
    fn route(&self, dst: SocketAddr) -> Option<SocketAddr> {
        if dst.ip() == self.dns {
            return (dst.port() == 53).then_some(self.resolver?);
        }
        if dst.ip() == self.gateway || dst.ip() == self.address {
            return None;
        }
        crate::allowed(&dst, self.api_port).then_some(dst)
    }
}

/// The first `nameserver` of the host's `/etc/resolv.conf`.
pub fn host_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// Serves one environment's TUN device (each read and each write one IP packet) until the
/// returned task is aborted, with the environment; every connection and flow ends then.
/// The bytes the function sends to destinations are added to `sent` (egress, for the bill).
pub fn serve<D>(
    device: D,
    config: Arc<Config>,
    sent: Arc<AtomicU64>,
) -> std::io::Result<JoinHandle<()>>
where
    D: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut queues = Queues {
        rx: VecDeque::new(),
        tx: Vec::new(),
        mtu: usize::from(config.mtu),
    };
    let mut iface_config = IfaceConfig::new(HardwareAddress::Ip);
    iface_config.random_seed = random_seed();
    let mut iface = Interface::new(iface_config, &mut queues, smoltcp::time::Instant::now());
    let gateway = config.gateway;
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(gateway.into(), 24));
    });
    // With AnyIP and the default route through its own address, the stack accepts packets
    // to every destination: it stands in for the whole network.
    iface
        .routes_mut()
        .add_default_ipv4_route(gateway)
        .map_err(std::io::Error::other)?;
    iface.set_any_ip(true);
    let (events_tx, events) = mpsc::unbounded_channel();
    let stack = Stack {
        config,
        iface,
        queues,
        sockets: SocketSet::new(vec![]),
        conns: HashMap::new(),
        dialing: HashSet::new(),
        udp: HashMap::new(),
        next_id: 0,
        sent,
        events_tx,
        tasks: JoinSet::new(),
    };
    Ok(tokio::spawn(stack.run(device, events)))
}

/// A seed for the stack's sequence numbers and ports (the standard library's randomly
/// keyed hasher: unpredictable enough, and no extra dependency).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

type FlowKey = (SocketAddr, SocketAddr);

/// What the per-connection and per-flow tasks tell the stack.
enum Event {
    /// A held SYN's destination was dialed.
    Dialed {
        key: FlowKey,
        syn: Vec<u8>,
        result: std::io::Result<TcpStream>,
    },
    /// Bytes from the destination, for the function.
    Data(u64, Vec<u8>),
    /// The destination finished sending (`true`) or reset the connection (`false`).
    Closed(u64, bool),
    /// The destination took bytes: the stack may read more from the function.
    Drained,
    /// A UDP reply: `payload` from `from` to the function's `to`.
    Datagram {
        payload: Vec<u8>,
        from: SocketAddr,
        to: SocketAddr,
    },
}

/// One TCP connection through the stack.
struct Conn {
    /// The function's address and the destination it dialed.
    key: FlowKey,
    handle: SocketHandle,
    /// The function's bytes towards the destination; dropped (shutting its side down) when
    /// the function closes its side.
    to_dest: Option<mpsc::Sender<Vec<u8>>>,
    /// Bytes read ahead from the destination and not yet in the stack's send buffer.
    backlog: VecDeque<Vec<u8>>,
    /// Byte credit for reading from the destination: returned as the backlog drains.
    credit: Arc<Semaphore>,
    /// The destination has finished sending.
    dest_done: bool,
    closing: bool,
    /// When the function closed its side (the connection then no longer counts as open).
    fn_closed: Option<std::time::Instant>,
}

struct Stack {
    config: Arc<Config>,
    iface: Interface,
    queues: Queues,
    sockets: SocketSet<'static>,
    conns: HashMap<u64, Conn>,
    dialing: HashSet<FlowKey>,
    udp: HashMap<FlowKey, mpsc::Sender<Vec<u8>>>,
    next_id: u64,
    /// Bytes sent to destinations (egress).
    sent: Arc<AtomicU64>,
    events_tx: mpsc::UnboundedSender<Event>,
    tasks: JoinSet<()>,
}

impl Stack {
    async fn run<D>(mut self, mut device: D, mut events: mpsc::UnboundedReceiver<Event>)
    where
        D: AsyncRead + AsyncWrite + Unpin,
    {
        let mut packet = vec![0u8; usize::from(self.config.mtu)];
        loop {
            let now = smoltcp::time::Instant::now();
            self.iface.poll(now, &mut self.queues, &mut self.sockets);
            self.service();
            self.iface.poll(now, &mut self.queues, &mut self.sockets);
            for out in self.queues.tx.drain(..) {
                if device.write(&out).await.is_err() {
                    return;
                }
            }
            // Sleep until a packet, an event, the stack's next timer (retransmissions) or the
            // next half-closed connection to expire.
            let stack_delay = self
                .iface
                .poll_delay(smoltcp::time::Instant::now(), &self.sockets)
                .map(|d| Duration::from_micros(d.total_micros()));
            let expiry = self
                .conns
                .values()
                .filter_map(|c| c.fn_closed)
                .min()
                .map(|t| {
                    (t + HALF_CLOSED_TIMEOUT).saturating_duration_since(std::time::Instant::now())
                });
            let delay = match (stack_delay, expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                read = device.read(&mut packet) => match read {
                    Ok(n) if n > 0 => self.sent_by_env(&packet[..n]),
                    _ => return,
                },
                Some(event) = events.recv() => self.event(event),
                () = tokio::time::sleep(delay.unwrap_or_default()), if delay.is_some() => {}
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    /// A packet the function sent.
    fn sent_by_env(&mut self, data: &[u8]) {
        let Ok(ip) = Ipv4Packet::new_checked(data) else {
            return; // IPv6 and garbage: the environment has IPv4 only
        };
        let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        match ip.next_header() {
            IpProtocol::Tcp => {
                let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
                    return;
                };
                let key = (
                    SocketAddr::new(src, tcp.src_port()),
                    SocketAddr::new(dst, tcp.dst_port()),
                );
                if tcp.syn() && !tcp.ack() && !self.has_connection(key) {
                    self.new_connection(key, data);
                } else {
                    self.queues.rx.push_back(data.to_vec());
                }
            }
            IpProtocol::Udp => {
                let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
                    return;
                };
                let key = (
                    SocketAddr::new(src, udp.src_port()),
                    SocketAddr::new(dst, udp.dst_port()),
                );
                self.datagram(key, udp.payload());
            }
            _ => {}
        }
    }

    /// Whether a connection of `key` is open (its SYN then goes to the stack as is).
    fn has_connection(&self, key: FlowKey) -> bool {
        self.conns.values().any(|c| c.key == key)
    }

    /// Whether another connection may open: fewer than [`MAX_CONNECTIONS`] open or being
    /// dialed, and room for the half-closed ones too.
    fn has_room(&self) -> bool {
        let open = self
            .conns
            .values()
            .filter(|c| c.fn_closed.is_none())
            .count();
        let dialing = self.dialing.len();
        open + dialing < MAX_CONNECTIONS && self.conns.len() + dialing < 2 * MAX_CONNECTIONS
    }

    /// A SYN to a new destination: dial it while the SYN waits. Refused destinations
    /// reach the stack with no socket to take them, which answers with a reset.
    fn new_connection(&mut self, key: FlowKey, syn: &[u8]) {
        if self.dialing.contains(&key) {
            return; // a retransmitted SYN while dialing
        }
        let to = match self.config.route(key.1) {
            Some(to) if self.has_room() => to,
            _ => {
                tracing::debug!(dst = %key.1, "outbound connection refused");
                self.queues.rx.push_back(syn.to_vec());
                return;
            }
        };
        self.dialing.insert(key);
        let events = self.events_tx.clone();
        let syn = syn.to_vec();
        self.tasks.spawn(async move {
            let result = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            };
            let _ = events.send(Event::Dialed { key, syn, result });
        });
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Dialed { key, syn, result } => {
                self.dialing.remove(&key);
                match result {
                    Ok(dest) => self.connected(key, syn, dest),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        // Unreachable: the function's SYN times out as it would.
                    }
                    Err(_) => self.queues.rx.push_back(syn),
                }
            }
            Event::Data(id, data) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.backlog.push_back(data);
                }
            }
            Event::Closed(id, clean) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.dest_done = true;
                    if !clean {
                        self.sockets.get_mut::<tcp::Socket>(c.handle).abort();
                    }
                }
            }
            Event::Drained => {}
            Event::Datagram { payload, from, to } => {
                if let Some(packet) = udp_packet(&payload, from, to) {
                    self.queues.tx.push(packet);
                }
            }
        }
    }

    /// The destination accepted: a socket takes the held SYN, and a task copies bytes
    /// between it and the destination.
    fn connected(&mut self, key: FlowKey, syn: Vec<u8>, dest: TcpStream) {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        );
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        socket.set_timeout(Some(TCP_ACK_TIMEOUT.into()));
        let IpAddr::V4(addr) = key.1.ip() else { return };
        let endpoint = IpListenEndpoint {
            addr: Some(addr.into()),
            port: key.1.port(),
        };
        if socket.listen(endpoint).is_err() {
            return;
        }
        let handle = self.sockets.add(socket);
        let id = self.next_id;
        self.next_id += 1;
        let (to_dest, from_fn) = mpsc::channel(8);
        let credit = Arc::new(Semaphore::new(TCP_BUFFER));
        self.conns.insert(
            id,
            Conn {
                key,
                handle,
                to_dest: Some(to_dest),
                backlog: VecDeque::new(),
                credit: credit.clone(),
                dest_done: false,
                closing: false,
                fn_closed: None,
            },
        );
        let (events, sent) = (self.events_tx.clone(), self.sent.clone());
        self.tasks
            .spawn(copy_to_dest(id, dest, from_fn, credit, events, sent));
        self.queues.rx.push_back(syn);
    }

    /// Moves bytes between every connection's socket and its destination task, and
    /// retires connections that have closed.
    fn service(&mut self) {
        let mut gone = Vec::new();
        for (id, c) in &mut self.conns {
            let s = self.sockets.get_mut::<tcp::Socket>(c.handle);
            // Function → destination, while the destination keeps up.
            while s.can_recv() {
                let Some(tx) = &c.to_dest else {
                    let _ = s.recv(|b| (b.len(), ()));
                    continue;
                };
                let closed = match tx.try_reserve() {
                    Ok(permit) => {
                        if let Ok(data) = s.recv(|b| (b.len(), b.to_vec())) {
                            permit.send(data);
                        }
                        false
                    }
                    Err(mpsc::error::TrySendError::Full(())) => break,
                    Err(mpsc::error::TrySendError::Closed(())) => true,
                };
                if closed {
                    c.to_dest = None;
                }
            }
            let opened = !matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived);
            if opened && !s.may_recv() && !s.can_recv() && c.fn_closed.is_none() {
                c.to_dest = None; // the function closed its side
                c.fn_closed = Some(std::time::Instant::now());
            }
            if c.fn_closed
                .is_some_and(|t| t.elapsed() >= HALF_CLOSED_TIMEOUT)
            {
                s.abort(); // the destination never finished: forget the connection
            }
            // Destination → function, as the send buffer makes room.
            while let Some(front) = c.backlog.front_mut() {
                let n = s.send_slice(front).unwrap_or(0);
                c.credit.add_permits(n);
                if n == front.len() {
                    c.backlog.pop_front();
                } else {
                    front.drain(..n);
                    break;
                }
            }
            if c.dest_done && c.backlog.is_empty() && !c.closing {
                s.close();
                c.closing = true;
            }
            if matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) {
                gone.push(*id);
            }
        }
        for id in gone {
            if let Some(c) = self.conns.remove(&id) {
                c.credit.close();
                self.sockets.remove(c.handle);
            }
        }
    }

    /// A datagram the function sent: to its flow, or to a new one.
    fn datagram(&mut self, key: FlowKey, payload: &[u8]) {
        if let Some(flow) = self.udp.get(&key) {
            match flow.try_send(payload.to_vec()) {
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.udp.remove(&key);
                }
                _ => return, // sent, or dropped when full (it is UDP)
            }
        }
        let Some(to) = self.config.route(key.1) else {
            tracing::debug!(dst = %key.1, "outbound datagram refused");
            return;
        };
        self.udp.retain(|_, f| !f.is_closed());
        if self.udp.len() >= MAX_UDP_FLOWS {
            return;
        }
        let (tx, rx) = mpsc::channel(64);
        let _ = tx.try_send(payload.to_vec());
        self.udp.insert(key, tx);
        let (events, sent) = (self.events_tx.clone(), self.sent.clone());
        self.tasks.spawn(udp_flow(rx, events, sent, key, to));
    }
}

/// Copies one connection's bytes between the stack and the destination. Reading from the
/// destination takes byte credit that the stack returns as the function takes the bytes.
async fn copy_to_dest(
    id: u64,
    dest: TcpStream,
    mut from_fn: mpsc::Receiver<Vec<u8>>,
    credit: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
    sent: Arc<AtomicU64>,
) {
    let _ = dest.set_nodelay(true);
    let (mut read, mut write) = dest.into_split();
    let to_fn = async {
        let mut buf = vec![0u8; TCP_BUFFER];
        loop {
            // At least some credit, then read no more than it allows.
            let Ok(first) = credit.acquire().await else {
                return;
            };
            first.forget();
            let more = credit.available_permits().min(TCP_BUFFER - 1);
            if let Ok(p) = credit.try_acquire_many(more as u32) {
                p.forget();
            }
            let allowed = 1 + more;
            match read.read(&mut buf[..allowed]).await {
                Ok(0) => {
                    let _ = events.send(Event::Closed(id, true));
                    return;
                }
                Ok(n) => {
                    credit.add_permits(allowed - n);
                    if events.send(Event::Data(id, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = events.send(Event::Closed(id, false));
                    return;
                }
            }
        }
    };
    let to_dest = async {
        while let Some(data) = from_fn.recv().await {
            if write.write_all(&data).await.is_err() {
                break;
            }
            sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            let _ = events.send(Event::Drained);
        }
        let _ = write.shutdown().await;
    };
    tokio::join!(to_fn, to_dest);
}

/// One UDP flow: the function's `key.0` talking to `key.1`, dialed on the host as `to`.
async fn udp_flow(
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: mpsc::UnboundedSender<Event>,
    sent: Arc<AtomicU64>,
    key: FlowKey,
    to: SocketAddr,
) {
    let bind: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let Ok(socket) = UdpSocket::bind(bind).await else {
        return;
    };
    if socket.connect(to).await.is_err() {
        return;
    }
    let mut back = vec![0u8; 65_536];
    loop {
        tokio::select! {
            datagram = outgoing.recv() => match datagram {
                Some(d) => if socket.send(&d).await.is_ok() {
                    sent.fetch_add(d.len() as u64, Ordering::Relaxed);
                },
                None => return,
            },
            received = socket.recv(&mut back) => if let Ok(n) = received {
                // The reply comes from the address the function sent to.
                let reply = Event::Datagram { payload: back[..n].to_vec(), from: key.1, to: key.0 };
                if events.send(reply).is_err() {
                    return;
                }
            },
            () = tokio::time::sleep(UDP_IDLE) => return,
        }
    }
}

/// An IPv4 UDP packet carrying `payload` from `from` to `to`.
fn udp_packet(payload: &[u8], from: SocketAddr, to: SocketAddr) -> Option<Vec<u8>> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (from.ip(), to.ip()) else {
        return None;
    };
    let udp = UdpRepr {
        src_port: from.port(),
        dst_port: to.port(),
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: TTL,
    };
    let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_checked(&mut buf[..]).ok()?;
    ip.emit(&mut packet, &caps);
    let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
    udp.emit(
        &mut datagram,
        &src.into(),
        &dst.into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &caps,
    );
    Some(buf)
}

/// The stack's device: packets from the function wait in `rx`; what the stack sends goes
/// to `tx`, written to the TUN device after each poll.
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    mtu: usize,
}

impl phy::Device for Queues {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(
        &mut self,
        _: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((RxToken(packet), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct TxToken<'a>(&'a mut Vec<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0u8; len];
        let r = f(&mut packet);
        self.0.push(packet);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            mtu: 65_000,
            address: Ipv4Addr::new(10, 0, 2, 15),
            gateway: Ipv4Addr::new(10, 0, 2, 2),
            dns: Ipv4Addr::new(10, 0, 2, 3),
            resolver: Some("192.0.2.53:53".parse().unwrap()),
            api_port: 9600,
        }
    }

    #[test]
    fn dns_goes_to_the_resolver_and_the_virtual_network_nowhere() {
        let c = config();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(c.route(a("10.0.2.3:53")), Some(a("192.0.2.53:53")));
        assert_eq!(c.route(a("10.0.2.3:80")), None);
        assert_eq!(c.route(a("10.0.2.2:80")), None);
        assert_eq!(c.route(a("127.0.0.1:9600")), None);
        assert_eq!(c.route(a("198.51.100.7:443")), Some(a("198.51.100.7:443")));
        let no_resolver = Config {
            resolver: None,
            ..config()
        };
        assert_eq!(no_resolver.route(a("10.0.2.3:53")), None);
    }

    #[test]
    fn udp_replies_are_well_formed_packets() {
        let from = "198.51.100.7:53".parse().unwrap();
        let to = "10.0.2.15:40000".parse().unwrap();
        let packet = udp_packet(b"answer", from, to).unwrap();
        let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), Ipv4Addr::new(198, 51, 100, 7));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (53, 40000));
        assert_eq!(udp.payload(), b"answer");
    }

    /// A packet-preserving in-memory TUN device: what the test sends, the stack reads as
    /// one packet; what the stack writes arrives whole on the test's receiver.
    struct FakeTun {
        incoming: mpsc::UnboundedReceiver<Vec<u8>>,
        outgoing: mpsc::UnboundedSender<Vec<u8>>,
    }

    impl AsyncRead for FakeTun {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            match self.incoming.poll_recv(cx) {
                std::task::Poll::Ready(Some(p)) => {
                    buf.put_slice(&p);
                    std::task::Poll::Ready(Ok(()))
                }
                std::task::Poll::Ready(None) => std::task::Poll::Ready(Ok(())),
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        }
    }

    impl AsyncWrite for FakeTun {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let _ = self.outgoing.send(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A running stack on a [`FakeTun`].
    struct Harness {
        to_stack: mpsc::UnboundedSender<Vec<u8>>,
        from_stack: mpsc::UnboundedReceiver<Vec<u8>>,
        sent: Arc<AtomicU64>,
        task: JoinHandle<()>,
    }

    fn start(config: Config) -> Harness {
        let (to_stack, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_stack) = mpsc::unbounded_channel();
        let sent = Arc::new(AtomicU64::new(0));
        let task = serve(
            FakeTun { incoming, outgoing },
            Arc::new(config),
            sent.clone(),
        )
        .unwrap();
        Harness {
            to_stack,
            from_stack,
            sent,
            task,
        }
    }

    fn syn(from: SocketAddr, to: SocketAddr) -> Vec<u8> {
        use smoltcp::wire::{IpAddress, TcpControl, TcpRepr, TcpSeqNumber};
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (from.ip(), to.ip()) else {
            unreachable!()
        };
        let tcp = TcpRepr {
            src_port: from.port(),
            dst_port: to.port(),
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1000),
            ack_number: None,
            window_len: 64_000,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.header_len(),
            hop_limit: TTL,
        };
        let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
        let caps = ChecksumCapabilities::default();
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        ip.emit(&mut packet, &caps);
        let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
        tcp.emit(
            &mut segment,
            &IpAddress::from(src),
            &IpAddress::from(dst),
            &caps,
        );
        buf
    }

    async fn next_packet(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the stack answers")
            .expect("the stack is running")
    }

    #[tokio::test]
    async fn a_forbidden_destination_is_refused_with_a_reset() {
        let Harness {
            to_stack,
            mut from_stack,
            task,
            ..
        } = start(config());
        let me: SocketAddr = "10.0.2.15:40000".parse().unwrap();
        for forbidden in ["127.0.0.1:22", "169.254.169.254:80", "10.0.2.2:80"] {
            let dst: SocketAddr = forbidden.parse().unwrap();
            to_stack.send(syn(me, dst)).unwrap();
            let reply = next_packet(&mut from_stack).await;
            let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.rst(), "{forbidden}: expected a reset");
            assert_eq!(SocketAddr::new(ip.src_addr().into(), tcp.src_port()), dst);
        }
        task.abort();
    }

    #[tokio::test]
    async fn dns_queries_are_forwarded_to_the_resolver_and_answered_from_the_dns_address() {
        // A resolver that echoes, on the host's loopback (allowed for the resolver only).
        let resolver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let resolver_addr = resolver.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = resolver.recv_from(&mut buf).await {
                let mut answer = b"answer:".to_vec();
                answer.extend_from_slice(&buf[..n]);
                let _ = resolver.send_to(&answer, peer).await;
            }
        });
        let Harness {
            to_stack,
            mut from_stack,
            sent,
            task,
        } = start(Config {
            resolver: Some(resolver_addr),
            ..config()
        });
        let me: SocketAddr = "10.0.2.15:5353".parse().unwrap();
        let dns: SocketAddr = "10.0.2.3:53".parse().unwrap();
        to_stack
            .send(udp_packet(b"query", me, dns).unwrap())
            .unwrap();
        let reply = next_packet(&mut from_stack).await;
        let ip = Ipv4Packet::new_checked(&reply[..]).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(SocketAddr::new(ip.src_addr().into(), udp.src_port()), dns);
        assert_eq!(SocketAddr::new(ip.dst_addr().into(), udp.dst_port()), me);
        assert_eq!(udp.payload(), b"answer:query");
        assert_eq!(
            sent.load(Ordering::Relaxed),
            5,
            "egress counts what the function sent"
        );
        task.abort();
    }
}
