//! The RoCEv2 transport: clients reach a shard over reliable-connected queue pairs instead of TCP.
//!
//! An RDMA link is one more kind of connection to the shard: its messages are appended to the
//! connection's input exactly as TCP bytes are, and its output leaves in messages of at most one
//! link buffer, so parsing, routing across shards and execution are the ones TCP uses. The client
//! names its protocol in the connect request's private data ([`greeting`]): `resp` or `memcache`.
//!
//! Both event loops drive an [`RdmaPort`] the same way: they watch [`RdmaPort::listener_fd`] and
//! each link's completion fd, call [`RdmaPort::listener_ready`] and [`RdmaPort::link_ready`] when
//! one is readable, and hand every connection with new output to [`RdmaPort::write_out`]. Each call
//! reports the completion fds that appeared or went away in a `Vec<FdChange>`, so the loop can
//! watch or forget them.
//!
//! Limits: links per shard are bounded by the server's client limit (the same `--max-clients`
//! as TCP); each link holds [`LINK_CONFIG`]'s buffers (`receive_buffers` + `send_slots`
//! messages of `buffer_bytes`), registered once when it is accepted. A client that stops
//! re-posting receives makes our SENDs fail after the NIC's retries and is disconnected
//! (`platform::verbs::RNR_RETRY_COUNT`); one that sends garbage gets the protocol's error and is
//! closed, as on TCP.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use platform::verbs::{Link, LinkConfig, LinkId, Listener, ListenerEvent, VerbsError};

use crate::shard::conn::Protocol;
use crate::shard::{Refusal, Shard};

/// Buffers of every server-side link: 32 receives and 32 sends of 16 KiB (1 MiB registered per
/// link). A reply larger than one buffer leaves in several messages.
pub const LINK_CONFIG: LinkConfig = LinkConfig {
    receive_buffers: 32,
    send_slots: 32,
    buffer_bytes: 16 * 1024,
};

/// How often a stopping shard looks at its links' send completions.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_micros(100);

/// The greeting a client sends (connect private data) to speak `protocol`.
pub fn greeting(protocol: Protocol) -> &'static [u8] {
    match protocol {
        Protocol::Resp => b"resp",
        Protocol::Memcache => b"memcache",
    }
}

/// The protocol a greeting names; the connection manager may pad it with zeros. An empty
/// greeting means RESP.
pub fn protocol_of(greeting: &[u8]) -> Option<Protocol> {
    let end = greeting
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(greeting.len());
    match &greeting[..end] {
        b"" | b"resp" => Some(Protocol::Resp),
        b"memcache" => Some(Protocol::Memcache),
        _ => None,
    }
}

/// A completion fd the loop must start or stop watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdChange {
    Watch { index: u32, fd: RawFd },
    Forget { index: u32, fd: RawFd },
}

/// A shard's RDMA listener and the links it accepted, indexed like the shard's connections.
pub struct RdmaPort {
    listener: Option<Listener>,
    links: Vec<Option<Box<Link>>>,
    indices: HashMap<LinkId, u32>,
}

impl RdmaPort {
    /// Listens on `address`, the IPv4 address of the RDMA device's network interface.
    pub fn bind(address: SocketAddrV4) -> Result<RdmaPort, VerbsError> {
        Ok(RdmaPort {
            listener: Some(Listener::bind(address)?),
            links: Vec::new(),
            indices: HashMap::new(),
        })
    }

    pub fn listener_fd(&self) -> Option<RawFd> {
        self.listener.as_ref().map(Listener::fd)
    }

    /// Closes the listener (the server is stopping); open links are served until they drain.
    pub fn stop_listening(&mut self) {
        self.listener = None;
    }

    /// The completion fd of link `index`, while it is open.
    pub fn completion_fd(&self, index: u32) -> Option<RawFd> {
        self.link(index).map(Link::completion_fd)
    }

    fn link(&self, index: u32) -> Option<&Link> {
        self.links.get(index as usize).and_then(Option::as_deref)
    }

