//! The hash index: key → item location, eight bytes per entry, keys compared in the segments.
//!
//! ```text
//! buckets (power of two, 64 B = one cache line each)      overflow pool
//! ┌────┬────┬────┬────┬────┬────┬────┬────┐              ┌────┬────┬─ ─ ─┬────┐
//! │ e0 │ e1 │ e2 │ e3 │ e4 │ e5 │ e6 │ e7 ├──(chain)───►│ e  │ e  │     │ e  │
//! └────┴────┴────┴────┴────┴────┴────┴────┘              └────┴────┴─ ─ ─┴────┘
//!
//! entry (u64): tag (12 bits, from the hash's top bits, never 0) │ segment (28) │ offset (24)
//! 0 = empty slot; tag 0 and non-zero = slot 7 links to overflow bucket (value - 1)
//! ```
//!
//! Two choices: a key may live in bucket `hash & mask` or in bucket `(hash >> 26) & mask` (or
//! their overflow chains); a new key goes to the emptier of the two. That keeps the table about
//! 95 % full with almost no overflow, so the index costs close to 8 bytes per key.
//!
//! A key stays in the bucket it was put in until it is removed; when the table doubles, it
//! moves from bucket `b` to `b` or `b + old size` (the same choice, one more hash bit). So the
//! reverse-binary cursor of [`Index::scan_bucket`] (Redis's SCAN) visits every key that stays in
//! the table from the first call to the last exactly once, even when the table doubles in
//! between (it never shrinks). The tag rejects most non-matching slots without touching the
//! segment.

/// Slots per bucket: one cache line of u64s.
const SLOTS: usize = 8;
/// Grow (double) once the entries outnumber the primary slots (the chains absorb the excess).
const LOAD_ENTRIES_PER_SLOT_MAX: usize = 1;
/// Buckets of a fresh index.
const BUCKETS_INITIAL: usize = 1024;
const TAG_SHIFT: u32 = 52;
/// The second choice takes the hash bits from here up (below the tag).
const SECOND_CHOICE_SHIFT: u32 = 26;
/// Bucket numbers come from 26 hash bits per choice.
const BUCKETS_MAX: usize = 1 << SECOND_CHOICE_SHIFT;
const SEGMENT_SHIFT: u32 = 24;
const SEGMENT_MASK: u64 = (1 << 28) - 1;
const OFFSET_MASK: u64 = (1 << SEGMENT_SHIFT) - 1;
/// Segments an index entry can address.
pub(crate) const SEGMENTS_MAX: usize = 1 << 28;

/// Where an item lives: segment number and byte offset inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Location {
    pub segment: u32,
    pub offset: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([u64; SLOTS]);

pub(crate) struct Index {
    buckets: Vec<Bucket>,
    overflow: Vec<Bucket>,
    overflow_free: Vec<u32>,
    entries: usize,
}

fn tag_of(hash: u64) -> u64 {
    (hash >> TAG_SHIFT).max(1)
}

fn entry(tag: u64, location: Location) -> u64 {
    debug_assert!((location.segment as u64) <= SEGMENT_MASK);
    debug_assert!((location.offset as u64) <= OFFSET_MASK);
    (tag << TAG_SHIFT) | ((location.segment as u64) << SEGMENT_SHIFT) | location.offset as u64
}

fn location_of(entry: u64) -> Location {
    Location {
        segment: ((entry >> SEGMENT_SHIFT) & SEGMENT_MASK) as u32,
        offset: (entry & OFFSET_MASK) as u32,
    }
}

fn is_link(slot: u64) -> bool {
    slot != 0 && slot >> TAG_SHIFT == 0
}

/// One step of Redis's reverse-binary cursor: increment the bits under `mask` from the top.
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let mut cursor = cursor | !mask;
    cursor = cursor.reverse_bits();
    cursor = cursor.wrapping_add(1);
    cursor.reverse_bits()
}

/// What a walk of one chain found free.
#[derive(Clone, Copy, Default)]
struct Vacancy {
    /// Empty slots in the chain's primary bucket.
    primary_slots: usize,
    /// The first empty slot of the chain.
    first: Option<Slot>,
}

/// Where a slot is: a primary bucket or an overflow bucket, and the slot number.
#[derive(Clone, Copy)]
enum Slot {
    Primary(usize, usize),
    Overflow(usize, usize),
}

impl Index {
    pub fn new() -> Index {
        Index::with_buckets(BUCKETS_INITIAL)
    }

