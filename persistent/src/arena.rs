//! Where the segments live: anonymous memory or a memory-mapped file, behind [`Arena`].
//!
//! Both are mappings the kernel fills lazily, so a fresh arena costs no RSS until segments are
//! written, and a full one costs its size: the arena size is the memory limit.

use crate::error::StoreError;
use memmap2::{MmapMut, MmapOptions};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The store's view of its memory: the same bytes whichever medium holds them.
pub trait Arena: Send {
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Makes `len` bytes from `offset` durable (msync); a no-op for memory that does not persist.
    fn flush(&mut self, offset: usize, len: usize) -> io::Result<()>;
    /// The backing file, if any.
    fn path(&self) -> Option<&Path>;
}

/// Anonymous memory: gone when the process exits.
pub struct DramArena {
    map: MmapMut,
}

impl DramArena {
    pub fn new(bytes: usize) -> Result<DramArena, StoreError> {
        let map =
            MmapMut::map_anon(bytes).map_err(|source| StoreError::Memory { bytes, source })?;
        Ok(DramArena { map })
    }
}

impl Arena for DramArena {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn flush(&mut self, _offset: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }

    fn path(&self) -> Option<&Path> {
        None
    }
}

/// A file mapped shared: the page cache (or, on a DAX mount, persistent memory) holds the
/// segments, so a process crash loses nothing the store wrote, and `flush` survives power loss.
/// The file stays locked (`flock`, exclusive) for as long as the arena lives.
pub struct FileArena {
    map: MmapMut,
    path: PathBuf,
    /// Held for its lock; closing it releases the lock.
    _file: File,
}

/// A file opened and locked, not yet mapped.
pub(crate) struct LockedFile {
    pub file: File,
    pub path: PathBuf,
    /// Length found on open (0 for a file just created).
    pub len: u64,
}

impl LockedFile {
    /// Opens (creating if missing) and locks `path`.
    pub fn open(path: &Path) -> Result<LockedFile, StoreError> {
        let io_error = |operation, source| StoreError::File {
            path: path.to_path_buf(),
            operation,
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| io_error("open", source))?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open for this call.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                });
            }
            return Err(io_error("lock", error));
        }
        let len = file
            .metadata()
            .map_err(|source| io_error("stat", source))?
            .len();
        Ok(LockedFile {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Sets the file's length (a new store) and maps it. An existing file is mapped populated
    /// (its pages mapped in one go rather than faulted in one by one): recovery reads it all.
    pub fn map(self, bytes: usize) -> Result<FileArena, StoreError> {
        let io_error = |operation, source| StoreError::File {
            path: self.path.clone(),
            operation,
            source,
        };
        let existing = self.len >= bytes as u64;
        let mut options = MmapOptions::new();
        options.len(bytes);
        if existing {
            options.populate();
        } else {
            self.file
                .set_len(bytes as u64)
                .map_err(|source| io_error("resize", source))?;
        }
        // SAFETY: the mapping is shared with the file, which this process holds an exclusive
        // flock on, so no cooperating process changes it underneath; the file is at least `bytes`
        // long (checked by the caller or set above), so every mapped byte is backed. (A non-cooperating writer that
        // truncates the file would make accesses fault, as for any mmap.)
        let map =
            unsafe { options.map_mut(&self.file) }.map_err(|source| io_error("mmap", source))?;
        Ok(FileArena {
            map,
            path: self.path,
            _file: self.file,
        })
    }
}

impl Arena for FileArena {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn flush(&mut self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}
