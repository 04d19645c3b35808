//! A steady-state TRM supervision step makes no heap allocation: T-1 no-grad recursions, one recorded
//! recursion, head and loss, backward, taking the carry out, reset. Every tensor comes from the thread's pool
//! and every tape vector keeps its capacity, so once the first steps have warmed them up nothing reaches the
//! allocator.
//!
//! GEMMs included on a CPU with AVX-512 (loopgrad's own f32 GEMM keeps its packing buffers per thread). Elsewhere
//! one exception is outside loopgrad: `matrixmultiply` allocates its packing buffer on entry to every GEMM call
//! and frees it on return (an aligned allocation, 32 bytes or more, never held across calls). The counting
//! allocator below tells those apart by alignment, counts them separately, and the test reports them and
//! checks that each was freed within the step (and that there are none with AVX-512). Everything else must be
//! exactly zero.
//!
//! This file is its own test binary with a single test, and counts per thread, so nothing else runs into the
//! counters.

mod common;

use common::*;
use loopgrad_autograd::{run_recursions, GradWindow, Tape};
use loopgrad_tensor::{pool, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Alignment from which an allocation is counted as a GEMM packing buffer (matrixmultiply asks for 32 or 64;
/// `Vec<f32>`, `Vec<f64>` and every other allocation on this path ask for 16 or less).
const PACKING_ALIGN: usize = 32;

#[derive(Clone, Copy, Default, Debug)]
struct Counts {
    ordinary: u64,
    packing: u64,
    packing_freed: u64,
}

thread_local! {
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { ordinary: 0, packing: 0, packing_freed: 0 }) };
}

fn bump(f: impl FnOnce(&mut Counts)) {
    let _ = COUNTS.try_with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

fn count_alloc(layout: Layout) {
    bump(|c| if layout.align() >= PACKING_ALIGN { c.packing += 1 } else { c.ordinary += 1 });
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; the counters are thread-local `Cell`s with
// const initialisers, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc(layout);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() >= PACKING_ALIGN {
            bump(|c| c.packing_freed += 1);
        }
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn counts() -> Counts {
    COUNTS.with(|c| c.get())
}

#[test]
fn a_steady_state_supervision_step_allocates_nothing() {
    let dims = SMALL;
    let mut model = Model::<f32>::trm(dims, Variant::Attention, 2, 21);
    let (ids, y0, z0) = model.inputs(22);
    let mut proj = Tensor::<f32>::zeros([dims.batch, dims.seq, dims.vocab]);
    proj.data_mut().iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 * 0.37).sin());
    let mut tape = Tape::new(std::mem::take(&mut model.params));
    let (mut y, mut z) = (y0, z0);
    let mut per_step = Vec::with_capacity(8);
    for step in 0..8 {
        let before = (counts(), pool::stats::<f32>().misses);
        tape.params.zero_grad();
        let x = embed(&mut tape, &model, &ids, None);
        let rope = rope_consts(&mut tape, dims, Variant::Attention);
        let rec = TrmRecursion { net: &model.net, n: 2, x, rope };
        let mut state = [tape.constant(y), tape.constant(z)];
        let run = run_recursions(&mut tape, &rec, &mut state, 3, GradWindow::LastRecursion);
        let logits = head(&mut tape, &model, state[0]);
        let p = tape.constant(proj.clone());
        let weighted = tape.mul(logits, p);
        let loss = tape.sum(weighted);
        tape.backward(loss);
        run.finish_backward(&mut tape, &rec);
        (y, z) = (tape.take(state[0]), tape.take(state[1]));
        tape.reset();
        let (after, misses) = (counts(), pool::stats::<f32>().misses);
        per_step.push((
            step,
            after.ordinary - before.0.ordinary,
            after.packing - before.0.packing,
            after.packing_freed - before.0.packing_freed,
            misses - before.1,
        ));
    }
    println!("(step, heap allocations, GEMM packing allocations, of which freed, pool misses): {per_step:?}");
    for &(step, ordinary, packing, freed, misses) in &per_step[3..] {
        assert_eq!(ordinary, 0, "step {step} made {ordinary} heap allocations: {per_step:?}");
        assert_eq!(misses, 0, "step {step} missed the pool {misses} times");
        assert_eq!(packing, freed, "step {step}: a GEMM packing buffer outlived its call");
        if let Some(kernel) = loopgrad_tensor::own_f32_kernel() {
            assert_eq!(packing, 0, "step {step}: loopgrad's GEMM ({kernel}) allocated a packing buffer");
        }
    }
    assert!(y.all_finite() && z.all_finite());
}
