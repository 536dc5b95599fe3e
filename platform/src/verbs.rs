//! Reliable-connected RDMA links over the RDMA connection manager: what a transport needs from
//! the NIC, and nothing about what travels on it.
//!
//! A [`Link`] is an ordered, reliable stream of messages between two queue pairs. Each side
//! pre-posts [`LinkConfig::receive_buffers`] receive buffers and keeps
//! [`LinkConfig::send_slots`] send buffers; all of them live in one memory region registered
//! once when the link is made, so sending and receiving never register memory or allocate.
//!
//! ```text
//!  region: [ receive 0 | receive 1 | ... | receive R-1 | send 0 | ... | send S-1 ]
//!           each `buffer_bytes` long; a work request's wr_id is its buffer's index
//! ```
//!
//! Everything is non-blocking and driven by the caller's event loop: [`Events::fd`] and
//! [`Link::completion_fd`] become readable when there is work, then [`Events::next_event`] and
//! [`Link::poll`] do it. Only [`Link::connect`] (the client side) blocks, with a timeout.
//!
//! Connection-manager events arrive on an [`Events`] channel. A [`Listener`] reports connect
//! requests on the channel it was bound to; a [`Request`] may be moved to another thread's
//! channel ([`Request::migrate`]) before that thread accepts it, so every link's later events
//! (established, disconnected) reach the thread that owns the link:
//!
//! ```text
//!  listening thread                         owning thread
//!  Events::next_event -> Request --migrate(address of B's Events)--> hand over --> Request::accept
//!                                                              B's Events::next_event -> Disconnected
//! ```
//!
//! A thread serving many links polls each with [`Link::poll_and_arm`], which takes at most
//! [`COMPLETIONS_PER_POLL_MAX`] completions (one peer streaming SENDs cannot hold the thread) and
//! says when it stopped at that bound, leaving the rest queued in order and the fd unarmed: the
//! caller polls that link again soon. A link can also be busy-polled: [`Link::poll_unarmed`]
//! takes completions without asking the NIC for a wake-up, and [`Link::poll_and_arm`] ends a
//! busy spell. [`Link::poll`] takes everything, for a client alone with its link.
//!
//! Besides connect requests and links coming up or going away, the connection manager reports
//! failures as what they are ([`Event`]): a link that never came up, a device removed under a
//! link or a listener, an address moved.
//!
//! Flow control is the NIC's: a SEND that finds no posted receive is retried by the hardware
//! [`RNR_RETRY_COUNT`] times, then fails, and the link reports [`VerbsError::Completion`]; a
//! peer that stops posting receives is therefore cut off instead of stalling its sender.

use std::ffi::CStr;
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdma_sys::*;
use thiserror::Error;

/// How often the NIC retries a SEND that found no posted receive before failing it. 7 would mean
/// "forever", which lets one slow peer stall a sender; 6 gives a peer roughly half a second.
pub const RNR_RETRY_COUNT: u8 = 6;
/// Transport retries on a lost packet (the ACK timeout applies between them).
pub const RETRY_COUNT: u8 = 7;
/// Local ACK timeout exponent: a lost ACK is retried after 4.096 µs × 2^this. rdma_cm's
/// default (about 67 ms on soft-RoCE) turned each ACK that rxe misses into a 67 ms stall between
/// two VMs; 12 (about 17 ms) is still far above any real fabric's round trip.
const ACK_TIMEOUT_EXPONENT: u8 = 12;
/// `RDMA_OPTION_ID` and `RDMA_OPTION_ID_ACK_TIMEOUT` from `<rdma/rdma_cma.h>` (enums bindgen
/// does not export).
const RDMA_OPTION_ID: i32 = 0;
const RDMA_OPTION_ID_ACK_TIMEOUT: i32 = 3;
/// Outstanding RDMA READs a peer may issue into our memory and we into theirs.
const READ_DEPTH: u8 = 4;
/// Completions taken from the completion queue per `ibv_poll_cq` call.
const POLL_BATCH: usize = 32;
/// The most completions one [`Link::poll_unarmed`] or [`Link::poll_and_arm`] takes, so one peer
/// streaming SENDs cannot keep a thread that serves many links in one link's poll: the rest
/// stay queued, in order, for the next call. As many as a default link's receives and send
/// slots together: one call can still take a whole window.
pub const COMPLETIONS_PER_POLL_MAX: usize = 64;
/// Connection requests the listener queues before the CM refuses more.
const LISTEN_BACKLOG: i32 = 128;
/// The most a client's greeting (connect private data) may carry. An RC connect request has room
/// for 56 bytes after the connection manager's own header; we keep well inside that.
pub const GREETING_BYTES_MAX: usize = 32;

/// What one poll took from a link's completion queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completions {
    /// Messages received (each handed to the caller).
    pub messages: usize,
    /// Sends the peer acknowledged (each freed a send slot).
    pub sends: usize,
    /// The poll stopped at [`COMPLETIONS_PER_POLL_MAX`]: more may be queued, and no wake-up
    /// announces them (the completion fd was not armed for them). Poll again soon.
    pub more: bool,
}

impl Completions {
    pub fn any(&self) -> bool {
        self.total() > 0
    }

    fn total(&self) -> usize {
        self.messages + self.sends
    }

    /// This poll followed by `later`.
    fn then(self, later: Completions) -> Completions {
        Completions {
            messages: self.messages + later.messages,
            sends: self.sends + later.sends,
            more: later.more,
        }
    }
}

