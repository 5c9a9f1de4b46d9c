//! List-register formats: GICv3 `ICH_LR<n>_EL2` and GICv2 `GICH_LR<n>`.
//!
//! Pure: a [`ListReg`] is the decoded meaning of one list register, and a
//! [`LrFormat`] turns it into the raw bits of one GIC generation and back. The
//! arch layer moves raw values between these encoders and the hardware
//! (system registers for v3, the GICH MMIO frame for v2); the vGIC model in
//! [`super`] only ever sees [`ListReg`] values.
//!
//! Reference: Arm IHI 0069 (GICv3/v4), `ICH_LR<n>_EL2`; Arm IHI 0048B
//! (GICv2), `GICH_LR<n>`.

/// A bit field of a raw list register: `bits` wide, starting at `shift`.
#[derive(Clone, Copy)]
struct Field {
    shift: u32,
    bits: u32,
}

impl Field {
    const fn mask(self) -> u64 {
        ((1u64 << self.bits) - 1) << self.shift
    }

    const fn get(self, raw: u64) -> u64 {
        (raw & self.mask()) >> self.shift
    }

    const fn put(self, value: u64) -> u64 {
        (value << self.shift) & self.mask()
    }
}

/// The state of the interrupt a list register holds (both generations use
/// the same two-bit code: bit 0 pending, bit 1 active).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    /// Empty (or the interrupt was acknowledged and deactivated).
    Invalid,
    /// Pending, not yet acknowledged by the guest.
    Pending,
    /// Acknowledged, not yet deactivated.
    Active,
    /// Active, and pending again.
    PendingActive,
}

impl LrState {
    /// The state with the given pending and active halves.
    pub const fn new(pending: bool, active: bool) -> Self {
        match (pending, active) {
            (false, false) => Self::Invalid,
            (true, false) => Self::Pending,
            (false, true) => Self::Active,
            (true, true) => Self::PendingActive,
        }
    }

    /// The pending half.
    pub const fn pending(self) -> bool {
        matches!(self, Self::Pending | Self::PendingActive)
    }

    /// The active half.
    pub const fn active(self) -> bool {
        matches!(self, Self::Active | Self::PendingActive)
    }

    const fn bits(self) -> u64 {
        self.pending() as u64 | (self.active() as u64) << 1
    }

    const fn from_bits(bits: u64) -> Self {
        Self::new(bits & 1 != 0, bits & 2 != 0)
    }
}

/// What backs a virtual interrupt: nothing (software-injected) or a physical
/// interrupt that the guest's deactivation also deactivates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// HW = 0: a purely virtual interrupt.
    Virtual {
        /// Request a maintenance interrupt when the guest deactivates it (the
        /// LR becomes Invalid). The model sets this for level-sensitive
        /// interrupts so the line is re-sampled.
        eoi: bool,
        /// GICv2 only: the source CPU of an SGI (GICH_LR.CPUID, bits `[12:10]`).
        /// GICv3 has no such field; its encoder ignores it and decodes 0.
        source: u8,
    },
    /// HW = 1: linked to physical interrupt `pintid`.
    Hardware {
        /// The physical INTID.
        pintid: u32,
    },
}

/// The decoded meaning of one list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListReg {
    /// The virtual INTID the guest acknowledges.
    pub vintid: u32,
    /// Pending/active state.
    pub state: LrState,
    /// Priority, 8-bit GIC convention (lower is more urgent).
    pub priority: u8,
    /// Group 1 (IRQ) rather than group 0 (FIQ).
    pub group1: bool,
    /// Virtual or hardware-linked.
    pub backing: Backing,
}

impl ListReg {
    /// The empty list register (all fields zero).
    pub const EMPTY: Self = Self {
        vintid: 0,
        state: LrState::Invalid,
        priority: 0,
        group1: false,
        backing: Backing::Virtual {
            eoi: false,
            source: 0,
        },
    };
}

/// One generation's raw list-register encoding.
pub trait LrFormat {
    /// Largest vINTID the format can carry.
    const MAX_VINTID: u32;
    /// Raw bits of `lr`. Fields wider than the format are truncated.
    fn encode(lr: &ListReg) -> u64;
    /// Meaning of `raw`; total (every bit pattern decodes, RES0 bits ignored).
    fn decode(raw: u64) -> ListReg;
}

/// GICv3 `ICH_LR<n>_EL2` (64 bits).
pub struct IchLr;

