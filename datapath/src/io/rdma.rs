//! The RoCEv2 transport: clients reach a shard over reliable-connected queue pairs instead of TCP.
//!
//! An RDMA link is one more kind of connection to the shard: its messages are appended to the
//! connection's input exactly as TCP bytes are, and its output leaves in messages of at most one
//! link buffer, so parsing, routing across shards and execution are the ones TCP uses. The client
//! names its protocol in the connect request's private data ([`greeting`]): `resp` or `memcache`.
//!
//! Links are spread over the shards. RDMA CM listens once per port, so shard 0 holds the
//! listener; each connect request goes to the shard with the fewest RDMA links open (ties taken
//! in turn, [`choose_shard`]), like the kernel spreads TCP connections over SO_REUSEPORT sockets.
//! Shard 0 moves the request's connection-manager events to that shard's own event channel
//! (`rdma_migrate_id`) and hands it over through a bounded queue, ringing the shard's doorbell;
//! the shard builds the queue pair, its completion queue and its registered buffers on its own
//! thread (so its memory is first touched on its own core and NUMA node) and accepts. From then
//! on the link is that shard's alone: its completions, its disconnect, its replies.
//!
//! ```text
//!  shard 0: Events --connect request--> choose_shard --migrate + queue + doorbell--> shard k
//!  shard k: tick(): accept, completion fd watched by its loop; Events(k): disconnects
//! ```
//!
//! Both event loops drive an [`RdmaPort`] the same way: they watch [`RdmaPort::events_fd`] and
//! each link's completion fd, call [`RdmaPort::events_ready`] and [`RdmaPort::link_ready`] when
//! one is readable, call [`RdmaPort::tick`] once per loop iteration, and hand every connection
//! with new output to [`RdmaPort::write_out`]. The port collects the completion fds that appeared
//! or went away meanwhile; [`RdmaPort::take_fd_changes`] hands them to the loop to watch or
//! forget. While [`RdmaPort::busy`] says so, the loop must not sleep.
//!
//! Fairness: a link's poll takes at most `platform::verbs::COMPLETIONS_PER_POLL_MAX`
//! completions; a link that had more left is polled again next iteration (without sleeping)
//! instead of being drained while the shard's other clients wait. Likewise at most
//! [`ADOPTIONS_PER_TICK_MAX`] handed-over requests become links per iteration (each registers
//! its buffers); the rest wait in the handover queue for the next.
//!
//! Busy polling: after a wake-up that found completions, a link's completion queue is polled
//! again every loop iteration, without arming its completion fd, until it has been idle for the
//! busy-poll window (`--rdma-busy-poll-us`); only then is the fd armed and the shard may sleep.
//! A busy link thus costs no interrupt, no fd read and no wake-up per message; an idle one costs
//! nothing. A window of 0 (the default, [`BUSY_POLL_DEFAULT`]) arms after every poll.
//!
//! Limits: links count against the server's client limit (the same `--max-clients` as TCP), but
//! the limit is checked after the accept: a link over it gets the limit's error message and is
//! dropped once that has left, so it holds its queue pair and buffers for that long (at most
//! [`SHUTDOWN_DRAIN_MAX`]). Each link holds [`LINK_CONFIG`]'s buffers (`receive_buffers` +
//! `send_slots` messages of `buffer_bytes`), registered once when it is accepted; at most
//! [`HANDOVER_REQUESTS_MAX`] requests wait for one shard (more are rejected). A client that stops
//! re-posting receives makes our SENDs fail after the NIC's retries and is disconnected
//! (`platform::verbs::RNR_RETRY_COUNT`); one that sends garbage gets the protocol's error, and its
//! link is closed once that reply has left (dropping a link discards SENDs still in flight).

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TrySendError};
use platform::verbs::{
    Completions, Event, Events, EventsAddress, Link, LinkConfig, LinkId, Listener, Request,
    VerbsError,
};

use super::{ACCEPTS_PER_TICK_MAX, SHUTDOWN_DRAIN_MAX};
use crate::shard::conn::Protocol;
use crate::shard::{Refusal, Shard};

