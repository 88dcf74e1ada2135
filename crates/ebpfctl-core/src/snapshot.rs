//! Reading a whole key/value map, for every output that shows one (table, JSON snapshots,
//! Prometheus scrapes, `map dump`).
//!
//! BPF_MAP_LOOKUP_BATCH returns many entries per bpf() call (hash, LRU hash, array and their
//! per-CPU variants, LPM trie, ...): 3,000 keys cost one call instead of ~6,000 (a
//! BPF_MAP_GET_NEXT_KEY and a BPF_MAP_LOOKUP_ELEM per key). Where the kernel or the map type
//! refuses it (EINVAL before 5.6, ENOTSUPP for types without batch operations, EPERM), the map
//! is read key by key; which one and why goes to the debug log (`EBPFCTL_DEBUG=1`), not to
//! the user. A hash bucket larger than the batch (ENOSPC) grows the batch.
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use libbpf_rs::{MapCore, MapHandle};

use crate::decode::Node;
use crate::print::{Entry, MapOut};

/// ENOTSUPP: the kernel-internal "operation not supported" (524) a map type without batch
/// operations returns; not in libc (it is not a user-space errno).
const ENOTSUPP: i32 = 524;

/// The bytes one batch may hold at most (keys and values together), so a huge map or value
/// does not make one snapshot allocate without bound.
const BATCH_BYTES: usize = 1 << 20;

/// What a map's entries look like in memory.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub key_size: usize,
    pub value_size: usize,
    /// A per-CPU map: each value is one copy per possible CPU, each rounded to 8 bytes.
    pub percpu: bool,
    /// The number of possible CPUs (read for per-CPU maps only).
    pub ncpu: usize,
    pub max_entries: u32,
}

impl Layout {
    /// Bytes between two CPUs' copies of a value (the kernel rounds per-CPU values to 8).
    pub fn stride(&self) -> usize {
        if self.percpu {
            self.value_size.div_ceil(8) * 8
        } else {
            self.value_size
        }
    }

    /// Bytes of one entry's value as the kernel writes it (every CPU's copy).
    pub fn value_len(&self) -> usize {
        if self.percpu {
            self.stride() * self.ncpu.max(1)
        } else {
            self.value_size
        }
    }

    /// Each CPU's copy in a value written as [`Layout::value_len`] bytes.
    pub fn per_cpu<'a>(&self, value: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (stride, size) = (self.stride().max(1), self.value_size);
        value.chunks(stride).map(move |c| &c[..size.min(c.len())])
    }

    /// Entries per batch: the whole map if it fits in [`BATCH_BYTES`].
    fn batch(&self) -> usize {
        let per = (self.key_size + self.value_len()).max(1);
        (BATCH_BYTES / per).clamp(1, (self.max_entries as usize).max(1))
    }
}

/// How a read went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub entries: u64,
    /// bpf() calls made.
    pub calls: u64,
    /// Whether BPF_MAP_LOOKUP_BATCH read the map (false: key by key).
    pub batched: bool,
    /// Entries per batch at the end (grown from the first size on ENOSPC).
    pub batch: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The kernel refused a read (`op` is the bpf() command).
    #[error("{op}: {source}")]
    Kernel {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The visitor failed (e.g. writing the output).
    #[error(transparent)]
    Visit(io::Error),
}

fn errno_of(rc: i32) -> io::Error {
    if rc < 0 {
        io::Error::from_raw_os_error(-rc)
    } else {
        io::Error::last_os_error()
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EINVAL => "EINVAL",
        ENOTSUPP => "ENOTSUPP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EPERM => "EPERM",
        _ => "an error",
    }
}

/// Whether `EBPFCTL_DEBUG` is set (to anything but empty or `0`).
pub fn debug_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("EBPFCTL_DEBUG").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// A line for developers on stderr, only with `EBPFCTL_DEBUG=1`.
pub fn debug(msg: &str) {
    if debug_enabled() {
        eprintln!("ebpfctl: debug: {msg}");
    }
}

/// Calls `each(key, value)` for every entry of the map behind `fd` (`value` holds every CPU's
/// copy for per-CPU maps: see [`Layout::per_cpu`]). `name` names the map in the debug log.
/// Memory use is one batch, never the whole map beyond [`BATCH_BYTES`].
pub fn read_map(
    fd: BorrowedFd<'_>,
    layout: &Layout,
    name: &str,
    mut each: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
) -> Result<ReadStats, ReadError> {
    match read_batched(fd, layout, &mut each)? {
        Batched::Done(stats) => Ok(stats),
        Batched::Refused { errno, calls } => {
            debug(&format!(
                "map {name}: BPF_MAP_LOOKUP_BATCH refused ({}, errno {errno}): reading key by key",
                errno_name(errno)
            ));
            let mut stats = read_by_key(fd, layout, &mut each)?;
            stats.calls += calls;
            Ok(stats)
        }
    }
}

