//! The packing buffers of loopgrad's own f32 kernels (`avx512`, `avx2`): one A~ and one B~ buffer per thread,
//! grown to the largest block a product packs and never shrunk, so that a training step in steady state allocates
//! nothing. A CPU runs one of the two kernels, so they share the buffers; each sizes them in its `prepare_thread`,
//! which the team's workers call as they start (which thread runs which block of a split GEMM depends on
//! scheduling, and a worker whose first block came late in a run would otherwise allocate then).

use std::cell::RefCell;

/// A 64-byte aligned line of packed data, so that a kernel's loads of B~ (one zmm, or two ymm) never split a
/// cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Line(pub(super) [f32; 16]);

/// This thread's A~ and B~.
pub(super) struct Packs {
    pub(super) a: Vec<Line>,
    pub(super) b: Vec<Line>,
}

thread_local! {
    pub(super) static PACKS: RefCell<Packs> = const { RefCell::new(Packs { a: Vec::new(), b: Vec::new() }) };
}

/// A buffer of at least `floats` f32, grown (never shrunk) as needed.
pub(super) fn reserve(buf: &mut Vec<Line>, floats: usize) -> *mut f32 {
    let lines = floats.div_ceil(16);
    if buf.len() < lines {
        buf.resize(lines, Line([0.0; 16]));
    }
    buf.as_mut_ptr() as *mut f32
}
