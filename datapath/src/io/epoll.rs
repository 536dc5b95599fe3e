//! The epoll loop: level-triggered readiness, one `read` per readable socket per tick, output
//! written after the tick's work (so pipelined replies leave in one `write`), EPOLLOUT armed
//! only while a socket's send buffer is full.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::listener::Listener;
use super::rdma::{FdChange, RdmaPort};
use super::{
    StopStep, Stopping, ACCEPTS_PER_TICK_MAX, READ_CHUNK_BYTES, SHUTDOWN_DRAIN_MAX,
    SHUTDOWN_POLL_MS,
};
use crate::shard::{Shard, STORE_TICK_MS};

/// Events taken from the kernel per `epoll_wait`.
const EVENTS_PER_WAIT_MAX: usize = 1024;
/// Token of the shard's doorbell eventfd.
const TOKEN_DOORBELL: u64 = u64::MAX;
/// Tokens of listening sockets: `TOKEN_LISTENER_BASE + listener index`; below are connections.
const TOKEN_LISTENER_BASE: u64 = u64::MAX - 16;
/// Token of the shard's RDMA connection-manager event channel.
const TOKEN_RDMA_EVENTS: u64 = u64::MAX - 32;
/// Tokens of RDMA links' completion channels: `TOKEN_RDMA_LINK_BASE + connection index`
/// (connection tokens are below 2^32).
const TOKEN_RDMA_LINK_BASE: u64 = 1 << 40;

struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn control(&self, operation: i32, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` is a live epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), operation, fd, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut Vec<libc::epoll_event>, timeout_ms: i32) -> io::Result<()> {
        events.clear();
        // SAFETY: the kernel writes at most `capacity` events into the vector's spare capacity;
        // the length is set to what it reports.
        let count = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.capacity() as i32,
                timeout_ms,
            )
        };
        if count < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        // SAFETY: epoll_wait initialised `count` (<= capacity) entries.
        unsafe { events.set_len(count as usize) };
        Ok(())
    }
}

struct Socket {
    stream: TcpStream,
    writable_armed: bool,
}

/// Runs the shard until the server stops and every shard has drained.
pub fn run(
    shard: &mut Shard,
    listeners: Vec<Listener>,
    mut rdma: Option<RdmaPort>,
) -> io::Result<()> {
    let epoll = Epoll::new()?;
    let mut listeners: Vec<Option<Listener>> = listeners.into_iter().map(Some).collect();
    for (index, listener) in listeners.iter().flatten().enumerate() {
        epoll.control(
            libc::EPOLL_CTL_ADD,
            listener.socket.as_raw_fd(),
            libc::EPOLLIN as u32,
            TOKEN_LISTENER_BASE + index as u64,
        )?;
    }
    epoll.control(
        libc::EPOLL_CTL_ADD,
        shard.mailbox.doorbell().fd(),
        libc::EPOLLIN as u32,
        TOKEN_DOORBELL,
    )?;
    if let Some(fd) = rdma.as_ref().map(RdmaPort::events_fd) {
        epoll.control(
            libc::EPOLL_CTL_ADD,
            fd,
            libc::EPOLLIN as u32,
            TOKEN_RDMA_EVENTS,
        )?;
    }
    let mut rdma_changes: Vec<FdChange> = Vec::new();
    let mut sockets: Vec<Option<Socket>> = Vec::new();
    let mut events: Vec<libc::epoll_event> = Vec::with_capacity(EVENTS_PER_WAIT_MAX);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    let mut dirty: Vec<u32> = Vec::new();
    let mut wake: Vec<usize> = Vec::new();
    let mut stopping = Stopping::default();
    loop {
        let timeout = if stopping.started() {
            SHUTDOWN_POLL_MS
        } else {
            STORE_TICK_MS as i32
        };
        // A busy-polled RDMA link needs the loop back at once: no sleep.
        let rdma_busy = rdma.as_ref().is_some_and(RdmaPort::busy);
        if !rdma_busy && shard.mailbox.prepare_to_sleep() {
            epoll.wait(&mut events, timeout)?;
        } else {
            epoll.wait(&mut events, 0)?;
        }
        shard.mailbox.awake();
        for event in &events {
            let token = event.u64;
            let flags = event.events;
            if token == TOKEN_DOORBELL {
                shard.mailbox.doorbell().drain();
            } else if let (Some(port), TOKEN_RDMA_EVENTS) = (rdma.as_mut(), token) {
                port.events_ready(shard);
            } else if let (Some(port), TOKEN_RDMA_LINK_BASE..TOKEN_RDMA_EVENTS) =
                (rdma.as_mut(), token)
            {
                port.link_ready(shard, (token - TOKEN_RDMA_LINK_BASE) as u32);
            } else if token >= TOKEN_LISTENER_BASE {
                let index = (token - TOKEN_LISTENER_BASE) as usize;
                if let Some(listener) = &listeners[index] {
                    accept_some(shard, &epoll, listener, &mut sockets)?;
                }
            } else {
                let index = token as u32;
                if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    read_once(shard, &mut sockets, index, &mut scratch);
                }
                if flags & libc::EPOLLOUT as u32 != 0 {
                    dirty.push(index);
                }
            }
        }
        if let Some(port) = rdma.as_mut() {
            port.tick(shard);
        }
        shard.deliver_mail();
        shard.end_tick(&mut wake);
        for target in wake.drain(..) {
            shard.core.shared.addresses[target].doorbell().ring();
        }
        shard.maintenance();
        shard.take_dirty(&mut dirty);
        for index in dirty.drain(..) {
            let sent_by_rdma = rdma
                .as_mut()
                .is_some_and(|port| port.write_out(shard, index));
            if !sent_by_rdma {
                write_out(shard, &epoll, &mut sockets, index)?;
            }
        }
        if let Some(port) = rdma.as_mut() {
            port.take_fd_changes(&mut rdma_changes);
        }
        for change in rdma_changes.drain(..) {
            // A forgotten link's descriptor is already closed, which took it out of the set.
            let FdChange::Watch { index, fd } = change else {
                continue;
            };
            let token = TOKEN_RDMA_LINK_BASE + u64::from(index);
            match epoll.control(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, token) {
                // EEXIST: a link closed and another opened at the same index with the same fd
                // number, both within the iteration: that fd is watched already. EBADF: gone.
                Ok(()) => {}
                Err(error) if matches!(error.raw_os_error(), Some(libc::EEXIST | libc::EBADF)) => {}
                Err(error) => return Err(error),
            }
        }

        match stopping.check(shard) {
            StopStep::Continue => {}
            // Dropping the listening sockets closes them: new connections are refused.
            StopStep::CloseListeners => {
                listeners.iter_mut().for_each(|listener| *listener = None);
                if let Some(port) = rdma.as_mut() {
                    port.stop_listening();
                }
            }
            StopStep::Exit => {
                if let Some(port) = rdma.as_mut() {
                    port.finish_sends(SHUTDOWN_DRAIN_MAX);
                }
                return Ok(());
            }
        }
    }
}

fn accept_some(
    shard: &mut Shard,
    epoll: &Epoll,
    listener: &Listener,
    sockets: &mut Vec<Option<Socket>>,
) -> io::Result<()> {
    for _ in 0..ACCEPTS_PER_TICK_MAX {
        let (stream, peer) = match listener.socket.accept() {
            Ok(accepted) => accepted,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
            // A connection that died in the queue, or a file-descriptor limit: skip this round.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                return Ok(());
            }
        };
        let index = match shard.accept(listener.protocol, peer) {
            Ok(index) => index,
            Err(crate::shard::Refusal::TooManyClients(message)) => {
                // Best effort: the socket is new, its send buffer empty.
                let _ = (&stream).write(message);
                continue;
            }
        };
        stream.set_nonblocking(true)?;
        // Replies are written whole per tick; Nagle would only delay them.
        stream.set_nodelay(true)?;
        epoll.control(
            libc::EPOLL_CTL_ADD,
            stream.as_raw_fd(),
            libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32,
            u64::from(index),
        )?;
        let position = index as usize;
        if sockets.len() <= position {
            sockets.resize_with(position + 1, || None);
        }
        sockets[position] = Some(Socket {
            stream,
            writable_armed: false,
        });
    }
    Ok(())
}

fn read_once(shard: &mut Shard, sockets: &mut [Option<Socket>], index: u32, scratch: &mut [u8]) {
    let Some(socket) = sockets.get_mut(index as usize).and_then(Option::as_mut) else {
        return;
    };
    match (&socket.stream).read(scratch) {
        Ok(0) => close(shard, sockets, index),
        Ok(count) => shard.receive(index, &scratch[..count]),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
        Err(_) => close(shard, sockets, index),
    }
}

fn write_out(
    shard: &mut Shard,
    epoll: &Epoll,
    sockets: &mut [Option<Socket>],
    index: u32,
) -> io::Result<()> {
    let Some(socket) = sockets.get_mut(index as usize).and_then(Option::as_mut) else {
        return Ok(());
    };
    let Some(conn) = shard.conn_mut(index) else {
        return Ok(());
    };
    if conn.abort {
        close(shard, sockets, index);
        return Ok(());
    }
    let mut written = 0;
    let mut failed = false;
    while written < conn.output.len() {
        match (&socket.stream).write(&conn.output[written..]) {
            Ok(count) => written += count,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    conn.output.drain(..written);
    let finished = conn.output.is_empty();
    // Replies still being made on other shards come before the close, as they came before QUIT.
    let close_now = failed || (!conn.owes_replies() && conn.close_after_output);
    if close_now {
        close(shard, sockets, index);
        return Ok(());
    }
    let want_writable = !finished;
    if want_writable != socket.writable_armed {
        let mut interest = libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32;
        if want_writable {
            interest |= libc::EPOLLOUT as u32;
        }
        epoll.control(
            libc::EPOLL_CTL_MOD,
            socket.stream.as_raw_fd(),
            interest,
            u64::from(index),
        )?;
        socket.writable_armed = want_writable;
    }
    if written > 0 {
        shard.output_sent(index, written);
    }
    Ok(())
}

fn close(shard: &mut Shard, sockets: &mut [Option<Socket>], index: u32) {
    if let Some(socket) = sockets.get_mut(index as usize) {
        // Dropping the stream closes the descriptor, which also removes it from the epoll set.
        *socket = None;
    }
    shard.close(index);
}
