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

/// Memo entries are (ok bitset, info bitset, state). A configuration is
/// pruned when an entry with the same ok bitset and state and a *subset* of
/// its info bitset was already explored: unknown ops never constrain the
/// real-time order and are optional, so having used fewer of them can only
/// leave more completions open (dominance, not just equality).
pub struct Cache<S> {
    /// Words per entry: ok words then info words.
    words: usize,
    ok_words: usize,
    /// 0 = empty, else entry index + 1.
    table: Vec<u32>,
    hashes: Vec<u64>,
    states: Vec<S>,
    chunks: Vec<Vec<u64>>,
    len: usize,
    state_heap: usize,
}

impl<S: Eq + Clone> Cache<S> {
    pub fn new(ok_words: usize, info_words: usize) -> Cache<S> {
        Cache {
            words: ok_words + info_words,
            ok_words,
            table: vec![0; 1024],
            hashes: Vec::new(),
            states: Vec::new(),
            chunks: Vec::new(),
            len: 0,
            state_heap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn bits_of(&self, i: usize) -> &[u64] {
        let c = &self.chunks[i / CHUNK_ENTRIES];
        let o = (i % CHUNK_ENTRIES) * self.words;
        &c[o..o + self.words]
    }

    /// Estimated bytes held, counting the next table doubling so the real
    /// peak stays under a limit checked against this.
    pub fn bytes(&self) -> usize {
        self.table.capacity() * 4 * 3
            + self.hashes.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.chunks.iter().map(|c| c.len() * 8).sum::<usize>()
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
            let idx = (e - 1) as usize;
            if self.hashes[idx] == h && self.states[idx] == *state {
                let (eo, ei) = self.bits_of(idx).split_at(self.ok_words);
                if eo == ok && ei.iter().zip(info).all(|(e, c)| e & !c == 0) {
                    return false;
                }
            }
            i = (i + 1) & mask;
        }
        let idx = self.len;
        if idx.is_multiple_of(CHUNK_ENTRIES) {
            // Reserved, not touched: small searches stay cheap.
            self.chunks
                .push(Vec::with_capacity(CHUNK_ENTRIES * self.words));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.extend_from_slice(ok);
            c.extend_from_slice(info);
        }
        self.hashes.push(h);
        self.states.push(state.clone());
        self.state_heap += heap;
        self.len += 1;
        self.table[i] = (idx + 1) as u32;
        if self.len * 2 > self.table.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let n = self.table.len() * 2;
        let mut t = vec![0u32; n];
        let mask = n - 1;
        for (idx, &h) in self.hashes.iter().enumerate() {
            let mut i = (h as usize) & mask;
            while t[i] != 0 {
                i = (i + 1) & mask;
            }
            t[i] = (idx + 1) as u32;
        }
        self.table = t;
    }
}