/// A link's buffers: one heap allocation that the NIC reads and writes once it is registered.
/// The NIC may write any posted receive buffer at any moment, so no reference ever spans the
/// allocation; one buffer at a time is reached through its raw pointer, while the NIC does not
/// own that buffer.
struct Buffers {
    base: ptr::NonNull<u8>,
    bytes: usize,
}

impl Buffers {
    fn new(bytes: usize) -> Buffers {
        let allocation = Box::into_raw(vec![0u8; bytes].into_boxed_slice());
        Buffers {
            base: ptr::NonNull::new(allocation.cast::<u8>()).expect("a Box is never null"),
            bytes,
        }
    }

    /// Where buffer `index` of `buffer_bytes` starts (only computed here; whoever reads or
    /// writes through it shows that the buffer is the link's and not the NIC's at that moment).
    fn at(&self, index: u32, buffer_bytes: u32) -> *mut u8 {
        let offset = index as usize * buffer_bytes as usize;
        debug_assert!(offset < self.bytes);
        self.base.as_ptr().wrapping_add(offset)
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        let allocation = ptr::slice_from_raw_parts_mut(self.base.as_ptr(), self.bytes);
        // SAFETY: made by Box::into_raw in `new` with this length, freed only here; a Link drops
        // its fields (this one) after its own Drop has deregistered the region and destroyed the
        // QP, so the NIC no longer touches it.
        drop(unsafe { Box::from_raw(allocation) });
    }
}

/// The shape of a link's buffers. Both sides should agree on `buffer_bytes`: a message longer than
/// the receiver's buffer fails on the receiver's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub receive_buffers: u32,
    pub send_slots: u32,
    pub buffer_bytes: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            receive_buffers: 32,
            send_slots: 32,
            buffer_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Error)]
pub enum VerbsError {
    #[error("{call} failed: {source}")]
    Call {
        call: &'static str,
        source: std::io::Error,
    },
    #[error("connection manager: expected {expected}, got {got} (status {status})")]
    UnexpectedEvent {
        expected: &'static str,
        got: String,
        status: i32,
    },
    #[error("timed out after {0:?} waiting for the connection manager")]
    Timeout(Duration),
    #[error("work request {wr_id} failed: {status}")]
    Completion { wr_id: u64, status: String },
    #[error("message of {len} bytes is larger than a buffer ({max} bytes)")]
    MessageTooLarge { len: usize, max: usize },
    #[error("greeting of {len} bytes is longer than {GREETING_BYTES_MAX}")]
    GreetingTooLong { len: usize },
}

fn last_error(call: &'static str) -> VerbsError {
    VerbsError::Call {
        call,
        source: std::io::Error::last_os_error(),
    }
}

/// Turns a C status (0 = success, else -1 with errno, or a positive errno) into a Result.
fn check(call: &'static str, status: i32) -> Result<(), VerbsError> {
    match status {
        0 => Ok(()),
        -1 => Err(last_error(call)),
        errno => Err(VerbsError::Call {
            call,
            source: std::io::Error::from_raw_os_error(errno),
        }),
    }
}

fn set_nonblocking(fd: RawFd) -> Result<(), VerbsError> {
    // SAFETY: fcntl on an fd we own, with flag arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(last_error("fcntl(O_NONBLOCK)"));
    }
    Ok(())
}

fn socket_address(address: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*address.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn event_name(event: rdma_cm_event_type::Type) -> String {
    // SAFETY: rdma_event_str returns a static NUL-terminated string for any value.
    unsafe { CStr::from_ptr(rdma_event_str(event)) }
        .to_string_lossy()
        .into_owned()
}

/// An event channel: the fd the connection manager reports on.
struct EventChannel(*mut rdma_event_channel);

// SAFETY: the channel is one fd and a heap struct that librdmacm never mutates after creation.
// Events are read from it only through `Events::next_event` (`&mut`, so one thread) or a client link's
// own channel; other threads only pass the pointer to rdma_migrate_id and rdma_destroy_id, which
// write commands to its fd (the kernel serialises those).
unsafe impl Send for EventChannel {}
// SAFETY: as above.
unsafe impl Sync for EventChannel {}

impl EventChannel {
    fn new() -> Result<Self, VerbsError> {
        // SAFETY: no arguments; a null answer is checked.
        let channel = unsafe { rdma_create_event_channel() };
        if channel.is_null() {
            return Err(last_error("rdma_create_event_channel"));
        }
        Ok(EventChannel(channel))
    }

    fn fd(&self) -> RawFd {
        // SAFETY: the channel is live for as long as `self`.
        unsafe { (*self.0).fd }
    }

    /// The next event, copied out and acked, or None when the (non-blocking) channel has none
    /// now. The one place events are read: whatever a caller needs of one is copied here, since
    /// the ack frees it.
    fn next(&self) -> Result<Option<Received>, VerbsError> {
        let mut event = ptr::null_mut();
        // SAFETY: the channel is live and `event` is a valid out-pointer.
        if unsafe { rdma_get_cm_event(self.0, &mut event) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(VerbsError::Call {
                call: "rdma_get_cm_event",
                source: error,
            });
        }
        // SAFETY: `event` came from rdma_get_cm_event and is not acked yet.
        let (kind, id, status) = unsafe { ((*event).event, (*event).id, (*event).status) };
        let greeting = (kind == rdma_cm_event_type::RDMA_CM_EVENT_CONNECT_REQUEST)
            // SAFETY: a connect request, not acked yet.
            .then(|| unsafe { greeting_of(event) });
        // SAFETY: acked exactly once, after everything needed was copied out of it.
        unsafe { rdma_ack_cm_event(event) };
        Ok(Some(Received {
            kind,
            id,
            status,
            greeting,
        }))
    }

    /// Blocks (by poll) until the next event or the deadline.
    fn wait(&self, deadline: Instant, timeout: Duration) -> Result<Received, VerbsError> {
        loop {
            if let Some(event) = self.next()? {
                return Ok(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(VerbsError::Timeout(timeout));
            }
            let mut poll_fd = libc::pollfd {
                fd: self.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut poll_fd, 1, millis) };
        }
    }

    /// Waits for one event of type `expected` on this channel.
    fn expect(
        &self,
        expected: rdma_cm_event_type::Type,
        expected_name: &'static str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), VerbsError> {
        let event = self.wait(deadline, timeout)?;
        if event.kind != expected {
            return Err(VerbsError::UnexpectedEvent {
                expected: expected_name,
                got: event_name(event.kind),
                status: event.status,
            });
        }
        Ok(())
    }
}

/// A connection-manager event as read, already acked.
struct Received {
    kind: rdma_cm_event_type::Type,
    id: *mut rdma_cm_id,
    status: i32,
    /// A connect request's private data (None for every other kind).
    greeting: Option<Vec<u8>>,
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: every id on this channel was destroyed before (ids are dropped first).
        unsafe { rdma_destroy_event_channel(self.0) };
    }
}

