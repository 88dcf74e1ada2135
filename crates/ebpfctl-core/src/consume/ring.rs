//! A consumer of BPF ring buffer maps of our own, in place of libbpf's `ring_buffer`.
//!
//! The kernel's layout (`kernel/bpf/ringbuf.c`, uapi `struct bpf_ringbuf_hdr`): page 0 holds
//! the consumer position (the only page user space may map writable), page 1 the producer
//! position, then the data pages. Each record starts with an 8-byte header: its length with
//! two flag bits (busy: reserved, not yet submitted; discard: dropped by the program), and
//! the record is padded to 8 bytes. Positions only grow; a position's offset in the data is
//! `pos & (size - 1)`.
//!
//! Why not libbpf's: libbpf maps the producer page and the data pages *twice in a row*
//! (page + 2 × size), so that a record that wraps past the end reads as one slice. The kernel
//! inserts every page of such a mapping at mmap time, so each data page is resident twice:
//! opensnoop's 512 KiB ring cost 1,040 KiB of RSS (2 × 512 + 2 pages; Pss 528), execsnoop's
//! 256 KiB 528 KiB. Here the data is mapped once (page + size; the kernel accepts any length
//! up to page + 2 × size for that offset) and the rare record that wraps is copied into a
//! scratch buffer, so the callback still gets one contiguous slice: opensnoop's ring now
//! costs 528 KiB, execsnoop's 272 KiB (`bench/snoop/smaps.py`, bench/README.md "snoop").
//! The hot path is what libbpf's is (acquire load of the producer position, acquire load
//! of each header, callback, release store of the consumer position per record), without
//! the C callback trampoline. Measured, release: opensnoop's CPU for the 200,000-open storm
//! 0.16–0.21 s with this consumer, 0.15–0.20 s with libbpf's in an earlier session (not an
//! A/B run: other load), i.e. the read path is not what the tool's CPU goes to.
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HDR: u64 = 8;

