//! Listening sockets: one per shard and port, all bound with SO_REUSEPORT so the kernel spreads
//! new connections over the shards.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

use crate::shard::conn::Protocol;

/// Pending connections the kernel queues per listening socket (Redis' tcp-backlog default).
pub const LISTEN_BACKLOG: i32 = 511;

/// A shard's listening socket and the protocol spoken on it.
#[derive(Debug)]
pub struct Listener {
    pub socket: TcpListener,
    pub protocol: Protocol,
}

/// Binds `address` with SO_REUSEADDR and SO_REUSEPORT, non-blocking.
pub fn bind(address: SocketAddr, protocol: Protocol) -> std::io::Result<Listener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(Listener {
        socket: socket.into(),
        protocol,
    })
}
