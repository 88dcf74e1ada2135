//! `ebpfctl top`: per-program run time from BPF statistics.
