//! Restarting over a file tier written with another shard layout.
//!
//! Every shard file (`PATH.N`) carries an owner tag: shard index, shard count and the version of
//! the key-to-shard function. Before the shards start, [`prepare`] checks the files against the
//! layout this run wants. When the shard count (or the memory per shard, which fixes a file's
//! geometry) differs, every item is moved to the file of its new owner:
//!
//! 1. each old file `PATH.N` is renamed `PATH.N.rehome` (a crash from here on is recovered by the
//!    next start, which finds the `.rehome` files and starts the move over);
//! 2. new files are created for the new layout and every live item of every old file is written
//!    to the new owner's file, with its value, flags and expiry;
//! 3. if the new stores had to evict anything (not enough memory for every item), nothing is
//!    lost: the new files are deleted, the old ones renamed back, and start-up fails saying how
//!    much memory the items need or which shard count the files have;
//! 4. otherwise the new files are closed (clean) and the `.rehome` files deleted.

use std::path::{Path, PathBuf};

use persistent::{Expiry, SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;

use crate::exec::{shard_file, StoreSettings, OWNER_HASH_VERSION, OWNER_MAGIC};
use crate::shard::owner_of;

/// Shard files looked for beyond the ones this run uses (a previous run with more shards).
/// A run of Ferrite has at most as many shards as CPUs; this bounds the directory probe.
pub const SHARD_FILES_MAX: usize = 4096;
/// Suffix of an old shard file while its items are being moved.
const REHOME_SUFFIX: &str = ".rehome";

/// What [`prepare`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Preparation {
    /// No file yet, or the files match this run's layout.
    Ready,
    /// Items were moved from `old_shards` files to this run's layout.
    Rehomed { old_shards: usize, items: u64 },
}

/// Checks the shard files under `settings.data_file` against `shard_count` shards and re-homes
/// their items when the layout changed. Returns a message for the operator on failure.
pub fn prepare(
    settings: &StoreSettings,
    shard_count: usize,
    now_ms: u64,
) -> Result<Preparation, String> {
    let Some(base) = &settings.data_file else {
        return Ok(Preparation::Ready);
    };
    let pending: Vec<PathBuf> = existing(base, REHOME_SUFFIX);
    if !pending.is_empty() {
        tracing::warn!(
            files = pending.len(),
            "a re-homing was interrupted; starting it over from the .rehome files"
        );
        for stale in existing(base, "") {
            remove(&stale)?;
        }
        return rehome(settings, shard_count, pending, now_ms);
    }
    let current = existing(base, "");
    if current.is_empty() {
        return Ok(Preparation::Ready);
    }
    if layout_matches(settings, shard_count, &current, now_ms)? {
        return Ok(Preparation::Ready);
    }
    let mut renamed = Vec::with_capacity(current.len());
    for path in &current {
        let target = with_suffix(path, REHOME_SUFFIX);
        std::fs::rename(path, &target)
            .map_err(|error| format!("rename {} for re-homing: {error}", path.display()))?;
        renamed.push(target);
    }
    rehome(settings, shard_count, renamed, now_ms)
}

/// Whether the files are exactly this run's shards (tags and geometry).
fn layout_matches(
    settings: &StoreSettings,
    shard_count: usize,
    files: &[PathBuf],
    now_ms: u64,
) -> Result<bool, String> {
    if files.len() != shard_count {
        tracing::info!(
            found = files.len(),
            shards = shard_count,
            "the data files were written by another shard count"
        );
        return Ok(false);
    }
    for (shard, path) in files.iter().enumerate() {
        let config = file_config(settings, shard, shard_count);
        let store = match Store::open(&config, Box::new(SoftwareOffload), now_ms) {
            Ok(store) => store,
            Err(persistent::StoreError::GeometryMismatch { .. }) => {
                tracing::info!(file = %path.display(), "the data file has another size than --memory gives each shard");
                return Ok(false);
            }
            Err(error) => return Err(error.to_string()),
        };
        let tag = store.owner().0;
        store.close().map_err(|error| error.to_string())?;
        if tag != crate::exec::owner_tag(shard, shard_count).0 {
            tracing::info!(file = %path.display(), ?tag, "the data file belongs to another shard layout");
            return Ok(false);
        }
    }
    Ok(true)
}