/// Buffers of every server-side link: 32 receives and 32 sends of 16 KiB (1 MiB registered per
/// link). A reply larger than one buffer leaves in several messages.
pub const LINK_CONFIG: LinkConfig = LinkConfig {
    receive_buffers: 32,
    send_slots: 32,
    buffer_bytes: 16 * 1024,
};

/// How long a link that found completions keeps being polled without a wake-up once it goes
/// quiet, by default: off. Measured in the soft-RoCE VMs (README, `## RDMA (RoCEv2)`), a 50 µs
/// window lost more often than it won, since there the "NIC" is the kernel on the same CPUs the
/// spinning shard takes from it; on a hardware NIC with spare cores it may pay: measure.
pub const BUSY_POLL_DEFAULT: Duration = Duration::ZERO;

/// Connect requests waiting in one shard's handover queue; beyond this they are rejected (the
/// shard is not keeping up, and the listener's own backlog is of the same order).
pub const HANDOVER_REQUESTS_MAX: usize = 128;

/// Handed-over requests made into links per loop iteration. Each allocates a protection domain,
/// a completion queue and a queue pair and registers (pins) [`LINK_CONFIG`]'s 1 MiB, which takes
/// the shard away from its other clients; a burst of connects is spread over iterations.
pub const ADOPTIONS_PER_TICK_MAX: usize = 4;

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

/// The shard that takes the next link: the one with the fewest RDMA links open, ties going to
/// the first at or after `cursor` (the listener moves it past each choice, so equally loaded
/// shards take turns). Only RDMA links count: they are what costs a shard registered memory and
/// a queue pair, and TCP connections are spread by the kernel.
pub fn choose_shard(links_open: &[AtomicUsize], cursor: usize) -> usize {
    let shard_count = links_open.len();
    assert!(shard_count > 0, "a server has at least one shard");
    (0..shard_count)
        .map(|offset| (cursor + offset) % shard_count)
        .min_by_key(|&shard| links_open[shard].load(Ordering::Relaxed))
        .expect("at least one shard")
}

/// A completion fd the loop must start or stop watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdChange {
    Watch { index: u32, fd: RawFd },
    Forget { index: u32, fd: RawFd },
}

/// What all shards' ports share: where to hand a request to each shard, and how many RDMA links
/// each holds (counted from the handover on, so requests in flight weigh too).
struct Handover {
    queues: Vec<Sender<Request>>,
    events: Vec<EventsAddress>,
    links_open: Vec<AtomicUsize>,
}

/// How to poll a link's completion queue.
#[derive(Clone, Copy, Debug)]
enum Polling {
    /// Leave its completion fd unarmed (the caller polls again soon); `woken`: the fd was
    /// readable, so its event is consumed first.
    Busy { woken: bool },
    /// Arm its completion fd, so the next completion wakes the loop (unless the poll stopped at
    /// its bound: then the link is polled again next iteration).
    Arm,
}

/// A link being busy-polled or with completions left over, and when it last had a completion.
#[derive(Clone, Copy, Debug)]
struct HotLink {
    index: u32,
    active: Instant,
}

/// A link whose connection is closing: kept (and its connection with it) until the replies posted
/// on it have left, since dropping a link discards SENDs still in flight; at most until `deadline`
/// (as long as a stopping shard waits for its replies).
#[derive(Clone, Copy, Debug)]
struct Closing {
    index: u32,
    deadline: Instant,
}

/// A link refused for the client limit, kept (at most until `deadline`) until its error message
/// has left. It is no connection of the shard, and the loop does not watch it: [`RdmaPort::tick`]
/// polls it.
struct Refused {
    link: Link,
    deadline: Instant,
}

