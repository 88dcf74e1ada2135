//! `ebpfctl inspect OBJECT.o`: one view of a BPF object file.

#[derive(Debug, thiserror::Error)]
pub enum ObjectViewError {
    #[error("{0}")]
    Other(String),
}