/// A connection-manager event channel owned by one thread: connect requests of the listeners
/// bound to it and the established/disconnected events of the links on it arrive here.
pub struct Events {
    channel: Arc<EventChannel>,
}

/// Where another thread can move a [`Request`] so that its events arrive on an [`Events`]
/// channel it does not own.
#[derive(Clone)]
pub struct EventsAddress {
    channel: Arc<EventChannel>,
}

/// What the connection manager reported.
pub enum Event {
    /// A client asks to connect: accept it ([`Request::accept`]) or drop it (which rejects).
    Request(Request),
    /// A link on this channel was established (data may flow).
    Established(LinkId),
    /// The peer of a link on this channel disconnected: drop the link with this id.
    Disconnected(LinkId),
    /// A link accepted on this channel never came up: the client's side failed
    /// (CONNECT_ERROR), could not be reached (UNREACHABLE) or refused it (REJECTED). Drop it.
    Failed {
        id: LinkId,
        event: String,
        status: i32,
    },
    /// The RDMA device under this id (a link or a listener) was removed: its links are dead and
    /// a listener on it hears no more requests. Drop whatever has this id.
    DeviceRemoved(LinkId),
    /// The network address of this id moved to another device (ADDR_CHANGE): its links may
    /// fail, a listener on it may hear no more requests.
    AddressChanged(LinkId),
    /// Anything else: TIMEWAIT_EXIT (a disconnected QP may be reused), or events of the client
    /// side or of multicast, which a channel of listeners and accepted links does not expect.
    Other {
        id: LinkId,
        event: String,
        status: i32,
    },
}

impl Event {
    /// The event of any kind but a connect request (which carries a [`Request`]).
    fn of(kind: rdma_cm_event_type::Type, id: LinkId, status: i32) -> Event {
        use rdma_cm_event_type::*;
        match kind {
            RDMA_CM_EVENT_ESTABLISHED => Event::Established(id),
            RDMA_CM_EVENT_DISCONNECTED => Event::Disconnected(id),
            RDMA_CM_EVENT_CONNECT_ERROR | RDMA_CM_EVENT_UNREACHABLE | RDMA_CM_EVENT_REJECTED => {
                Event::Failed {
                    id,
                    event: event_name(kind),
                    status,
                }
            }
            RDMA_CM_EVENT_DEVICE_REMOVAL => Event::DeviceRemoved(id),
            RDMA_CM_EVENT_ADDR_CHANGE => Event::AddressChanged(id),
            _ => Event::Other {
                id,
                event: event_name(kind),
                status,
            },
        }
    }
}

/// Identifies a link in [`Event`]s: the address of its CM id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(usize);

impl Events {
    pub fn new() -> Result<Events, VerbsError> {
        let channel = EventChannel::new()?;
        set_nonblocking(channel.fd())?;
        Ok(Events {
            channel: Arc::new(channel),
        })
    }

    /// Readable when [`Events::next_event`] has something.
    pub fn fd(&self) -> RawFd {
        self.channel.fd()
    }

    pub fn address(&self) -> EventsAddress {
        EventsAddress {
            channel: Arc::clone(&self.channel),
        }
    }

    /// The next connection-manager event, without blocking.
    pub fn next_event(&mut self) -> Result<Option<Event>, VerbsError> {
        let Some(event) = self.channel.next()? else {
            return Ok(None);
        };
        Ok(Some(match event.greeting {
            Some(greeting) => Event::Request(Request {
                id: event.id,
                greeting,
                channel: Arc::clone(&self.channel),
            }),
            None => Event::of(event.kind, LinkId(event.id as usize), event.status),
        }))
    }
}

