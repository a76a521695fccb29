//! The write-ahead log: every durable record a core hands the shell, in one
//! append-only file `wal.log` in the node's data dir.
//!
//! Record framing: `len: u32 LE | crc32(payload): u32 LE | payload` where
//! the payload is the record as JSON. [`Wal::append`] writes a whole batch
//! with one `write` and one `fdatasync` (group commit: the Ready contract
//! asks for records on disk before anything is sent, not one fsync per
//! record). [`Wal::rewrite`] replaces the log atomically: write
//! `wal.tmp`, fsync it, rename over `wal.log`, fsync the directory.
//!
//! Recovery ([`Wal::open`]) reads records back in order. A crash in the
//! middle of an append leaves a *torn tail*: a last record that is short or
//! whose checksum fails and that runs to the end of the file. Its batch was
//! never fsynced as a whole, so nobody heard of it: it is cut off and the
//! node starts. A bad checksum with complete records after it is a
//! *corrupt middle* (the disk lost acknowledged data): that is an error
//! naming the file and offset, and the node refuses to start.

use serde::{Serialize, de::DeserializeOwned};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub const WAL_FILE: &str = "wal.log";
const TMP_FILE: &str = "wal.tmp";
const HEADER: usize = 8;
/// A length above this is garbage, not a record (no record is 256 MiB).
const MAX_RECORD: u32 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: corrupt record at byte offset {offset} (record {index}): {why}; \
         complete records follow it, so this is lost data, not a torn write"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        index: usize,
        why: String,
    },
    #[error("{path}: record {index} at byte offset {offset} is not a valid record: {why}")]
    Decode {
        path: PathBuf,
        offset: u64,
        index: usize,
        why: String,
    },
    #[error("encoding a record: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found, for the node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub records: usize,
    /// Bytes of a torn last record that were cut off (0 when clean).
    pub torn_bytes: u64,
}

/// An open write-ahead log.
pub struct Wal {
    dir: PathBuf,
    file: File,
    /// Number of fsyncs so far (for tests of the Ready order and for logs).
    pub syncs: u64,
    pub bytes: u64,
}

impl Wal {
    /// Opens (creating) the log in `dir` and reads every record back.
    pub fn open<R: DeserializeOwned>(dir: &Path) -> Result<(Wal, Vec<R>, Recovered), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(WAL_FILE);
        // A leftover temp file is a rewrite that never got renamed: the old
        // log is still the truth.
        let _ = fs::remove_file(dir.join(TMP_FILE));
        let mut data = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut data).map_err(io_err(&path))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let (payloads, good) = decode(&path, &data)?;
        let mut records = Vec::with_capacity(payloads.len());
        for (index, (offset, p)) in payloads.into_iter().enumerate() {
            let r = serde_json::from_slice(p).map_err(|e| WalError::Decode {
                path: path.clone(),
                offset,
                index,
                why: e.to_string(),
            })?;
            records.push(r);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let torn = data.len() as u64 - good;
        if torn > 0 {
            file.set_len(good).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let recovered = Recovered {
            records: records.len(),
            torn_bytes: torn,
        };
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                syncs: 0,
                bytes: good,
            },
            records,
            recovered,
        ))
    }

    /// Reads the records of the log in `dir` without changing anything
    /// (a torn tail is skipped, not cut): for tools and tests that look at
    /// a live node's log.
    pub fn read<R: DeserializeOwned>(dir: &Path) -> Result<Vec<R>, WalError> {
        let path = dir.join(WAL_FILE);
        let data = fs::read(&path).map_err(io_err(&path))?;
        let (payloads, _) = decode(&path, &data)?;
        payloads
            .into_iter()
            .enumerate()
            .map(|(index, (offset, p))| {
                serde_json::from_slice(p).map_err(|e| WalError::Decode {
                    path: path.clone(),
                    offset,
                    index,
                    why: e.to_string(),
                })
            })
            .collect()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(WAL_FILE)
    }

    /// Appends a batch with one write and one fdatasync. Nothing to do for
    /// an empty batch.
    pub fn append<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        let buf = encode(records)?;
        let path = self.path();
        self.file.write_all(&buf).map_err(io_err(&path))?;
        self.file.sync_data().map_err(io_err(&path))?;
        self.syncs += 1;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Atomically replaces the whole log with `records` (compaction).
    pub fn rewrite<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        let tmp = self.dir.join(TMP_FILE);
        let path = self.path();
        let buf = encode(records)?;
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&buf).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.syncs += 1;
        self.bytes = buf.len() as u64;
        Ok(())
    }
}

