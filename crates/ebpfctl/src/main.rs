//! The `ebpfctl` binary: flags and one file per command; the libraries do the work.
mod cmd;

fn main() {
    std::process::exit(cmd::run());
}
