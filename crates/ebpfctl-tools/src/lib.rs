//! Ready tools built on the runner's library. Each tool is a directory holding its probe
//! (`<tool>.bpf.c` + `<tool>.h`) beside the Rust that loads it and decodes its events.
pub mod common;
pub mod execsnoop;
pub mod observe;
pub mod opensnoop;
