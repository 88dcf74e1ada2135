//! The runner's library. See `docs/architecture.md` for the path of data:
//! object → normalise → load/attach → consume → decode → print.

pub mod btf;
pub mod caps;
pub mod consume;
pub mod convention;
pub mod decode;
pub mod inspect;
pub mod load;
pub mod metrics;
pub mod mounts;
pub mod object;
pub mod plan;
pub mod print;
pub mod run;
pub mod signals;
