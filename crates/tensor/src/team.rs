//! loopgrad's worker threads: a fork-join team whose idle workers spin for a while before they sleep.
//!
//! A TRM step is thousands of short parallel kernels with serial work between them (the tape, small ops), so a
//! worker is idle for microseconds at a time, thousands of times a step. rayon's workers sleep after 32 rounds of
//! `yield_now` without work (a constant it does not expose), and waking one is a futex call plus the scheduler's
//! latency, often longer than the kernel it was woken for: each of the two pool threads was off the CPU for 9-12%
//! of a main-job step. A rayon built with a longer spin made that step 2-9% shorter and a paper-size TRM-MLP step
//! 2-5% shorter (`docs/benchmarks.md`, "Threads: a team that spins"). The team below spins for [`SPIN`] after
//! each job, which is what OpenMP runtimes (and so PyTorch) do by default, then parks. Spinning pays only while
//! every thread has a core: when another busy program shares one, the team runs its jobs on their callers alone
//! for a while ([`BACK_OFF`]), as rayon's sleeping workers in effect did.
//!
//! One job runs at a time. [`run`] publishes `parts` indices; the caller and the workers claim them one by one
//! from a shared counter and the caller returns once every part has finished, so a part may borrow the caller's
//! stack. A call made while the team is busy (from inside a part, or from another thread at the same moment)
//! runs its parts on its own thread, in order: the parts are the same either way, so results never depend on
//! which thread ran what, or whether the team was free.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker (or a caller waiting for the last part) spins before it sleeps (or yields). Long
/// enough to bridge the serial stretches of a training step, short enough that a finished run gives the CPU
/// back at once.
const SPIN: Duration = Duration::from_millis(1);
/// How long the team runs every job on its caller alone once one of its threads has waited for a core longer than
/// it ran (another busy program shares its core). Splitting a kernel in two then makes the caller wait, at every
/// one of a step's thousands of joins, for a worker queued behind that program: with one CPU-bound process beside
/// it, the main job's step took 225-231 ms on two threads without this, against 148-161 ms on one thread, and
/// 172-177 ms with it (`docs/benchmarks.md`, "Threads on a shared machine"). After this long the team tries its
/// workers again.
const BACK_OFF: Duration = Duration::from_millis(50);
/// How often a thread of the team asks the OS how long it has waited for a core.
const PREEMPTION_CHECK: Duration = Duration::from_millis(20);
/// Bits of the claim word: job number (24) | parts (20) | next part (20).
const PART_BITS: u32 = 20;
const PART_MASK: u64 = (1 << PART_BITS) - 1;
/// The most parts one [`run`] shares out; a job with more runs them all on the calling thread.
pub(crate) const MAX_PARTS: usize = PART_MASK as usize;

/// What the workers see of the current job. Written by the caller while it holds `busy` and before it publishes
/// the job's claim word; read by a worker only after it has claimed one of the job's parts, which the caller then
/// waits for, so the closure it points to is alive for as long as anyone reads it.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    /// The caller's denormal mode, which every part runs in (so bits do not depend on the thread).
    flush: bool,
}

struct Team {
    /// `job << 40 | parts << 20 | next`: one word, so that claiming a part and learning whose it is are one
    /// atomic step.
    claim: AtomicU64,
    /// Parts of the current job that have finished, on any thread.
    done: AtomicUsize,
    job: UnsafeCell<Job>,
    /// The first panic of the current job's parts, re-raised on the caller's thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    busy: AtomicBool,
    /// How many workers (the first ones) take part in the current job: after `set_threads(8)` then
    /// `set_threads(2)`, one of the seven keeps to itself, parked.
    wanted: AtomicUsize,
    /// Workers parked (or about to park); the caller unparks the wanted ones when it publishes a job.
    sleepers: AtomicUsize,
    /// Worker i's handle at index i.
    workers: Mutex<Vec<Thread>>,
    /// Workers that have finished starting up.
    started: AtomicUsize,
    /// Set when the OS refused a thread: the team then keeps the workers it has instead of asking again.
    spawn_failed: AtomicBool,
    /// Until when (nanoseconds after [`EPOCH`]) jobs run on their caller alone: see [`BACK_OFF`].
    serial_until: AtomicU64,
    /// Whether the team backs off at all (tests of the workers turn it off: a loaded machine would make them wait
    /// for parts that run on the caller).
    backs_off: bool,
}

// SAFETY: `job` is written only by the thread holding `busy`, and read by workers only while that thread waits
// for the part they claimed (the protocol above); everything else is atomic or behind a mutex. The closure it
// points to is `Sync`.
unsafe impl Sync for Team {}