fn rehome(
    settings: &StoreSettings,
    shard_count: usize,
    old_files: Vec<PathBuf>,
    now_ms: u64,
) -> Result<Preparation, String> {
    let old_shards = old_files.len();
    tracing::info!(
        from = old_shards,
        to = shard_count,
        "re-homing every item to the new shard layout"
    );
    let mut targets = Vec::with_capacity(shard_count);
    for shard in 0..shard_count {
        let config = file_config(settings, shard, shard_count);
        targets.push(
            Store::open(&config, Box::new(SoftwareOffload), now_ms)
                .map_err(|error| error.to_string())?,
        );
    }
    let mut moved: u64 = 0;
    let mut failure = None;
    'files: for path in &old_files {
        let mut old = open_existing(path, now_ms)?;
        check_tag(&old, path)?;
        for item in old.items(now_ms) {
            let owner = owner_of(item.key, shard_count);
            let options = SetOptions {
                expiry: item.expiry_ms.map_or(Expiry::Never, Expiry::At),
                flags: item.flags,
                ..SetOptions::default()
            };
            if let Err(error) = targets[owner].set(item.key, &item.value, &options, now_ms) {
                failure = Some(format!("re-homing a key from {}: {error}", path.display()));
                break 'files;
            }
            moved += 1;
        }
        old.close().map_err(|error| error.to_string())?;
    }
    let evicted: u64 = targets
        .iter()
        .map(|store| store.stats().evicted_items)
        .sum();
    let held: u64 = targets.iter().map(|store| store.len() as u64).sum();
    if failure.is_none() && (evicted > 0 || held < moved) {
        failure = Some(format!(
            "{moved} items do not fit {shard_count} shards of {} bytes ({evicted} would be evicted): give more --memory, \
             or start with --threads {old_shards} as the files were written",
            settings.file_bytes()
        ));
    }
    if let Some(message) = failure {
        drop(targets);
        for shard in 0..shard_count {
            if let Some(path) = settings.shard_file(shard) {
                remove(&path)?;
            }
        }
        for path in &old_files {
            let original = without_suffix(path, REHOME_SUFFIX);
            std::fs::rename(path, &original)
                .map_err(|error| format!("restore {}: {error}", original.display()))?;
        }
        return Err(format!(
            "cannot re-home the data files (left as they were): {message}"
        ));
    }
    for store in targets {
        store.close().map_err(|error| error.to_string())?;
    }
    for path in &old_files {
        remove(path)?;
    }
    tracing::info!(
        items = moved,
        from = old_shards,
        to = shard_count,
        "re-homed"
    );
    Ok(Preparation::Rehomed {
        old_shards,
        items: moved,
    })
}

/// Shard `shard`'s file (the cold tier of a tiered store) as a store of its own.
fn file_config(settings: &StoreSettings, shard: usize, shard_count: usize) -> StoreConfig {
    settings
        .file_config(shard, shard_count)
        .expect("re-homing runs only with a data file")
}

/// Opens a shard file as it is (its own size), whatever this run's memory setting.
fn open_existing(path: &Path, now_ms: u64) -> Result<Store, String> {
    let bytes = std::fs::metadata(path)
        .map_err(|error| format!("{}: {error}", path.display()))?
        .len() as usize;
    Store::open(
        &StoreConfig::file(path, bytes),
        Box::new(SoftwareOffload),
        now_ms,
    )
    .map_err(|error| format!("{}: {error}", path.display()))
}

fn check_tag(store: &Store, path: &Path) -> Result<(), String> {
    let [magic, _, _, hash_version] = store.owner().0;
    if magic != OWNER_MAGIC {
        return Err(format!(
            "{}: not written by a ferrite shard (owner tag {:?})",
            path.display(),
            store.owner().0
        ));
    }
    if hash_version != OWNER_HASH_VERSION {
        return Err(format!(
            "{}: written with key-to-shard function version {hash_version}, this build has {OWNER_HASH_VERSION}",
            path.display()
        ));
    }
    Ok(())
}

