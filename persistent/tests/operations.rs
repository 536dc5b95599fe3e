//! The operations on a DRAM store, one behaviour per test.

use persistent::{
    Condition, Expiry, ExpiryState, Mark, ReadOptions, SetOptions, SetStatus, Store, StoreConfig,
    StoreError, ACCESS_TICK_MS, PREFETCH_KEYS_MAX,
};
use platform::offload::SoftwareOffload;
use std::collections::HashSet;

const NOW: u64 = 1_700_000_000_000;

fn store_of(bytes: usize, segment_bytes: usize) -> Store {
    let config = StoreConfig {
        segment_bytes,
        ..StoreConfig::dram(bytes)
    };
    Store::open(&config, Box::new(SoftwareOffload), NOW).expect("open a DRAM store")
}

fn store() -> Store {
    store_of(4 << 20, 64 << 10)
}

fn set(store: &mut Store, key: &[u8], value: &[u8]) -> u64 {
    match store
        .set(key, value, &SetOptions::default(), NOW)
        .unwrap()
        .status
    {
        SetStatus::Stored { cas } => cas,
        other => panic!("set refused: {other:?}"),
    }
}

fn value(store: &mut Store, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    store.get(key, now_ms).map(|item| item.value.into_owned())
}

#[test]
fn set_get_overwrite_delete() {
    let mut store = store();
    assert_eq!(value(&mut store, b"k", NOW), None);
    let first = set(&mut store, b"k", b"one");
    let second = set(&mut store, b"k", b"two");
    assert_ne!(first, second, "every write gets a new CAS");
    let item = store.get(b"k", NOW).unwrap();
    assert_eq!(
        (&*item.value, item.cas, item.flags, item.expiry_ms),
        (&b"two"[..], second, 0, None)
    );
    assert_eq!(store.len(), 1);
    assert!(store.delete(b"k", NOW).unwrap());
    assert!(!store.delete(b"k", NOW).unwrap());
    assert_eq!(value(&mut store, b"k", NOW), None);
    assert!(store.is_empty());
}

#[test]
fn empty_keys_and_values_are_items_too() {
    let mut store = store();
    set(&mut store, b"", b"");
    assert_eq!(value(&mut store, b"", NOW), Some(Vec::new()));
}

#[test]
fn conditions_follow_add_replace_and_cas() {
    let mut store = store();
    let add = SetOptions {
        condition: Condition::IfAbsent,
        ..SetOptions::default()
    };
    let replace = SetOptions {
        condition: Condition::IfPresent,
        ..SetOptions::default()
    };
    assert_eq!(
        store.set(b"k", b"r", &replace, NOW).unwrap().status,
        SetStatus::NotStored
    );
    assert!(matches!(
        store.set(b"k", b"a", &add, NOW).unwrap().status,
        SetStatus::Stored { .. }
    ));
    assert_eq!(
        store.set(b"k", b"b", &add, NOW).unwrap().status,
        SetStatus::NotStored
    );
    assert!(matches!(
        store.set(b"k", b"r", &replace, NOW).unwrap().status,
        SetStatus::Stored { .. }
    ));
    let cas = store.get(b"k", NOW).unwrap().cas;
    let stale = SetOptions {
        condition: Condition::IfCas(cas + 1),
        ..SetOptions::default()
    };
    assert_eq!(
        store.set(b"k", b"x", &stale, NOW).unwrap().status,
        SetStatus::Exists
    );
    let fresh = SetOptions {
        condition: Condition::IfCas(cas),
        ..SetOptions::default()
    };
    assert!(matches!(
        store.set(b"k", b"y", &fresh, NOW).unwrap().status,
        SetStatus::Stored { .. }
    ));
    assert_eq!(
        store.set(b"missing", b"y", &fresh, NOW).unwrap().status,
        SetStatus::NotFound
    );
    assert_eq!(value(&mut store, b"k", NOW).unwrap(), b"y");
}

