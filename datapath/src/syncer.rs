//! The file tier's once-a-second sync (`--sync everysec`), on a thread of its own so that no
//! shard ever waits for the disk: it fdatasyncs every shard's file through the store's
//! `SyncHandle` (a clone of the descriptor; the shard goes on writing through its mapping).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use persistent::SyncHandle;

/// How often every file is synced: what a power loss may lose under `--sync everysec`.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The running syncer; [`Syncer::stop`] ends it.
pub struct Syncer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Syncer {
    /// Starts syncing `files` every [`SYNC_INTERVAL`]; None when there are none (DRAM).
    pub fn start(files: Vec<SyncHandle>) -> std::io::Result<Option<Syncer>> {
        if files.is_empty() {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ferrite-sync".to_owned())
            .spawn(move || loop {
                match stopped.recv_timeout(SYNC_INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                for file in &files {
                    if let Err(error) = file.sync() {
                        tracing::error!(%error, "file tier sync failed");
                    }
                }
            })?;
        tracing::info!("file tier: synced once a second by the ferrite-sync thread");
        Ok(Some(Syncer { stop, thread }))
    }

    /// Stops the thread (the shards' own close flushes the files last).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