/// The closure of the team's job before its first one.
fn nothing(_: usize) {}

/// The team every parallel kernel uses.
static TEAM: Team = Team::new();

/// Makes sure the team has at least `n` workers, started (or as many as the OS gave it).
pub(crate) fn ensure_workers(n: usize) {
    TEAM.ensure_workers(n)
}

/// Runs `f(0)`, ..., `f(parts - 1)`, on the calling thread and up to `workers` of the team's workers, and returns
/// when all have finished. A part that panics has its panic re-raised here, after the other parts have
/// finished.
pub(crate) fn run(parts: usize, workers: usize, f: &(dyn Fn(usize) + Sync)) {
    TEAM.run(parts, workers, f)
}

impl Team {
    const fn new() -> Self {
        Team {
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            job: UnsafeCell::new(Job { f: &nothing, flush: false }),
            panic: Mutex::new(None),
            busy: AtomicBool::new(false),
            wanted: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            spawn_failed: AtomicBool::new(false),
            serial_until: AtomicU64::new(0),
            backs_off: true,
        }
    }

    /// Makes sure the team has at least `n` workers (threads besides the callers), and that they have started:
    /// a thread allocates while it starts, and a steady training loop must not see that. If the OS refuses a
    /// thread, the team says so once and goes on with the workers it has (parts are claimed, not assigned, so
    /// any number of workers, none included, runs every part).
    fn ensure_workers(&'static self, n: usize) {
        if self.started.load(Acquire) >= n || self.spawn_failed.load(Relaxed) {
            return;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        while workers.len() < n {
            let index = workers.len();
            match thread::Builder::new().name(format!("loopgrad-{}", index + 1)).spawn(move || self.work(index)) {
                Ok(handle) => workers.push(handle.thread().clone()),
                Err(e) => {
                    eprintln!("loopgrad: could not start worker thread {} ({e}); going on with {index}", index + 1);
                    self.spawn_failed.store(true, Relaxed);
                    break;
                }
            }
        }
        let target = workers.len();
        drop(workers);
        while self.started.load(Acquire) < target {
            thread::yield_now();
        }
    }

    /// [`run`] on this team, with (up to) `workers` of its workers.
    fn run(&'static self, parts: usize, workers: usize, f: &(dyn Fn(usize) + Sync)) {
        if parts <= 1 || workers == 0 || parts > MAX_PARTS {
            (0..parts).for_each(f);
            return;
        }
        self.ensure_workers(workers);
        let now = nanos_since_epoch();
        if self.backs_off {
            self.note_preemption(now);
        }
        if now < self.serial_until.load(Relaxed) || self.busy.swap(true, Acquire) {
            (0..parts).for_each(f);
            return;
        }
        let wanted = workers.min(self.started.load(Acquire));
        {
            // From the publication on, workers may run parts that borrow this frame, so nothing may unwind out
            // of it before they are done (every call below catches or cannot panic; this makes sure).
            let _guard = AbortOnUnwind;
            // SAFETY: only the lifetime is erased. Every part that dereferences it has finished before this
            // block ends, and nothing unwinds out of the block (the guard), so `f` outlives every use.
            let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
            // SAFETY: we hold `busy`, and no worker reads `job` between jobs (see `Job`).
            unsafe { *self.job.get() = Job { f, flush: crate::parallel::denormals_flushed() } };
            self.done.store(0, Relaxed);
            self.wanted.store(wanted, Relaxed);
            let job = ((self.claim.load(Relaxed) >> (2 * PART_BITS)) + 1) & ((1 << 24) - 1);
            self.claim.store(job << (2 * PART_BITS) | (parts as u64) << PART_BITS, SeqCst);
            if self.sleepers.load(SeqCst) > 0 {
                for w in self.workers.lock().unwrap_or_else(|e| e.into_inner()).iter().take(wanted) {
                    w.unpark();
                }
            }
            self.claim_parts(job);
            let mut spin = Spin::new();
            while self.done.load(Acquire) < parts {
                if spin.wait() {
                    thread::yield_now();
                }
            }
        }
        let panic = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.busy.store(false, Release);
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }

    /// Claims and runs parts of job `job` until none is left (or another job has replaced it).
    fn claim_parts(&self, job: u64) {
        let mut claim = self.claim.load(Acquire);
        loop {
            let (parts, next) = ((claim >> PART_BITS) & PART_MASK, claim & PART_MASK);
            if claim >> (2 * PART_BITS) != job || next >= parts {
                return;
            }
            if let Err(now) = self.claim.compare_exchange_weak(claim, claim + 1, AcqRel, Acquire) {
                claim = now;
                continue;
            }
            // SAFETY: part `next` of this job is ours and unfinished, so its caller is waiting and `job` is its.
            let Job { f, flush } = unsafe { &*self.job.get() };
            if crate::parallel::denormals_flushed() != *flush {
                crate::parallel::set_denormal_flush(*flush);
            }
            // SAFETY: as above, the closure is alive until this part is counted done.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| unsafe { (**f)(next as usize) })) {
                let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                match *first {
                    None => *first = Some(payload),
                    // Dropping a payload runs its code, which may panic again: the first one is enough.
                    Some(_) => std::mem::forget(payload),
                }
            }
            self.done.fetch_add(1, Release);
            claim = self.claim.load(Acquire);
        }
    }