#[test]
fn set_can_return_the_previous_value_and_keep_the_ttl() {
    let mut store = store();
    let with_ttl = SetOptions {
        expiry: Expiry::At(NOW + 5_000),
        flags: 7,
        ..SetOptions::default()
    };
    store.set(b"k", b"old", &with_ttl, NOW).unwrap();
    let getset = SetOptions {
        expiry: Expiry::Keep,
        return_previous: true,
        ..SetOptions::default()
    };
    let result = store.set(b"k", b"new", &getset, NOW).unwrap();
    assert_eq!(result.previous.as_deref(), Some(&b"old"[..]));
    let item = store.get(b"k", NOW).unwrap();
    assert_eq!((item.expiry_ms, item.flags), (Some(NOW + 5_000), 0));
    // NX with GET returns the old value and does not write.
    let nx_get = SetOptions {
        condition: Condition::IfAbsent,
        return_previous: true,
        ..SetOptions::default()
    };
    let result = store.set(b"k", b"nx", &nx_get, NOW).unwrap();
    assert_eq!(
        (result.status, result.previous.as_deref()),
        (SetStatus::NotStored, Some(&b"new"[..]))
    );
}

#[test]
fn flags_and_expiry_are_kept_and_expired_items_are_never_returned() {
    let mut store = store();
    let options = SetOptions {
        flags: 0xABCD,
        expiry: Expiry::At(NOW + 1_000),
        ..SetOptions::default()
    };
    store.set(b"k", b"v", &options, NOW).unwrap();
    let item = store.get(b"k", NOW + 999).unwrap();
    assert_eq!((item.flags, item.expiry_ms), (0xABCD, Some(NOW + 1_000)));
    assert_eq!(store.expiry(b"k", NOW), ExpiryState::At(NOW + 1_000));
    assert_eq!(value(&mut store, b"k", NOW + 1_000), None);
    assert_eq!(store.expiry(b"k", NOW + 1_000), ExpiryState::Missing);
    // An expiry already past deletes.
    set(&mut store, b"gone", b"v");
    let past = SetOptions {
        expiry: Expiry::At(NOW - 1),
        ..SetOptions::default()
    };
    assert_eq!(
        store.set(b"gone", b"w", &past, NOW).unwrap().status,
        SetStatus::Stored { cas: 0 }
    );
    assert_eq!(value(&mut store, b"gone", NOW), None);
}

#[test]
fn touch_expire_and_persist() {
    let mut store = store();
    set(&mut store, b"k", b"v");
    assert_eq!(store.expiry(b"k", NOW), ExpiryState::Never);
    assert!(!store.persist(b"k", NOW).unwrap(), "nothing to persist");
    assert!(store.set_expiry(b"k", Some(NOW + 10_000), NOW).unwrap());
    assert_eq!(store.expiry(b"k", NOW), ExpiryState::At(NOW + 10_000));
    assert_eq!(value(&mut store, b"k", NOW).unwrap(), b"v");
    assert!(store.persist(b"k", NOW).unwrap());
    assert_eq!(store.expiry(b"k", NOW + 20_000), ExpiryState::Never);
    assert!(!store.set_expiry(b"missing", Some(NOW + 1), NOW).unwrap());
    assert!(
        store.set_expiry(b"k", Some(NOW), NOW).unwrap(),
        "a past expiry deletes"
    );
    assert_eq!(store.expiry(b"k", NOW), ExpiryState::Missing);
    assert_eq!(store.len(), 0);
}

#[test]
fn append_and_prepend_keep_flags_and_expiry() {
    let mut store = store();
    assert_eq!(store.append(b"k", b"x", NOW).unwrap(), None);
    let options = SetOptions {
        flags: 3,
        expiry: Expiry::At(NOW + 9_000),
        ..SetOptions::default()
    };
    store.set(b"k", b"mid", &options, NOW).unwrap();
    assert_eq!(store.append(b"k", b">>", NOW).unwrap(), Some(5));
    assert_eq!(store.prepend(b"k", b"<<", NOW).unwrap(), Some(7));
    let item = store.get(b"k", NOW).unwrap();
    assert_eq!(
        (&*item.value, item.flags, item.expiry_ms),
        (&b"<<mid>>"[..], 3, Some(NOW + 9_000))
    );
}