/// `base.0{suffix}`, `base.1{suffix}`, ... as long as they exist (consecutive from 0).
fn existing(base: &Path, suffix: &str) -> Vec<PathBuf> {
    (0..SHARD_FILES_MAX)
        .map(|shard| with_suffix(&shard_file(base, shard), suffix))
        .take_while(|path| path.exists())
        .collect()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn without_suffix(path: &Path, suffix: &str) -> PathBuf {
    let text = path.as_os_str().to_string_lossy();
    PathBuf::from(text.strip_suffix(suffix).unwrap_or(&text).to_owned())
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("remove {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(directory: &Path, memory_bytes: u64) -> StoreSettings {
        StoreSettings {
            memory_bytes,
            data_file: Some(directory.join("items")),
            data_size_bytes: None,
            cold_admission: crate::config::AdmissionChoice::Reused,
            compress_ratio_min_percent: persistent::COMPRESS_RATIO_MIN_PERCENT_DEFAULT,
            sync: crate::config::SyncChoice::Everysec,
            offload: crate::config::OffloadChoice::Software,
        }
    }

    /// Every shard's store of a layout, opened with the software engine.
    fn open_all(settings: &StoreSettings, shard_count: usize, now: u64) -> Vec<Store> {
        (0..shard_count)
            .map(|shard| {
                let config = settings.store_config(shard, shard_count);
                Store::open(&config, Box::new(SoftwareOffload), now).unwrap()
            })
            .collect()
    }

    fn fill(settings: &StoreSettings, shard_count: usize, keys: usize, now: u64) {
        let mut stores = open_all(settings, shard_count, now);
        for n in 0..keys {
            let key = format!("key:{n}");
            let options = SetOptions {
                flags: n as u32,
                ..SetOptions::default()
            };
            stores[owner_of(key.as_bytes(), shard_count)]
                .set(
                    key.as_bytes(),
                    format!("value-{n}").as_bytes(),
                    &options,
                    now,
                )
                .unwrap();
        }
        stores.into_iter().for_each(|store| store.close().unwrap());
    }

    fn check_all(settings: &StoreSettings, shard_count: usize, keys: usize, now: u64) {
        let mut stores = open_all(settings, shard_count, now);
        for n in 0..keys {
            let key = format!("key:{n}");
            let item = stores[owner_of(key.as_bytes(), shard_count)].get(key.as_bytes(), now);
            let item = item.unwrap_or_else(|| panic!("{key} lost"));
            assert_eq!(&*item.value, format!("value-{n}").as_bytes());
            assert_eq!(item.flags, n as u32);
        }
        let total: usize = stores.iter().map(Store::len).sum();
        assert_eq!(total, keys);
    }

    fn scratch(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("ferrite-rehome-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn matching_files_are_left_alone_and_other_layouts_are_rehomed() {
        let directory = scratch("layouts");
        let now = 1_700_000_000_000;
        let two = settings(&directory, 16 << 20);
        fill(&two, 2, 3000, now);
        assert_eq!(prepare(&two, 2, now), Ok(Preparation::Ready));
        let three = settings(&directory, 24 << 20);
        assert_eq!(
            prepare(&three, 3, now),
            Ok(Preparation::Rehomed {
                old_shards: 2,
                items: 3000
            })
        );
        check_all(&three, 3, 3000, now);
        let one = settings(&directory, 32 << 20);
        assert_eq!(
            prepare(&one, 1, now),
            Ok(Preparation::Rehomed {
                old_shards: 3,
                items: 3000
            })
        );
        check_all(&one, 1, 3000, now);
        assert!(
            !shard_file(&directory.join("items"), 1).exists(),
            "old shard files must be gone"
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn too_little_memory_refuses_and_keeps_the_old_files() {
        let directory = scratch("small");
        let now = 1_700_000_000_000;
        let big = settings(&directory, 32 << 20);
        fill(&big, 1, 100_000, now);
        let small = settings(&directory, 2 << 20);
        let error = prepare(&small, 2, now).unwrap_err();
        assert!(
            error.contains("do not fit") && error.contains("--threads 1"),
            "{error}"
        );
        check_all(&big, 1, 100_000, now);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn an_interrupted_rehoming_starts_over() {
        let directory = scratch("interrupted");
        let now = 1_700_000_000_000;
        let two = settings(&directory, 16 << 20);
        fill(&two, 2, 2000, now);
        // As if a previous start renamed the files and crashed after creating a new file.
        for shard in 0..2 {
            let path = shard_file(&directory.join("items"), shard);
            std::fs::rename(&path, with_suffix(&path, REHOME_SUFFIX)).unwrap();
        }
        std::fs::write(shard_file(&directory.join("items"), 0), b"half-made").unwrap();
        let one = settings(&directory, 32 << 20);
        assert_eq!(
            prepare(&one, 1, now),
            Ok(Preparation::Rehomed {
                old_shards: 2,
                items: 2000
            })
        );
        check_all(&one, 1, 2000, now);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
