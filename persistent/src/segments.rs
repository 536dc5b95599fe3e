//! Segment bookkeeping in DRAM: which segments are free, the FIFO order eviction follows, and
//! the TTL buckets that group segments by time-to-live so expired items leave a whole segment
//! at once.
//!
//! ```text
//! fifo:        oldest ⇄ seg ⇄ seg ⇄ ... ⇄ newest          (eviction takes the oldest)
//! bucket 0:    seg ⇄ seg ⇄ active                          (items that never expire)
//! bucket b≥1:  head ⇄ seg ⇄ active                         (head expires first)
//! ```
//!
//! Both lists are intrusive (prev/next arrays indexed by segment), so unlinking a segment that
//! expired in the middle of the FIFO is O(1) and nothing grows with time.

/// Number of TTL buckets: bucket 0 holds items without expiry, buckets 1.. hold items whose
/// time-to-live (at write time) falls in half-octave ranges of seconds: 1 s, 1.5 s, 2 s, 3 s,
/// 4 s, 6 s ... up to 2^31 s (68 years); longer TTLs share the last bucket.
pub const TTL_BUCKETS: usize = 64;
/// "No segment" in the intrusive lists.
const NONE: u32 = u32::MAX;

/// The TTL bucket of an item expiring at `expiry_ms` (0 = never) written at `now_ms`.
pub(crate) fn ttl_bucket(expiry_ms: u64, now_ms: u64) -> u8 {
    if expiry_ms == 0 {
        return 0;
    }
    let seconds = (expiry_ms.saturating_sub(now_ms) / 1000).max(1);
    let octave = 63 - seconds.leading_zeros() as u64;
    let half = if octave == 0 {
        0
    } else {
        (seconds >> (octave - 1)) & 1
    };
    (1 + (2 * octave + half).min(TTL_BUCKETS as u64 - 2)) as u8
}

/// What the store knows about one segment without reading it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SegmentMeta {
    /// 0 while free; otherwise the store-wide generation at which it was opened.
    pub generation: u64,
    /// Bytes written, header included.
    pub write_offset: u32,
    /// Items not yet marked dead.
    pub live_items: u32,
    /// The latest expiry of any item written here (0 in bucket 0).
    pub expiry_max_ms: u64,
    pub ttl_bucket: u8,
}

#[derive(Clone, Copy)]
struct Links {
    previous: u32,
    next: u32,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NONE,
        tail: NONE,
    };

    fn push_back(&mut self, links: &mut [Links], id: u32) {
        links[id as usize] = Links {
            previous: self.tail,
            next: NONE,
        };
        if self.tail == NONE {
            self.head = id;
        } else {
            links[self.tail as usize].next = id;
        }
        self.tail = id;
    }

    fn unlink(&mut self, links: &mut [Links], id: u32) {
        let Links { previous, next } = links[id as usize];
        if previous == NONE {
            self.head = next;
        } else {
            links[previous as usize].next = next;
        }
        if next == NONE {
            self.tail = previous;
        } else {
            links[next as usize].previous = previous;
        }
        links[id as usize] = Links {
            previous: NONE,
            next: NONE,
        };
    }

    fn first(&self) -> Option<u32> {
        (self.head != NONE).then_some(self.head)
    }

    fn last(&self) -> Option<u32> {
        (self.tail != NONE).then_some(self.tail)
    }
}

pub(crate) struct Segments {
    meta: Vec<SegmentMeta>,
    free: Vec<u32>,
    fifo: List,
    fifo_links: Vec<Links>,
    buckets: [List; TTL_BUCKETS],
    bucket_links: Vec<Links>,
}

impl Segments {
    /// `count` segments, all free.
    pub fn new(count: usize) -> Segments {
        let unlinked = Links {
            previous: NONE,
            next: NONE,
        };
        Segments {
            meta: vec![SegmentMeta::default(); count],
            // Reversed so segment 0 is handed out first.
            free: (0..count as u32).rev().collect(),
            fifo: List::EMPTY,
            fifo_links: vec![unlinked; count],
            buckets: [List::EMPTY; TTL_BUCKETS],
            bucket_links: vec![unlinked; count],
        }
    }

    /// `count` segments of which `in_use` (oldest first) hold items, the rest free.
    pub fn recovered(count: usize, in_use: &[(u32, SegmentMeta)]) -> Segments {
        let mut segments = Segments::new(count);
        let mut used = vec![false; count];
        for &(segment, _) in in_use {
            used[segment as usize] = true;
        }
        segments.free.retain(|&segment| !used[segment as usize]);
        for &(segment, meta) in in_use {
            segments.open(segment, meta);
        }
        segments
    }