/// A connect request not yet answered. Dropping it rejects the client.
pub struct Request {
    id: *mut rdma_cm_id,
    greeting: Vec<u8>,
    /// The channel the id reports on, held so it outlives the id.
    channel: Arc<EventChannel>,
}

// SAFETY: the CM id is owned by this value alone; librdmacm lets ids move between threads.
unsafe impl Send for Request {}

impl Request {
    /// What the client said when it connected (the connect request's private data; the
    /// connection manager may pad it with zeros).
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    pub fn id(&self) -> LinkId {
        LinkId(self.id as usize)
    }

    /// Moves this request's events (and those of the link it becomes) to `target`'s channel.
    /// The request's connect event must have been acked, which [`Events::next_event`] did.
    pub fn migrate(&mut self, target: &EventsAddress) -> Result<(), VerbsError> {
        // SAFETY: the id is live and owned here; its only event so far (the connect request) is
        // acked, so rdma_migrate_id does not wait; the target channel is live (held by `target`).
        check("rdma_migrate_id", unsafe {
            rdma_migrate_id(self.id, target.channel.0)
        })?;
        self.channel = Arc::clone(&target.channel);
        Ok(())
    }

    /// Makes the link (queue pair, registered buffers, receives posted) and accepts the client.
    /// On error the client is rejected.
    pub fn accept(mut self, config: LinkConfig) -> Result<Link, VerbsError> {
        let id = std::mem::replace(&mut self.id, ptr::null_mut());
        let mut link = Link::empty(id, config, Arc::clone(&self.channel), false);
        link.greeting = std::mem::take(&mut self.greeting);
        let made = link.make_queue_pair().and_then(|()| {
            let mut parameters = connection_parameters();
            // SAFETY: the id came with a connect request and its QP exists.
            check("rdma_accept", unsafe { rdma_accept(id, &mut parameters) })
        });
        if let Err(error) = made {
            // SAFETY: the request's id, not accepted; the link's Drop then frees it.
            unsafe { rdma_reject(id, ptr::null(), 0) };
            return Err(error);
        }
        Ok(link)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.id.is_null() {
            return;
        }
        // SAFETY: a connect request's id, never accepted, its event acked: rejecting then
        // destroying it is the connection manager's protocol for a request we will not serve.
        unsafe {
            rdma_reject(self.id, ptr::null(), 0);
            rdma_destroy_id(self.id);
        }
    }
}

/// Listens for RC connections on an IPv4 address (the one bound to the RDMA device's netdev).
/// Its connect requests arrive on the [`Events`] channel it was bound with.
pub struct Listener {
    id: *mut rdma_cm_id,
    /// Held so the channel outlives the id.
    _channel: Arc<EventChannel>,
}

// SAFETY: the CM id is owned by this value and used by one thread at a time.
unsafe impl Send for Listener {}

impl Listener {
    pub fn bind(address: SocketAddrV4, events: &Events) -> Result<Listener, VerbsError> {
        let mut id = ptr::null_mut();
        // SAFETY: the channel is live; `id` is a valid out-pointer.
        check("rdma_create_id", unsafe {
            rdma_create_id(
                events.channel.0,
                &mut id,
                ptr::null_mut(),
                rdma_port_space::RDMA_PS_TCP,
            )
        })?;
        let listener = Listener {
            id,
            _channel: Arc::clone(&events.channel),
        };
        let mut socket = socket_address(address);
        // SAFETY: id is live; the sockaddr outlives the call.
        check("rdma_bind_addr", unsafe {
            rdma_bind_addr(listener.id, (&mut socket as *mut libc::sockaddr_in).cast())
        })?;
        // SAFETY: id is bound.
        check("rdma_listen", unsafe {
            rdma_listen(listener.id, LISTEN_BACKLOG)
        })?;
        Ok(listener)
    }

    /// The id this listener's [`Event`]s carry (a device removal, an address change).
    pub fn id(&self) -> LinkId {
        LinkId(self.id as usize)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: the id is live; its events are acked in Events::next_event as they are read.
        unsafe { rdma_destroy_id(self.id) };
    }
}

/// One end of a reliable-connected queue pair with its registered buffers.
pub struct Link {
    id: *mut rdma_cm_id,
    protection_domain: *mut ibv_pd,
    completion_channel: *mut ibv_comp_channel,
    completion_queue: *mut ibv_cq,
    region: *mut ibv_mr,
    buffers: Buffers,
    config: LinkConfig,
    /// Send slots not in flight, as buffer indices.
    free_send_slots: Vec<u32>,
    /// The channel this link's CM events arrive on, held so it outlives the id.
    channel: Arc<EventChannel>,
    /// Whether `channel` is this link's alone (the client side), so `peer_disconnected` reads it.
    owns_channel: bool,
    queue_pair_made: bool,
    /// What the client said when it connected (the connect request's private data; the
    /// connection manager may pad it with zeros).
    greeting: Vec<u8>,
}

// SAFETY: all verbs objects are owned by this value and used by one thread at a time; libibverbs
// allows them to move between threads.
unsafe impl Send for Link {}

