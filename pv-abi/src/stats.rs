//! Statistics a guest can read with the `STATS` call.
//!
//! Each statistic has a stable numeric id (passed in `x1`) and a stable short name. Linux
//! exposes them as `/sys/hypervisor/stats/<name>`; tools enumerate them with [`StatId::iter`].
//! Counters are per calling VM unless [`StatId::is_global`] says otherwise. New statistics are
//! added only at the end, by a minor ABI version.

/// A statistic id for the `STATS` call.
///
/// ```
/// use pv_abi::{Call, StatId};
///
/// // STATS takes the id in x1.
/// let args = Call::Stats(StatId::WfiExits).encode();
/// assert_eq!(args.x[1], 4);
/// assert_eq!(StatId::WfiExits.name(), "wfi_exits"); // /sys/hypervisor/stats/wfi_exits
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum StatId {
    /// Traps into the hypervisor from the calling VM (all causes).
    Exits = 0,
    /// Hypercalls (HVC exits) from the calling VM.
    Hypercalls = 1,
    /// Virtual interrupts injected into the calling VM.
    VirqsInjected = 2,
    /// MMIO accesses the hypervisor emulated for the calling VM.
    MmioEmulated = 3,
    /// WFI/WFE exits from the calling VM.
    WfiExits = 4,
    /// Hypervisor uptime in nanoseconds (global, not per VM).
    UptimeNs = 5,
    /// `CHANNEL_NOTIFY` calls of the calling VM that raised the peer's interrupt (ABI 1.2).
    ChannelDoorbells = 6,
    /// `CHANNEL_NOTIFY` calls of the calling VM refused with `DENIED` because the peer was not
    /// running (ABI 1.2).
    ChannelDenied = 7,
    /// The calling VM's accesses to its virtio-mmio windows that go to the back-end VM: every
    /// register but `QueueNotify`, `InterruptStatus` and `InterruptACK`, which Tandem answers
    /// itself (ABI 1.2).
    VirtioForwarded = 8,
    /// The calling VM's `QueueNotify` writes to its virtio-mmio windows (ABI 1.2).
    VirtioNotifies = 9,
}

impl StatId {
    /// The number of statistics this ABI version defines; ids are `0..COUNT`.
    ///
    /// ```
    /// assert_eq!(pv_abi::StatId::iter().count(), pv_abi::StatId::COUNT);
    /// ```
    pub const COUNT: usize = 10;

    /// Every statistic, in id order.
    ///
    /// ```
    /// use pv_abi::StatId;
    ///
    /// assert_eq!(StatId::ALL[0], StatId::Exits);
    /// assert_eq!(StatId::ALL.last(), Some(&StatId::VirtioNotifies));
    /// ```
    pub const ALL: [StatId; Self::COUNT] = [
        StatId::Exits,
        StatId::Hypercalls,
        StatId::VirqsInjected,
        StatId::MmioEmulated,
        StatId::WfiExits,
        StatId::UptimeNs,
        StatId::ChannelDoorbells,
        StatId::ChannelDenied,
        StatId::VirtioForwarded,
        StatId::VirtioNotifies,
    ];

    /// Iterates over every statistic in id order.
    ///
    /// ```
    /// let names: Vec<&str> = pv_abi::StatId::iter().map(|s| s.name()).collect();
    /// assert_eq!(names[..2], ["exits", "hypercalls"]);
    /// ```
    pub fn iter() -> impl Iterator<Item = StatId> {
        Self::ALL.into_iter()
    }

    /// Decodes a raw id from `x1`; `None` for ids this ABI version does not define.
    ///
    /// ```
    /// use pv_abi::StatId;
    ///
    /// assert_eq!(StatId::from_raw(1), Some(StatId::Hypercalls));
    /// assert_eq!(StatId::from_raw(99), None); // the hypervisor answers INVALID_PARAMETER
    /// ```
    pub const fn from_raw(raw: u64) -> Option<Self> {
        if raw < Self::COUNT as u64 {
            Some(Self::ALL[raw as usize])
        } else {
            None
        }
    }

    /// The raw id, as passed in `x1`.
    ///
    /// ```
    /// assert_eq!(pv_abi::StatId::UptimeNs.as_raw(), 5);
    /// ```
    pub const fn as_raw(self) -> u64 {
        self as u64
    }

    /// The stable short name (`"virqs_injected"`), used for `/sys/hypervisor/stats/<name>`.
    ///
    /// ```
    /// assert_eq!(pv_abi::StatId::VirqsInjected.name(), "virqs_injected");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            StatId::Exits => "exits",
            StatId::Hypercalls => "hypercalls",
            StatId::VirqsInjected => "virqs_injected",
            StatId::MmioEmulated => "mmio_emulated",
            StatId::WfiExits => "wfi_exits",
            StatId::UptimeNs => "uptime_ns",
            StatId::ChannelDoorbells => "channel_doorbells",
            StatId::ChannelDenied => "channel_denied",
            StatId::VirtioForwarded => "virtio_forwarded",
            StatId::VirtioNotifies => "virtio_notifies",
        }
    }

    /// Looks a statistic up by its short name.
    ///
    /// ```
    /// use pv_abi::StatId;
    ///
    /// assert_eq!(StatId::from_name("mmio_emulated"), Some(StatId::MmioEmulated));
    /// assert_eq!(StatId::from_name("colour"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::iter().find(|s| s.name() == name)
    }

    /// Whether the value is system-wide rather than per calling VM.
    ///
    /// ```
    /// use pv_abi::StatId;
    ///
    /// assert!(StatId::UptimeNs.is_global());
    /// assert!(!StatId::Exits.is_global()); // per calling VM
    /// ```
    pub const fn is_global(self) -> bool {
        matches!(self, StatId::UptimeNs)
    }
}

impl core::fmt::Display for StatId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists the ids densely in order, so `from_raw(as_raw(s)) == s`.
    #[test]
    fn raw_round_trip() {
        for (i, s) in StatId::iter().enumerate() {
            assert_eq!(s.as_raw(), i as u64);
            assert_eq!(StatId::from_raw(s.as_raw()), Some(s));
        }
        assert_eq!(StatId::iter().count(), StatId::COUNT);
    }

    /// Ids at or above `COUNT` are rejected, including huge values.
    #[test]
    fn unknown_ids_are_none() {
        for raw in [StatId::COUNT as u64, 11, 1 << 32, 1 << 63, u64::MAX] {
            assert_eq!(StatId::from_raw(raw), None, "{raw}");
        }
    }

    /// The short names are the fixed ones, unique, and look up back to their id.
    #[test]
    fn names_are_stable_and_unique() {
        let names = [
            "exits",
            "hypercalls",
            "virqs_injected",
            "mmio_emulated",
            "wfi_exits",
            "uptime_ns",
            "channel_doorbells",
            "channel_denied",
            "virtio_forwarded",
            "virtio_notifies",
        ];
        for (s, n) in StatId::iter().zip(names) {
            assert_eq!(s.name(), n);
            assert_eq!(StatId::from_name(n), Some(s));
        }
        assert_eq!(StatId::from_name("EXITS"), None);
    }

    /// Only the uptime is global.
    #[test]
    fn only_uptime_is_global() {
        for s in StatId::iter() {
            assert_eq!(s.is_global(), s == StatId::UptimeNs);
        }
    }
}
