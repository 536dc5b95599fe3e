//! How a load connection moves bytes: a TCP socket, or an RDMA link (RoCEv2 RC queue pair) that
//! carries the same byte stream in messages of at most one link buffer each.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use platform::verbs::{Link, LinkConfig, VerbsError};

/// Bytes read per TCP `read` call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Tcp,
    Rdma,
}

impl std::str::FromStr for TransportKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "tcp" => Ok(TransportKind::Tcp),
            "rdma" => Ok(TransportKind::Rdma),
            _ => Err(format!("transport '{text}': use tcp or rdma")),
        }
    }
}

/// Resolves the server's address. TCP goes only to loopback addresses (tests and benches never
/// send traffic off the machine); RDMA goes to the RoCE port of a VM the test harness made.
pub fn server_address(host: &str, port: u16, kind: TransportKind) -> Result<SocketAddr, String> {
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("{host}: {error}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    if kind == TransportKind::Tcp && !address.ip().is_loopback() {
        return Err(format!(
            "refusing {address}: TCP only to loopback addresses"
        ));
    }
    Ok(address)
}

pub enum Transport {
    Tcp(TcpStream),
    Rdma(Box<Link>),
}

impl Transport {
    /// Connects to `address`; over RDMA, `greeting` tells the server which protocol follows
    /// (`datapath::io::rdma::greeting`) and `link` sizes this end's buffers.
    pub fn connect(
        kind: TransportKind,
        address: SocketAddr,
        greeting: &[u8],
        link: LinkConfig,
    ) -> std::io::Result<Transport> {
        match kind {
            TransportKind::Tcp => {
                let socket = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
                socket.set_nodelay(true)?;
                socket.set_nonblocking(true)?;
                Ok(Transport::Tcp(socket))
            }
            TransportKind::Rdma => {
                let SocketAddr::V4(address) = address else {
                    return Err(std::io::Error::new(
                        ErrorKind::InvalidInput,
                        "RDMA CM here takes IPv4 addresses",
                    ));
                };
                let link =
                    Link::connect(address, link, greeting, CONNECT_TIMEOUT).map_err(io_error)?;
                Ok(Transport::Rdma(Box::new(link)))
            }
        }
    }

    /// The fd that becomes readable when there is something to do.
    pub fn fd(&self) -> RawFd {
        match self {
            Transport::Tcp(socket) => socket.as_raw_fd(),
            Transport::Rdma(link) => link.completion_fd(),
        }
    }

    /// Writes as much of `bytes` as the transport takes now; `WouldBlock` when it takes nothing.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Tcp(socket) => socket.write(bytes),
            Transport::Rdma(link) => match link.send_stream(bytes).map_err(io_error)? {
                0 if !bytes.is_empty() => Err(ErrorKind::WouldBlock.into()),
                written => Ok(written),
            },
        }
    }

    /// Appends everything that has arrived to `input`. Ok(false) when the peer closed.
    pub fn read_into(&mut self, input: &mut Vec<u8>) -> std::io::Result<bool> {
        match self {
            Transport::Tcp(socket) => {
                let mut chunk = [0u8; READ_CHUNK_BYTES];
                loop {
                    match socket.read(&mut chunk) {
                        Ok(0) => return Ok(false),
                        Ok(read) => input.extend_from_slice(&chunk[..read]),
                        Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(true),
                        Err(error) if error.kind() == ErrorKind::Interrupted => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            Transport::Rdma(link) => {
                let received = link
                    .poll(|message| input.extend_from_slice(message))
                    .map_err(io_error)?;
                // The connection manager is asked only when nothing came: not a syscall per read.
                Ok(received > 0 || !link.peer_disconnected().map_err(io_error)?)
            }
        }
    }
}

fn io_error(error: VerbsError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}
