//! Command-line definition and dispatch: `run()` returns the process exit code.
pub fn run() -> i32 {
    0
}
