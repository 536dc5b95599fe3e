//! How a load connection moves bytes: a TCP socket, or an RDMA link (RoCEv2 RC queue pair) that
//! carries the same byte stream in messages of at most one link buffer each.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use platform::verbs::{Link, LinkConfig};

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
                let link = Link::connect(address, link, greeting, CONNECT_TIMEOUT)
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
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
            Transport::Rdma(link) => {
                let mut written = 0;
                while written < bytes.len() && link.can_send() {
                    let end = bytes.len().min(written + link.message_bytes_max());
                    link.send(&bytes[written..end])
                        .map_err(|error| std::io::Error::other(error.to_string()))?;
                    written = end;
                }
                if written == 0 {
                    return Err(ErrorKind::WouldBlock.into());
                }
                Ok(written)
            }
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
                link.poll(|message| input.extend_from_slice(message))
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                let closed = link
                    .peer_disconnected()
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                Ok(!closed)
            }
        }
    }
}
