//! A page of Tandem's own data that no guest may ever read: the isolation test guest
//! (`tests/guests/src/bin/isolation.rs`) fails if any word it loads outside its RAM is one
//! of [`TANDEM_CANARY`]'s.
#![forbid(unsafe_code)]

/// The two canary words, alternating over one page.
pub const WORDS: [u64; 2] = [0x7a4e_d3a5_ca4a_c0de, 0x0e12_5afe_c0de_7a4e];

/// A whole page of canary words.
#[repr(C, align(4096))]
pub struct CanaryPage(pub [u64; 512]);

/// The page itself (the boot logs its address, which keeps it in the image).
#[used]
pub static TANDEM_CANARY: CanaryPage = CanaryPage(fill());

const fn fill() -> [u64; 512] {
    let mut page = [0; 512];
    let mut i = 0;
    while i < 512 {
        page[i] = WORDS[i % 2];
        i += 1;
    }
    page
}

#[cfg(test)]
mod tests {
    /// The isolation guest keeps the words inverted (so its own image does not hold them):
    /// the two copies agree.
    #[test]
    fn guest_knows_the_words() {
        let guest = include_str!("../../../tests/guests/src/bin/isolation.rs");
        for w in super::WORDS {
            let h = format!("{w:016x}");
            let grouped = format!("!0x{}_{}_{}_{}", &h[..4], &h[4..8], &h[8..12], &h[12..]);
            assert!(
                guest.contains(&grouped),
                "{grouped} missing from isolation.rs"
            );
        }
    }
}