/// A shard's share of the RDMA transport: its connection-manager channel, the links it owns
/// (indexed like the shard's connections) and, on shard 0, the listener.
pub struct RdmaPort {
    shard: usize,
    listener: Option<Listener>,
    events: Events,
    queue: Receiver<Request>,
    handover: Arc<Handover>,
    /// Where the next tie between equally loaded shards starts (the listening shard's).
    cursor: usize,
    links: Vec<Option<Box<Link>>>,
    indices: HashMap<LinkId, u32>,
    busy_poll: Duration,
    /// Links polled every iteration: busy-polled ones, and those whose last poll stopped at its
    /// bound.
    hot: Vec<HotLink>,
    /// `hot`'s twin, swapped in while `hot` is walked, so a tick allocates nothing.
    hot_spare: Vec<HotLink>,
    closing: Vec<Closing>,
    refused: Vec<Refused>,
    /// Completion fds that appeared or went away since [`RdmaPort::take_fd_changes`].
    changes: Vec<FdChange>,
}

impl RdmaPort {
    /// Listens on `address` (the IPv4 address of the RDMA device's network interface) and makes
    /// one port per shard; the first holds the listener. `busy_poll` is the busy-poll window
    /// (zero: off).
    pub fn bind(
        address: SocketAddrV4,
        shard_count: usize,
        busy_poll: Duration,
    ) -> Result<Vec<RdmaPort>, VerbsError> {
        assert!(shard_count > 0, "a server has at least one shard");
        let events = (0..shard_count)
            .map(|_| Events::new())
            .collect::<Result<Vec<_>, _>>()?;
        let mut listener = Some(Listener::bind(address, &events[0])?);
        let (queues, receivers): (Vec<_>, Vec<_>) = (0..shard_count)
            .map(|_| crossbeam::channel::bounded(HANDOVER_REQUESTS_MAX))
            .unzip();
        let handover = Arc::new(Handover {
            queues,
            events: events.iter().map(Events::address).collect(),
            links_open: (0..shard_count).map(|_| AtomicUsize::new(0)).collect(),
        });
        Ok(events
            .into_iter()
            .zip(receivers)
            .enumerate()
            .map(|(shard, (events, queue))| RdmaPort {
                shard,
                listener: listener.take(),
                events,
                queue,
                handover: Arc::clone(&handover),
                cursor: 0,
                links: Vec::new(),
                indices: HashMap::new(),
                busy_poll,
                hot: Vec::new(),
                hot_spare: Vec::new(),
                closing: Vec::new(),
                refused: Vec::new(),
                changes: Vec::new(),
            })
            .collect())
    }

    /// This shard's connection-manager channel: readable when [`RdmaPort::events_ready`] has
    /// work (connect requests on shard 0, disconnects of this shard's links everywhere).
    pub fn events_fd(&self) -> RawFd {
        self.events.fd()
    }

    /// Closes the listener (the server is stopping); open links are served until they drain.
    pub fn stop_listening(&mut self) {
        self.listener = None;
    }

    /// The completion fd of link `index`, while it is open.
    pub fn completion_fd(&self, index: u32) -> Option<RawFd> {
        self.links
            .get(index as usize)
            .and_then(Option::as_deref)
            .map(Link::completion_fd)
    }

    /// Whether there is work for the next iteration (a link busy-polled or with completions left
    /// over, handed-over requests waiting): the loop must come back without sleeping.
    pub fn busy(&self) -> bool {
        !self.hot.is_empty() || !self.queue.is_empty()
    }

    /// Moves the completion fds to watch or forget since the last call into `into`. A link
    /// adopted and closed in between has no fd left to watch (its number may even belong to a
    /// newer link, already in `into`), so it is left out.
    pub fn take_fd_changes(&mut self, into: &mut Vec<FdChange>) {
        let links = &self.links;
        into.extend(self.changes.drain(..).filter(|change| match *change {
            FdChange::Watch { index, fd } => {
                let link = links.get(index as usize).and_then(Option::as_deref);
                link.map(Link::completion_fd) == Some(fd)
            }
            FdChange::Forget { .. } => true,
        }));
    }