impl IchLr {
    /// vINTID, bits `[31:0]`.
    const VINTID: Field = Field { shift: 0, bits: 32 };
    /// pINTID, bits `[44:32]` (HW = 1).
    const PINTID: Field = Field {
        shift: 32,
        bits: 13,
    };
    /// EOI maintenance request, bit 41 (HW = 0).
    const EOI: Field = Field { shift: 41, bits: 1 };
    /// Priority, bits `[55:48]`.
    const PRIORITY: Field = Field { shift: 48, bits: 8 };
    /// Group, bit 60.
    const GROUP: Field = Field { shift: 60, bits: 1 };
    /// HW, bit 61.
    const HW: Field = Field { shift: 61, bits: 1 };
    /// State, bits `[63:62]`.
    const STATE: Field = Field { shift: 62, bits: 2 };
}

impl LrFormat for IchLr {
    // INTIDs 1020..=1023 are special; LPIs (8192+) are not modelled.
    const MAX_VINTID: u32 = u32::MAX;

    fn encode(lr: &ListReg) -> u64 {
        let backing = match lr.backing {
            Backing::Virtual { eoi, .. } => Self::EOI.put(eoi as u64),
            Backing::Hardware { pintid } => Self::HW.put(1) | Self::PINTID.put(pintid as u64),
        };
        Self::VINTID.put(lr.vintid as u64)
            | Self::PRIORITY.put(lr.priority as u64)
            | Self::GROUP.put(lr.group1 as u64)
            | Self::STATE.put(lr.state.bits())
            | backing
    }

    fn decode(raw: u64) -> ListReg {
        let backing = if Self::HW.get(raw) != 0 {
            Backing::Hardware {
                pintid: Self::PINTID.get(raw) as u32,
            }
        } else {
            Backing::Virtual {
                eoi: Self::EOI.get(raw) != 0,
                source: 0,
            }
        };
        ListReg {
            vintid: Self::VINTID.get(raw) as u32,
            state: LrState::from_bits(Self::STATE.get(raw)),
            priority: Self::PRIORITY.get(raw) as u8,
            group1: Self::GROUP.get(raw) != 0,
            backing,
        }
    }
}

/// GICv2 `GICH_LR<n>` (32 bits, returned in the low half of a `u64`).
pub struct GichLr;

impl GichLr {
    /// VirtualID, bits `[9:0]`.
    const VID: Field = Field { shift: 0, bits: 10 };
    /// PhysicalID, bits `[19:10]` (HW = 1).
    const PID: Field = Field {
        shift: 10,
        bits: 10,
    };
    /// EOI maintenance request, bit 19 (HW = 0).
    const EOI: Field = Field { shift: 19, bits: 1 };
    /// Source CPU of an SGI, bits `[12:10]` (HW = 0).
    const CPUID: Field = Field { shift: 10, bits: 3 };
    /// Priority, bits `[27:23]`: the top five bits of the 8-bit priority.
    const PRIORITY: Field = Field { shift: 23, bits: 5 };
    /// State, bits `[29:28]`.
    const STATE: Field = Field { shift: 28, bits: 2 };
    /// Grp1, bit 30.
    const GRP1: Field = Field { shift: 30, bits: 1 };
    /// HW, bit 31.
    const HW: Field = Field { shift: 31, bits: 1 };
    /// The State bits: clearing them gives the LR the hardware reports
    /// empty (GICH_ELRSR) after the guest completed what it held.
    pub const STATE_BITS: u64 = Self::STATE.mask();
}

impl LrFormat for GichLr {
    const MAX_VINTID: u32 = 1023;

    fn encode(lr: &ListReg) -> u64 {
        let backing = match lr.backing {
            Backing::Virtual { eoi, source } => {
                Self::EOI.put(eoi as u64) | Self::CPUID.put(source as u64)
            }
            Backing::Hardware { pintid } => Self::HW.put(1) | Self::PID.put(pintid as u64),
        };
        Self::VID.put(lr.vintid as u64)
            | Self::PRIORITY.put((lr.priority >> 3) as u64)
            | Self::STATE.put(lr.state.bits())
            | Self::GRP1.put(lr.group1 as u64)
            | backing
    }

