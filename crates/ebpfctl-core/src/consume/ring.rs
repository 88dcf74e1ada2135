//! What a BPF ring buffer holds unread: the records between its consumer and producer
//! positions, read through a mapping of our own (read-only) of the map's pages.
//!
//! The kernel's layout (`kernel/bpf/ringbuf.c`, uapi `struct bpf_ringbuf_hdr`): page 0 holds
//! the consumer position, page 1 the producer position, then the data pages (mapped twice
//! in a row, so a record that wraps reads as one). Each record starts with an 8-byte header:
//! its length with two flag bits (busy: reserved, not yet submitted; discard: dropped by the
//! program), and the record is padded to 8 bytes.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HDR: u64 = 8;

/// A read-only shared mapping, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, offset: usize) -> io::Result<Mapping> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a fresh read-only shared mapping of the map's pages at a kernel-chosen
        // address; nothing else refers to it, and it is unmapped only by Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
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
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into it outlives
        // `self` (reads copy the values out).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// The records (submitted or still reserved; not discarded ones) in the ring buffer map
/// `fd` of `size` data bytes (its max_entries, a power of two) that no consumer took.
pub(super) fn unread_records(fd: BorrowedFd<'_>, size: u32) -> io::Result<u64> {
    // SAFETY: sysconf has no pointer arguments.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .map_err(|_| io::Error::last_os_error())?;
    let size = size as usize;
    if size == 0 || !size.is_power_of_two() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let consumer = Mapping::new(fd, page, 0)?;
    let producer = Mapping::new(fd, page + 2 * size, page)?;
    // SAFETY: both positions are 8-byte aligned u64s at the start of their page-aligned
    // mappings, written by the kernel (producer) and the consumer concurrently: read them
    // atomically, with acquire so the headers written before a position moved are seen.
    let (cons, prod) = unsafe {
        (
            (*(consumer.ptr as *const AtomicU64)).load(Ordering::Acquire),
            (*(producer.ptr as *const AtomicU64)).load(Ordering::Acquire),
        )
    };
    // SAFETY: the data pages follow the producer page; `size` bytes, mapped twice.
    let data = unsafe { (producer.ptr as *const u8).add(page) };
    let mask = (size - 1) as u64;
    let (mut pos, mut n) = (cons, 0u64);
    while pos < prod {
        // SAFETY: `pos & mask` is below `size`, so the 4-byte header (8-byte aligned: every
        // record is padded to 8) lies inside the first copy of the data pages.
        let hdr = unsafe {
            (*(data.add((pos & mask) as usize) as *const AtomicU32)).load(Ordering::Acquire)
        };
        if hdr & DISCARD == 0 {
            n += 1;
        }
        let len = u64::from(hdr & !(BUSY | DISCARD));
        pos += (len + HDR).div_ceil(8) * 8;
    }
    Ok(n)
}
