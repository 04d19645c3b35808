//! What a checkpoint's header can make the reader spend: the header is read and checked first, tensors are read
//! only when asked for (a chunk at a time), a header lists at most 65,536 tensors, and messages about a file's
//! names stay one short line. Memory is measured with a byte-counting allocator (this file's own process), so
//! the figures do not depend on the machine.

use loopgrad_autograd::ParamStore;
use loopgrad_nn::checkpoint::{load_weights, CheckpointReader, LoadOptions, Policy};
use loopgrad_tensor::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live bytes and their peak since the last [`reset_peak`].
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System` unchanged; the counters do not affect the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The peak of live bytes above the current level while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loopgrad-nn-bounds-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// The 8-byte length and a header padded as safetensors pads it.
fn header_bytes(header: &str) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    [&(h.len() as u64).to_le_bytes()[..], &h].concat()
}

/// One test, so that no other test of this process allocates while a peak is measured.
#[test]
fn headers_cannot_make_the_reader_spend_what_they_claim() {
    let d = scratch_dir("all");
    let mut store = ParamStore::<f32>::new();
    store.add("inner.lm_head.weight", Tensor::zeros([6, 4]));

    // A sparse 3 GB file with a tiny header. Was: read whole (2.9 GB, 10 s) before saying the weight is missing.
    let sparse = d.join("sparse.safetensors");
    let gb3: u64 = 3 << 30;
    let header =
        header_bytes(&format!(r#"{{"junk":{{"dtype":"F32","shape":[{}],"data_offsets":[0,{gb3}]}}}}"#, gb3 / 4));
    fs::write(&sparse, &header).unwrap();
    fs::File::options().write(true).open(&sparse).unwrap().set_len(header.len() as u64 + gb3).unwrap();
    let lenient = LoadOptions { unexpected: Policy::Ignore, ..Default::default() };
    let t0 = Instant::now();
    let (result, peak) = peak_during(|| load_weights(&sparse, &mut store, lenient));
    let seconds = t0.elapsed().as_secs_f64();
    let msg = result.unwrap_err().to_string();
    assert!(msg.ends_with("tensor `inner.lm_head.weight` is missing"), "{msg}");
    assert!(peak < 1 << 20, "the 3 GB file cost {peak} bytes of memory");
    assert!(seconds < 2.0, "the 3 GB file took {seconds:.1} s");
    fs::remove_file(&sparse).unwrap();

    // 70,000 empty tensors. Was: 1.7 M of them took 2.4 GB and printed a 12 MB "ignored tensors" line.
    let many = d.join("many.safetensors");
    let entries: Vec<String> =
        (0..70_000).map(|i| format!(r#""t{i:06}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#)).collect();
    fs::write(&many, header_bytes(&format!("{{{}}}", entries.join(",")))).unwrap();
    let msg = CheckpointReader::open(&many).err().expect("refused").to_string();
    assert!(msg.ends_with("the header lists more than 65536 tensors"), "{msg}");

    // Unexpected tensors with a megabyte-long name: one short line, the count and a few names.
    let long = format!("a{}", "x".repeat(1 << 20));
    let mut entries: Vec<String> =
        (0..1000).map(|i| format!(r#""t{i:04}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#)).collect();
    entries.push(format!(r#""{long}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#));
    entries.push(r#""inner.lm_head.weight":{"dtype":"F32","shape":[6,4],"data_offsets":[0,96]}"#.into());
    let extra = d.join("extra.safetensors");
    fs::write(&extra, [header_bytes(&format!("{{{}}}", entries.join(","))), vec![0; 96]].concat()).unwrap();
    let msg = load_weights(&extra, &mut store, LoadOptions::default()).unwrap_err().to_string();
    assert!(msg.len() < 600 && !msg.contains('\n'), "{} bytes: {}", msg.len(), &msg[..msg.len().min(600)]);
    assert!(msg.contains("1001 unexpected tensor(s): `axxxx") && msg.contains("and 996 more"), "{msg}");
    let report = load_weights(&extra, &mut store, lenient).unwrap();
    let line = loopgrad_nn::checkpoint::summarize_names(&report.unexpected);
    assert!(line.len() < 400 && line.ends_with("and 996 more"), "{line}");

    // Not a regular file: refused before it is opened (opening a FIFO would block).
    let msg = CheckpointReader::open(&d).err().expect("refused").to_string();
    assert!(msg.ends_with("it is not a regular file (a directory, FIFO or device)"), "{msg}");
    fs::remove_dir_all(&d).unwrap();
}