    fn with_buckets(buckets: usize) -> Index {
        assert!(buckets.is_power_of_two());
        Index {
            buckets: vec![Bucket::default(); buckets],
            overflow: Vec::new(),
            overflow_free: Vec::new(),
            entries: 0,
        }
    }

    /// An index already large enough for `entries` without growing.
    pub fn with_capacity(entries: usize) -> Index {
        let buckets = entries.div_ceil(SLOTS * LOAD_ENTRIES_PER_SLOT_MAX);
        Index::with_buckets(
            buckets
                .next_power_of_two()
                .clamp(BUCKETS_INITIAL, BUCKETS_MAX),
        )
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    /// Bytes the index holds (primary table and overflow pool).
    pub fn bytes(&self) -> usize {
        (self.buckets.capacity() + self.overflow.capacity()) * std::mem::size_of::<Bucket>()
    }

    fn mask(&self) -> u64 {
        self.buckets.len() as u64 - 1
    }

    fn slot(&self, slot: Slot) -> u64 {
        match slot {
            Slot::Primary(bucket, index) => self.buckets[bucket].0[index],
            Slot::Overflow(bucket, index) => self.overflow[bucket].0[index],
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut u64 {
        match slot {
            Slot::Primary(bucket, index) => &mut self.buckets[bucket].0[index],
            Slot::Overflow(bucket, index) => &mut self.overflow[bucket].0[index],
        }
    }

    /// Calls `visit` on every slot of the chain of primary bucket `bucket`, links excluded,
    /// until it returns `Some`.
    fn walk<T>(&self, bucket: usize, mut visit: impl FnMut(Slot, u64) -> Option<T>) -> Option<T> {
        let mut overflow: Option<usize> = None;
        loop {
            let slots = match overflow {
                None => &self.buckets[bucket].0,
                Some(overflow_bucket) => &self.overflow[overflow_bucket].0,
            };
            let mut next = None;
            for (index, &value) in slots.iter().enumerate() {
                if is_link(value) {
                    next = Some((value - 1) as usize);
                    break;
                }
                let slot = match overflow {
                    None => Slot::Primary(bucket, index),
                    Some(overflow_bucket) => Slot::Overflow(overflow_bucket, index),
                };
                if let Some(found) = visit(slot, value) {
                    return Some(found);
                }
            }
            next?;
            overflow = next;
        }
    }

    /// The two buckets `hash` may live in (equal now and then).
    fn choices(&self, hash: u64) -> [usize; 2] {
        let mask = self.mask();
        [
            (hash & mask) as usize,
            ((hash >> SECOND_CHOICE_SHIFT) & mask) as usize,
        ]
    }

    /// Walks the chains of both choices of `hash` (one chain when they coincide).
    fn walk_choices<T>(
        &self,
        hash: u64,
        mut visit: impl FnMut(Slot, u64) -> Option<T>,
    ) -> Option<T> {
        let [first, second] = self.choices(hash);
        self.walk(first, &mut visit).or_else(|| {
            if second != first {
                self.walk(second, visit)
            } else {
                None
            }
        })
    }

    /// Asks the CPU for both of `hash`'s buckets without waiting for them: asking for a batch
    /// of keys' buckets before looking any up lets their cache misses overlap.
    pub fn prefetch(&self, hash: u64) {
        let [first, second] = self.choices(hash);
        platform::cache::prefetch(&self.buckets[first]);
        platform::cache::prefetch(&self.buckets[second]);
    }

    /// The first location of `hash`'s chains for which `matches` is true.
    pub fn find(&self, hash: u64, mut matches: impl FnMut(Location) -> bool) -> Option<Location> {
        let tag = tag_of(hash);
        self.walk_choices(hash, |_, value| {
            (value >> TAG_SHIFT == tag && matches(location_of(value))).then(|| location_of(value))
        })
    }

    /// Points `hash`'s key (recognised by `matches`) at `location`, returning the location it
    /// replaced. Call [`Index::needs_growth`] afterwards.
    pub fn upsert(
        &mut self,
        hash: u64,
        location: Location,
        mut matches: impl FnMut(Location) -> bool,
    ) -> Option<Location> {
        let tag = tag_of(hash);
        let choices = self.choices(hash);
        // One walk per chain finds the key or, on the way, where a new entry can go.
        let mut vacancies = [Vacancy::default(); 2];
        for (which, &bucket) in choices.iter().enumerate() {
            if which == 1 && choices[1] == choices[0] {
                break;
            }
            let vacancy = &mut vacancies[which];
            let found = self.walk(bucket, |slot, value| {
                if value == 0 {
                    vacancy.primary_slots += usize::from(matches!(slot, Slot::Primary(..)));
                    vacancy.first.get_or_insert(slot);
                    return None;
                }
                (value >> TAG_SHIFT == tag && matches(location_of(value))).then_some(slot)
            });
            if let Some(slot) = found {
                let old = location_of(self.slot(slot));
                *self.slot_mut(slot) = entry(tag, location);
                return Some(old);
            }
        }
        // The primary bucket with more empty slots (a chain is walked primary slots first, so
        // its first vacancy is then a primary slot); else any vacancy; else a new overflow.
        let [first, second] = vacancies;
        let slot = if second.primary_slots > first.primary_slots {
            second.first
        } else {
            first.first.or(second.first)
        };
        let slot = slot.unwrap_or_else(|| self.extend_chain(choices[0]));
        *self.slot_mut(slot) = entry(tag, location);
        self.entries += 1;
        None
    }

    /// Adds an overflow bucket at the end of `bucket`'s (full) chain and returns a free slot in it.
    fn extend_chain(&mut self, bucket: usize) -> Slot {
        let mut last = Slot::Primary(bucket, SLOTS - 1);
        while is_link(self.slot(last)) {
            last = Slot::Overflow((self.slot(last) - 1) as usize, SLOTS - 1);
        }
        let fresh = match self.overflow_free.pop() {
            Some(fresh) => fresh as usize,
            None => {
                self.overflow.push(Bucket::default());
                self.overflow.len() - 1
            }
        };
        // The last slot's entry moves to the new bucket; the slot becomes the link.
        self.overflow[fresh].0[0] = self.slot(last);
        *self.slot_mut(last) = fresh as u64 + 1;
        Slot::Overflow(fresh, 1)
    }

    /// Removes `location`'s entry from `hash`'s chains; false if it was not there.
    pub fn remove_location(&mut self, hash: u64, location: Location) -> bool {
        let wanted = entry(tag_of(hash), location);
        for bucket in self.choices(hash) {
            if let Some(slot) = self.walk(bucket, |slot, value| (value == wanted).then_some(slot)) {
                *self.slot_mut(slot) = 0;
                self.entries -= 1;
                self.trim_chain(bucket);
                return true;
            }
        }
        false
    }

    /// Frees the tail overflow bucket of `bucket`'s chain while it is empty.
    fn trim_chain(&mut self, bucket: usize) {
        loop {
            let mut previous = Slot::Primary(bucket, SLOTS - 1);
            if !is_link(self.slot(previous)) {
                return;
            }
            let mut tail = (self.slot(previous) - 1) as usize;
            while is_link(self.overflow[tail].0[SLOTS - 1]) {
                previous = Slot::Overflow(tail, SLOTS - 1);
                tail = (self.overflow[tail].0[SLOTS - 1] - 1) as usize;
            }
            if self.overflow[tail].0.iter().any(|&value| value != 0) {
                return;
            }
            *self.slot_mut(previous) = 0;
            self.overflow_free.push(tail as u32);
        }
    }

    pub fn needs_growth(&self) -> bool {
        self.entries > self.buckets.len() * SLOTS * LOAD_ENTRIES_PER_SLOT_MAX
            && self.buckets.len() < BUCKETS_MAX
    }

    /// Doubles the table; `hash_of` recomputes an entry's hash from its item's key. Each entry
    /// keeps its choice, so it lands in `b` or `b + old size`.
    pub fn grow(&mut self, mut hash_of: impl FnMut(Location) -> u64) {
        let mut grown = Index::with_buckets(self.buckets.len() * 2);
        let mask = self.mask();
        for bucket in 0..self.buckets.len() {
            self.walk(bucket, |_, value| {
                if value != 0 {
                    let location = location_of(value);
                    let hash = hash_of(location);
                    let [first, second] = grown.choices(hash);
                    let target = if (hash & mask) as usize == bucket {
                        first
                    } else {
                        second
                    };
                    grown.insert_into(target, value);
                }
                None::<()>
            });
        }
        *self = grown;
    }

    /// Puts `value` into the first empty slot of `bucket`'s chain (growth).
    fn insert_into(&mut self, bucket: usize, value: u64) {
        let slot = self.walk(bucket, |slot, value| (value == 0).then_some(slot));
        let slot = slot.unwrap_or_else(|| self.extend_chain(bucket));
        *self.slot_mut(slot) = value;
        self.entries += 1;
    }

    pub fn clear(&mut self) {
        *self = Index::new();
    }

    /// Visits the locations in the bucket `cursor` points at and returns the next cursor
    /// (0 once every bucket was visited).
    pub fn scan_bucket(&self, cursor: u64, mut visit: impl FnMut(Location)) -> u64 {
        let mask = self.mask();
        self.walk((cursor & mask) as usize, |_, value| {
            if value != 0 {
                visit(location_of(value));
            }
            None::<()>
        });
        next_cursor(cursor, mask)
    }

    /// Some location chosen from `random`: a random bucket, then the first non-empty one from
    /// there, then a random entry in its chain.
    pub fn random_location(&self, random: u64) -> Option<Location> {
        if self.entries == 0 {
            return None;
        }
        let count = self.buckets.len();
        let start = (random & self.mask()) as usize;
        for step in 0..count {
            let bucket = (start + step) % count;
            let mut chain_len = 0usize;
            self.walk(bucket, |_, value| {
                chain_len += usize::from(value != 0);
                None::<()>
            });
            if chain_len == 0 {
                continue;
            }
            let mut pick = ((random >> 32) as usize) % chain_len;
            return self.walk(bucket, |_, value| {
                if value == 0 {
                    return None;
                }
                if pick == 0 {
                    return Some(location_of(value));
                }
                pick -= 1;
                None
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Entries keyed by their location; the "key" of location n is hash n.
    fn hash_of(location: Location) -> u64 {
        crate::hash::hash_key(7, &location.offset.to_le_bytes())
    }

    fn location(n: u32) -> Location {
        Location {
            segment: n % 1000,
            offset: n,
        }
    }

    #[test]
    fn entries_survive_growth_and_removal() {
        let mut index = Index::new();
        let count = 50_000u32;
        for n in 0..count {
            let previous = index.upsert(hash_of(location(n)), location(n), |other| {
                other == location(n)
            });
            assert_eq!(previous, None);
            if index.needs_growth() {
                index.grow(hash_of);
            }
        }
        assert_eq!(index.len(), count as usize);
        assert!(index.buckets.len() * SLOTS >= count as usize);
        for n in (0..count).step_by(3) {
            assert!(index.remove_location(hash_of(location(n)), location(n)));
            assert!(!index.remove_location(hash_of(location(n)), location(n)));
        }
        for n in 0..count {
            let found = index.find(hash_of(location(n)), |other| other == location(n));
            assert_eq!(found.is_some(), n % 3 != 0, "entry {n}");
        }
    }

    #[test]
    fn one_hash_for_many_keys_overflows_into_chains_and_trims_them() {
        let mut index = Index::new();
        let hash = 0xABCD_0000_0000_0001;
        // Keys that share a hash: told apart by `matches` (the key comparison).
        for n in 0..40u32 {
            assert_eq!(
                index.upsert(hash, location(n), |other| other == location(n)),
                None
            );
        }
        assert!(!index.overflow.is_empty());
        let replaced = index.upsert(hash, location(1_000_000), |other| other == location(5));
        assert_eq!(replaced, Some(location(5)));
        for n in (0..40u32).filter(|&n| n != 5) {
            assert!(index.remove_location(hash, location(n)), "entry {n}");
        }
        assert!(index.remove_location(hash, location(1_000_000)));
        assert_eq!(index.len(), 0);
        assert_eq!(
            index.overflow_free.len(),
            index.overflow.len(),
            "every overflow bucket was freed"
        );
    }

    #[test]
    fn two_choices_keep_overflow_rare_at_full_load() {
        let mut index = Index::with_buckets(1 << 12);
        let count = (1u32 << 12) * SLOTS as u32 * 95 / 100;
        for n in 0..count {
            index.upsert(hash_of(location(n)), location(n), |_| false);
        }
        assert!(!index.needs_growth());
        // Under a byte per entry (one choice needs about 3.5 at this load).
        let overflow_bytes = index.overflow.len() * std::mem::size_of::<Bucket>();
        assert!(
            overflow_bytes < count as usize,
            "{} overflow buckets",
            index.overflow.len()
        );
    }

    #[test]
    fn scan_cursor_visits_each_bucket_once() {
        let mut index = Index::with_buckets(1 << 10);
        let mut seen = HashMap::new();
        for n in 0..5_000u32 {
            index.upsert(hash_of(location(n)), location(n), |_| false);
        }
        let mut cursor = 0;
        loop {
            cursor = index.scan_bucket(cursor, |location| *seen.entry(location).or_insert(0) += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 5_000);
        assert!(seen.values().all(|&visits| visits == 1));
    }
}
