//! The WGL memo: the set of (linearized bitset, model state) pairs already
//! explored. Open addressing over `u32` entry indices; bitsets live in one
//! chunked arena so growth never needs a huge reallocation.

use std::hash::{Hash, Hasher};

/// FxHash (rustc's hasher): fast and good enough for small integer keys.
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(SEED);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

/// Final mixer (splitmix64), so table indices use all hash bits.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

const CHUNK_ENTRIES: usize = 1 << 14;
const NONE: u32 = u32::MAX;

/// A growable array of fixed-width bit rows in chunks, so growth never
/// needs a huge reallocation.
struct Rows {
    words: usize,
    chunks: Vec<Vec<u64>>,
    len: usize,
}

impl Rows {
    fn new(words: usize) -> Rows {
        Rows {
            words,
            chunks: Vec::new(),
            len: 0,
        }
    }

    fn get(&self, i: usize) -> &[u64] {
        let c = &self.chunks[i / CHUNK_ENTRIES];
        let o = (i % CHUNK_ENTRIES) * self.words;
        &c[o..o + self.words]
    }

    fn push(&mut self, row: &[u64]) {
        if self.len.is_multiple_of(CHUNK_ENTRIES) {
            // Reserved, not touched: small searches stay cheap.
            self.chunks
                .push(Vec::with_capacity(CHUNK_ENTRIES * self.words));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.extend_from_slice(row);
        }
        self.len += 1;
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * 8).sum()
    }
}

/// Memo entries are (ok bitset, info bitset, state). A configuration is
/// pruned when an entry with the same ok bitset and state and a *subset* of
/// its info bitset was already explored: unknown ops never constrain the
/// real-time order and are optional, so having used fewer of them can only
/// leave more completions open (dominance, not just equality).
///
/// Entries are grouped by (ok bitset, state): the hash table holds one slot
/// per group, and each group keeps its info bitsets as an antichain (a new
/// set removes the supersets it dominates). Before, every entry had its own
/// slot under the group's hash, so a group with thousands of info sets was
/// one long probe run that every insert near it walked (etcd_057's shrink
/// probes spent their time there).
pub struct Cache<S> {
    /// 0 = empty, else group index + 1.
    table: Vec<u32>,
    hashes: Vec<u64>,
    states: Vec<S>,
    /// Ok bitset per group.
    oks: Rows,
    /// First entry of each group's list (NONE: empty).
    first: Vec<u32>,
    /// Info bitset per entry, and the next entry of its group.
    infos: Rows,
    next: Vec<u32>,
    /// Entries inserted (states explored), dominated ones included.
    len: usize,
    state_heap: usize,
}

impl<S: Eq + Clone> Cache<S> {
    pub fn new(ok_words: usize, info_words: usize) -> Cache<S> {
        Cache {
            table: vec![0; 1024],
            hashes: Vec::new(),
            states: Vec::new(),
            oks: Rows::new(ok_words),
            first: Vec::new(),
            infos: Rows::new(info_words),
            next: Vec::new(),
            len: 0,
            state_heap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Estimated bytes held, counting the next table doubling so the real
    /// peak stays under a limit checked against this.
    pub fn bytes(&self) -> usize {
        self.table.capacity() * 4 * 3
            + self.hashes.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.first.capacity() * 4
            + self.next.capacity() * 4
            + self.oks.bytes()
            + self.infos.bytes()
            + self.state_heap
    }

    /// Inserts (ok, info, state) under hash `h` (of `ok` and `state` only);
    /// false if it is dominated by an entry already there.
    pub fn insert(&mut self, h: u64, ok: &[u64], info: &[u64], state: &S, heap: usize) -> bool {
        let mask = self.table.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let e = self.table[i];
            if e == 0 {
                break;
            }
            let g = (e - 1) as usize;
            if self.hashes[g] == h && self.states[g] == *state && self.oks.get(g) == ok {
                return self.insert_info(g, info);
            }
            i = (i + 1) & mask;
        }
        let g = self.hashes.len();
        self.hashes.push(h);
        self.states.push(state.clone());
        self.oks.push(ok);
        self.first.push(NONE);
        self.state_heap += heap;
        self.table[i] = (g + 1) as u32;
        if self.hashes.len() * 2 > self.table.len() {
            self.grow();
        }
        self.insert_info(g, info)
    }

    /// Adds `info` to group `g` unless a subset of it is there; drops the
    /// group's supersets of it (they are dominated from now on).
    fn insert_info(&mut self, g: usize, info: &[u64]) -> bool {
        let mut prev = NONE;
        let mut x = self.first[g];
        while x != NONE {
            let e = self.infos.get(x as usize);
            if e.iter().zip(info).all(|(e, c)| e & !c == 0) {
                return false;
            }
            let after = self.next[x as usize];
            if info.iter().zip(e).all(|(c, e)| c & !e == 0) {
                // `e` ⊇ `info`: unlink it.
                if prev == NONE {
                    self.first[g] = after;
                } else {
                    self.next[prev as usize] = after;
                }
            } else {
                prev = x;
            }
            x = after;
        }
        let idx = self.next.len() as u32;
        self.infos.push(info);
        self.next.push(self.first[g]);
        self.first[g] = idx;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let n = self.table.len() * 2;
        let mut t = vec![0u32; n];
        let mask = n - 1;
        for (g, &h) in self.hashes.iter().enumerate() {
            let mut i = (h as usize) & mask;
            while t[i] != 0 {
                i = (i + 1) & mask;
            }
            t[i] = (g + 1) as u32;
        }
        self.table = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominance_by_subset_of_info() {
        let mut c: Cache<u8> = Cache::new(1, 1);
        assert!(c.insert(7, &[1], &[0b110], &0, 0));
        // A superset of an explored info set is dominated.
        assert!(!c.insert(7, &[1], &[0b111], &0, 0));
        // Another state or ok set is not, even under the same hash.
        assert!(c.insert(7, &[1], &[0b111], &1, 0));
        assert!(c.insert(7, &[3], &[0b111], &0, 0));
        // A subset is new, and replaces the superset it dominates.
        assert!(c.insert(7, &[1], &[0b010], &0, 0));
        assert!(!c.insert(7, &[1], &[0b110], &0, 0));
        assert!(c.insert(7, &[1], &[0b001], &0, 0));
        assert_eq!(c.len(), 5);
        // No info words: equality.
        let mut c: Cache<u8> = Cache::new(1, 0);
        assert!(c.insert(1, &[1], &[], &0, 0));
        assert!(!c.insert(1, &[1], &[], &0, 0));
    }
}
