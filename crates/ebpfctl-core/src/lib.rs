//! The runner's library. See `docs/architecture.md` for the path of data:
//! object → normalise → load/attach → consume → decode → print.
