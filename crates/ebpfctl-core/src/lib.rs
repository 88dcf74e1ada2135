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
pub mod snapshot;
pub mod unit;

/// The optional features this library was built with (cargo features), for `--version`.
pub const FEATURES: &[&str] = &[
    #[cfg(feature = "tui")]
    "tui",
];

/// The version of the libbpf linked in (libbpf-sys builds it from source), e.g. "v1.5".
pub fn libbpf_version() -> String {
    // SAFETY: libbpf_version_string takes nothing and returns a pointer to a static,
    // NUL-terminated string that lives as long as the program.
    let p = unsafe { libbpf_sys::libbpf_version_string() };
    if p.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-null, NUL-terminated and static (above).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
