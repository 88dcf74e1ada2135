//! `observe`'s analysis of a Go executable: build info, symbols or `.gopclntab`, function
//! code, and struct offsets from DWARF.
#![no_main]
use std::path::Path;

use ebpfctl_tools::observe::{self, offsets, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((binary, offsets, offset_source)) = observe::analyse_data(Path::new("fuzz"), data) {
        let t = Target {
            binary,
            offsets,
            offset_source,
            file_id: (0, 0),
        };
        let _ = observe::inspect_json(&t);
        let _ = (t.offsets.missing(), t.offsets.to_bytes());
    }
    // Not reached above for a binary that is not Go; the DWARF reader on its own.
    if let Ok(f) = object::File::parse(data) {
        let _ = offsets::from_dwarf(&f);
    }
});
