//! Consumers of kernel-to-user event streams: ring buffers and perf event arrays behind one
//! `poll`, with lost-event accounting per map.
//!
//! Ring buffers: the kernel counts nothing when `bpf_ringbuf_reserve` fails, so probes count
//! their own failures in a `.bss` global `ebpfctl_lost_<map>` (see `include/ebpfctl.h`);
//! [`LossSource::BssCounter`] reads it. Perf buffers: libbpf reports lost samples per CPU.
//! Records still in a ring buffer when [`Consumer::drain`] gives up at exit are counted as
//! lost too ([`LossSource::with_unread`]).
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod ring;

use libbpf_rs::{MapCore, MapFlags, MapHandle, PerfBuffer, PerfBufferBuilder};

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("cannot consume map {map}: {source}")]
    Setup {
        map: String,
        source: libbpf_rs::Error,
    },
    #[error("cannot map ring buffer {map}: {source}")]
    Map { map: String, source: std::io::Error },
    #[error("polling event buffers failed: {0}")]
    Poll(std::io::Error),
    #[error("event buffer poll failed: {0}")]
    Buffer(libbpf_rs::Error),
}

/// Where a map's lost-event count comes from.
#[derive(Debug)]
pub enum LossSource {
    /// Counted here from perf "lost" notifications.
    Counted(Arc<AtomicU64>),
    /// A `u64` at `offset` in the `.bss` array map of the object.
    BssCounter { bss: MapHandle, offset: usize },
    /// Nothing counts losses (a ring buffer reserved without `ebpfctl_reserve`).
    Unknown,
    /// Another source plus the records a ring buffer still held when the consumer stopped
    /// reading at exit (the counter [`ConsumerBuilder::ring_buffer`] returns).
    WithUnread(Box<LossSource>, Arc<AtomicU64>),
}

impl LossSource {
    /// The total lost so far, or `None` when nothing counts.
    pub fn total(&self) -> Option<u64> {
        match self {
            LossSource::Counted(c) => Some(c.load(Ordering::Relaxed)),
            LossSource::BssCounter { bss, offset } => {
                let v = bss
                    .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
                    .ok()
                    .flatten()?;
                let b = v.get(*offset..*offset + 8)?;
                Some(u64::from_ne_bytes(b.try_into().ok()?))
            }
            LossSource::Unknown => None,
            LossSource::WithUnread(inner, unread) => {
                let unread = unread.load(Ordering::Relaxed);
                match inner.total() {
                    Some(t) => Some(t + unread),
                    None => (unread > 0).then_some(unread),
                }
            }
        }
    }

    /// This source plus the ring buffer's records left unread at exit.
    pub fn with_unread(self, unread: Arc<AtomicU64>) -> LossSource {
        LossSource::WithUnread(Box::new(self), unread)
    }
}

/// How long one [`Consumer::poll`] keeps taking ring-buffer records: a flood that refills
/// the buffers as fast as they are read (or callbacks slower than the producer) cannot keep
/// the caller from its stop flag and deadline. What is left is taken by the next call,
/// which then does not wait.
pub const POLL_BUDGET: Duration = Duration::from_millis(50);

/// The longest [`Consumer::drain`] takes records at shutdown while the programs, still
/// attached, keep producing them.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(500);

/// Records taken between two looks at the clock.
const BATCH: usize = 1024;

/// Builds a [`Consumer`] over any number of ring buffers and perf event arrays.
pub struct ConsumerBuilder<'a> {
    rings: Vec<(ring::Ring<'a>, Arc<AtomicU64>)>,
    /// Bytes of all ring buffers, which bounds what [`Consumer::drain`] takes.
    ring_bytes: u64,
    perf: Vec<PerfBuffer<'a>>,
}