    fn decode(raw: u64) -> ListReg {
        let backing = if Self::HW.get(raw) != 0 {
            Backing::Hardware {
                pintid: Self::PID.get(raw) as u32,
            }
        } else {
            Backing::Virtual {
                eoi: Self::EOI.get(raw) != 0,
                source: Self::CPUID.get(raw) as u8,
            }
        };
        ListReg {
            vintid: Self::VID.get(raw) as u32,
            state: LrState::from_bits(Self::STATE.get(raw)),
            priority: (Self::PRIORITY.get(raw) as u8) << 3,
            group1: Self::GRP1.get(raw) != 0,
            backing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [LrState; 4] = [
        LrState::Invalid,
        LrState::Pending,
        LrState::Active,
        LrState::PendingActive,
    ];

    fn samples() -> impl Iterator<Item = ListReg> {
        let backings = [
            Backing::Virtual {
                eoi: false,
                source: 0,
            },
            Backing::Virtual {
                eoi: true,
                source: 0,
            },
            Backing::Hardware { pintid: 27 },
            Backing::Hardware { pintid: 1019 },
        ];
        STATES.into_iter().flat_map(move |state| {
            backings.into_iter().flat_map(move |backing| {
                [
                    (0u32, 0u8, false),
                    (27, 0xa0, true),
                    (1019, 0xf8, true),
                    (33, 0x08, false),
                ]
                .into_iter()
                .map(move |(vintid, priority, group1)| ListReg {
                    vintid,
                    state,
                    priority,
                    group1,
                    backing,
                })
            })
        })
    }

    /// Every ICH_LR field survives encode → decode.
    #[test]
    fn ich_lr_round_trip() {
        for lr in samples() {
            assert_eq!(IchLr::decode(IchLr::encode(&lr)), lr, "{lr:?}");
        }
    }

    /// Every GICH_LR field survives encode → decode (priorities are 5-bit, SGI source kept).
    #[test]
    fn gich_lr_round_trip() {
        for mut lr in samples() {
            if let Backing::Virtual { eoi, .. } = lr.backing {
                lr.backing = Backing::Virtual {
                    eoi,
                    source: (lr.vintid % 8) as u8,
                };
            }
            assert_eq!(GichLr::decode(GichLr::encode(&lr)), lr, "{lr:?}");
        }
    }

    /// ICH_LR fields sit at the architected bit positions.
    #[test]
    fn ich_lr_bit_positions() {
        let lr = ListReg {
            vintid: 27,
            state: LrState::Pending,
            priority: 0xa0,
            group1: true,
            backing: Backing::Virtual {
                eoi: true,
                source: 0,
            },
        };
        assert_eq!(
            IchLr::encode(&lr),
            1 << 62 | 1 << 60 | 0xa0 << 48 | 1 << 41 | 27
        );
        let hw = ListReg {
            state: LrState::PendingActive,
            backing: Backing::Hardware { pintid: 30 },
            ..lr
        };
        assert_eq!(
            IchLr::encode(&hw),
            3 << 62 | 1 << 61 | 1 << 60 | 0xa0 << 48 | 30 << 32 | 27
        );
    }

    /// GICH_LR fields sit at the architected bit positions.
    #[test]
    fn gich_lr_bit_positions() {
        let lr = ListReg {
            vintid: 5,
            state: LrState::Active,
            priority: 0xa0,
            group1: true,
            backing: Backing::Virtual {
                eoi: false,
                source: 3,
            },
        };
        assert_eq!(
            GichLr::encode(&lr),
            2 << 28 | 1 << 30 | (0xa0 >> 3) << 23 | 3 << 10 | 5
        );
        let hw = ListReg {
            backing: Backing::Hardware { pintid: 0x3ff },
            ..lr
        };
        assert_eq!(GichLr::encode(&hw) >> 31, 1);
        assert_eq!(GichLr::decode(GichLr::encode(&hw)), hw);
    }

    /// Decoding is total and re-encoding keeps exactly the defined bits.
    #[test]
    fn decode_is_total_and_canonical() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v3 = IchLr::decode(x);
            assert_eq!(IchLr::decode(IchLr::encode(&v3)), v3);
            let v2 = GichLr::decode(x);
            assert_eq!(GichLr::decode(GichLr::encode(&v2)), v2);
            assert_eq!(GichLr::encode(&v2) >> 32, 0);
        }
    }

    /// Clearing GICH_LR's state bits empties it and keeps every other field.
    #[test]
    fn gich_state_bits_empty_an_lr() {
        for lr in samples() {
            let emptied = GichLr::decode(GichLr::encode(&lr) & !GichLr::STATE_BITS);
            assert_eq!(
                emptied,
                ListReg {
                    state: LrState::Invalid,
                    ..GichLr::decode(GichLr::encode(&lr))
                }
            );
        }
        assert_eq!(GichLr::STATE_BITS, 3 << 28);
    }

    /// The state halves combine and split consistently.
    #[test]
    fn state_halves() {
        for s in STATES {
            assert_eq!(LrState::new(s.pending(), s.active()), s);
        }
    }
}
