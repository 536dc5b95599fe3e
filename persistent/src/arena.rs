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
    /// The backing file's path, if any.
    fn path(&self) -> Option<&Path>;
    /// The backing file, if any.
    fn file(&self) -> Option<&File>;
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

    fn file(&self) -> Option<&File> {
        None
    }
}

/// A file mapped shared: the page cache (or, on a DAX mount, persistent memory) holds the
/// segments, so a process crash loses nothing the store wrote, and `flush` survives power loss.
/// The file stays locked (`flock`, exclusive) for as long as the arena lives.
pub struct FileArena {
    map: MmapMut,
    path: PathBuf,
    /// Set until a store being created is published at its path.
    publish_at: Option<PathBuf>,
    /// Held for its lock; closing it (and every clone of it) releases the lock.
    file: File,
}

/// A file opened and locked, not yet mapped.
pub(crate) struct LockedFile {
    pub file: File,
    /// Where the file is now: the configured path, or its creation twin (see `open`).
    pub path: PathBuf,
    /// Length found on open (0 for a file being created).
    pub len: u64,
    /// Set while the file is being created: the path it is published at once initialized.
    publish_at: Option<PathBuf>,
}

/// Suffix of the file a new store is initialized in before it appears at its path.
const CREATING_SUFFIX: &str = ".creating";

impl LockedFile {
    /// Opens and locks `path`. A missing store is created under `path` + [`CREATING_SUFFIX`]
    /// and appears at `path` only once its superblock is written ([`FileArena::publish`]), so
    /// a crash during creation never leaves a half-made file that would then fail to open.
    pub fn open(path: &Path) -> Result<LockedFile, StoreError> {
        let io_error = |operation, source| StoreError::File {
            path: path.to_path_buf(),
            operation,
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let (file, open_path, publish_at) = match options.open(path) {
            Ok(file) => (file, path.to_path_buf(), None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let mut creating = path.as_os_str().to_owned();
                creating.push(CREATING_SUFFIX);
                let creating = PathBuf::from(creating);
                let file = options
                    .create(true)
                    .truncate(false)
                    .open(&creating)
                    .map_err(|source| io_error("create", source))?;
                (file, creating, Some(path.to_path_buf()))
            }
            Err(error) => return Err(io_error("open", error)),
        };
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
        if publish_at.is_some() {
            // A leftover of a creation that crashed: never published, so never used.
            file.set_len(0)
                .map_err(|source| io_error("truncate", source))?;
        }
        let len = file
            .metadata()
            .map_err(|source| io_error("stat", source))?
            .len();
        Ok(LockedFile {
            file,
            path: open_path,
            len,
            publish_at,
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
            reserve_blocks(&self.file, bytes).map_err(|source| io_error("allocate", source))?;
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
            publish_at: self.publish_at,
            file: self.file,
        })
    }
}

/// Reserves the blocks of a new file, so a full disk is an error now rather than a SIGBUS on
/// some later write through the mapping. Filesystems that cannot reserve are left sparse.
fn reserve_blocks(file: &File, bytes: usize) -> io::Result<()> {
    // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open for this call.
    let error = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
    match error {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        error => Err(io::Error::from_raw_os_error(error)),
    }
}

impl FileArena {
    /// Makes a store being created appear at its path (once its superblock is durable): a hard
    /// link, which fails rather than replace a file another process created meanwhile, then
    /// the creation name is removed and the directory synced. A no-op for an existing file.
    pub(crate) fn publish(&mut self) -> Result<(), StoreError> {
        let Some(target) = self.publish_at.take() else {
            return Ok(());
        };
        let io_error = |operation, source| StoreError::File {
            path: target.clone(),
            operation,
            source,
        };
        if let Err(error) = std::fs::hard_link(&self.path, &target) {
            let _ = std::fs::remove_file(&self.path);
            return Err(match error.kind() {
                io::ErrorKind::AlreadyExists => StoreError::Locked { path: target },
                _ => io_error("link", error),
            });
        }
        std::fs::remove_file(&self.path).map_err(|source| io_error("unlink", source))?;
        let directory = target
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty());
        File::open(directory.unwrap_or(Path::new(".")))
            .and_then(|directory| directory.sync_all())
            .map_err(|source| io_error("sync directory", source))?;
        self.path = target;
        Ok(())
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

    fn file(&self) -> Option<&File> {
        Some(&self.file)
    }
}

/// Makes a file store's writes durable from another thread (`fdatasync` on the file, which on
/// Linux also writes back the pages dirtied through the mapping), so the shard thread never
/// waits for the disk: open the store with [`crate::FlushPolicy::No`] and call
/// [`SyncHandle::sync`] from a helper thread every second. It holds a clone of the file's
/// descriptor, so the file stays locked until the handle is dropped too.
#[derive(Debug)]
pub struct SyncHandle {
    file: File,
    path: PathBuf,
}

impl SyncHandle {
    pub(crate) fn new(file: &File, path: &Path) -> Result<SyncHandle, StoreError> {
        let file = file.try_clone().map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            operation: "dup",
            source,
        })?;
        Ok(SyncHandle {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Writes back everything written to the store so far and waits for the device.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(|source| StoreError::File {
            path: self.path.clone(),
            operation: "fdatasync",
            source,
        })
    }
}
