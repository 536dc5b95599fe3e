//! The file arena: reopening, what survives, and files that cannot be used.

use persistent::{
    Expiry, FlushPolicy, OwnerTag, SetOptions, Store, StoreConfig, StoreError, FORMAT_VERSION,
};
use platform::offload::SoftwareOffload;
use std::path::PathBuf;

const NOW: u64 = 1_700_000_000_000;
const ARENA_BYTES: usize = 4096 + 16 * (64 << 10);

/// A fresh path in the temporary directory, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let path =
            std::env::temp_dir().join(format!("ferrite-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config(path: &TempPath) -> StoreConfig {
    StoreConfig {
        segment_bytes: 64 << 10,
        flush: FlushPolicy::EverySec,
        ..StoreConfig::file(&path.0, ARENA_BYTES)
    }
}

fn open(path: &TempPath, now_ms: u64) -> Result<Store, StoreError> {
    Store::open(&config(path), Box::new(SoftwareOffload), now_ms)
}

fn value(store: &mut Store, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    store.get(key, now_ms).map(|item| item.value.into_owned())
}

#[test]
fn items_survive_a_clean_reopen_and_deletes_stay_deleted() {
    let path = TempPath::new("reopen");
    let mut store = open(&path, NOW).unwrap();
    assert!(store.recovery_report().created);
    let ttl = SetOptions {
        expiry: Expiry::At(NOW + 5_000),
        flags: 9,
        ..SetOptions::default()
    };
    for index in 0..1_000u32 {
        store
            .set(
                format!("key:{index}").as_bytes(),
                format!("value:{index}").as_bytes(),
                &SetOptions::default(),
                NOW,
            )
            .unwrap();
    }
    store.set(b"ttl", b"short", &ttl, NOW).unwrap();
    for index in 0..1_000u32 {
        if index % 3 == 0 {
            store
                .delete(format!("key:{index}").as_bytes(), NOW)
                .unwrap();
        } else if index % 3 == 1 {
            store
                .set(
                    format!("key:{index}").as_bytes(),
                    b"overwritten",
                    &SetOptions::default(),
                    NOW,
                )
                .unwrap();
        }
    }
    let cas_before = store.get(b"key:2", NOW).unwrap().cas;
    store.close().unwrap();

    let mut store = open(&path, NOW + 1_000).unwrap();
    let report = store.recovery_report().clone();
    assert!(report.clean_shutdown && !report.created, "{report:?}");
    assert_eq!(
        (
            report.items_restored,
            report.items_corrupt,
            report.items_superseded
        ),
        (667, 0, 0),
        "{report:?}"
    );
    assert_eq!(store.len(), 667);
    for index in 0..1_000u32 {
        let expected = match index % 3 {
            0 => None,
            1 => Some(b"overwritten".to_vec()),
            _ => Some(format!("value:{index}").into_bytes()),
        };
        assert_eq!(
            value(&mut store, format!("key:{index}").as_bytes(), NOW + 1_000),
            expected,
            "key:{index}"
        );
    }
    let item = store.get(b"ttl", NOW + 1_000).unwrap();
    assert_eq!((item.flags, item.expiry_ms), (9, Some(NOW + 5_000)));
    assert_eq!(
        store.get(b"key:2", NOW).unwrap().cas,
        cas_before,
        "CAS values survive"
    );
    // New writes after recovery get fresh CAS values and land in the right place.
    store
        .set(b"after", b"restart", &SetOptions::default(), NOW + 1_000)
        .unwrap();
    assert_ne!(store.get(b"after", NOW).unwrap().cas, cas_before);
    drop(store);

    let mut store = open(&path, NOW + 5_000).unwrap();
    let report = store.recovery_report().clone();
    assert_eq!(
        (report.items_restored, report.items_expired),
        (667, 1),
        "{report:?}"
    );
    assert_eq!(
        value(&mut store, b"after", NOW + 5_000).as_deref(),
        Some(&b"restart"[..])
    );
    assert_eq!(value(&mut store, b"ttl", NOW + 5_000), None);
}

#[test]
fn a_store_that_was_not_closed_reports_it_and_recovers() {
    let path = TempPath::new("unclean");
    let copy = TempPath::new("unclean-copy");
    let mut store = open(&path, NOW).unwrap();
    store.set(b"k", b"v", &SetOptions::default(), NOW).unwrap();
    store
        .set(b"gone", b"v", &SetOptions::default(), NOW)
        .unwrap();
    store.delete(b"gone", NOW).unwrap();
    // The file as a crash would leave it: written, never closed.
    std::fs::copy(&path.0, &copy.0).unwrap();
    drop(store);
    let mut store = open(&copy, NOW).unwrap();
    let report = store.recovery_report().clone();
    assert!(!report.clean_shutdown, "{report:?}");
    assert_eq!(report.items_restored, 1);
    assert_eq!(value(&mut store, b"k", NOW).as_deref(), Some(&b"v"[..]));
    assert_eq!(value(&mut store, b"gone", NOW), None);
}

#[test]
fn flush_all_survives_a_reopen() {
    let path = TempPath::new("flush-all");
    let mut store = open(&path, NOW).unwrap();
    store
        .set(b"old", b"v", &SetOptions::default(), NOW)
        .unwrap();
    store.flush_all(NOW).unwrap();
    store
        .set(b"new", b"v", &SetOptions::default(), NOW)
        .unwrap();
    drop(store);
    let mut store = open(&path, NOW).unwrap();
    assert_eq!(value(&mut store, b"old", NOW), None);
    assert_eq!(value(&mut store, b"new", NOW).as_deref(), Some(&b"v"[..]));
}

#[test]
fn the_owner_tag_is_recorded_and_reported() {
    let path = TempPath::new("owner");
    let tagged = StoreConfig {
        owner: OwnerTag([3, 8, 0, 0]),
        ..config(&path)
    };
    let store = Store::open(&tagged, Box::new(SoftwareOffload), NOW).unwrap();
    assert_eq!(store.recovery_report().owner, OwnerTag([3, 8, 0, 0]));
    drop(store);
    let other = StoreConfig {
        owner: OwnerTag([1, 4, 0, 0]),
        ..config(&path)
    };
    let mut store = Store::open(&other, Box::new(SoftwareOffload), NOW).unwrap();
    assert_eq!(
        store.recovery_report().owner,
        OwnerTag([3, 8, 0, 0]),
        "the file's tag, not the config's"
    );
    store.set_owner(OwnerTag([1, 4, 0, 0])).unwrap();
    drop(store);
    let store = Store::open(&other, Box::new(SoftwareOffload), NOW).unwrap();
    assert_eq!(store.recovery_report().owner, OwnerTag([1, 4, 0, 0]));
}

#[test]
fn a_locked_file_is_refused() {
    let path = TempPath::new("locked");
    let store = open(&path, NOW).unwrap();
    match open(&path, NOW) {
        Err(StoreError::Locked { path: locked }) => assert_eq!(locked, path.0),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    drop(store);
    open(&path, NOW).expect("the lock goes with the store");
}

#[test]
fn bad_files_give_clear_errors_and_are_left_alone() {
    let path = TempPath::new("bad");
    drop(open(&path, NOW).unwrap());
    let good = std::fs::read(&path.0).unwrap();
    let check = |bytes: &[u8], expect: &dyn Fn(&StoreError) -> bool| {
        std::fs::write(&path.0, bytes).unwrap();
        let error = open(&path, NOW).map(|_| ()).unwrap_err();
        assert!(expect(&error), "unexpected {error}");
        assert_eq!(
            std::fs::read(&path.0).unwrap(),
            bytes,
            "a bad file is never rewritten"
        );
    };
    check(&good[..100], &|error| {
        matches!(error, StoreError::Truncated { found: 100, .. })
    });
    check(&good[..good.len() - 4096], &|error| {
        matches!(error, StoreError::Truncated { .. })
    });
    // The superblock has two slots (2048 bytes apart); damage must reach both to matter.
    let both_slots = |change: &dyn Fn(&mut [u8])| {
        let mut bytes = good.clone();
        change(&mut bytes[..2048]);
        change(&mut bytes[2048..4096]);
        bytes
    };
    check(&both_slots(&|slot| slot[0] = b'X'), &|error| {
        matches!(error, StoreError::BadMagic { .. })
    });
    check(&both_slots(&|slot| slot[20] ^= 0x10), &|error| {
        matches!(error, StoreError::CorruptSuperblock { .. })
    });
    let mut one_slot_torn = good.clone();
    one_slot_torn[20] ^= 0x10;
    std::fs::write(&path.0, &one_slot_torn).unwrap();
    drop(open(&path, NOW).expect("one good slot is enough"));
    let other_geometry = StoreConfig {
        segment_bytes: 32 << 10,
        ..config(&path)
    };
    std::fs::write(&path.0, &good).unwrap();
    match Store::open(&other_geometry, Box::new(SoftwareOffload), NOW) {
        Err(StoreError::GeometryMismatch {
            found_segment_bytes,
            expected_segment_bytes,
            ..
        }) => {
            assert_eq!(
                (found_segment_bytes, expected_segment_bytes),
                (64 << 10, 32 << 10)
            )
        }
        other => panic!("expected GeometryMismatch, got {:?}", other.map(|_| ())),
    }
    // A future version: rewrite the version field and the checksum of both slots to match.
    let future = both_slots(&|slot| {
        slot[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = platform::offload::Offload::crc64(&mut SoftwareOffload, &[&slot[..72]]);
        slot[72..80].copy_from_slice(&crc.to_le_bytes());
    });
    check(&future, &|error| {
        matches!(error, StoreError::VersionMismatch { found, expected, .. }
            if *found == FORMAT_VERSION + 1 && *expected == FORMAT_VERSION)
    });
}

#[test]
fn every_flush_policy_round_trips() {
    for policy in [FlushPolicy::No, FlushPolicy::EverySec, FlushPolicy::Always] {
        let path = TempPath::new("policy");
        let config = StoreConfig {
            flush: policy,
            ..config(&path)
        };
        let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW).unwrap();
        for index in 0..100u32 {
            store
                .set(
                    format!("{index}").as_bytes(),
                    b"v",
                    &SetOptions::default(),
                    NOW,
                )
                .unwrap();
            store.tick(NOW + index as u64 * 100).unwrap();
        }
        store.delete(b"7", NOW).unwrap();
        store.close().unwrap();
        let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW).unwrap();
        assert_eq!(store.len(), 99, "{policy:?}");
        assert_eq!(value(&mut store, b"7", NOW), None);
    }
}

#[test]
fn a_creation_cut_short_by_a_crash_is_started_over() {
    let path = TempPath::new("creation");
    let mut creating = path.0.as_os_str().to_owned();
    creating.push(".creating");
    let creating = PathBuf::from(creating);
    // What a crash between sizing the new file and writing its superblock leaves behind.
    std::fs::write(&creating, vec![0u8; 8192]).unwrap();
    assert!(!path.0.exists());
    let mut store = open(&path, NOW).unwrap();
    assert!(store.recovery_report().created);
    assert!(
        path.0.exists() && !creating.exists(),
        "the store appears at its path once made"
    );
    store.set(b"k", b"v", &SetOptions::default(), NOW).unwrap();
    drop(store);
    let mut store = open(&path, NOW).unwrap();
    assert_eq!(value(&mut store, b"k", NOW).as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_sync_handle_syncs_from_another_thread_and_holds_the_lock() {
    let path = TempPath::new("sync-handle");
    let mut store = open(&path, NOW).unwrap();
    let handle = store.sync_handle().unwrap().expect("a file store has one");
    store.set(b"k", b"v", &SetOptions::default(), NOW).unwrap();
    std::thread::spawn(move || handle.sync())
        .join()
        .unwrap()
        .unwrap();
    let dram = Store::open(&StoreConfig::dram(2 << 20), Box::new(SoftwareOffload), NOW).unwrap();
    assert!(dram.sync_handle().unwrap().is_none());
    let handle = store.sync_handle().unwrap().unwrap();
    drop(store);
    assert!(
        matches!(open(&path, NOW), Err(StoreError::Locked { .. })),
        "the handle keeps the lock"
    );
    drop(handle);
    let mut store = open(&path, NOW).unwrap();
    assert_eq!(value(&mut store, b"k", NOW).as_deref(), Some(&b"v"[..]));
}
