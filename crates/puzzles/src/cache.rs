//! A compact on-disk cache of built [`ExampleSet`]s, so that a big augmented set is built once.
//!
//! A cache file is keyed by a string describing everything the set was built from (task, generation parameters,
//! seed, source files); the file name is a hash of that key and the key itself is stored and compared on load, so
//! a stale or colliding file is never served. Layout (little-endian):
//!
//! ```text
//! magic "LGPZSET\0" | format version u32 | key: len u32 + UTF-8
//! seq_len u32 | vocab_size u32 | examples u64 | puzzles u64 | groups u64 | identifiers u64
//! inputs [examples * seq_len] u8 | labels [examples * seq_len] u8
//! puzzle_starts [(puzzles + 1)] u32 | puzzle_identifiers [puzzles] u32 | group_starts [(groups + 1)] u32
//! identifier names: (len u32 + UTF-8) each
//! checksum u64 over every byte before it
//! ```
//!
//! The reader treats the file as untrusted: truncation, a wrong checksum, an unknown version or inconsistent indices
//! are errors naming the file; [`load_or_build`] then rebuilds and overwrites it. Writes go to a temporary file and
//! are renamed into place.

use crate::error::{DataError, Location};
use crate::example_set::ExampleSet;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LGPZSET\0";
/// Bump when the layout or the meaning of any field changes.
pub const FORMAT_VERSION: u32 = 1;

/// A 64-bit checksum over 8-byte words (xor-multiply-rotate, the last partial word zero-padded): fast enough to
/// verify gigabyte sets at load, and any flipped bit changes it.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(0x0000_0100_0000_01B3);
    h ^ (h >> 32)
}

/// The file a set with this key is cached in, inside `dir`.
pub fn cache_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{:016x}.lgpz", checksum(key.as_bytes())))
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).expect("cache field fits in u32").to_le_bytes());
}

/// Serialise `set` under `key`.
pub fn encode(key: &str, set: &ExampleSet) -> Vec<u8> {
    let (seq_len, vocab, inputs, labels) = (set.seq_len, set.vocab_size, &set.inputs, &set.labels);
    let (puzzle_starts, puzzle_ids, group_starts, names) =
        (&set.puzzle_starts, &set.puzzle_identifiers, &set.group_starts, &set.identifier_names);
    let mut out = Vec::with_capacity(64 + key.len() + 2 * inputs.len() + 4 * (puzzle_starts.len() * 2));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    put_u32(&mut out, key.len());
    out.extend_from_slice(key.as_bytes());
    put_u32(&mut out, seq_len);
    put_u32(&mut out, vocab);
    for n in [set.len(), set.num_puzzles(), set.num_groups(), names.len()] {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    out.extend_from_slice(inputs);
    out.extend_from_slice(labels);
    for v in puzzle_starts.iter().chain(puzzle_ids).chain(group_starts) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for name in names {
        put_u32(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("file is truncated")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64_len(&mut self) -> Result<usize, String> {
        let v = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
        usize::try_from(v).ok().filter(|&v| v <= self.bytes.len()).ok_or_else(|| "a count exceeds the file size".into())
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        let raw = self.take(n.checked_mul(4).ok_or("count overflow")?)?;
        Ok(raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect())
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }
}

/// Deserialise, checking magic, version, checksum, key and every index. Errors are plain messages.
pub fn decode(bytes: &[u8], expected_key: Option<&str>) -> Result<ExampleSet, String> {
    if bytes.len() < MAGIC.len() + 12 || &bytes[..8] != MAGIC {
        return Err("not a loopgrad example-set cache file".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        return Err("checksum mismatch (file corrupt or truncated)".into());
    }
    let mut r = Reader { bytes: body, at: 8 };
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(format!("format version {version}, this build reads {FORMAT_VERSION}"));
    }
    let key = r.string()?;
    if let Some(expected) = expected_key {
        if key != expected {
            return Err(format!("built for key `{key}`, wanted `{expected}`"));
        }
    }
    let seq_len = r.u32()? as usize;
    let vocab_size = r.u32()? as usize;
    let (n, puzzles, groups, ids) = (r.u64_len()?, r.u64_len()?, r.u64_len()?, r.u64_len()?);
    let tokens = n.checked_mul(seq_len).ok_or("size overflow")?;
    let inputs = r.take(tokens)?.to_vec();
    let labels = r.take(tokens)?.to_vec();
    let puzzle_starts = r.u32s(puzzles + 1)?;
    let puzzle_identifiers = r.u32s(puzzles)?;
    let group_starts = r.u32s(groups + 1)?;
    let identifier_names = (0..ids).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
    if r.at != body.len() {
        return Err("trailing bytes after the data".into());
    }
    ExampleSet {
        seq_len,
        vocab_size,
        inputs,
        labels,
        puzzle_starts,
        puzzle_identifiers,
        group_starts,
        example_puzzle: Vec::new(), // derived by checked()
        identifier_names,
    }
    .checked()
}

/// Write `set` to `path` under `key` (atomically).
pub fn save(path: &Path, key: &str, set: &ExampleSet) -> Result<(), DataError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::file(dir, format!("cannot create directory: {e}")))?;
    }
    loopgrad_tensor::atomic_file::write_atomically(path, &encode(key, set))
        .map_err(|e| DataError::file(path, format!("cannot write: {e}")))
}