impl Link {
    /// The client side: resolves `server`, connects with `greeting` as the connect request's
    /// private data (the server reads it from [`Link::greeting`]), and waits until established.
    pub fn connect(
        server: SocketAddrV4,
        config: LinkConfig,
        greeting: &[u8],
        timeout: Duration,
    ) -> Result<Link, VerbsError> {
        if greeting.len() > GREETING_BYTES_MAX {
            return Err(VerbsError::GreetingTooLong {
                len: greeting.len(),
            });
        }
        let deadline = Instant::now() + timeout;
        let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        let channel = Arc::new(EventChannel::new()?);
        set_nonblocking(channel.fd())?;
        let mut id = ptr::null_mut();
        // SAFETY: channel is live; `id` is a valid out-pointer.
        check("rdma_create_id", unsafe {
            rdma_create_id(
                channel.0,
                &mut id,
                ptr::null_mut(),
                rdma_port_space::RDMA_PS_TCP,
            )
        })?;
        let mut link = Link::empty(id, config, Arc::clone(&channel), true);
        let mut socket = socket_address(server);
        // SAFETY: id is live; the sockaddr outlives the call.
        check("rdma_resolve_addr", unsafe {
            rdma_resolve_addr(
                id,
                ptr::null_mut(),
                (&mut socket as *mut libc::sockaddr_in).cast(),
                timeout_ms,
            )
        })?;
        channel.expect(
            rdma_cm_event_type::RDMA_CM_EVENT_ADDR_RESOLVED,
            "ADDR_RESOLVED",
            deadline,
            timeout,
        )?;
        // SAFETY: the address is resolved.
        check("rdma_resolve_route", unsafe {
            rdma_resolve_route(id, timeout_ms)
        })?;
        channel.expect(
            rdma_cm_event_type::RDMA_CM_EVENT_ROUTE_RESOLVED,
            "ROUTE_RESOLVED",
            deadline,
            timeout,
        )?;
        link.make_queue_pair()?;
        let mut parameters = connection_parameters();
        parameters.private_data = greeting.as_ptr().cast();
        parameters.private_data_len = greeting.len() as u8;
        // SAFETY: the route is resolved and the QP exists; the greeting outlives the call.
        check("rdma_connect", unsafe { rdma_connect(id, &mut parameters) })?;
        link.greeting = greeting.to_vec();
        channel.expect(
            rdma_cm_event_type::RDMA_CM_EVENT_ESTABLISHED,
            "ESTABLISHED",
            deadline,
            timeout,
        )?;
        Ok(link)
    }

    fn empty(
        id: *mut rdma_cm_id,
        config: LinkConfig,
        channel: Arc<EventChannel>,
        owns_channel: bool,
    ) -> Link {
        assert!(config.receive_buffers > 0 && config.send_slots > 0 && config.buffer_bytes > 0);
        let total =
            (config.receive_buffers + config.send_slots) as usize * config.buffer_bytes as usize;
        Link {
            id,
            protection_domain: ptr::null_mut(),
            completion_channel: ptr::null_mut(),
            completion_queue: ptr::null_mut(),
            region: ptr::null_mut(),
            buffers: Buffers::new(total),
            config,
            free_send_slots: (config.receive_buffers..config.receive_buffers + config.send_slots)
                .rev()
                .collect(),
            channel,
            owns_channel,
            queue_pair_made: false,
            greeting: Vec::new(),
        }
    }

    /// Protection domain, completion channel and queue, the QP, the registered region, and every
    /// receive buffer posted. Each object is recorded as soon as it exists so Drop frees it.
    fn make_queue_pair(&mut self) -> Result<(), VerbsError> {
        let mut timeout = ACK_TIMEOUT_EXPONENT;
        // SAFETY: the id is live; the option value is a u8, as rdma_cma.h specifies for it.
        check("rdma_set_option(ACK_TIMEOUT)", unsafe {
            rdma_set_option(
                self.id,
                RDMA_OPTION_ID,
                RDMA_OPTION_ID_ACK_TIMEOUT,
                (&mut timeout as *mut u8).cast(),
                1,
            )
        })?;
        // SAFETY: the id is bound to a device (resolved or a connect request), so `verbs` is set.
        let context = unsafe { (*self.id).verbs };
        // SAFETY: context is a live device context.
        self.protection_domain = unsafe { ibv_alloc_pd(context) };
        if self.protection_domain.is_null() {
            return Err(last_error("ibv_alloc_pd"));
        }
        // SAFETY: as above.
        self.completion_channel = unsafe { ibv_create_comp_channel(context) };
        if self.completion_channel.is_null() {
            return Err(last_error("ibv_create_comp_channel"));
        }
        // SAFETY: the channel is live for as long as `self`.
        set_nonblocking(unsafe { (*self.completion_channel).fd })?;
        let entries = (self.config.receive_buffers + self.config.send_slots) as i32;
        // SAFETY: context and channel are live; no user context pointer.
        self.completion_queue = unsafe {
            ibv_create_cq(
                context,
                entries,
                ptr::null_mut(),
                self.completion_channel,
                0,
            )
        };
        if self.completion_queue.is_null() {
            return Err(last_error("ibv_create_cq"));
        }
        // SAFETY: plain-data struct; every field is set below or meant to be zero.
        let mut attributes: ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        attributes.send_cq = self.completion_queue;
        attributes.recv_cq = self.completion_queue;
        attributes.qp_type = ibv_qp_type::IBV_QPT_RC;
        attributes.cap = ibv_qp_cap {
            max_send_wr: self.config.send_slots,
            max_recv_wr: self.config.receive_buffers,
            max_send_sge: 1,
            max_recv_sge: 1,
            max_inline_data: 0,
        };
        // SAFETY: id, PD and CQ are live; attributes is fully initialised.
        check("rdma_create_qp", unsafe {
            rdma_create_qp(self.id, self.protection_domain, &mut attributes)
        })?;
        self.queue_pair_made = true;
        let access = ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0;
        // SAFETY: the allocation lives in `self` (on the heap: it never moves) until the region
        // is deregistered in Drop; it is passed as a raw pointer, no reference is made of it.
        self.region = unsafe {
            __ibv_reg_mr(
                self.protection_domain,
                self.buffers.base.as_ptr().cast(),
                self.buffers.bytes,
                access,
                1,
            )
        };
        if self.region.is_null() {
            return Err(last_error("ibv_reg_mr"));
        }
        for index in 0..self.config.receive_buffers {
            self.post_receive(index)?;
        }
        self.arm()
    }

