//! Device trees, malformed, truncated or hostile: Tandem's boot path
//! ([`kernel::platform::fdt`]: sanitize, then the facts it reads, then usable
//! RAM as `boot` computes it) and the RTOS's reader of the tree Tandem gives
//! it ([`rtos_guest::dt`]).
//!
//! Checked: no panic; a blob `sanitize` accepts keeps its size, and parsing
//! it again gives the same facts (sanitizing is idempotent).

use kernel::mm::ranges;
use kernel::platform::fdt;

/// Runs one input.
pub fn run(data: &[u8]) {
    // The RTOS reads the blob as it is.
    let _ = rtos_guest::dt::tandem_nodes(data);
    let _ = rtos_guest::dt::find_gic(data);
    let _ = rtos_guest::dt::total_size(data);

    let mut blob = data.to_vec();
    let Ok(total) = fdt::sanitize(&mut blob) else {
        return;
    };
    assert!(total <= data.len(), "sanitize grew the blob to {total}");
    let once = blob.clone();
    assert_eq!(
        fdt::sanitize(&mut blob),
        Ok(total),
        "a sanitized blob is rejected"
    );
    assert_eq!(blob, once, "sanitizing twice changed the blob");
    let Ok(facts) = fdt::parse(&blob) else {
        return;
    };
    let _ = (
        facts.model(),
        facts.bootargs(),
        facts.bootarg("tandem.crash"),
    );
    let _ = facts.ram_bytes();
    for r in facts
        .memory
        .as_slice()
        .iter()
        .chain(facts.reserved.as_slice())
    {
        assert!(r.end() >= r.base);
    }
    let usable = ranges::subtract(facts.memory.as_slice(), facts.reserved.as_slice(), 4096);
    for u in usable.as_slice() {
        assert!(
            facts
                .memory
                .as_slice()
                .iter()
                .any(|m| u.base >= m.base && u.end() <= m.end()),
            "usable range {u:x?} outside memory"
        );
        assert!(
            !facts
                .reserved
                .as_slice()
                .iter()
                .any(|r| u.base < r.end() && r.base < u.end() && r.size > 0),
            "usable range {u:x?} overlaps a reservation"
        );
    }
}
