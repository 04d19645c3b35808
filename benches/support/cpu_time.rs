//! Thread CPU time, as a clock for the single-threaded measurements of the tensor benches: on a shared machine
//! it leaves out the time the thread spent descheduled, which wall time cannot. Linux only (elsewhere it falls
//! back to wall time). Multi-threaded measurements must use wall time: this clock sees one thread.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;
use std::time::{Duration, Instant};

/// The two criterions of every loopgrad bench: one for single-threaded runs in thread CPU time, one for
/// two-threaded runs in wall time, each with 10 samples and the given warm-up and measurement times (short: the
/// benches are many). Also starts loopgrad's team for two threads (each group then picks its split count with
/// `set_threads`) and flushes denormals on the calling thread (the team follows it), as `loopgrad train` does.
pub fn criterions(warm_up: Duration, measurement: Duration) -> (Criterion<ThreadCpuTime>, Criterion<WallTime>) {
    loopgrad_tensor::set_threads(2);
    loopgrad_tensor::flush_denormals();
    fn config<M: Measurement>(c: Criterion<M>, warm_up: Duration, measurement: Duration) -> Criterion<M> {
        c.sample_size(10).warm_up_time(warm_up).measurement_time(measurement).configure_from_args()
    }
    let cpu = config(Criterion::default().with_measurement(ThreadCpuTime), warm_up, measurement);
    let wall = config(Criterion::default(), warm_up, measurement);
    (cpu, wall)
}

/// Seconds of CPU time the calling thread has used.
pub fn thread_cpu_seconds() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec (two i64 on 64-bit Linux) into `ts`.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.sec as f64 + ts.nsec as f64 * 1e-9;
        }
    }
    wall_seconds()
}

/// Seconds since the first call.
pub fn wall_seconds() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// A criterion measurement in thread CPU time (formatted like wall time).
pub struct ThreadCpuTime;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = f64;
    type Value = Duration;

    fn start(&self) -> f64 {
        thread_cpu_seconds()
    }
    fn end(&self, start: f64) -> Duration {
        Duration::from_secs_f64((thread_cpu_seconds() - start).max(0.0))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}