/// Read the set cached at `path`, which must have been built for `key`.
pub fn load(path: &Path, key: &str) -> Result<ExampleSet, DataError> {
    let bytes = crate::error::read_file(path)?;
    decode(&bytes, Some(key)).map_err(|m| DataError::new(path.display().to_string(), Location::File, m))
}

/// The set for `key` from the cache in `dir`, building (and caching) it when absent or unusable.
pub fn load_or_build(
    dir: &Path,
    key: &str,
    build: impl FnOnce() -> Result<ExampleSet, DataError>,
) -> Result<ExampleSet, DataError> {
    let path = cache_path(dir, key);
    if path.exists() {
        if let Ok(set) = load(&path, key) {
            return Ok(set);
        }
    }
    let set = build()?;
    save(&path, key, &set)?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_set::{ExampleSetBuilder, Identifiers};

    fn set() -> ExampleSet {
        let mut ids = Identifiers::new();
        let mut b = ExampleSetBuilder::new(3, 12);
        for g in 0..4u8 {
            b.begin_group();
            for v in 0..3u8 {
                b.begin_puzzle(ids.intern(&format!("p{g}|||t{v}")));
                for e in 0..=v {
                    b.push_example(&[g, v, e], &[e, 11, 0]);
                }
            }
        }
        b.finish(&ids)
    }

    #[test]
    fn encode_decode_roundtrip_and_key_check() {
        let s = set();
        let bytes = encode("k1", &s);
        assert_eq!(decode(&bytes, Some("k1")).unwrap(), s);
        assert!(decode(&bytes, Some("k2")).unwrap_err().contains("wanted `k2`"));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let bytes = encode("k", &set());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], Some("k")).is_err(), "truncated at {cut}");
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(&b, Some("k")).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn load_or_build_builds_once() {
        let dir = std::env::temp_dir().join(format!("lgpz-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut builds = 0;
        let a = load_or_build(&dir, "key", || {
            builds += 1;
            Ok(set())
        })
        .unwrap();
        let b = load_or_build(&dir, "key", || {
            builds += 1;
            Ok(set())
        })
        .unwrap();
        assert_eq!((a == b, builds), (true, 1));
        // A corrupt file is rebuilt, not served.
        std::fs::write(cache_path(&dir, "key"), b"garbage").unwrap();
        let c = load_or_build(&dir, "key", || Ok(set())).unwrap();
        assert_eq!(c, a);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