impl Default for ConsumerBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> ConsumerBuilder<'a> {
    pub fn new() -> Self {
        Self {
            rings: Vec::new(),
            ring_bytes: 0,
            perf: Vec::new(),
        }
    }

    /// Calls `on_event` with each record of the ring buffer `map`; returns the counter of
    /// records [`Consumer::drain`] left in it at exit (lost: add it to the map's losses with
    /// [`LossSource::with_unread`]).
    pub fn ring_buffer<F>(
        &mut self,
        map: &'a dyn MapCore,
        on_event: F,
    ) -> Result<Arc<AtomicU64>, ConsumeError>
    where
        F: FnMut(&[u8]) + 'a,
    {
        let ring = ring::Ring::new(map.as_fd(), map.max_entries(), Box::new(on_event)).map_err(
            |source| ConsumeError::Map {
                map: map.name().to_string_lossy().into_owned(),
                source,
            },
        )?;
        self.ring_bytes += u64::from(map.max_entries());
        let unread = Arc::new(AtomicU64::new(0));
        self.rings.push((ring, Arc::clone(&unread)));
        Ok(unread)
    }

    /// Calls `on_event(cpu, data)` per sample of the perf event array `map` and returns the
    /// counter of lost samples. `pages` per CPU (a power of two).
    pub fn perf_buffer<M, F>(
        &mut self,
        map: &'a M,
        pages: usize,
        mut on_event: F,
    ) -> Result<Arc<AtomicU64>, ConsumeError>
    where
        M: MapCore,
        F: FnMut(i32, &[u8]) + 'a,
    {
        let lost = Arc::new(AtomicU64::new(0));
        let lost2 = Arc::clone(&lost);
        let buf = PerfBufferBuilder::new(map)
            .pages(pages)
            .sample_cb(move |cpu: i32, data: &[u8]| on_event(cpu, data))
            .lost_cb(move |_cpu: i32, n: u64| {
                lost2.fetch_add(n, Ordering::Relaxed);
            })
            .build()
            .map_err(|source| ConsumeError::Setup {
                map: map.name().to_string_lossy().into_owned(),
                source,
            })?;
        self.perf.push(buf);
        Ok(lost)
    }

    pub fn build(self) -> Result<Consumer<'a>, ConsumeError> {
        // One epoll set over the ring buffer maps (readable when data is waiting) and
        // libbpf's perf buffer epoll fds, so one wait covers every buffer.
        // SAFETY: epoll_create1 has no pointer arguments.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(ConsumeError::Poll(std::io::Error::last_os_error()));
        }
        // SAFETY: epfd was just created and is owned by nothing else.
        let epoll = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(epfd) };
        let mut fds: Vec<i32> = self.rings.iter().map(|(r, _)| r.fd().as_raw_fd()).collect();
        fds.extend(self.perf.iter().map(|p| p.epoll_fd()));
        for (i, fd) in fds.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both fds are open; `ev` is a valid epoll_event for the call's duration.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, *fd, &mut ev) } < 0
            {
                return Err(ConsumeError::Poll(std::io::Error::last_os_error()));
            }
        }
        // The smallest record takes 16 bytes (8 of header, 8-byte aligned).
        let drain_budget = usize::try_from(self.ring_bytes / 16 + 1).unwrap_or(usize::MAX);
        Ok(Consumer {
            rings: self.rings,
            perf: self.perf,
            epoll,
            drain_budget,
        })
    }
}

/// Waits for events on every buffer at once and dispatches them to their callbacks.
pub struct Consumer<'a> {
    /// Each ring buffer with the counter of records left in it at exit.
    rings: Vec<(ring::Ring<'a>, Arc<AtomicU64>)>,
    perf: Vec<PerfBuffer<'a>>,
    epoll: std::os::fd::OwnedFd,
    /// At most as many ring-buffer records as the buffers can hold.
    drain_budget: usize,
}

impl<'a> Consumer<'a> {
    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty() && self.perf.is_empty()
    }

    /// Waits up to `timeout` for data, then takes what the buffers hold (at most
    /// [`POLL_BUDGET`] ring-buffer records). An interrupted wait (a signal) returns `Ok` so
    /// callers can check their stop flag.
    pub fn poll(&self, timeout: Duration) -> Result<(), ConsumeError> {
        if self.is_empty() {
            std::thread::sleep(timeout);
            return Ok(());
        }
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `events` is a writable array of the length passed.
        let n =
            unsafe { libc::epoll_wait(self.epoll.as_fd().as_raw_fd(), events.as_mut_ptr(), 8, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(ConsumeError::Poll(e));
        }
        self.take(usize::MAX, Some(Instant::now() + POLL_BUDGET))
    }

    /// Consumes what is buffered now without waiting (at shutdown): at most as many records
    /// as the ring buffers hold and for at most [`DRAIN_BUDGET`], so records that keep
    /// coming do not hold the exit. The records that were in a ring buffer when the drain
    /// began and are still there are counted into its unread counter
    /// ([`ConsumerBuilder::ring_buffer`]); those written during the drain came after the
    /// stop and are not counted (a probe on a busy kernel function fires on until the
    /// programs are detached).
    pub fn drain(&self) -> Result<(), ConsumeError> {
        let stop: Vec<u64> = self.rings.iter().map(|(r, _)| r.produced()).collect();
        self.take(self.drain_budget, Some(Instant::now() + DRAIN_BUDGET))?;
        for ((r, unread), stop) in self.rings.iter().zip(stop) {
            unread.store(r.unread_before(stop), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ring-buffer records until none is left, `budget` were taken or `until` passed; then
    /// each perf buffer's current contents.
    fn take(&self, budget: usize, until: Option<Instant>) -> Result<(), ConsumeError> {
        if !self.rings.is_empty() {
            let mut left = budget;
            while left > 0 {
                // Up to a batch from each ring in turn, so a flooded ring does not starve
                // the others; again while one of them had a full batch.
                let want = left.min(BATCH);
                let (mut n, mut more) = (0, false);
                for (r, _) in &self.rings {
                    let got = r.consume(want).map_err(ConsumeError::Poll)?;
                    n += got;
                    more |= got == want;
                }
                left = left.saturating_sub(n);
                if !more || until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
            }
        }
        for p in &self.perf {
            p.consume().map_err(ConsumeError::Buffer)?;
        }
        Ok(())
    }
}
