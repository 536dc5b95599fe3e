//! The io_uring loop: completions instead of readiness.
//!
//! - one multishot ACCEPT per listening socket, re-armed only if the kernel ends it;
//! - one multishot RECV per connection, into a ring of provided buffers ([`BufferRing`]) that
//!   the kernel fills and the shard hands back once it has parsed (or copied) the bytes;
//! - at most one SEND in flight per connection: the connection's output buffer is swapped with
//!   an empty one and the whole batch of replies a tick produced leaves in one SEND;
//! - every SQE of a tick is submitted with the wait for the next completions: one
//!   `io_uring_enter` per tick, however many connections were served.
//!
//! The shard's doorbell eventfd is read through the ring too, so mail wakes a sleeping loop.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::listener::Listener;
use super::rdma::{FdChange, RdmaPort};
use super::{StopStep, Stopping, SHUTDOWN_DRAIN_MAX, SHUTDOWN_POLL_MS};
use crate::shard::{Refusal, Shard, STORE_TICK_MS};

/// Submission queue entries per ring; completions get four times as many slots.
const RING_ENTRIES: u32 = 1024;
/// Provided receive buffers per shard (a power of two, as the kernel requires).
const RECV_BUFFER_COUNT: u16 = 512;
/// Bytes per provided receive buffer: a multishot RECV completion carries at most this much.
const RECV_BUFFER_BYTES: usize = 16 * 1024;
/// The buffer group id of the shard's receive buffers.
const RECV_BUFFER_GROUP: u16 = 0;
/// How long a waking loop waits, after its first completion, for more to batch with it
/// (IORING_FEAT_MIN_TIMEOUT, kernel 6.12+). Measured on 2 shards at P=1: 200 µs cut the CPU per
/// request by a quarter (fewer sleeps and wake-ups, more work per tick); 500 µs and more cost
/// throughput in a closed loop. It bounds the latency a quiet shard adds per hop.
const BATCH_WAIT_US: u32 = 200;
/// Completions that end the batching wait at once (a busy shard never waits), at most; see
/// [`completions_wanted`].
const BATCH_COMPLETIONS_WANTED_MAX: usize = 64;
/// Kernel page size the buffer ring must be aligned to.
const PAGE_BYTES: usize = 4096;

/// What a completion is about: top byte of `user_data`; the low 32 bits carry an index.
const KIND_ACCEPT: u64 = 1 << 56;
const KIND_RECV: u64 = 2 << 56;
const KIND_SEND: u64 = 3 << 56;
const KIND_DOORBELL: u64 = 4 << 56;
/// A MSG_RING from another shard: mail is waiting (the completion itself carries nothing).
const KIND_MAIL: u64 = 5 << 56;
/// The shard's RDMA connection-manager event channel is readable (a one-shot POLL_ADD).
const KIND_RDMA_EVENTS: u64 = 6 << 56;
/// An RDMA link's completion channel is readable (a one-shot POLL_ADD, re-armed after each).
const KIND_RDMA_LINK: u64 = 7 << 56;
/// The cancel of a closed RDMA link's poll; it completes only when it failed (the poll had
/// already ended), which needs nothing done.
const KIND_RDMA_CANCEL: u64 = 8 << 56;
const KIND_MASK: u64 = 0xff << 56;

const _: () = assert!(RECV_BUFFER_COUNT.is_power_of_two());
const _: () = assert!(RECV_BUFFER_BYTES <= u32::MAX as usize);

/// The ring of provided buffers shared with the kernel (IORING_REGISTER_PBUF_RING).
struct BufferRing {
    /// `RECV_BUFFER_COUNT` entries of 16 bytes, page-aligned; the tail overlaps entry 0.
    entries: *mut types::BufRingEntry,
    entries_layout: std::alloc::Layout,
    buffers: Vec<u8>,
    /// Our copy of the tail: entries up to here have been written.
    tail: u16,
}