    /// Worker `index`: waits for a job it has not seen, helps with it if it is among the job's wanted workers,
    /// and so on for the life of the process. A worker that was not wanted parks at once instead of spinning.
    fn work(&self, index: usize) {
        // Nothing here may unwind: parts' panics are caught, and a worker that died would leave a part unfinished.
        let _guard = AbortOnUnwind;
        let mut seen = self.claim.load(Acquire) >> (2 * PART_BITS);
        crate::gemm::prepare_thread();
        self.started.fetch_add(1, Release);
        let mut wanted = true;
        loop {
            let mut spin = Spin::new();
            while self.claim.load(Acquire) >> (2 * PART_BITS) == seen {
                if !wanted || spin.wait() {
                    // Registered before the last look, so a caller publishing after that look sees us and unparks.
                    self.sleepers.fetch_add(1, SeqCst);
                    while self.claim.load(SeqCst) >> (2 * PART_BITS) == seen {
                        thread::park();
                    }
                    self.sleepers.fetch_sub(1, SeqCst);
                }
            }
            seen = self.claim.load(Acquire) >> (2 * PART_BITS);
            wanted = index < self.wanted.load(Relaxed);
            if wanted {
                self.claim_parts(seen);
                if self.backs_off {
                    self.note_preemption(nanos_since_epoch());
                }
            }
        }
    }
}

/// When a thread last looked at its [`CoreTime`] (0: never; `u64::MAX`: never again), and what it was then.
type LastLook = Cell<(u64, CoreTime)>;

impl Team {
    /// Starts a [`BACK_OFF`] period if, since it last looked, the calling thread waited for a core longer than it
    /// ran, and for over a quarter of the time; it looks at most every [`PREEMPTION_CHECK`]. A busy program of the
    /// same priority on its core makes the wait about half (the scheduler alternates them), where a worker
    /// finishes its half of a job when the caller could have done the whole; background work at a lower priority
    /// leaves it a few percent, and the quarter keeps a thread that mostly slept from backing off over one late
    /// wake-up. `now` is [`nanos_since_epoch`].
    fn note_preemption(&self, now: u64) {
        thread_local! {
            static LAST_LOOK: LastLook = const { Cell::new((0, CoreTime { ran: 0, waited: 0 })) };
        }
        LAST_LOOK.with(|last| self.look(last, now, core_time));
    }

    /// [`Team::note_preemption`] with this thread's record and clock reader given.
    fn look(&self, last: &LastLook, now: u64, read: impl FnOnce() -> Option<CoreTime>) {
        let (then, before) = last.get();
        if now < then.saturating_add(PREEMPTION_CHECK.as_nanos() as u64) {
            return;
        }
        let Some(time) = read() else {
            last.set((u64::MAX, before)); // The OS does not say: never look again.
            return;
        };
        let waited = time.waited.saturating_sub(before.waited);
        let ran = time.ran.saturating_sub(before.ran);
        if then != 0 && waited > ran && waited > (now - then) / 4 {
            self.serial_until.fetch_max(now + BACK_OFF.as_nanos() as u64, Relaxed);
        }
        last.set((now, time));
    }
}

/// The instant the team's clock readings count from.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since [`EPOCH`], from 1 on (0 means "never" to [`Team::note_preemption`]).
fn nanos_since_epoch() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// A thread's nanoseconds on a core, and ready to run but waiting for one.
#[derive(Clone, Copy)]
struct CoreTime {
    ran: u64,
    waited: u64,
}