#[test]
fn memcached_counters_wrap_and_floor() {
    let mut store = store();
    assert_eq!(store.incr_u64(b"n", 1, NOW).unwrap(), None);
    set(&mut store, b"n", b"18446744073709551614");
    assert_eq!(store.incr_u64(b"n", 3, NOW).unwrap(), Some(1));
    assert_eq!(store.decr_u64(b"n", 5, NOW).unwrap(), Some(0));
    assert_eq!(value(&mut store, b"n", NOW).unwrap(), b"0");
    for bad in [
        &b"abc"[..],
        b"-1",
        b"",
        b" 1",
        b"184467440737095516160",
        b"18446744073709551616",
    ] {
        set(&mut store, b"bad", bad);
        assert!(
            matches!(
                store.incr_u64(b"bad", 1, NOW),
                Err(StoreError::NotAnInteger)
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn redis_counters_create_check_syntax_and_overflow() {
    let mut store = store();
    assert_eq!(store.incr_i64(b"n", 5, NOW).unwrap(), 5);
    assert_eq!(store.incr_i64(b"n", -7, NOW).unwrap(), -2);
    assert_eq!(value(&mut store, b"n", NOW).unwrap(), b"-2");
    set(&mut store, b"max", i64::MAX.to_string().as_bytes());
    assert!(matches!(
        store.incr_i64(b"max", 1, NOW),
        Err(StoreError::Overflow)
    ));
    assert_eq!(store.incr_i64(b"max", -1, NOW).unwrap(), i64::MAX - 1);
    for bad in [
        &b"01"[..],
        b"+1",
        b"1.5",
        b"",
        b"-",
        b"-0",
        b" 1",
        b"9223372036854775808",
    ] {
        set(&mut store, b"bad", bad);
        assert!(
            matches!(
                store.incr_i64(b"bad", 1, NOW),
                Err(StoreError::NotAnInteger)
            ),
            "{bad:?}"
        );
    }
    let ttl = SetOptions {
        expiry: Expiry::At(NOW + 60_000),
        ..SetOptions::default()
    };
    store.set(b"t", b"10", &ttl, NOW).unwrap();
    assert_eq!(store.incr_i64(b"t", 1, NOW).unwrap(), 11);
    assert_eq!(
        store.expiry(b"t", NOW),
        ExpiryState::At(NOW + 60_000),
        "INCR keeps the TTL"
    );
}

#[test]
fn items_larger_than_a_segment_are_refused_with_the_limit() {
    let mut store = store();
    let max = store.item_bytes_max();
    let fits = vec![1u8; max - 1];
    set(&mut store, b"k", &fits);
    assert_eq!(value(&mut store, b"k", NOW).unwrap(), fits);
    let too_big = vec![1u8; max];
    match store.set(b"k", &too_big, &SetOptions::default(), NOW) {
        Err(StoreError::ItemTooLarge { size, max: limit }) => {
            assert_eq!((size, limit), (max + 1, max))
        }
        other => panic!("{other:?}"),
    }
    let long_key = vec![b'k'; persistent::KEY_BYTES_MAX + 1];
    assert!(matches!(
        store.set(&long_key, b"", &SetOptions::default(), NOW),
        Err(StoreError::KeyTooLong { .. })
    ));
}

#[test]
fn a_full_store_evicts_whole_old_segments_and_keeps_serving() {
    let mut store = store_of(1 << 20, 64 << 10);
    let value = [9u8; 1000];
    for index in 0..5_000u32 {
        set(&mut store, format!("key:{index}").as_bytes(), &value);
    }
    let stats = store.stats();
    assert!(
        stats.evicted_segments > 0 && stats.evicted_items > 0,
        "{stats:?}"
    );
    assert!(stats.bytes_used <= stats.bytes_limit);
    assert_eq!(stats.items, store.len() as u64);
    // The newest items are there, the oldest were evicted first.
    assert!(store.get(b"key:4999", NOW).is_some());
    assert!(store.get(b"key:0", NOW).is_none());
    let present = (0..5_000u32)
        .filter(|index| store.contains(format!("key:{index}").as_bytes(), NOW))
        .count();
    assert_eq!(present as u64, stats.items);
}

#[test]
fn expired_segments_are_freed_whole() {
    let mut store = store_of(1 << 20, 64 << 10);
    let options = SetOptions {
        expiry: Expiry::At(NOW + 2_000),
        ..SetOptions::default()
    };
    for index in 0..2_000u32 {
        store
            .set(
                format!("ttl:{index}").as_bytes(),
                &[1u8; 100],
                &options,
                NOW,
            )
            .unwrap();
    }
    set(&mut store, b"forever", b"v");
    let before = store.stats();
    store.tick(NOW + 2_000).unwrap();
    let after = store.stats();
    assert_eq!(after.expired_items, 2_000);
    assert!(after.expired_segments >= 2, "{after:?}");
    assert_eq!(
        after.segments_in_use, 1,
        "only the segment of `forever` is left ({before:?})"
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn overwritten_segments_are_reused_without_eviction() {
    let mut store = store_of(1 << 20, 64 << 10);
    for round in 0..200u32 {
        for index in 0..20u32 {
            set(
                &mut store,
                format!("key:{index}").as_bytes(),
                format!("{round:0>900}").as_bytes(),
            );
        }
    }
    let stats = store.stats();
    assert_eq!(stats.evicted_items, 0, "{stats:?}");
    assert_eq!(stats.items, 20);
}

#[test]
fn flush_all_now_and_later() {
    let mut store = store();
    set(&mut store, b"a", b"1");
    store.flush_all(NOW).unwrap();
    assert!(store.get(b"a", NOW).is_none() && store.is_empty());
    set(&mut store, b"b", b"2");
    store.flush_all_at(NOW + 1_000, NOW).unwrap();
    set(&mut store, b"c", b"3");
    assert!(store.get(b"b", NOW + 999).is_some());
    assert!(store.get(b"b", NOW + 1_000).is_none());
    assert!(
        store.get(b"c", NOW + 1_000).is_none(),
        "written before the flush time"
    );
    set(&mut store, b"d", b"4");
    assert!(
        store.get(b"d", NOW + 2_000).is_some(),
        "written after the flush ran"
    );
}

#[test]
fn scan_visits_every_key_once_while_the_table_grows() {
    let mut store = store_of(64 << 20, 1 << 20);
    let initial: Vec<Vec<u8>> = (0..7_000u32)
        .map(|index| format!("old:{index}").into_bytes())
        .collect();
    for key in &initial {
        set(&mut store, key, b"v");
    }
    let index_bytes_before = store.stats().index_bytes;
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut added = 0u32;
    loop {
        cursor = store.scan(cursor, 100, NOW, |key| seen.push(key.to_vec()));
        // Writes between calls, twice as many as a call visits: the index doubles a few times
        // before the scan ends (the key count grows by about e^2).
        for _ in 0..200 {
            set(&mut store, format!("new:{added}").as_bytes(), b"v");
            added += 1;
        }
        if cursor == 0 {
            break;
        }
    }
    assert!(
        store.stats().index_bytes >= 4 * index_bytes_before,
        "the index grew during the scan"
    );
    let unique: HashSet<&Vec<u8>> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no key twice");
    for key in &initial {
        assert!(
            unique.contains(key),
            "{} missed",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn random_key_and_items_see_only_live_keys() {
    let mut store = store();
    assert_eq!(store.random_key(NOW), None);
    let ttl = SetOptions {
        expiry: Expiry::At(NOW + 10),
        ..SetOptions::default()
    };
    store.set(b"short", b"v", &ttl, NOW).unwrap();
    set(&mut store, b"a", b"1");
    set(&mut store, b"b", b"2");
    set(&mut store, b"a", b"3");
    store.delete(b"b", NOW).unwrap();
    for _ in 0..20 {
        assert_eq!(store.random_key(NOW + 10).as_deref(), Some(&b"a"[..]));
    }
    let items: Vec<(Vec<u8>, Vec<u8>)> = store
        .items(NOW + 10)
        .map(|item| (item.key.to_vec(), item.value.into_owned()))
        .collect();
    assert_eq!(items, [(b"a".to_vec(), b"3".to_vec())]);
}

#[test]
fn compressible_values_are_stored_lz4_and_read_back_exactly() {
    let config = StoreConfig {
        segment_bytes: 64 << 10,
        compress_min_bytes: Some(persistent::COMPRESS_MIN_BYTES_DEFAULT),
        ..StoreConfig::dram(4 << 20)
    };
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW).unwrap();
    let text: Vec<u8> = b"ferrite caches segments "
        .iter()
        .copied()
        .cycle()
        .take(20_000)
        .collect();
    let mut noise = vec![0u8; 20_000];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for byte in &mut noise {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    set(&mut store, b"text", &text);
    let text_bytes = store.stats().bytes_used;
    assert!(
        text_bytes < 2_000,
        "20 kB of repeated text took {text_bytes} bytes"
    );
    set(&mut store, b"noise", &noise);
    assert!(
        store.stats().bytes_used - text_bytes > 20_000,
        "incompressible values stay raw"
    );
    let item = store.get(b"text", NOW).unwrap();
    assert!(matches!(item.value, std::borrow::Cow::Owned(_)));
    assert_eq!(&*item.value, &text[..]);
    assert_eq!(value(&mut store, b"noise", NOW).unwrap(), noise);
    // Operations that rewrite the item keep it exact.
    assert_eq!(store.append(b"text", b"!", NOW).unwrap(), Some(20_001));
    assert!(store.set_expiry(b"noise", Some(NOW + 1_000), NOW).unwrap());
    assert_eq!(value(&mut store, b"noise", NOW).unwrap(), noise);
    let items: Vec<_> = store
        .items(NOW)
        .map(|item| (item.key.to_vec(), item.value.len()))
        .collect();
    assert_eq!(items.len(), 2);
    assert!(items.contains(&(b"text".to_vec(), 20_001)));
}

#[test]
fn impossible_geometries_are_configuration_errors() {
    let open =
        |config: StoreConfig| Store::open(&config, Box::new(SoftwareOffload), NOW).map(|_| ());
    for segment_bytes in [0, 1000, 4097, persistent::SEGMENT_BYTES_MAX * 2] {
        let config = StoreConfig {
            segment_bytes,
            ..StoreConfig::dram(64 << 20)
        };
        assert!(
            matches!(open(config), Err(StoreError::Config { .. })),
            "segment_bytes {segment_bytes}"
        );
    }
    let too_small = StoreConfig {
        segment_bytes: 64 << 10,
        ..StoreConfig::dram(64 << 10)
    };
    assert!(matches!(open(too_small), Err(StoreError::Config { .. })));
    let one_segment = StoreConfig {
        segment_bytes: 64 << 10,
        ..StoreConfig::dram(4096 + (64 << 10))
    };
    let mut store = Store::open(&one_segment, Box::new(SoftwareOffload), NOW).unwrap();
    // A single segment still serves: it is evicted and reused whole.
    for index in 0..2_000u32 {
        set(&mut store, format!("key:{index}").as_bytes(), &[1u8; 100]);
    }
    assert!(store.get(b"key:1999", NOW).is_some());
    assert!(store.stats().evicted_segments > 0);
}

#[test]
fn reads_record_fetched_and_last_access_unless_peeking() {
    let mut store = store();
    set(&mut store, b"k", b"v");
    let later = NOW + 5 * ACCESS_TICK_MS;
    let peeked = store.read(b"k", later, ReadOptions::PEEK).unwrap().usage;
    assert!(!peeked.fetched);
    assert_eq!(peeked.idle_ms(later), 5 * ACCESS_TICK_MS);
    let first = store.get(b"k", later).unwrap().usage;
    assert_eq!(first, peeked, "a peek leaves no trace");
    let second = store.get(b"k", later + 1000).unwrap().usage;
    assert!(second.fetched, "the first get recorded the fetch");
    assert_eq!(second.idle_ms(later + 1000), 0, "and the access time");
    // A rewrite is a new item: not fetched yet.
    set(&mut store, b"k", b"w");
    assert!(!store.get(b"k", later).unwrap().usage.fetched);
}

#[test]
fn the_win_token_goes_to_one_reader_of_a_stale_or_expiring_item() {
    let mut store = store();
    set(&mut store, b"k", b"v");
    let claim = ReadOptions {
        claim_win: true,
        ..ReadOptions::FETCH
    };
    let read = store.read(b"k", NOW, claim).unwrap();
    assert!(!read.won, "fresh and never expiring: nothing to win");
    let before = store.get(b"k", NOW).unwrap().cas;
    let cas = store.invalidate(b"k", None, NOW).unwrap().unwrap();
    assert_ne!(cas, before, "invalidation bumps the CAS");
    let first = store.read(b"k", NOW, claim).unwrap();
    assert!(first.won && first.usage.stale && !first.usage.win_token);
    assert_eq!(&*first.value, b"v");
    let second = store.read(b"k", NOW, claim).unwrap();
    assert!(!second.won && second.usage.stale && second.usage.win_token);
    // Invalidated again: the token is free for the next reader.
    store.invalidate(b"k", None, NOW).unwrap();
    assert!(store.read(b"k", NOW, claim).unwrap().won);
    // Recache: a reader wins once the item expires within the window.
    let options = SetOptions {
        expiry: Expiry::At(NOW + 30_000),
        ..SetOptions::default()
    };
    store.set(b"r", b"v", &options, NOW).unwrap();
    let recache = |within_ms| ReadOptions {
        recache_within_ms: Some(within_ms),
        ..claim
    };
    assert!(!store.read(b"r", NOW, recache(10_000)).unwrap().won);
    assert!(store.read(b"r", NOW, recache(60_000)).unwrap().won);
    assert!(!store.read(b"r", NOW, recache(60_000)).unwrap().won);
    assert_eq!(store.invalidate(b"missing", None, NOW).unwrap(), None);
    assert_eq!(store.invalidate(b"r", Some(NOW), NOW).unwrap(), Some(0));
    assert!(
        store.get(b"r", NOW).is_none(),
        "an expiry already past deletes"
    );
}

#[test]
fn marks_change_usage_in_place_and_keep_the_cas() {
    let mut store = store();
    let cas = set(&mut store, b"k", b"v");
    assert!(store.mark(b"k", Mark::Stale, NOW));
    assert!(store.mark(b"k", Mark::WinToken, NOW));
    assert!(!store.mark(b"missing", Mark::Stale, NOW));
    let item = store.get(b"k", NOW).unwrap();
    assert_eq!(item.cas, cas);
    assert!(item.usage.stale && item.usage.win_token);
}

#[test]
fn prefetch_reads_nothing_into_the_items() {
    // Small segments filled to the end, so some items end where the arena ends.
    let mut store = store_of(256 << 10, 16 << 10);
    let keys: Vec<Vec<u8>> = (0..4000)
        .map(|index| format!("k{index}").into_bytes())
        .collect();
    for key in &keys {
        set(&mut store, key, &[7u8; 90]);
    }
    let found = |store: &mut Store| -> Vec<_> {
        keys.iter()
            .map(|key| {
                store
                    .read(key, NOW, ReadOptions::PEEK)
                    .map(|item| (item.cas, item.usage))
            })
            .collect()
    };
    let before = found(&mut store);
    assert!(
        before.iter().any(Option::is_none),
        "the early keys were evicted"
    );
    for chunk in keys.chunks(PREFETCH_KEYS_MAX + 3) {
        store.prefetch(chunk.iter().map(Vec::as_slice).chain([&b"missing"[..]]));
    }
    assert_eq!(
        found(&mut store),
        before,
        "prefetching records no fetch and moves nothing"
    );
}
