//! Compiles each tool's probe (`src/<tool>/<tool>.bpf.c`) into `$OUT_DIR/<tool>.bpf.o`,
//! which the tool embeds: no compiler is needed at run time.
use std::path::Path;

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let dir = entry.path();
        let Some(tool) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let probe = dir.join(format!("{tool}.bpf.c"));
        if probe.is_file() {
            if let Err(e) = ebpfctl_build::compile_for_build_script(&probe, &[]) {
                panic!("{e}");
            }
        }
    }
    println!("cargo:rerun-if-changed=src");
}
