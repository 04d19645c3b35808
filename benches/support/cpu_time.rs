//! Thread CPU time, as a clock for the single-threaded measurements of the tensor benches: on a shared machine
//! it leaves out the time the thread spent descheduled, which wall time cannot. Linux only (elsewhere it falls
//! back to wall time). Multi-threaded measurements must use wall time: this clock sees one thread.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::time::{Duration, Instant};

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