    fn buffer_address(&self, index: u32) -> u64 {
        self.buffers.at(index, self.config.buffer_bytes) as u64
    }

    fn sge(&self, index: u32, length: u32) -> ibv_sge {
        // SAFETY: the region is registered (make_queue_pair succeeded before any post).
        let lkey = unsafe { (*self.region).lkey };
        ibv_sge {
            addr: self.buffer_address(index),
            length,
            lkey,
        }
    }

    fn post_receive(&mut self, index: u32) -> Result<(), VerbsError> {
        let mut sge = self.sge(index, self.config.buffer_bytes);
        let mut request = ibv_recv_wr {
            wr_id: u64::from(index),
            next: ptr::null_mut(),
            sg_list: &mut sge,
            num_sge: 1,
        };
        let mut bad = ptr::null_mut();
        // SAFETY: the QP is live; the buffer is inside the registered region and not handed to
        // the NIC twice (an index is reposted only after its completion was taken).
        check("ibv_post_recv", unsafe {
            ibv_post_recv((*self.id).qp, &mut request, &mut bad)
        })
    }

    /// The largest message [`Link::send`] takes.
    pub fn message_bytes_max(&self) -> usize {
        self.config.buffer_bytes as usize
    }

    /// Messages posted whose completion (the peer's acknowledgement) has not been seen yet.
    pub fn sends_in_flight(&self) -> usize {
        self.config.send_slots as usize - self.free_send_slots.len()
    }

    /// Whether a send slot is free now (each completes when the peer has the message).
    pub fn can_send(&self) -> bool {
        !self.free_send_slots.is_empty()
    }

    /// Copies `message` into a free send slot and posts it. Returns Ok(false) when every slot is
    /// in flight: poll for send completions, then try again.
    pub fn send(&mut self, message: &[u8]) -> Result<bool, VerbsError> {
        let max = self.message_bytes_max();
        if message.len() > max {
            return Err(VerbsError::MessageTooLarge {
                len: message.len(),
                max,
            });
        }
        let Some(index) = self.free_send_slots.pop() else {
            return Ok(false);
        };
        let slot = self.buffers.at(index, self.config.buffer_bytes);
        // SAFETY: the slot is one of the link's send slots (inside the allocation) and was free,
        // so the NIC is not reading it; `message` fits in it (checked above) and is the caller's
        // memory, not the region.
        unsafe { ptr::copy_nonoverlapping(message.as_ptr(), slot, message.len()) };
        let mut sge = self.sge(index, message.len() as u32);
        // SAFETY: plain-data struct; zero is the right value for every field not set below.
        let mut request: ibv_send_wr = unsafe { std::mem::zeroed() };
        request.wr_id = u64::from(index);
        request.sg_list = &mut sge;
        request.num_sge = 1;
        request.opcode = ibv_wr_opcode::IBV_WR_SEND;
        request.send_flags = ibv_send_flags::IBV_SEND_SIGNALED.0;
        let mut bad = ptr::null_mut();
        // SAFETY: the QP is live; the slot was free (not in flight) and lies in the region.
        let posted = check("ibv_post_send", unsafe {
            ibv_post_send((*self.id).qp, &mut request, &mut bad)
        });
        if posted.is_err() {
            self.free_send_slots.push(index);
        }
        posted.map(|()| true)
    }

    /// Sends a byte stream's next bytes: as many messages of at most one buffer as free send
    /// slots allow. Returns how many bytes of `bytes` were taken (0 when every slot is in flight).
    pub fn send_stream(&mut self, bytes: &[u8]) -> Result<usize, VerbsError> {
        let mut taken = 0;
        while taken < bytes.len() && self.can_send() {
            let end = bytes.len().min(taken + self.message_bytes_max());
            self.send(&bytes[taken..end])?;
            taken = end;
        }
        Ok(taken)
    }

    /// Readable when completions are waiting; then call [`Link::poll`].
    pub fn completion_fd(&self) -> RawFd {
        // SAFETY: the channel is live for as long as `self`.
        unsafe { (*self.completion_channel).fd }
    }

    /// Asks for the next completion to wake `completion_fd`.
    fn arm(&mut self) -> Result<(), VerbsError> {
        // SAFETY: the CQ is live.
        check("ibv_req_notify_cq", unsafe {
            ibv_req_notify_cq(self.completion_queue, 0)
        })
    }