    pub fn count(&self) -> usize {
        self.meta.len()
    }

    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    pub fn meta(&self, id: u32) -> &SegmentMeta {
        &self.meta[id as usize]
    }

    pub fn meta_mut(&mut self, id: u32) -> &mut SegmentMeta {
        &mut self.meta[id as usize]
    }

    pub fn take_free(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Starts using segment `id` (taken from the free list, or found in use by recovery, in
    /// generation order) as the newest segment of `ttl_bucket`.
    pub fn open(&mut self, id: u32, meta: SegmentMeta) {
        assert!(meta.generation != 0, "an open segment has a generation");
        self.meta[id as usize] = meta;
        self.fifo.push_back(&mut self.fifo_links, id);
        self.buckets[meta.ttl_bucket as usize].push_back(&mut self.bucket_links, id);
    }

    /// Returns segment `id` to the free list.
    pub fn release(&mut self, id: u32) {
        let meta = &mut self.meta[id as usize];
        assert!(meta.generation != 0, "segment {id} released twice");
        let bucket = meta.ttl_bucket as usize;
        *meta = SegmentMeta::default();
        self.fifo.unlink(&mut self.fifo_links, id);
        self.buckets[bucket].unlink(&mut self.bucket_links, id);
        self.free.push(id);
    }

    /// The segment new items of `ttl_bucket` are appended to.
    pub fn active(&self, ttl_bucket: u8) -> Option<u32> {
        self.buckets[ttl_bucket as usize].last()
    }

    /// The segment of `ttl_bucket` that expires first.
    pub fn bucket_head(&self, ttl_bucket: u8) -> Option<u32> {
        self.buckets[ttl_bucket as usize].first()
    }

    /// The segment opened longest ago.
    pub fn oldest(&self) -> Option<u32> {
        self.fifo.first()
    }

    /// Every segment in use, oldest first.
    pub fn in_use(&self) -> impl Iterator<Item = u32> + '_ {
        let mut next = self.fifo.head;
        std::iter::from_fn(move || {
            let id = (next != NONE).then_some(next)?;
            next = self.fifo_links[id as usize].next;
            Some(id)
        })
    }

    /// Whether segment `id` is the one its bucket appends to.
    pub fn is_active(&self, id: u32) -> bool {
        self.active(self.meta(id).ttl_bucket) == Some(id)
    }

    /// Frees every segment.
    pub fn release_all(&mut self) {
        *self = Segments::new(self.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_buckets_grow_by_half_octaves_and_saturate() {
        assert_eq!(ttl_bucket(0, 5), 0);
        assert_eq!(ttl_bucket(1_000, 1_000), 1, "already due");
        assert_eq!(ttl_bucket(1_999, 1_000), 1);
        let buckets: Vec<u8> = [1u64, 2, 3, 4, 6, 8, 12, 16]
            .iter()
            .map(|s| ttl_bucket(s * 1000, 0))
            .collect();
        assert!(
            buckets.windows(2).all(|pair| pair[0] < pair[1]),
            "{buckets:?}"
        );
        assert_eq!(ttl_bucket(u64::MAX, 0) as usize, TTL_BUCKETS - 1);
    }

    #[test]
    fn release_unlinks_from_the_middle_of_both_lists() {
        let mut segments = Segments::new(4);
        let meta = |generation, ttl_bucket| SegmentMeta {
            generation,
            ttl_bucket,
            ..Default::default()
        };
        for (generation, bucket) in [(1, 3), (2, 3), (3, 0), (4, 3)] {
            let id = segments.take_free().unwrap();
            segments.open(id, meta(generation, bucket));
        }
        assert_eq!(segments.take_free(), None);
        assert_eq!(segments.in_use().collect::<Vec<_>>(), [0, 1, 2, 3]);
        segments.release(1);
        assert_eq!(segments.in_use().collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(
            (segments.bucket_head(3), segments.active(3)),
            (Some(0), Some(3))
        );
        segments.release(0);
        segments.release(3);
        assert_eq!((segments.bucket_head(3), segments.active(3)), (None, None));
        assert_eq!(segments.oldest(), Some(2));
        assert_eq!(segments.free_count(), 3);
    }
}