enum Batched {
    Done(ReadStats),
    /// The first call failed with `errno`, before any entry was seen.
    Refused {
        errno: i32,
        calls: u64,
    },
}

fn read_batched(
    fd: BorrowedFd<'_>,
    layout: &Layout,
    each: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>,
) -> Result<Batched, ReadError> {
    let (ksize, vlen) = (layout.key_size.max(1), layout.value_len().max(1));
    let mut count = layout.batch();
    let mut keys = vec![0u8; count * ksize];
    let mut values = vec![0u8; count * vlen];
    // The position token: a bucket number (u32) for hash maps, a key for the others.
    let token = ksize.max(8);
    let (mut in_batch, mut out_batch) = (vec![0u8; token], vec![0u8; token]);
    let mut first = true;
    let mut stats = ReadStats {
        batched: true,
        ..ReadStats::default()
    };
    let opts = libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    loop {
        let mut n = count as u32;
        // SAFETY: `in_batch`/`out_batch` hold at least max(key size, 4) bytes (the kernel
        // copies a u32 bucket for hash maps, a key otherwise); `keys` and `values` hold
        // `count` keys and `count` values as the kernel writes them (per-CPU values rounded
        // to 8 bytes times the possible CPUs); `n` is `count`; `opts` is initialised with
        // its size.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                fd.as_raw_fd(),
                if first {
                    std::ptr::null_mut()
                } else {
                    in_batch.as_mut_ptr().cast()
                },
                out_batch.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut n,
                &opts,
            )
        };
        stats.calls += 1;
        let errno = if rc == 0 {
            0
        } else {
            errno_of(rc).raw_os_error().unwrap_or(libc::EIO)
        };
        match errno {
            0 | libc::ENOENT => {}
            libc::EINTR => continue,
            // One hash bucket holds more entries than the batch: grow it and ask again.
            libc::ENOSPC if n == 0 => {
                count *= 2;
                keys.resize(count * ksize, 0);
                values.resize(count * vlen, 0);
                continue;
            }
            libc::EINVAL | ENOTSUPP | libc::EOPNOTSUPP | libc::EPERM if first => {
                return Ok(Batched::Refused {
                    errno,
                    calls: stats.calls,
                });
            }
            e => {
                return Err(ReadError::Kernel {
                    op: "BPF_MAP_LOOKUP_BATCH",
                    source: io::Error::from_raw_os_error(e),
                })
            }
        }
        let n = (n as usize).min(count);
        for i in 0..n {
            each(
                &keys[i * ksize..i * ksize + layout.key_size],
                &values[i * vlen..i * vlen + layout.value_len()],
            )
            .map_err(ReadError::Visit)?;
        }
        stats.entries += n as u64;
        if errno == libc::ENOENT {
            stats.batch = count;
            return Ok(Batched::Done(stats));
        }
        std::mem::swap(&mut in_batch, &mut out_batch);
        first = false;
    }
}

fn read_by_key(
    fd: BorrowedFd<'_>,
    layout: &Layout,
    each: &mut impl FnMut(&[u8], &[u8]) -> io::Result<()>,
) -> Result<ReadStats, ReadError> {
    let raw = fd.as_fd().as_raw_fd();
    let mut key = vec![0u8; layout.key_size.max(1)];
    let mut next = vec![0u8; layout.key_size.max(1)];
    let mut value = vec![0u8; layout.value_len().max(1)];
    let mut have_key = false;
    let mut stats = ReadStats::default();
    loop {
        // SAFETY: `key` and `next` hold at least key_size bytes; a null current key asks for
        // the first key.
        let rc = unsafe {
            libbpf_sys::bpf_map_get_next_key(
                raw,
                if have_key {
                    key.as_ptr().cast()
                } else {
                    std::ptr::null()
                },
                next.as_mut_ptr().cast(),
            )
        };
        stats.calls += 1;
        if rc != 0 {
            let e = errno_of(rc);
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(stats);
            }
            return Err(ReadError::Kernel {
                op: "BPF_MAP_GET_NEXT_KEY",
                source: e,
            });
        }
        std::mem::swap(&mut key, &mut next);
        have_key = true;
        // SAFETY: `key` holds key_size bytes; `value` holds the value as the kernel writes
        // it (per-CPU values rounded to 8 bytes times the possible CPUs).
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(raw, key.as_ptr().cast(), value.as_mut_ptr().cast())
        };
        stats.calls += 1;
        if rc != 0 {
            let e = errno_of(rc);
            if e.raw_os_error() == Some(libc::ENOENT) {
                continue; // deleted since we saw its key
            }
            return Err(ReadError::Kernel {
                op: "BPF_MAP_LOOKUP_ELEM",
                source: e,
            });
        }
        each(&key[..layout.key_size], &value[..layout.value_len()]).map_err(ReadError::Visit)?;
        stats.entries += 1;
    }
}