fn encode<R: Serialize>(records: &[R]) -> Result<Vec<u8>, WalError> {
    let mut buf = Vec::new();
    for r in records {
        let p = serde_json::to_vec(r).map_err(|e| WalError::Encode(e.to_string()))?;
        buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32(&p).to_le_bytes());
        buf.extend_from_slice(&p);
    }
    Ok(buf)
}

/// Splits the file into payloads; returns them with their offsets and the
/// length of the good prefix (everything after it is a torn tail).
/// Record payloads with their byte offsets.
type Payloads<'a> = Vec<(u64, &'a [u8])>;

fn decode<'a>(path: &Path, data: &'a [u8]) -> Result<(Payloads<'a>, u64), WalError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        if data.len() - at < HEADER {
            break; // torn header
        }
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let crc = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        let end = at + HEADER + len as usize;
        if len > MAX_RECORD || end > data.len() {
            // Runs past the end of the file: a torn write. (A garbage length
            // in the middle of a log also lands here when it points past the
            // end; the checksum catches the rest.)
            break;
        }
        let payload = &data[at + HEADER..end];
        if crc32(payload) != crc {
            if end == data.len() {
                break; // the last record, torn inside its payload
            }
            return Err(WalError::Corrupt {
                path: path.to_path_buf(),
                offset: at as u64,
                index: out.len(),
                why: "checksum mismatch".into(),
            });
        }
        out.push((at as u64, payload));
        at = end;
    }
    Ok((out, at as u64))
}

/// CRC-32 (IEEE 802.3, the zlib one).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fl-wal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_append_rewrite_reopen() {
        let d = tmpdir("rt");
        let (mut w, r, rec) = Wal::open::<String>(&d).unwrap();
        assert!(r.is_empty());
        assert_eq!(rec.torn_bytes, 0);
        w.append(&["a".to_string(), "b".to_string()]).unwrap();
        w.append(&["c".to_string()]).unwrap();
        w.append::<String>(&[]).unwrap();
        assert_eq!(w.syncs, 2, "one fsync per non-empty batch");
        drop(w);
        let (mut w, r, _) = Wal::open::<String>(&d).unwrap();
        assert_eq!(r, ["a", "b", "c"]);
        w.rewrite(&["snap".to_string()]).unwrap();
        w.append(&["d".to_string()]).unwrap();
        drop(w);
        let (_, r, _) = Wal::open::<String>(&d).unwrap();
        assert_eq!(r, ["snap", "d"]);
        assert!(!d.join(TMP_FILE).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_the_log_goes_on() {
        let d = tmpdir("torn");
        let (mut w, _, _) = Wal::open::<u64>(&d).unwrap();
        w.append(&[1u64, 2, 3]).unwrap();
        let full = w.bytes;
        drop(w);
        let p = d.join(WAL_FILE);
        // Every cut inside the last record (header or payload) is torn.
        let last_len = encode(&[3u64]).unwrap().len() as u64;
        for cut in 1..last_len {
            let f = OpenOptions::new().write(true).open(&p).unwrap();
            f.set_len(full - cut).unwrap();
            drop(f);
            let (mut w, r, rec) = Wal::open::<u64>(&d).unwrap();
            assert_eq!(r, [1, 2], "cut {cut}");
            assert_eq!(rec.torn_bytes, last_len - cut);
            w.append(&[3u64]).unwrap();
            drop(w);
            let (_, r, _) = Wal::open::<u64>(&d).unwrap();
            assert_eq!(r, [1, 2, 3]);
        }
        // A flipped byte in the last record's payload: torn too.
        let mut bytes = fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x55;
        fs::write(&p, &bytes).unwrap();
        let (_, r, rec) = Wal::open::<u64>(&d).unwrap();
        assert_eq!(r, [1, 2]);
        assert!(rec.torn_bytes > 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_middle_is_a_clear_error() {
        let d = tmpdir("mid");
        let (mut w, _, _) = Wal::open::<u64>(&d).unwrap();
        w.append(&[10u64, 20, 30]).unwrap();
        drop(w);
        let p = d.join(WAL_FILE);
        let mut bytes = fs::read(&p).unwrap();
        let first = encode(&[10u64]).unwrap().len();
        bytes[first + HEADER] ^= 0x01; // payload of record 1
        fs::write(&p, &bytes).unwrap();
        let e = Wal::open::<u64>(&d)
            .err()
            .expect("corrupt middle must fail");
        let msg = e.to_string();
        assert!(msg.contains("wal.log"), "{msg}");
        assert!(msg.contains(&format!("offset {first}")), "{msg}");
        assert!(msg.contains("record 1"), "{msg}");
        // The file is left alone for a person to look at.
        assert_eq!(fs::read(&p).unwrap(), bytes);
        fs::remove_dir_all(&d).unwrap();
    }
}
