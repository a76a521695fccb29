//! A run directory as a zip archive: the "stored" method (no compression;
//! the PNGs are compressed already and histories are read once), written to
//! any `Write` — a socket needs no seeking, and the length is known before
//! the first byte ([`ZipPlan::len`]), so it can be a Content-Length.
//!
//! Format: PKWARE APPNOTE.TXT 6.3.x, sections 4.3.7 (local file header),
//! 4.3.12 (central directory header) and 4.3.16 (end of central directory).
//! No ZIP64: a file of 4 GiB or more, or more than 65 535 files, is refused.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One file of the archive.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    /// Where it is read from.
    pub source: PathBuf,
    /// Its name in the archive (`/`-separated).
    pub name: String,
    pub size: u32,
    /// MS-DOS (time, date), the only timestamp plain zip headers hold.
    pub dos_time: (u16, u16),
}

/// The files to write, found before writing so the length is known.
#[derive(Clone, Debug)]
pub struct ZipPlan {
    pub entries: Vec<ZipEntry>,
}

const LOCAL_HEADER: u64 = 30;
const CENTRAL_HEADER: u64 = 46;
const END_RECORD: u64 = 22;

fn too_big(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl ZipPlan {
    /// Every regular file under `dir` (symlinks and hidden temporaries are
    /// left out), named `<prefix>/<relative path>`, sorted by name.
    pub fn of_dir(dir: &Path, prefix: &str) -> io::Result<ZipPlan> {
        let mut entries = Vec::new();
        walk(dir, prefix, &mut entries)?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if entries.len() > usize::from(u16::MAX) {
            return Err(too_big(format!(
                "{}: {} files is more than a zip without ZIP64 holds",
                dir.display(),
                entries.len()
            )));
        }
        Ok(ZipPlan { entries })
    }

    /// The archive's exact length in bytes.
    pub fn len(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| LOCAL_HEADER + CENTRAL_HEADER + 2 * e.name.len() as u64 + u64::from(e.size))
            .sum::<u64>()
            + END_RECORD
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the archive. Each file is read twice (its CRC goes in the
    /// header before the data); a file whose size changed since the plan
    /// was made is an error, since the announced length would be wrong.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<u64> {
        let mut offset: u64 = 0;
        let mut central = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for e in &self.entries {
            let crc = {
                let mut f = File::open(&e.source)?;
                let mut c = Crc32::new();
                let mut n: u64 = 0;
                loop {
                    let k = f.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    c.update(&buf[..k]);
                    n += k as u64;
                }
                if n != u64::from(e.size) {
                    return Err(changed(&e.source));
                }
                c.finish()
            };
            let name = e.name.as_bytes();
            let mut h = Vec::with_capacity(30 + name.len());
            h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            common_fields(&mut h, e, crc);
            h.extend_from_slice(&0u16.to_le_bytes()); // extra field length
            h.extend_from_slice(name);
            out.write_all(&h)?;
            let mut f = File::open(&e.source)?.take(u64::from(e.size));
            let copied = io::copy(&mut f, out)?;
            if copied != u64::from(e.size) {
                return Err(changed(&e.source));
            }

            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: Unix, 2.0
            common_fields(&mut central, e, crc);
            central.extend_from_slice(&0u16.to_le_bytes()); // extra field length
            central.extend_from_slice(&0u16.to_le_bytes()); // comment length
            central.extend_from_slice(&0u16.to_le_bytes()); // disk number
            central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // rw-r--r--
            let off = u32::try_from(offset)
                .map_err(|_| too_big("the archive would pass 4 GiB (no ZIP64)".into()))?;
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name);
            offset += LOCAL_HEADER + name.len() as u64 + u64::from(e.size);
        }
        let cd_off = u32::try_from(offset)
            .map_err(|_| too_big("the archive would pass 4 GiB (no ZIP64)".into()))?;
        out.write_all(&central)?;
        let n = self.entries.len() as u16;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&[0, 0, 0, 0]); // this disk, disk with the directory
        end.extend_from_slice(&n.to_le_bytes());
        end.extend_from_slice(&n.to_le_bytes());
        end.extend_from_slice(&(central.len() as u32).to_le_bytes());
        end.extend_from_slice(&cd_off.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // comment length
        out.write_all(&end)?;
        Ok(offset + central.len() as u64 + END_RECORD)
    }
}

fn changed(p: &Path) -> io::Error {
    io::Error::other(format!("{} changed while it was being zipped", p.display()))
}