/// The calling thread's [`CoreTime`] (Linux's `/proc/thread-self/schedstat`: "run_time run_delay timeslices"),
/// or `None` where the OS does not say. Opened, read and closed each time (a few microseconds, every
/// [`PREEMPTION_CHECK`] at most), so that no thread holds a file open; std opens a path this short from a stack
/// buffer, so nothing is allocated.
#[cfg(target_os = "linux")]
fn core_time() -> Option<CoreTime> {
    use std::io::Read;
    let mut text = [0u8; 96];
    let len = std::fs::File::open("/proc/thread-self/schedstat").ok()?.read(&mut text).ok()?;
    let mut fields = std::str::from_utf8(&text[..len]).ok()?.split_ascii_whitespace().map(|f| f.parse().ok());
    Some(CoreTime { ran: fields.next()??, waited: fields.next()?? })
}

#[cfg(not(target_os = "linux"))]
fn core_time() -> Option<CoreTime> {
    None
}

/// Aborts the process if dropped during a panic: for the stretches where unwinding would free a stack that
/// another thread still reads.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("loopgrad: a panic escaped a parallel job while its parts could still run; aborting");
            std::process::abort();
        }
    }
}

/// A spin-wait that knows when it has spun for [`SPIN`]: it reads the clock only every 1024 rounds (a clock read
/// costs about as much as the check it would guard), and from the first such read on.
struct Spin {
    rounds: u32,
    since: Option<Instant>,
}

impl Spin {
    fn new() -> Self {
        Spin { rounds: 0, since: None }
    }

    /// One round of waiting; `true` once [`SPIN`] has passed since the first clock read.
    fn wait(&mut self) -> bool {
        std::hint::spin_loop();
        self.rounds = self.rounds.wrapping_add(1);
        if !self.rounds.is_multiple_of(1024) {
            return false;
        }
        self.since.get_or_insert_with(Instant::now).elapsed() >= SPIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A team of its own for each test: the shared one may be busy with another test's job. It does not back off,
    /// so that parts meant to meet on several threads do even on a loaded machine.
    fn team() -> &'static Team {
        Box::leak(Box::new(Team { backs_off: false, ..Team::new() }))
    }

    /// Waits until `n` parts have arrived here, which needs them on `n` threads at once.
    fn meet(arrived: &AtomicUsize, n: usize) {
        arrived.fetch_add(1, SeqCst);
        let deadline = Instant::now() + Duration::from_secs(20);
        while arrived.load(SeqCst) < n {
            assert!(Instant::now() < deadline, "the parts never ran at the same time");
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_thread_that_waited_for_a_core_longer_than_it_ran_makes_the_team_run_jobs_on_their_callers() {
        let team = team();
        let last: LastLook = Cell::new((0, CoreTime { ran: 0, waited: 0 }));
        let ms = |m: u64| m * 1_000_000;
        let time = |ran: u64, waited: u64| move || Some(CoreTime { ran: ms(ran), waited: ms(waited) });
        // Far enough ahead of the real clock that the back-off below cannot run out during the test.
        let t0 = nanos_since_epoch() + ms(10_000);
        team.look(&last, t0, time(100, 100)); // the first look only records
        team.look(&last, t0 + ms(20), time(116, 104)); // waited 4 of 20 ms: fine
        assert_eq!(team.serial_until.load(SeqCst), 0);
        team.look(&last, t0 + ms(30), time(117, 120)); // too soon to look again: ignored
        assert_eq!(team.serial_until.load(SeqCst), 0);
        team.look(&last, t0 + ms(40), time(118, 108)); // mostly asleep: waited 4 ms, longer than it ran, but not 5
        assert_eq!(team.serial_until.load(SeqCst), 0);
        let on_workers = Mutex::new(0);
        let caller = thread::current().id();
        let count = |_: usize| {
            if thread::current().id() != caller {
                *on_workers.lock().unwrap() += 1;
            }
        };
        team.look(&last, t0 + ms(60), time(124, 120)); // waited 12 of 20 ms, ran 6
        assert_eq!(team.serial_until.load(SeqCst), t0 + ms(60) + BACK_OFF.as_nanos() as u64);
        for _ in 0..200 {
            team.run(8, 1, &count);
        }
        assert_eq!(*on_workers.lock().unwrap(), 0, "backing off, every part runs on its caller");
        // Where the OS does not say, the thread stops looking.
        team.look(&last, t0 + ms(80), || None);
        assert_eq!(last.get().0, u64::MAX);
    }

    #[test]
    fn every_part_runs_exactly_once() {
        let team = team();
        for parts in 0..40 {
            let counts: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            team.run(parts, 1, &|i| {
                counts[i].fetch_add(1, Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Relaxed) == 1), "{parts} parts");
        }
    }

    #[test]
    fn parts_run_on_the_workers_too_even_after_they_have_parked() {
        let team = team();
        for round in 0..3 {
            let arrived = AtomicUsize::new(0);
            team.run(3, 2, &|_| meet(&arrived, 3));
            assert_eq!(arrived.load(SeqCst), 3, "round {round}");
            // Longer than SPIN: the workers park, and the next job must unpark them.
            thread::sleep(SPIN * 20);
        }
    }

    #[test]
    fn a_run_from_inside_a_part_runs_its_parts_in_order_on_that_thread() {
        let team = team();
        let arrived = AtomicUsize::new(0);
        team.run(2, 1, &|outer| {
            meet(&arrived, 2);
            let me = thread::current().id();
            let order = Mutex::new(Vec::new());
            team.run(4, 1, &|inner| {
                assert_eq!(thread::current().id(), me);
                order.lock().unwrap().push(inner);
            });
            assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3], "inside part {outer}");
        });
    }