impl BufferRing {
    fn new(ring: &IoUring) -> io::Result<BufferRing> {
        let entries_layout = std::alloc::Layout::from_size_align(
            usize::from(RECV_BUFFER_COUNT) * std::mem::size_of::<types::BufRingEntry>(),
            PAGE_BYTES,
        )
        .map_err(|error| io::Error::other(error.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let entries =
            unsafe { std::alloc::alloc_zeroed(entries_layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer ring"));
        }
        let mut buffer_ring = BufferRing {
            entries,
            entries_layout,
            buffers: vec![0u8; usize::from(RECV_BUFFER_COUNT) * RECV_BUFFER_BYTES],
            tail: 0,
        };
        // SAFETY: `entries` is page-aligned, holds RECV_BUFFER_COUNT entries and lives until
        // `drop`, which runs after the ring (and so the registration) is gone: the loop drops
        // the IoUring first.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                RECV_BUFFER_COUNT,
                RECV_BUFFER_GROUP,
                0,
            )?;
        }
        for bid in 0..RECV_BUFFER_COUNT {
            buffer_ring.recycle(bid);
        }
        buffer_ring.publish();
        Ok(buffer_ring)
    }

    /// Bytes the kernel put in buffer `bid`.
    fn data(&self, bid: u16, length: usize) -> &[u8] {
        let start = usize::from(bid) * RECV_BUFFER_BYTES;
        &self.buffers[start..start + length.min(RECV_BUFFER_BYTES)]
    }

    /// Hands buffer `bid` back to the kernel (visible after [`BufferRing::publish`]).
    fn recycle(&mut self, bid: u16) {
        assert!(
            bid < RECV_BUFFER_COUNT,
            "the kernel returned an unknown buffer id"
        );
        let slot = usize::from(self.tail & (RECV_BUFFER_COUNT - 1));
        let address = self.buffers.as_ptr() as u64 + (usize::from(bid) * RECV_BUFFER_BYTES) as u64;
        // SAFETY: `slot` < RECV_BUFFER_COUNT, inside the allocation; the kernel reads entries only
        // up to the published tail, and this one is beyond it until `publish`.
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(address);
        entry.set_len(RECV_BUFFER_BYTES as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes every recycled buffer to the kernel with one release store of the tail.
    fn publish(&self) {
        // SAFETY: `entries` is the ring's base; the tail is the u16 at offset 14 of entry 0, which
        // the kernel reads with acquire semantics (io_uring's buf_ring protocol), so a release
        // store after the entry writes makes them visible first.
        let tail = unsafe { &*(types::BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring that used it is gone.
        unsafe { std::alloc::dealloc(self.entries.cast(), self.entries_layout) };
    }
}

/// A connection's socket as the loop tracks it.
struct Socket {
    fd: RawFd,
    /// Replies being sent; swapped with the connection's output when a SEND starts.
    sending: Vec<u8>,
    sent: usize,
    send_in_flight: bool,
    recv_armed: bool,
    closing: bool,
}

/// The socket of connection `index`, while this loop tracks it. A function of the field, not of
/// the loop, so callers can hold it while they use the shard.
fn socket_mut(sockets: &mut [Option<Socket>], index: u32) -> Option<&mut Socket> {
    sockets.get_mut(index as usize).and_then(Option::as_mut)
}

struct Loop<'s> {
    ring: IoUring,
    shard: &'s mut Shard,
    sockets: Vec<Option<Socket>>,
    listeners: Vec<Option<Listener>>,
    /// Where the doorbell's eventfd count is read to; boxed so its address stays put.
    doorbell_count: Box<u64>,
    /// Connections whose multishot RECV ended for lack of buffers: re-armed after recycling.
    rearm: Vec<u32>,
    dirty: Vec<u32>,
    wake: Vec<usize>,
    rdma: Option<RdmaPort>,
    rdma_changes: Vec<FdChange>,
}

/// Runs the shard until the server stops and every shard has drained.
pub fn run(shard: &mut Shard, listeners: Vec<Listener>, rdma: Option<RdmaPort>) -> io::Result<()> {
    let ring = build_ring()?;
    let mut buffers = BufferRing::new(&ring)?;
    let mut event_loop = Loop {
        ring,
        shard,
        sockets: Vec::new(),
        listeners: listeners.into_iter().map(Some).collect(),
        doorbell_count: Box::new(0),
        rearm: Vec::new(),
        dirty: Vec::new(),
        wake: Vec::new(),
        rdma,
        rdma_changes: Vec::new(),
    };
    let result = event_loop.run(&mut buffers);
    // Other shards stop waking this ring by MSG_RING (a late one fails harmlessly: EBADFD).
    let shard_id = event_loop.shard.core.id;
    event_loop.shard.core.shared.ring_fds[shard_id].store(-1, Ordering::Release);
    // Sockets still open (a drain that timed out) are closed; then the ring goes, and only then
    // the buffers the kernel may still write into while a multishot RECV is armed.
    for socket in event_loop.sockets.iter().flatten() {
        // SAFETY: the loop owns these descriptors and closes each once.
        unsafe { libc::close(socket.fd) };
    }
    drop(event_loop);
    drop(buffers);
    result
}

/// A ring set up for one thread: single issuer, completions run when the thread asks for them
/// (fewer interrupts of the shard), falling back to a plain ring on kernels without these.
fn build_ring() -> io::Result<IoUring> {
    let tuned = IoUring::builder()
        .setup_cqsize(RING_ENTRIES * 4)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(RING_ENTRIES);
    match tuned {
        Ok(ring) => Ok(ring),
        Err(_) => IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 4)
            .build(RING_ENTRIES),
    }
}

impl Loop<'_> {
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built here points only at memory that outlives its completion:
            // send buffers stay in their Socket until the SEND completes, the doorbell count is
            // boxed in the Loop, provided buffers live in the BufferRing.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            // Queue full: hand what is queued to the kernel and retry.
            self.ring.submit()?;
        }
    }