/// Every entry of a loaded key/value map for the runner's outputs, per-CPU values summed
/// ([`sum_percpu`]). A read the kernel fails part way keeps what
/// it read (debug log).
pub fn read_entries(map: &MapHandle, out: &MapOut) -> Vec<Entry> {
    let layout = Layout {
        key_size: map.key_size() as usize,
        value_size: map.value_size() as usize,
        percpu: out.percpu,
        ncpu: if out.percpu {
            libbpf_rs::num_possible_cpus().unwrap_or(1).max(1)
        } else {
            1
        },
        max_entries: map.max_entries(),
    };
    let mut entries = Vec::new();
    let read = read_map(map.as_fd(), &layout, &out.name, |k, v| {
        let v = if out.percpu {
            let cpus: Vec<&[u8]> = layout.per_cpu(v).collect();
            sum_percpu(out, &cpus)
        } else {
            v.to_vec()
        };
        entries.push((k.to_vec(), v));
        Ok(())
    });
    if let Err(e) = read {
        debug(&format!("map {}: reading it: {e}", out.name));
    }
    entries
}

/// Adds per-CPU copies of a value member by member (integers only; others from CPU 0).
pub fn sum_percpu<V: AsRef<[u8]>>(out: &MapOut, vals: &[V]) -> Vec<u8> {
    let Some(first) = vals.first() else {
        return Vec::new();
    };
    let mut acc = first.as_ref().to_vec();
    let leaves: Vec<(usize, usize)> = match &out.value.root {
        Node::Uint { off, size } | Node::Int { off, size } => vec![(*off as usize, *size as usize)],
        Node::Special { off, size, .. } => vec![(*off as usize, *size as usize)],
        Node::Struct { fields, .. } => fields
            .iter()
            .filter_map(|(_, n)| match n {
                Node::Uint { off, size } | Node::Int { off, size } => {
                    Some((*off as usize, *size as usize))
                }
                Node::Special { off, size, .. } => Some((*off as usize, *size as usize)),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    for (off, size) in leaves.into_iter().filter(|(_, s)| *s <= 8) {
        let mut sum: u64 = 0;
        for v in vals {
            let mut b = [0u8; 8];
            if let Some(s) = v.as_ref().get(off..off + size) {
                b[..size].copy_from_slice(s);
            }
            sum = sum.wrapping_add(u64::from_le_bytes(b));
        }
        if let Some(dst) = acc.get_mut(off..off + size) {
            dst.copy_from_slice(&sum.to_le_bytes()[..size]);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_values_are_split_at_the_rounded_stride() {
        let l = Layout {
            key_size: 4,
            value_size: 4,
            percpu: true,
            ncpu: 3,
            max_entries: 10,
        };
        assert_eq!((l.stride(), l.value_len()), (8, 24));
        let v: Vec<u8> = (0..24).collect();
        let cpus: Vec<&[u8]> = l.per_cpu(&v).collect();
        assert_eq!(
            cpus,
            vec![&[0, 1, 2, 3][..], &[8, 9, 10, 11], &[16, 17, 18, 19]]
        );
    }

    #[test]
    fn a_batch_is_the_whole_map_when_it_fits_and_bounded_otherwise() {
        let small = Layout {
            key_size: 8,
            value_size: 8,
            percpu: false,
            ncpu: 1,
            max_entries: 10_240,
        };
        assert_eq!(small.batch(), 10_240);
        let huge = Layout {
            key_size: 8,
            value_size: 1 << 16,
            percpu: false,
            ncpu: 1,
            max_entries: 10_240,
        };
        assert_eq!(huge.batch(), BATCH_BYTES / (8 + (1 << 16)));
        let one = Layout {
            key_size: 8,
            value_size: 8 << 20,
            percpu: false,
            ncpu: 1,
            max_entries: 4,
        };
        assert_eq!(one.batch(), 1);
    }

    use std::os::fd::{FromRawFd, OwnedFd};

    /// A map created in the kernel for the test (closed, so freed, on drop).
    fn create(map_type: u32, key: u32, value: u32, max: u32) -> OwnedFd {
        // SAFETY: a null name and null options are accepted; the fd returned is ours.
        let fd = unsafe {
            libbpf_sys::bpf_map_create(
                map_type,
                std::ptr::null(),
                key,
                value,
                max,
                std::ptr::null(),
            )
        };
        assert!(fd >= 0, "bpf_map_create type {map_type}: {}", errno_of(fd));
        // SAFETY: `fd` was just returned to us and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn put(fd: &OwnedFd, k: &[u8], v: &[u8]) {
        // SAFETY: `k` and `v` are the map's key and value sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(fd.as_raw_fd(), k.as_ptr().cast(), v.as_ptr().cast(), 0)
        };
        assert_eq!(rc, 0, "update: {}", errno_of(rc));
    }

    fn layout(key: usize, value: usize, max: u32) -> Layout {
        Layout {
            key_size: key,
            value_size: value,
            percpu: false,
            ncpu: 1,
            max_entries: max,
        }
    }

    fn read_all(fd: &OwnedFd, l: &Layout) -> (ReadStats, Vec<Entry>) {
        let mut got = Vec::new();
        let stats = read_map(fd.as_fd(), l, "test", |k, v| {
            got.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        (stats, got)
    }

    #[test]
    fn a_hash_is_read_in_one_call_and_a_bucket_larger_than_the_batch_grows_it() {
        let fd = create(1, 4, 8, 2048);
        for k in 0u32..2000 {
            put(&fd, &k.to_ne_bytes(), &u64::from(k * 7).to_ne_bytes());
        }
        let (stats, got) = read_all(&fd, &layout(4, 8, 2048));
        assert!(stats.batched && stats.calls <= 2, "{stats:?}");
        let mut seen: Vec<u32> = got
            .iter()
            .map(|(k, v)| {
                let k = u32::from_ne_bytes(k[..4].try_into().unwrap());
                assert_eq!(
                    u64::from_ne_bytes(v[..8].try_into().unwrap()),
                    u64::from(k * 7)
                );
                k
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2000).collect::<Vec<_>>());
        // A batch of one entry: 2,000 keys in 2,048 buckets share some, and the kernel
        // answers ENOSPC for a bucket of two until the batch grows.
        let (small, again) = read_all(&fd, &layout(4, 8, 1));
        assert!(small.batched && small.batch > 1, "{small:?}");
        let mut keys: Vec<Vec<u8>> = again.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 2000);
        assert_eq!(small.entries, 2000, "{small:?}");
    }

    #[test]
    fn an_array_and_a_per_cpu_array_are_read_in_batches() {
        let fd = create(2, 4, 4, 300);
        for k in 0u32..300 {
            put(&fd, &k.to_ne_bytes(), &(k + 1).to_ne_bytes());
        }
        let (stats, got) = read_all(&fd, &layout(4, 4, 300));
        assert!(stats.batched && stats.calls <= 2, "{stats:?}");
        assert_eq!(got.len(), 300);
        for (k, v) in &got {
            assert_eq!(
                u32::from_ne_bytes(v[..4].try_into().unwrap()),
                u32::from_ne_bytes(k[..4].try_into().unwrap()) + 1
            );
        }
        let ncpu = libbpf_rs::num_possible_cpus().unwrap();
        let fd = create(6, 4, 4, 50);
        let l = Layout {
            percpu: true,
            ncpu,
            ..layout(4, 4, 50)
        };
        for k in 0u32..50 {
            let mut v = vec![0u8; l.value_len()];
            for (cpu, c) in v.chunks_mut(8).enumerate() {
                c[..4].copy_from_slice(&(k * 100 + cpu as u32).to_ne_bytes());
            }
            put(&fd, &k.to_ne_bytes(), &v);
        }
        let (stats, got) = read_all(&fd, &l);
        assert!(stats.batched, "{stats:?}");
        assert_eq!(got.len(), 50);
        for (k, v) in &got {
            let k = u32::from_ne_bytes(k[..4].try_into().unwrap());
            let cpus: Vec<u32> = l
                .per_cpu(v)
                .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(
                cpus,
                (0..ncpu as u32).map(|c| k * 100 + c).collect::<Vec<_>>()
            );
        }
    }
}
