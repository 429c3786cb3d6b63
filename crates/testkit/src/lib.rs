//! Helpers for weir's tests.
//!
//! [`from_pretty`] builds a record batch from a table written as text, so a test's input and
//! expected output read as rows instead of column builders.
//! [`Rng`] is a small seeded generator for tests that pick cut points, kill times and
//! crashes, so a failure can be replayed from its seed. [`TcpProxy`] stands between a client under test and a real server on loopback, so a test
//! can cut the connection and refuse new ones (a server outage) and then let them through
//! again, without touching the machine's server. With the `nats` feature, [`nats::TestStream`]
//! is a JetStream stream of a test's own on the local server.

#[cfg(feature = "nats")]
pub mod nats;
mod pretty;

pub use pretty::from_pretty;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// xorshift64*: a seeded, deterministic source of numbers for tests (not for anything else).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A loopback TCP proxy to `upstream` that a test can cut and restore.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    open: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every connection passed through, to cut them.
    streams: Mutex<Vec<TcpStream>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(upstream: &str) -> TcpProxy {
        let upstream: SocketAddr = upstream.parse().expect("an address such as 127.0.0.1:4222");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !s.open.load(Ordering::SeqCst) {
                    // The "server" is down: the connection closes at once.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pairs = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                {
                    let mut all = s.streams.lock().expect("not poisoned");
                    all.extend([client, server]);
                }
                for (from, to) in pairs {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        thread::spawn(move || pump(from, to));
                    }
                }
            }
        });
        TcpProxy { addr, shared }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The outage starts: open connections are cut and new ones closed at once.
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        for s in self.shared.streams.lock().expect("not poisoned").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// The outage ends: connections pass again.
    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_cuts_and_restores() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = server.local_addr().unwrap().to_string();
        thread::spawn(move || {
            for c in server.incoming() {
                let mut c = c.unwrap();
                thread::spawn(move || {
                    let mut b = [0u8; 64];
                    while let Ok(n) = c.read(&mut b) {
                        if n == 0 || c.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = TcpProxy::start(&upstream);
        let echo = |c: &mut TcpStream| {
            c.write_all(b"ping").ok()?;
            let mut b = [0u8; 4];
            c.read_exact(&mut b).ok()?;
            Some(b)
        };
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(echo(&mut c), Some(*b"ping"));
        proxy.cut();
        assert_eq!(echo(&mut c), None, "the open connection is cut");
        let mut refused = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(echo(&mut refused), None, "new connections close at once");
        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(echo(&mut again), Some(*b"ping"));
    }
}