/// A shared mapping of a map's pages, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, offset: usize, prot: i32) -> io::Result<Mapping> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh shared mapping of the map's pages at a kernel-chosen address;
        // nothing else refers to it, and it is unmapped only by Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }

    /// The `u64` position at the start of the mapping, shared with the kernel.
    fn position(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned, at least a page long and lives as long as
        // `self`; the kernel and we access the position only atomically.
        unsafe { &*(self.ptr as *const AtomicU64) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into it outlives
        // `self` (slices handed to callbacks end with the call).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

fn page_size() -> io::Result<usize> {
    // SAFETY: sysconf has no pointer arguments.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .map_err(|_| io::Error::last_os_error())
}

/// What a ring's records are handed to.
pub(super) type Callback<'a> = Box<dyn FnMut(&[u8]) + 'a>;

/// One ring buffer map being consumed: its consumer page (read-write), its producer page
/// and data pages (read-only, the data once), and the callback its records go to.
pub(super) struct Ring<'a> {
    fd: BorrowedFd<'a>,
    consumer: Mapping,
    producer: Mapping,
    page: usize,
    /// Data bytes (max_entries, a power of two).
    size: usize,
    callback: RefCell<Callback<'a>>,
    /// A record that wraps past the end of the data, made contiguous.
    scratch: RefCell<Vec<u8>>,
}

impl<'a> Ring<'a> {
    /// Maps the ring buffer map `fd` of `size` data bytes.
    pub(super) fn new(
        fd: BorrowedFd<'a>,
        size: u32,
        callback: Callback<'a>,
    ) -> io::Result<Ring<'a>> {
        let page = page_size()?;
        let size = size as usize;
        if size < page || !size.is_power_of_two() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let consumer = Mapping::new(fd, page, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        let producer = Mapping::new(fd, page + size, page, libc::PROT_READ)?;
        Ok(Ring {
            fd,
            consumer,
            producer,
            page,
            size,
            callback: RefCell::new(callback),
            scratch: RefCell::new(Vec::new()),
        })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'a> {
        self.fd
    }

    fn data(&self) -> *const u8 {
        // SAFETY: the data pages follow the producer page inside the producer mapping.
        unsafe { (self.producer.ptr as *const u8).add(self.page) }
    }

    /// The header of the record at position `pos`.
    fn header(&self, pos: u64) -> u32 {
        let off = (pos & (self.size as u64 - 1)) as usize;
        // SAFETY: `off` is below `size` and 8-byte aligned (every record is padded to 8),
        // so the 4-byte length lies inside the data pages. The kernel writes it atomically
        // (busy bit cleared with a release store at submit): acquire pairs with that, so
        // the record's bytes are seen once the header says it is complete.
        unsafe { (*(self.data().add(off) as *const AtomicU32)).load(Ordering::Acquire) }
    }

    /// Calls the callback with each submitted record, in order, until the ring is empty,
    /// a record is still being written (busy), or `max` records were taken; returns how
    /// many were taken. The consumer position moves past each record right after its call
    /// (release, so the kernel reuses the space only after we read it), as libbpf does.
    pub(super) fn consume(&self, max: usize) -> io::Result<usize> {
        let cons_pos = self.consumer.position();
        let prod_pos = self.producer.position();
        let mask = self.size as u64 - 1;
        let mut cons = cons_pos.load(Ordering::Acquire);
        let mut taken = 0usize;
        let mut callback = self.callback.borrow_mut();
        while taken < max {
            let prod = prod_pos.load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            while cons < prod && taken < max {
                let hdr = self.header(cons);
                if hdr & BUSY != 0 {
                    return Ok(taken);
                }
                let len = (hdr & !(BUSY | DISCARD)) as usize;
                if len as u64 + HDR > self.size as u64 {
                    // Not a record the kernel could have written: stop rather than read
                    // outside the data (and leave the position where it is).
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
                if hdr & DISCARD == 0 {
                    let start = ((cons + HDR) & mask) as usize;
                    if start + len <= self.size {
                        // SAFETY: `start..start + len` lies inside the data pages; the
                        // kernel does not write a submitted record until the consumer
                        // position has moved past it, which happens after the call.
                        let rec =
                            unsafe { std::slice::from_raw_parts(self.data().add(start), len) };
                        callback(rec);
                    } else {
                        let mut scratch = self.scratch.borrow_mut();
                        scratch.clear();
                        let first = self.size - start;
                        // SAFETY: as above, the record's two parts: the end of the data
                        // from `start`, then its beginning.
                        unsafe {
                            scratch.extend_from_slice(std::slice::from_raw_parts(
                                self.data().add(start),
                                first,
                            ));
                            scratch.extend_from_slice(std::slice::from_raw_parts(
                                self.data(),
                                len - first,
                            ));
                        }
                        callback(&scratch);
                    }
                    taken += 1;
                }
                cons += (len as u64 + HDR).div_ceil(8) * 8;
                cons_pos.store(cons, Ordering::Release);
            }
        }
        Ok(taken)
    }

    /// The producer's position now: records from here on were reserved after this moment.
    pub(super) fn produced(&self) -> u64 {
        self.producer.position().load(Ordering::Acquire)
    }

    /// The records (submitted or still reserved; not discarded ones) before position `until`
    /// (from [`Ring::produced`]) no one took yet.
    pub(super) fn unread_before(&self, until: u64) -> u64 {
        let mut pos = self.consumer.position().load(Ordering::Acquire);
        let prod = self.producer.position().load(Ordering::Acquire).min(until);
        let mut n = 0u64;
        while pos < prod {
            let hdr = self.header(pos);
            if hdr & DISCARD == 0 {
                n += 1;
            }
            pos += (u64::from(hdr & !(BUSY | DISCARD)) + HDR).div_ceil(8) * 8;
        }
        n
    }
}