/// Version needed, flags, method, time, date, CRC, sizes, name length: the
/// fields local and central headers share, in that order.
fn common_fields(h: &mut Vec<u8>, e: &ZipEntry, crc: u32) {
    h.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
    h.extend_from_slice(&(1u16 << 11).to_le_bytes()); // flags: names are UTF-8
    h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    h.extend_from_slice(&e.dos_time.0.to_le_bytes());
    h.extend_from_slice(&e.dos_time.1.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&e.size.to_le_bytes()); // compressed size
    h.extend_from_slice(&e.size.to_le_bytes()); // uncompressed size
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<ZipEntry>) -> io::Result<()> {
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let ft = ent.file_type()?;
        let zname = format!("{prefix}/{name}");
        if ft.is_dir() {
            walk(&ent.path(), &zname, out)?;
        } else if ft.is_file() {
            let md = ent.metadata()?;
            let size = u32::try_from(md.len()).map_err(|_| {
                too_big(format!(
                    "{}: 4 GiB or more (no ZIP64)",
                    ent.path().display()
                ))
            })?;
            if zname.len() > usize::from(u16::MAX) {
                return Err(too_big(format!("{zname}: name too long")));
            }
            out.push(ZipEntry {
                source: ent.path(),
                name: zname,
                size,
                dos_time: dos_time(md.modified().unwrap_or(UNIX_EPOCH)),
            });
        }
    }
    Ok(())
}

/// MS-DOS time and date (UTC; 2-second resolution; clamped to 1980).
fn dos_time(t: SystemTime) -> (u16, u16) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .max(315_532_800); // 1980-01-01
    let (y, m, d) = crate::store::civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let time = (((sod / 3600) << 11) | (((sod / 60) % 60) << 5) | ((sod % 60) / 2)) as u16;
    let date = ((((y - 1980).clamp(0, 127) as u32) << 9) | (m << 5) | d) as u16;
    (time, date)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip uses.
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }
    pub fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        assert_eq!(Crc32::new().finish(), 0);
    }

    #[test]
    fn dos_times() {
        // 2026-11-26 00:50:11 UTC
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_654_211);
        let (time, date) = dos_time(t);
        assert_eq!((time >> 11, (time >> 5) & 63, (time & 31) * 2), (0, 50, 10));
        assert_eq!(
            (1980 + (date >> 9), (date >> 5) & 15, date & 31),
            (2026, 11, 26)
        );
    }

    /// Reads the archive back by its central directory (as unzip does) and
    /// checks every entry's bytes and CRC.
    #[test]
    fn a_directory_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        std::fs::create_dir_all(run.join("nodes/n1")).unwrap();
        std::fs::write(run.join("report.html"), "<html>ok</html>").unwrap();
        std::fs::write(run.join("nodes/n1/etcd.log"), vec![b'x'; 200_000]).unwrap();
        std::fs::write(run.join("empty.txt"), "").unwrap();
        std::fs::write(run.join(".results.json.tmp1"), "skipped").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", run.join("link")).unwrap();
        let plan = ZipPlan::of_dir(&run, "etcd-register/20261126T005011.123Z").unwrap();
        let names: Vec<&str> = plan.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "etcd-register/20261126T005011.123Z/empty.txt",
                "etcd-register/20261126T005011.123Z/nodes/n1/etcd.log",
                "etcd-register/20261126T005011.123Z/report.html",
            ]
        );
        let mut out = Vec::new();
        let n = plan.write_to(&mut out).unwrap();
        assert_eq!(n as usize, out.len());
        assert_eq!(plan.len() as usize, out.len());

        let u16_at = |i: usize| u16::from_le_bytes([out[i], out[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(out[i..i + 4].try_into().unwrap());
        let end = out.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        assert_eq!(u16_at(end + 10), 3);
        let mut cd = u32_at(end + 16) as usize;
        for e in &plan.entries {
            assert_eq!(u32_at(cd), 0x0201_4b50);
            let crc = u32_at(cd + 16);
            let size = u32_at(cd + 20) as usize;
            let nlen = u16_at(cd + 28) as usize;
            let local = u32_at(cd + 42) as usize;
            assert_eq!(&out[cd + 46..cd + 46 + nlen], e.name.as_bytes());
            assert_eq!(u32_at(local), 0x0403_4b50);
            let data_at = local + 30 + u16_at(local + 26) as usize;
            let data = &out[data_at..data_at + size];
            assert_eq!(data, std::fs::read(&e.source).unwrap());
            let mut c = Crc32::new();
            c.update(data);
            assert_eq!(c.finish(), crc);
            cd += 46 + nlen;
        }
        // And the system's unzip agrees, when there is one.
        let z = d.path().join("run.zip");
        std::fs::write(&z, &out).unwrap();
        if let Ok(o) = std::process::Command::new("unzip")
            .arg("-t")
            .arg(&z)
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        }
    }

    #[test]
    fn a_file_that_grows_while_zipping_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("h.jsonl"), "a").unwrap();
        let plan = ZipPlan::of_dir(d.path(), "r").unwrap();
        std::fs::write(d.path().join("h.jsonl"), "ab").unwrap();
        assert!(plan.write_to(&mut Vec::new()).is_err());
    }
}