    /// Handles waiting connection-manager events (a bounded batch; the fd stays readable for
    /// the rest): connect requests go to a shard, links that went away or never came up are
    /// closed, and a removed device closes the listener on it (TCP goes on being served).
    pub fn events_ready(&mut self, shard: &mut Shard) {
        for _ in 0..ACCEPTS_PER_TICK_MAX {
            let event = match self.events.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "RDMA connection manager");
                    return;
                }
            };
            match event {
                Event::Request(request) => self.route(shard, request),
                Event::Established(_) => {}
                Event::Disconnected(id) => self.close_link(shard, id),
                Event::Failed { id, event, status } => {
                    tracing::debug!(%event, status, "RDMA link never came up");
                    self.close_link(shard, id);
                }
                Event::DeviceRemoved(id) if self.is_listener(id) => {
                    tracing::error!(
                        shard = self.shard,
                        "RDMA device removed: the RDMA listener is closed, no more RDMA clients \
                         are accepted; TCP is served as before"
                    );
                    self.listener = None;
                }
                Event::DeviceRemoved(id) => {
                    tracing::warn!(shard = self.shard, "RDMA device removed under a link");
                    self.close_link(shard, id);
                }
                Event::AddressChanged(id) if self.is_listener(id) => tracing::warn!(
                    "the RDMA listener's address moved to another device: new RDMA clients may fail"
                ),
                Event::AddressChanged(_) => {
                    tracing::debug!("an RDMA link's address moved to another device")
                }
                Event::Other { event, status, .. } => {
                    tracing::debug!(%event, status, "RDMA connection manager event ignored")
                }
            }
        }
    }

    fn is_listener(&self, id: LinkId) -> bool {
        self.listener
            .as_ref()
            .is_some_and(|listener| listener.id() == id)
    }

    /// Closes the link the connection manager reported on, if it is (still) this shard's.
    fn close_link(&mut self, shard: &mut Shard, id: LinkId) {
        if let Some(&index) = self.indices.get(&id) {
            self.close(shard, index);
        }
    }

    /// Sends a connect request to the shard that takes it (dropping a request rejects it),
    /// through that shard's handover queue, this one's included: [`RdmaPort::tick`] adopts.
    fn route(&mut self, shard: &Shard, mut request: Request) {
        if self.listener.is_none() {
            return;
        }
        let handover = Arc::clone(&self.handover);
        let target = choose_shard(&handover.links_open, self.cursor);
        self.cursor = (target + 1) % handover.links_open.len();
        handover.links_open[target].fetch_add(1, Ordering::Relaxed);
        // This shard's own channel hears of the request already.
        let migrated = if target == self.shard {
            Ok(())
        } else {
            request.migrate(&handover.events[target])
        };
        let refused = match migrated {
            Err(error) => Some(error.to_string()),
            Ok(()) => match handover.queues[target].try_send(request) {
                Ok(()) => None,
                Err(TrySendError::Full(_)) => Some(format!("shard {target} is not keeping up")),
                Err(TrySendError::Disconnected(_)) => Some(format!("shard {target} has exited")),
            },
        };
        match refused {
            // This shard's tick runs later in the same iteration.
            None if target == self.shard => {}
            None => shard.core.shared.addresses[target].doorbell().ring(),
            Some(why) => {
                handover.links_open[target].fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(target, "RDMA connection refused: {why}");
            }
        }
    }

    /// Makes a link of a request handed to this shard and registers it as a connection.
    fn adopt(&mut self, shard: &mut Shard, request: Request) {
        let Some(protocol) = protocol_of(request.greeting()) else {
            tracing::warn!(greeting = ?request.greeting(), "RDMA client named no known protocol; rejected");
            self.link_gone();
            return;
        };
        let mut link = match request.accept(LINK_CONFIG) {
            Ok(link) => link,
            Err(error) => {
                tracing::warn!(%error, "RDMA connection refused");
                self.link_gone();
                return;
            }
        };
        let peer = link
            .peer()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), SocketAddr::V4);
        let index = match shard.accept(protocol, peer) {
            Ok(index) => index,
            Err(Refusal::TooManyClients(message)) => {
                self.link_gone();
                if link.send(message).is_ok() {
                    self.refused.push(Refused {
                        link,
                        deadline: Instant::now() + SHUTDOWN_DRAIN_MAX,
                    });
                }
                return;
            }
        };
        let position = index as usize;
        if self.links.len() <= position {
            self.links.resize_with(position + 1, || None);
        }
        self.indices.insert(link.id(), index);
        self.changes.push(FdChange::Watch {
            index,
            fd: link.completion_fd(),
        });
        self.links[position] = Some(Box::new(link));
        tracing::info!(shard = self.shard, index, %peer, ?protocol, "RDMA client connected");
    }

    /// Once per loop iteration: adopts requests handed to this shard (at most
    /// [`ADOPTIONS_PER_TICK_MAX`]), drops refused links whose message has left, closes closing
    /// links past their deadline, and polls the hot links: busy-polled ones (each armed once it
    /// has been idle for the window) and those whose last poll stopped at its bound.
    pub fn tick(&mut self, shard: &mut Shard) {
        for _ in 0..ADOPTIONS_PER_TICK_MAX {
            let Ok(request) = self.queue.try_recv() else {
                break;
            };
            self.adopt(shard, request);
        }
        let now = Instant::now();
        self.refused.retain_mut(|refused| {
            // Their input is not read; an error means the link is broken.
            let polled = refused.link.poll_unarmed(false, |_| {});
            polled.is_ok() && refused.link.sends_in_flight() > 0 && now < refused.deadline
        });
        // close() takes each from `closing`.
        while let Some(expired) = self.closing.iter().find(|closing| now >= closing.deadline) {
            let index = expired.index;
            tracing::debug!(index, "RDMA link closed with replies still in flight");
            self.close(shard, index);
        }
        if self.hot.is_empty() {
            return;
        }
        let mut hot = std::mem::replace(&mut self.hot, std::mem::take(&mut self.hot_spare));
        for entry in hot.drain(..) {
            let idle = now.duration_since(entry.active) >= self.busy_poll;
            let polling = if idle {
                Polling::Arm
            } else {
                Polling::Busy { woken: false }
            };
            match self.take_completions(shard, entry.index, polling) {
                Some(taken) if taken.more || (taken.any() && !idle) => self.hot.push(HotLink {
                    index: entry.index,
                    active: now,
                }),
                Some(_) if !idle => self.hot.push(entry),
                // Armed, or closed.
                _ => {}
            }
        }
        self.hot_spare = hot;
    }

    /// Link `index`'s completion fd is readable: takes its completions (received messages go to
    /// the shard as input, finished sends free slots for the output still waiting). A link left
    /// with completions beyond the poll's bound, or (busy polling on) one that had some, stays
    /// unarmed and is polled again by [`RdmaPort::tick`].
    pub fn link_ready(&mut self, shard: &mut Shard, index: u32) {
        let taken = if self.busy_poll.is_zero() {
            self.take_completions(shard, index, Polling::Arm)
        } else {
            match self.take_completions(shard, index, Polling::Busy { woken: true }) {
                Some(taken) if !taken.any() => self.take_completions(shard, index, Polling::Arm),
                polled => polled,
            }
        };
        if taken.is_some_and(|taken| taken.more || (taken.any() && !self.busy_poll.is_zero())) {
            let active = Instant::now();
            match self.hot.iter_mut().find(|entry| entry.index == index) {
                Some(entry) => entry.active = active,
                None => self.hot.push(HotLink { index, active }),
            }
        }
    }

    /// Polls link `index` as `polling` says, then sends what its connection has waiting.
    /// Returns what the poll took, or None when the link is (now) closed.
    fn take_completions(
        &mut self,
        shard: &mut Shard,
        index: u32,
        polling: Polling,
    ) -> Option<Completions> {
        let link = self.links.get_mut(index as usize)?.as_mut()?;
        // A closing connection reads no more; its link is polled only for its sends' completions.
        let closing = self.closing.iter().any(|closing| closing.index == index);
        let deliver = |message: &[u8]| {
            if !closing {
                shard.receive(index, message);
            }
        };
        let polled = match polling {
            Polling::Busy { woken } => link.poll_unarmed(woken, deliver),
            Polling::Arm => link.poll_and_arm(deliver),
        };
        match polled {
            Ok(taken) => {
                self.write_out(shard, index);
                self.links.get(index as usize)?.as_ref()?;
                Some(taken)
            }
            Err(error) => {
                tracing::debug!(index, %error, "RDMA link failed");
                self.close(shard, index);
                None
            }
        }
    }

    /// Sends what connection `index` has in its output, as far as free send slots allow.
    /// Returns false when `index` is not an RDMA link (the loop's own sockets handle it).
    pub fn write_out(&mut self, shard: &mut Shard, index: u32) -> bool {
        let Some(link) = self.links.get_mut(index as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Some(conn) = shard.conn_mut(index) else {
            return true;
        };
        if conn.abort {
            self.close(shard, index);
            return true;
        }
        let sent = match link.send_stream(&conn.output) {
            Ok(sent) => sent,
            Err(error) => {
                tracing::debug!(index, %error, "RDMA send failed");
                self.close(shard, index);
                return true;
            }
        };
        conn.output.drain(..sent);
        // Replies still being made on other shards come before the close.
        if !conn.owes_replies() && conn.close_after_output {
            if link.sends_in_flight() == 0 {
                self.close(shard, index);
            } else if !self.closing.iter().any(|closing| closing.index == index) {
                // take_completions calls back here as the last sends complete.
                self.closing.push(Closing {
                    index,
                    deadline: Instant::now() + SHUTDOWN_DRAIN_MAX,
                });
            }
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
        let refused = self.refused.iter_mut().map(|refused| &mut refused.link);
        for link in self
            .links
            .iter_mut()
            .flatten()
            .map(|link| &mut **link)
            .chain(refused)
        {
            while link.sends_in_flight() > 0 && Instant::now() < deadline {
                if link.poll(|_| {}).is_err() {
                    break;
                }
                std::thread::sleep(SHUTDOWN_POLL_INTERVAL);
            }
        }
    }

    /// A link of this shard is gone (or never came): one fewer for [`choose_shard`].
    fn link_gone(&self) {
        self.handover.links_open[self.shard].fetch_sub(1, Ordering::Relaxed);
    }

    fn close(&mut self, shard: &mut Shard, index: u32) {
        let Some(link) = self.links.get_mut(index as usize).and_then(Option::take) else {
            return;
        };
        self.indices.remove(&link.id());
        self.hot.retain(|entry| entry.index != index);
        self.closing.retain(|closing| closing.index != index);
        self.link_gone();
        self.changes.push(FdChange::Forget {
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

    fn counts(links: &[usize]) -> Vec<AtomicUsize> {
        links.iter().map(|&count| AtomicUsize::new(count)).collect()
    }

    #[test]
    fn links_go_to_the_least_loaded_shard_and_equal_shards_take_turns() {
        assert_eq!(choose_shard(&counts(&[3, 1, 2]), 0), 1);
        assert_eq!(choose_shard(&counts(&[0, 0, 0]), 2), 2);
        assert_eq!(choose_shard(&counts(&[1, 0, 0]), 0), 1);
        assert_eq!(choose_shard(&counts(&[5]), 0), 0);
        // As the listener uses it: each choice counted at once, the cursor moved past it.
        let links_open = counts(&[0, 0, 0, 0]);
        let mut cursor = 0;
        let mut chosen = Vec::new();
        for _ in 0..8 {
            let shard = choose_shard(&links_open, cursor);
            links_open[shard].fetch_add(1, Ordering::Relaxed);
            cursor = (shard + 1) % links_open.len();
            chosen.push(shard);
        }
        assert_eq!(chosen, [0, 1, 2, 3, 0, 1, 2, 3]);
        // A shard whose links closed is filled first.
        links_open[2].fetch_sub(2, Ordering::Relaxed);
        assert_eq!(choose_shard(&links_open, cursor), 2);
    }
}