    fn arm_accept(&mut self, index: usize) -> io::Result<()> {
        let Some(listener) = &self.listeners[index] else {
            return Ok(());
        };
        let entry = opcode::AcceptMulti::new(types::Fd(listener.socket.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(KIND_ACCEPT | index as u64);
        self.push(entry)
    }

    /// Wakes a sleeping shard: a MSG_RING to its ring, submitted with this tick's other SQEs
    /// (no syscall of its own), or its eventfd when its ring is not known.
    fn wake_shard(&mut self, target: usize) -> io::Result<()> {
        let ring_fd = self.shard.core.shared.ring_fds[target].load(Ordering::Acquire);
        if ring_fd < 0 {
            self.shard.core.shared.addresses[target].doorbell().ring();
            return Ok(());
        }
        let entry = opcode::MsgRingData::new(types::Fd(ring_fd), 0, KIND_MAIL, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(KIND_MAIL);
        self.push(entry)
    }

    /// One-shot POLL_ADD for readability of an RDMA descriptor.
    fn arm_rdma_poll(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Starts or stops watching the completion fds of links opened or closed this tick. A POLL_ADD
    /// holds its file open, so a closed link's poll is cancelled; the cancel is queued before any
    /// poll of a new link that reuses the index, and SQEs are processed in order.
    fn apply_rdma_changes(&mut self) -> io::Result<()> {
        if let Some(port) = self.rdma.as_mut() {
            port.take_fd_changes(&mut self.rdma_changes);
        }
        for change in std::mem::take(&mut self.rdma_changes) {
            match change {
                FdChange::Watch { index, fd } => {
                    self.arm_rdma_poll(fd, KIND_RDMA_LINK | u64::from(index))?
                }
                FdChange::Forget { index, .. } => {
                    let entry = opcode::AsyncCancel::new(KIND_RDMA_LINK | u64::from(index))
                        .build()
                        .flags(squeue::Flags::SKIP_SUCCESS)
                        .user_data(KIND_RDMA_CANCEL);
                    self.push(entry)?;
                }
            }
        }
        Ok(())
    }

    fn arm_doorbell(&mut self) -> io::Result<()> {
        let fd = self.shard.mailbox.doorbell().fd();
        let target: *mut u64 = &mut *self.doorbell_count;
        let entry = opcode::Read::new(types::Fd(fd), target.cast(), 8)
            .build()
            .user_data(KIND_DOORBELL);
        self.push(entry)
    }

    fn arm_recv(&mut self, index: u32) -> io::Result<()> {
        let Some(socket) = socket_mut(&mut self.sockets, index) else {
            return Ok(());
        };
        if socket.closing || socket.recv_armed {
            return Ok(());
        }
        socket.recv_armed = true;
        let entry = opcode::RecvMulti::new(types::Fd(socket.fd), RECV_BUFFER_GROUP)
            .build()
            .user_data(KIND_RECV | u64::from(index));
        self.push(entry)
    }

    fn run(&mut self, buffers: &mut BufferRing) -> io::Result<()> {
        for index in 0..self.listeners.len() {
            self.arm_accept(index)?;
        }
        self.arm_doorbell()?;
        if let Some(fd) = self.rdma.as_ref().map(RdmaPort::events_fd) {
            self.arm_rdma_poll(fd, KIND_RDMA_EVENTS)?;
        }
        let shard_id = self.shard.core.id;
        self.shard.core.shared.ring_fds[shard_id].store(self.ring.as_raw_fd(), Ordering::Release);
        let batch_waits = self.ring.params().is_feature_min_timeout();
        let mut stopping = Stopping::default();
        let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(RING_ENTRIES as usize * 4);
        loop {
            // A busy-polled RDMA link needs the loop back at once: no sleep.
            let rdma_busy = self.rdma.as_ref().is_some_and(RdmaPort::busy);
            let may_sleep = !rdma_busy && self.shard.mailbox.prepare_to_sleep();
            let sleep_ms = match (may_sleep, stopping.started()) {
                (false, _) => 0,
                (true, true) => SHUTDOWN_POLL_MS as u64,
                (true, false) => STORE_TICK_MS,
            };
            let timeout = types::Timespec::new().nsec(sleep_ms as u32 * 1_000_000);
            // Batch completions: once the first is in, wait up to BATCH_WAIT_US for more (kernels
            // with min-timeout support), so a lightly loaded shard does not wake per request.
            let (want, batch_wait_us) = if may_sleep && batch_waits {
                (
                    completions_wanted(self.shard.connection_count()),
                    BATCH_WAIT_US,
                )
            } else {
                (1, 0)
            };
            let args = types::SubmitArgs::new()
                .timespec(&timeout)
                .min_wait_usec(batch_wait_us);
            let wait = self.ring.submitter().submit_with_args(want, &args);
            match wait {
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(error) => return Err(error),
            }
            self.shard.mailbox.awake();
            completions.clear();
            completions.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
            );
            self.shard.prefetch_received(completions.iter().filter_map(
                |&(user_data, result, flags)| {
                    let bid = cqueue::buffer_select(flags)?;
                    let received = user_data & KIND_MASK == KIND_RECV && result > 0;
                    received.then(|| (user_data as u32, buffers.data(bid, result as usize)))
                },
            ));
            for &(user_data, result, flags) in &completions {
                self.complete(buffers, user_data, result, flags)?;
            }
            buffers.publish();
            for index in std::mem::take(&mut self.rearm) {
                self.arm_recv(index)?;
            }
            if let Some(port) = self.rdma.as_mut() {
                port.tick(self.shard);
            }
            self.shard.deliver_mail();
            self.shard.end_tick(&mut self.wake);
            for target in std::mem::take(&mut self.wake) {
                self.wake_shard(target)?;
            }
            self.shard.maintenance();
            self.shard.take_dirty(&mut self.dirty);
            for index in std::mem::take(&mut self.dirty) {
                let sent_by_rdma = self
                    .rdma
                    .as_mut()
                    .is_some_and(|port| port.write_out(self.shard, index));
                if !sent_by_rdma {
                    self.start_send(index)?;
                }
            }
            self.apply_rdma_changes()?;
            match stopping.check(self.shard) {
                StopStep::Continue => {}
                StopStep::CloseListeners => {
                    if let Some(port) = self.rdma.as_mut() {
                        // The event channel stays open: links still draining report on it.
                        port.stop_listening();
                    }
                    for listener in self.listeners.iter_mut() {
                        if let Some(open) = listener.take() {
                            // Ends the multishot ACCEPT; the descriptor closes when `open` drops.
                            // SAFETY: a valid listening descriptor we own.
                            unsafe { libc::shutdown(open.socket.as_raw_fd(), libc::SHUT_RDWR) };
                        }
                    }
                }
                StopStep::Exit => {
                    if let Some(port) = self.rdma.as_mut() {
                        port.finish_sends(SHUTDOWN_DRAIN_MAX);
                    }
                    return Ok(());
                }
            }
        }
    }

    fn complete(
        &mut self,
        buffers: &mut BufferRing,
        user_data: u64,
        result: i32,
        flags: u32,
    ) -> io::Result<()> {
        let index = (user_data & u64::from(u32::MAX)) as u32;
        match user_data & KIND_MASK {
            KIND_DOORBELL => self.arm_doorbell()?,
            KIND_ACCEPT => {
                if result >= 0 {
                    self.accepted(index as usize, result)?;
                }
                let listening = self
                    .listeners
                    .get(index as usize)
                    .is_some_and(Option::is_some);
                if !cqueue::more(flags) && listening {
                    self.arm_accept(index as usize)?;
                }
            }
            KIND_RECV => {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    if result > 0 && self.is_open(index) {
                        self.shard
                            .receive(index, buffers.data(bid, result as usize));
                    }
                    buffers.recycle(bid);
                }
                let more = cqueue::more(flags);
                if let Some(socket) = socket_mut(&mut self.sockets, index) {
                    if !more {
                        socket.recv_armed = false;
                    }
                }
                if result == 0 || (result < 0 && result != -libc::ENOBUFS) {
                    self.begin_close(index);
                } else if !more {
                    self.rearm.push(index);
                }
                self.finish_close_if_idle(index);
            }
            KIND_SEND => self.sent(index, result)?,
            // A MSG_RING that failed (its target exited): nothing to deliver; or a failed
            // cancel: nothing to cancel.
            KIND_MAIL | KIND_RDMA_CANCEL => {}
            KIND_RDMA_EVENTS => {
                if let Some(port) = self.rdma.as_mut() {
                    port.events_ready(self.shard);
                    let fd = port.events_fd();
                    self.arm_rdma_poll(fd, KIND_RDMA_EVENTS)?;
                }
            }
            // A cancelled poll (its link closed) is not re-armed: a new link at the same index has
            // its own.
            KIND_RDMA_LINK if result >= 0 => {
                if let Some(port) = self.rdma.as_mut() {
                    port.link_ready(self.shard, index);
                    if let Some(fd) = port.completion_fd(index) {
                        self.arm_rdma_poll(fd, KIND_RDMA_LINK | u64::from(index))?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn is_open(&self, index: u32) -> bool {
        self.sockets
            .get(index as usize)
            .and_then(Option::as_ref)
            .is_some_and(|socket| !socket.closing)
    }

    fn accepted(&mut self, listener_index: usize, fd: RawFd) -> io::Result<()> {
        let Some(listener) = &self.listeners[listener_index] else {
            // SAFETY: a descriptor the kernel just gave us, closed once.
            unsafe { libc::close(fd) };
            return Ok(());
        };
        let protocol = listener.protocol;
        let peer = peer_address(fd);
        let index = match self.shard.accept(protocol, peer) {
            Ok(index) => index,
            Err(Refusal::TooManyClients(message)) => {
                // SAFETY: writes from a live slice to a descriptor we own, then closes it once.
                unsafe {
                    libc::send(
                        fd,
                        message.as_ptr().cast(),
                        message.len(),
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    );
                    libc::close(fd);
                }
                return Ok(());
            }
        };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live c_int of the size given. Replies are sent whole per tick;
        // Nagle would only delay them.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let position = index as usize;
        if self.sockets.len() <= position {
            self.sockets.resize_with(position + 1, || None);
        }
        self.sockets[position] = Some(Socket {
            fd,
            sending: Vec::new(),
            sent: 0,
            send_in_flight: false,
            recv_armed: false,
            closing: false,
        });
        self.arm_recv(index)
    }

    fn start_send(&mut self, index: u32) -> io::Result<()> {
        if self.shard.conn(index).is_some_and(|conn| conn.abort) {
            // Shutting the socket down ends a SEND the client never let finish.
            self.begin_close(index);
            self.finish_close_if_idle(index);
            return Ok(());
        }
        let Some(socket) = socket_mut(&mut self.sockets, index) else {
            return Ok(());
        };
        if socket.closing || socket.send_in_flight {
            return Ok(());
        }
        let Some(conn) = self.shard.conn_mut(index) else {
            return Ok(());
        };
        if conn.output.is_empty() {
            // Replies still being made on other shards come before the close.
            if conn.close_after_output && !conn.owes_replies() {
                self.begin_close(index);
                self.finish_close_if_idle(index);
            }
            return Ok(());
        }
        std::mem::swap(&mut conn.output, &mut socket.sending);
        socket.sent = 0;
        self.submit_send(index)
    }

    fn submit_send(&mut self, index: u32) -> io::Result<()> {
        let Some(socket) = socket_mut(&mut self.sockets, index) else {
            return Ok(());
        };
        let remaining = &socket.sending[socket.sent..];
        let length = remaining.len().min(u32::MAX as usize) as u32;
        let entry = opcode::Send::new(types::Fd(socket.fd), remaining.as_ptr(), length)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(KIND_SEND | u64::from(index));
        socket.send_in_flight = true;
        self.push(entry)
    }

    fn sent(&mut self, index: u32, result: i32) -> io::Result<()> {
        let Some(socket) = socket_mut(&mut self.sockets, index) else {
            return Ok(());
        };
        socket.send_in_flight = false;
        if result < 0 || socket.closing {
            self.begin_close(index);
            self.finish_close_if_idle(index);
            return Ok(());
        }
        socket.sent += result as usize;
        if socket.sent < socket.sending.len() {
            return self.submit_send(index);
        }
        let bytes = socket.sending.len();
        socket.sending.clear();
        socket.sent = 0;
        self.shard.output_sent(index, bytes);
        self.start_send(index)
    }

    /// Shuts the socket down so its pending RECV and SEND complete; the descriptor is closed
    /// and the connection forgotten once nothing is in flight.
    fn begin_close(&mut self, index: u32) {
        if let Some(socket) = socket_mut(&mut self.sockets, index) {
            if !socket.closing {
                socket.closing = true;
                // SAFETY: a connected socket descriptor we own.
                unsafe { libc::shutdown(socket.fd, libc::SHUT_RDWR) };
            }
        }
    }

    fn finish_close_if_idle(&mut self, index: u32) {
        let Some(slot) = self.sockets.get_mut(index as usize) else {
            return;
        };
        let idle = slot
            .as_ref()
            .is_some_and(|socket| socket.closing && !socket.recv_armed && !socket.send_in_flight);
        if idle {
            if let Some(socket) = slot.take() {
                // SAFETY: nothing in the ring refers to the descriptor any more; closed once.
                unsafe { libc::close(socket.fd) };
            }
            self.shard.close(index);
        }
    }
}

/// How many completions end the batching wait early: half as many as the shard has
/// connections. A closed-loop client has one batch in flight per connection, so a shard waiting
/// for more completions than its clients can send waits out all of `BATCH_WAIT_US` while they
/// sit idle for its replies (one shard, 50 connections, P=1: 178k ops/s with 64 wanted, 202k
/// with 32); waiting for half lets it start on a round while the client still makes the rest.
fn completions_wanted(connections: usize) -> usize {
    (connections / 2).clamp(1, BATCH_COMPLETIONS_WANTED_MAX)
}

fn peer_address(fd: RawFd) -> SocketAddr {
    // SAFETY: `fd` is an open socket we own; ManuallyDrop keeps the borrowed stream from
    // closing it.
    let stream = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}