    /// Takes every waiting completion: each received message goes to `on_message` (then its
    /// buffer is posted again), each finished send frees its slot. Arms the completion fd.
    /// Returns the number of messages received. An error means the link is broken: drop it.
    /// For a client alone with its link; a thread serving many links calls
    /// [`Link::poll_and_arm`], which takes a bounded batch.
    pub fn poll(&mut self, mut on_message: impl FnMut(&[u8])) -> Result<usize, VerbsError> {
        let mut messages = 0;
        loop {
            let taken = self.poll_and_arm(&mut on_message)?;
            messages += taken.messages;
            if !taken.more {
                return Ok(messages);
            }
        }
    }

    /// Takes waiting completions like [`Link::poll`], at most [`COMPLETIONS_PER_POLL_MAX`], and
    /// arms the completion fd once the queue is empty. When the bound stops it first
    /// (`Completions::more`), the fd is left unarmed: the caller must poll again soon.
    pub fn poll_and_arm(
        &mut self,
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<Completions, VerbsError> {
        self.take_wakeup();
        let before = self.drain(COMPLETIONS_PER_POLL_MAX, &mut on_message)?;
        if before.more {
            return Ok(before);
        }
        // Drain, arm, drain again: a completion landing between the last drain and the arm
        // would otherwise wait for the next wake-up.
        self.arm()?;
        let budget = COMPLETIONS_PER_POLL_MAX - before.total();
        Ok(before.then(self.drain(budget, &mut on_message)?))
    }

    /// Takes waiting completions like [`Link::poll_and_arm`] (at most
    /// [`COMPLETIONS_PER_POLL_MAX`]) but leaves the completion fd unarmed: for busy polling,
    /// where the caller polls again soon and needs no wake-up. No system call unless `woken`
    /// (the completion fd was readable: its event is consumed first). End a busy spell with
    /// [`Link::poll_and_arm`], or the fd never wakes the caller again.
    pub fn poll_unarmed(
        &mut self,
        woken: bool,
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<Completions, VerbsError> {
        if woken {
            self.take_wakeup();
        }
        self.drain(COMPLETIONS_PER_POLL_MAX, &mut on_message)
    }

    /// Takes completions until the queue is empty or `budget` were taken (then `more`).
    fn drain(
        &mut self,
        budget: usize,
        on_message: &mut impl FnMut(&[u8]),
    ) -> Result<Completions, VerbsError> {
        let mut taken = Completions::default();
        while taken.total() < budget {
            let wanted = POLL_BATCH.min(budget - taken.total());
            // SAFETY: ibv_wc is plain data; zero is valid.
            let mut completions: [ibv_wc; POLL_BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: the CQ is live and the array holds at least `wanted` entries.
            let count = unsafe {
                ibv_poll_cq(
                    self.completion_queue,
                    wanted as i32,
                    completions.as_mut_ptr(),
                )
            };
            if count < 0 {
                return Err(last_error("ibv_poll_cq"));
            }
            for completion in &completions[..count as usize] {
                if self.complete(completion, on_message)? {
                    taken.messages += 1;
                } else {
                    taken.sends += 1;
                }
            }
            if (count as usize) < wanted {
                return Ok(taken);
            }
        }
        taken.more = true;
        Ok(taken)
    }

    /// Handles one completion; true when it was a received message, false for a finished send.
    fn complete(
        &mut self,
        completion: &ibv_wc,
        on_message: &mut impl FnMut(&[u8]),
    ) -> Result<bool, VerbsError> {
        if completion.status != ibv_wc_status::IBV_WC_SUCCESS {
            // SAFETY: returns a static string for any status.
            let status = unsafe { CStr::from_ptr(ibv_wc_status_str(completion.status)) };
            return Err(VerbsError::Completion {
                wr_id: completion.wr_id,
                status: status.to_string_lossy().into_owned(),
            });
        }
        let index = completion.wr_id as u32;
        if completion.opcode & ibv_wc_opcode::IBV_WC_RECV == 0 {
            self.free_send_slots.push(index);
            return Ok(false);
        }
        let length = (completion.byte_len as usize).min(self.config.buffer_bytes as usize);
        let buffer = self.buffers.at(index, self.config.buffer_bytes);
        // SAFETY: `index` is the wr_id we posted receive buffer `index` with (inside the
        // allocation); it has completed, so the NIC is done with it until it is posted again
        // below (after the slice's last use); `length` keeps the slice inside it.
        on_message(unsafe { std::slice::from_raw_parts(buffer, length) });
        self.post_receive(index)?;
        Ok(true)
    }

    /// Consumes a pending completion-channel event, if any (the fd is non-blocking).
    fn take_wakeup(&mut self) {
        let mut queue = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY: the channel is live; out-pointers are valid; a return of 0 hands us one event
        // that must be acked on the CQ it names (ours).
        if unsafe { ibv_get_cq_event(self.completion_channel, &mut queue, &mut context) } == 0 {
            // SAFETY: acks the one event just taken.
            unsafe { ibv_ack_cq_events(queue, 1) };
        }
    }

    /// The connect request's private data, as the client sent it (possibly zero-padded).
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    /// The other end's IPv4 address and port, when the connection manager knows it.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        // SAFETY: the id is live; rdma_get_peer_addr reads its route's destination address.
        let address = unsafe { rdma_get_peer_addr(&*self.id) };
        if i32::from(address.sa_family) != libc::AF_INET {
            return None;
        }
        // SAFETY: the family says this sockaddr is a sockaddr_in.
        let ipv4 = unsafe { &*(address as *const libc::sockaddr).cast::<libc::sockaddr_in>() };
        let ip = std::net::Ipv4Addr::from(u32::from_be(ipv4.sin_addr.s_addr));
        Some(SocketAddrV4::new(ip, u16::from_be(ipv4.sin_port)))
    }

    /// The id this link's [`Event`]s carry.
    pub fn id(&self) -> LinkId {
        LinkId(self.id as usize)
    }

    /// For the client side: whether the server has gone away (a pending DISCONNECTED event).
    pub fn peer_disconnected(&self) -> Result<bool, VerbsError> {
        if !self.owns_channel {
            return Ok(false);
        }
        let Some(event) = self.channel.next()? else {
            return Ok(false);
        };
        Ok(event.kind == rdma_cm_event_type::RDMA_CM_EVENT_DISCONNECTED)
    }
}

/// Copies a connect request's private data.
///
/// # Safety
/// `event` must be a live, not yet acked RDMA_CM_EVENT_CONNECT_REQUEST event.
unsafe fn greeting_of(event: *mut rdma_cm_event) -> Vec<u8> {
    // SAFETY: the caller guarantees a connect request, whose param union holds `conn`.
    let parameters = unsafe { (*event).param.conn };
    if parameters.private_data.is_null() {
        return Vec::new();
    }
    let length = usize::from(parameters.private_data_len).min(GREETING_BYTES_MAX);
    // SAFETY: the connection manager's buffer holds private_data_len bytes until the ack.
    unsafe { std::slice::from_raw_parts(parameters.private_data.cast::<u8>(), length) }.to_vec()
}

fn connection_parameters() -> rdma_conn_param {
    rdma_conn_param {
        private_data: ptr::null(),
        private_data_len: 0,
        responder_resources: READ_DEPTH,
        initiator_depth: READ_DEPTH,
        flow_control: 1,
        retry_count: RETRY_COUNT,
        rnr_retry_count: RNR_RETRY_COUNT,
        srq: 0,
        qp_num: 0,
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The reverse of make_queue_pair, except that the QP goes first (disconnected, then
        // destroyed), so the NIC stops using the registered buffers before they are
        // deregistered; each step only if it was reached.
        // SAFETY (whole block): every pointer is either null (never made) or owned by `self`
        // and no longer used by the NIC once the QP is destroyed.
        unsafe {
            if !self.id.is_null() && self.queue_pair_made {
                rdma_disconnect(self.id);
                rdma_destroy_qp(self.id);
            }
            if !self.region.is_null() {
                ibv_dereg_mr(self.region);
            }
            if !self.completion_queue.is_null() {
                ibv_destroy_cq(self.completion_queue);
            }
            if !self.completion_channel.is_null() {
                ibv_destroy_comp_channel(self.completion_channel);
            }
            if !self.protection_domain.is_null() {
                ibv_dealloc_pd(self.protection_domain);
            }
            if !self.id.is_null() {
                rdma_destroy_id(self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_kind_maps_to_what_it_is() {
        use rdma_cm_event_type::*;
        let id = LinkId(7);
        assert!(
            matches!(Event::of(RDMA_CM_EVENT_ESTABLISHED, id, 0), Event::Established(got) if got == id)
        );
        assert!(
            matches!(Event::of(RDMA_CM_EVENT_DISCONNECTED, id, 0), Event::Disconnected(got) if got == id)
        );
        for (kind, name) in [
            (RDMA_CM_EVENT_CONNECT_ERROR, "RDMA_CM_EVENT_CONNECT_ERROR"),
            (RDMA_CM_EVENT_UNREACHABLE, "RDMA_CM_EVENT_UNREACHABLE"),
            (RDMA_CM_EVENT_REJECTED, "RDMA_CM_EVENT_REJECTED"),
        ] {
            match Event::of(kind, id, -110) {
                Event::Failed {
                    id: got,
                    event,
                    status,
                } => {
                    assert_eq!((got, event.as_str(), status), (id, name, -110));
                }
                _ => panic!("{name} is not a failure"),
            }
        }
        assert!(
            matches!(Event::of(RDMA_CM_EVENT_DEVICE_REMOVAL, id, 0), Event::DeviceRemoved(got) if got == id)
        );
        assert!(
            matches!(Event::of(RDMA_CM_EVENT_ADDR_CHANGE, id, 0), Event::AddressChanged(got) if got == id)
        );
        match Event::of(RDMA_CM_EVENT_TIMEWAIT_EXIT, id, 0) {
            Event::Other { id: got, event, .. } => {
                assert_eq!((got, event.as_str()), (id, "RDMA_CM_EVENT_TIMEWAIT_EXIT"));
            }
            _ => panic!("TIMEWAIT_EXIT is no link event"),
        }
    }

    #[test]
    fn a_poll_followed_by_another_adds_up_and_keeps_the_later_bound() {
        let first = Completions {
            messages: 3,
            sends: 2,
            more: true,
        };
        let second = Completions {
            messages: 1,
            sends: 0,
            more: false,
        };
        let both = first.then(second);
        assert_eq!((both.messages, both.sends, both.more), (4, 2, false));
        assert!(both.any());
        assert!(!Completions::default().any());
    }

    #[test]
    fn buffers_lie_end_to_end_inside_the_allocation() {
        let buffers = Buffers::new(4 * 64);
        let base = buffers.base.as_ptr() as usize;
        for index in 0..4 {
            assert_eq!(buffers.at(index, 64) as usize, base + index as usize * 64);
        }
    }
}