    /// Handles every waiting connection-manager event: new links become shard connections,
    /// disconnected ones are closed.
    pub fn listener_ready(&mut self, shard: &mut Shard, changes: &mut Vec<FdChange>) {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return;
            };
            let event = match listener.next_event(LINK_CONFIG) {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "RDMA connection manager");
                    return;
                }
            };
            match event {
                ListenerEvent::Accepted(link) => self.adopt(shard, link, changes),
                ListenerEvent::Established(_) => {}
                ListenerEvent::Disconnected(id) => {
                    if let Some(&index) = self.indices.get(&id) {
                        self.close(shard, index, changes);
                    }
                }
                ListenerEvent::Refused(error) => {
                    tracing::warn!(%error, "RDMA connection refused")
                }
            }
        }
    }

    fn adopt(&mut self, shard: &mut Shard, link: Link, changes: &mut Vec<FdChange>) {
        let Some(protocol) = protocol_of(link.greeting()) else {
            tracing::warn!(greeting = ?link.greeting(), "RDMA client named no known protocol; disconnected");
            return;
        };
        let peer = link
            .peer()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), SocketAddr::V4);
        let index = match shard.accept(protocol, peer) {
            Ok(index) => index,
            Err(Refusal::TooManyClients(message)) => {
                let mut link = link;
                // Best effort, as on TCP: the error, then the link drops (disconnects).
                let _ = link.send(message);
                return;
            }
        };
        let position = index as usize;
        if self.links.len() <= position {
            self.links.resize_with(position + 1, || None);
        }
        self.indices.insert(link.id(), index);
        changes.push(FdChange::Watch {
            index,
            fd: link.completion_fd(),
        });
        self.links[position] = Some(Box::new(link));
        tracing::debug!(index, %peer, ?protocol, "RDMA client connected");
    }

    /// Takes link `index`'s completions: received messages go to the shard as input, finished
    /// sends free slots for the output still waiting.
    pub fn link_ready(&mut self, shard: &mut Shard, index: u32, changes: &mut Vec<FdChange>) {
        let Some(link) = self.links.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Err(error) = link.poll(|message| shard.receive(index, message)) {
            tracing::debug!(index, %error, "RDMA link failed");
            self.close(shard, index, changes);
            return;
        }
        self.write_out(shard, index, changes);
    }

    /// Sends what connection `index` has in its output, as far as free send slots allow.
    /// Returns false when `index` is not an RDMA link (the loop's own sockets handle it).
    pub fn write_out(
        &mut self,
        shard: &mut Shard,
        index: u32,
        changes: &mut Vec<FdChange>,
    ) -> bool {
        let Some(link) = self.links.get_mut(index as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Some(conn) = shard.conn_mut(index) else {
            return true;
        };
        if conn.abort {
            self.close(shard, index, changes);
            return true;
        }
        let sent = match link.send_stream(&conn.output) {
            Ok(sent) => sent,
            Err(error) => {
                tracing::debug!(index, %error, "RDMA send failed");
                self.close(shard, index, changes);
                return true;
            }
        };
        conn.output.drain(..sent);
        if conn.output.is_empty() && conn.close_after_output {
            self.close(shard, index, changes);
        } else if sent > 0 {
            shard.output_sent(index, sent);
        }
        true
    }

    /// At shutdown: waits (polling, at most `limit`) until every posted reply has reached its
    /// client, since dropping a link discards SENDs still in flight. Input that arrives meanwhile
    /// is dropped: the server has stopped reading.
    pub fn finish_sends(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for link in self.links.iter_mut().flatten() {
            while link.sends_in_flight() > 0 && Instant::now() < deadline {
                if link.poll(|_| {}).is_err() {
                    break;
                }
                std::thread::sleep(SHUTDOWN_POLL_INTERVAL);
            }
        }
    }

    fn close(&mut self, shard: &mut Shard, index: u32, changes: &mut Vec<FdChange>) {
        let Some(link) = self.links.get_mut(index as usize).and_then(Option::take) else {
            return;
        };
        self.indices.remove(&link.id());
        changes.push(FdChange::Forget {
            index,
            fd: link.completion_fd(),
        });
        shard.close(index);
        // Dropping the link disconnects it and frees its queue pair and registered buffers.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_name_their_protocol() {
        for protocol in [Protocol::Resp, Protocol::Memcache] {
            assert_eq!(protocol_of(greeting(protocol)), Some(protocol));
        }
        assert_eq!(protocol_of(b"memcache\0\0\0\0"), Some(Protocol::Memcache));
        assert_eq!(protocol_of(b""), Some(Protocol::Resp));
        assert_eq!(protocol_of(b"gopher"), None);
    }
}