    #[test]
    fn a_part_that_panics_is_re_raised_after_the_others_finish_and_the_team_goes_on() {
        let team = team();
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(8, 1, &|i| {
                if i == 3 {
                    panic!("part three fails");
                }
                thread::sleep(Duration::from_millis(2));
                finished.fetch_add(1, SeqCst);
            })
        }));
        let payload = result.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"part three fails"));
        assert_eq!(finished.load(SeqCst), 7, "every other part finished before run returned");
        let sum = AtomicUsize::new(0);
        team.run(10, 1, &|i| {
            sum.fetch_add(i, SeqCst);
        });
        assert_eq!(sum.load(SeqCst), 45);
    }

    #[test]
    fn a_second_panic_whose_payload_panics_when_dropped_neither_escapes_nor_ends_the_wait_early() {
        /// A panic payload that panics again when dropped, if armed.
        struct Bomb(bool);
        impl Drop for Bomb {
            fn drop(&mut self) {
                if self.0 {
                    panic!("a payload's own drop panics");
                }
            }
        }
        let team = team();
        let (arrived, order, slow_done) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicBool::new(false));
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(3, 2, &|_| {
                meet(&arrived, 3);
                match order.fetch_add(1, SeqCst) {
                    0 => std::panic::panic_any(Bomb(false)),
                    1 => {
                        while team.panic.lock().unwrap().is_none() {
                            std::hint::spin_loop();
                        }
                        std::panic::panic_any(Bomb(true))
                    }
                    _ => {
                        thread::sleep(Duration::from_millis(200));
                        slow_done.store(true, SeqCst);
                    }
                }
            })
        }));
        let payload = result.expect_err("the first panic reaches the caller");
        assert!(payload.downcast_ref::<Bomb>().is_some_and(|b| !b.0), "the first payload is the one re-raised");
        assert!(slow_done.load(SeqCst), "run returned before its slow part finished");
        assert!(!team.busy.load(SeqCst), "the team is free again");
    }

    #[test]
    fn a_job_for_fewer_workers_than_the_team_has_runs_on_that_many() {
        let team = team();
        team.ensure_workers(4);
        for workers in [1, 2, 4] {
            let threads = Mutex::new(std::collections::HashSet::new());
            team.run(8, workers, &|_| {
                threads.lock().unwrap().insert(thread::current().id());
                thread::sleep(Duration::from_millis(20));
            });
            let n = threads.lock().unwrap().len();
            assert!(n <= workers + 1, "a job for {workers} workers ran on {n} threads");
        }
    }

    #[test]
    fn callers_on_several_threads_share_one_team() {
        let team = team();
        thread::scope(|s| {
            for caller in 0..4usize {
                s.spawn(move || {
                    for job in 0..300usize {
                        let parts = 1 + (caller + job) % 7;
                        let sum = AtomicUsize::new(0);
                        team.run(parts, 1, &|i| {
                            sum.fetch_add(i + 1, Relaxed);
                        });
                        assert_eq!(sum.load(Relaxed), parts * (parts + 1) / 2, "caller {caller}, job {job}");
                    }
                });
            }
        });
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn parts_run_in_the_denormal_mode_of_the_thread_that_started_the_job() {
        use crate::parallel::{denormals_flushed, flush_denormals_on_current_thread};
        let team = team();
        // Threads of their own: the mode is per thread, and other tests must not see it.
        for flush in [true, false, true] {
            thread::spawn(move || {
                if flush {
                    flush_denormals_on_current_thread();
                }
                let (arrived, modes) = (AtomicUsize::new(0), Mutex::new(Vec::new()));
                team.run(2, 1, &|_| {
                    meet(&arrived, 2);
                    modes.lock().unwrap().push(denormals_flushed());
                });
                assert_eq!(*modes.lock().unwrap(), [flush, flush]);
            })
            .join()
            .unwrap();
        }
    }
}
