//! Channels between VMs in `vms.toml`: `[[channel]]` tables, checked, then
//! placed for a selection of VMs.
//!
//! ```toml
//! [[channel]]
//! name = "modem-net"            # 1..=15 bytes of [a-z0-9_-], unique
//! between = ["linux", "rtos"]   # two different VMs; for virtio: front-end, back-end
//! size_kib = 1024               # the shared region: 4..=65536 KiB, a multiple of 4
//! virtio = "net"                # optional: "net" or "console"
//! ```
//!
//! Placement ([`place`]) gives each channel of a selection (both ends
//! selected) its shared region at the same IPA in both VMs, from
//! [`CHANNEL_WINDOW`]'s base, 2 MiB aligned; an interrupt in each VM (a free
//! SPI, counted down from the top of the VM's vGIC); and, for virtio, the
//! front-end's register window from [`VIRTIO_WINDOW_BASE`] on.

use kernel::vm::package::{CHANNEL_WINDOW, ChannelDesc, MAX_CHANNELS, NAME_LEN};
use serde::Deserialize;

use crate::vms::{RAM_IPA, VM_SPI_END, Vm};

/// The first virtio-mmio register window of a front-end (QEMU virt's
/// virtio-mmio area; each device takes 0x200 bytes).
pub const VIRTIO_WINDOW_BASE: u64 = 0x0a00_0000;
/// Most virtio devices one VM fronts.
pub const MAX_VIRTIO_PER_VM: u64 = 8;
/// Shared regions start on this boundary.
const REGION_ALIGN: u64 = 2 << 20;

/// The virtio devices a channel may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Virtio {
    /// virtio-net (device ID 1).
    Net,
    /// virtio-console (device ID 3).
    Console,
}

impl Virtio {
    const ALL: [(&'static str, Virtio); 2] = [("net", Virtio::Net), ("console", Virtio::Console)];

    /// The virtio device ID.
    pub fn device_id(self) -> u32 {
        match self {
            Virtio::Net => 1,
            Virtio::Console => 3,
        }
    }

    /// Its name in vms.toml.
    pub fn name(self) -> &'static str {
        match self {
            Virtio::Net => "net",
            Virtio::Console => "console",
        }
    }
}

/// A `[[channel]]` table, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Unique name; the guests see it as the node's `label`.
    pub name: String,
    /// The two VMs; for virtio, the front-end then the back-end.
    pub between: [String; 2],
    /// Shared region size in bytes.
    pub size: u64,
    /// The virtio device it carries, if any.
    pub virtio: Option<Virtio>,
}

/// The file's form of a channel (unknown keys are errors).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    name: String,
    between: Vec<String>,
    size_kib: i64,
    virtio: Option<String>,
}

/// Checks the `[[channel]]` tables against the file's VMs; problems go to `err`.
pub fn check(
    file: &str,
    raw: Vec<RawChannel>,
    vms: &[Vm],
    err: &mut dyn FnMut(String),
) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    if raw.len() > MAX_CHANNELS {
        err(format!(
            "{file}: {} channels; at most {MAX_CHANNELS}",
            raw.len()
        ));
    }
    for (i, r) in raw.into_iter().enumerate() {
        let label = if r.name.is_empty() {
            format!("channel #{}", i + 1)
        } else {
            format!("channel \"{}\"", r.name)
        };
        let mut bad = |problem: String| err(format!("{file}: {label}: {problem}"));
        let mut ok = true;
        if r.name.is_empty()
            || r.name.len() >= NAME_LEN
            || !r
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
        {
            bad(format!(
                "name \"{}\" must be 1..={} bytes of a-z, 0-9, - and _",
                r.name,
                NAME_LEN - 1
            ));
            ok = false;
        } else if out.iter().any(|c| c.name == r.name) {
            bad("the name is used by an earlier channel too; names must be unique".into());
            ok = false;
        }
        let between: Option<[String; 2]> = r.between.clone().try_into().ok();
        match &between {
            None => {
                bad(format!("between = {:?}: name exactly two VMs", r.between));
                ok = false;
            }
            Some([a, b]) if a == b => {
                bad(format!(
                    "between = [\"{a}\", \"{b}\"]: a channel joins two different VMs"
                ));
                ok = false;
            }
            Some(ends) => {
                for name in ends {
                    match vms.iter().find(|v| &v.name == name) {
                        None => {
                            bad(format!(
                                "between names vm \"{name}\", which this file does not declare"
                            ));
                            ok = false;
                        }
                        Some(vm) if RAM_IPA + vm.ram_size() > CHANNEL_WINDOW.0 => {
                            bad(format!(
                                "vm \"{name}\" has memory_mib = {}, but a VM with a channel keeps its RAM below {:#x} (memory_mib <= {})",
                                vm.memory_mib,
                                CHANNEL_WINDOW.0,
                                (CHANNEL_WINDOW.0 - RAM_IPA) >> 20
                            ));
                            ok = false;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        let max_kib = (CHANNEL_WINDOW.1 - CHANNEL_WINDOW.0) >> 10 >> 4;
        if r.size_kib < 4 || r.size_kib % 4 != 0 || r.size_kib as u64 > max_kib {
            bad(format!(
                "size_kib = {}: want a multiple of 4 in 4..={max_kib}",
                r.size_kib
            ));
            ok = false;
        }
        let virtio = match r.virtio.as_deref() {
            None => None,
            Some(v) => match Virtio::ALL.iter().find(|(n, _)| *n == v) {
                Some((_, kind)) => Some(*kind),
                None => {
                    bad(format!("virtio = \"{v}\": want \"net\" or \"console\""));
                    ok = false;
                    None
                }
            },
        };
        if let (true, Some(between)) = (ok, between) {
            out.push(Channel {
                name: r.name,
                between,
                size: r.size_kib as u64 * 1024,
                virtio,
            });
        }
    }
    out
}

/// A channel placed for one selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// As configured.
    pub channel: Channel,
    /// Its id: the index in the package (`tandem,channel` in the guests).
    pub id: u32,
    /// The two VMs, as indices into the selection.
    pub vms: [usize; 2],
    /// The shared region's IPA (the same in both VMs).
    pub ipa: u64,
    /// Its interrupt (INTID) in each VM.
    pub intids: [u32; 2],
    /// Virtio: the front-end's register window.
    pub window: Option<u64>,
}

impl Placed {
    /// The package record.
    pub fn desc(&self) -> ChannelDesc {
        let mut name = [0u8; NAME_LEN];
        let bytes = self.channel.name.as_bytes();
        name[..bytes.len()].copy_from_slice(bytes);
        ChannelDesc {
            name,
            vms: self.vms.map(|v| v as u8),
            virtio_device: self.channel.virtio.map_or(0, Virtio::device_id),
            ipa: self.ipa,
            size: self.channel.size,
            intids: self.intids,
            window: self.window.unwrap_or(0),
        }
    }
}

/// Places the channels whose two VMs are both in `chosen` (in order);
/// problems (no room, no free interrupt) go to `err`.
pub fn place(
    file: &str,
    channels: &[Channel],
    chosen: &[&Vm],
    err: &mut dyn FnMut(String),
) -> Vec<Placed> {
    let mut placed: Vec<Placed> = Vec::new();
    let mut next_ipa = CHANNEL_WINDOW.0;
    for c in channels {
        let ends = c
            .between
            .clone()
            .map(|name| chosen.iter().position(|v| v.name == name));
        // A channel goes with its two VMs; without both it is simply not there.
        let [Some(a), Some(b)] = ends else {
            continue;
        };
        let ipa = next_ipa;
        if ipa + c.size > CHANNEL_WINDOW.1 {
            err(format!(
                "{file}: channel \"{}\": the shared regions of the selected channels need more than the {} MiB from {:#x}",
                c.name,
                (CHANNEL_WINDOW.1 - CHANNEL_WINDOW.0) >> 20,
                CHANNEL_WINDOW.0
            ));
            continue;
        }
        next_ipa = (ipa + c.size).next_multiple_of(REGION_ALIGN);
        let mut intids = [0; 2];
        for (end, &vm) in [a, b].iter().enumerate() {
            let taken = |intid: u32| {
                chosen[vm].devices.iter().any(|d| d.irq == Some(intid))
                    || placed.iter().any(|p| {
                        p.vms
                            .iter()
                            .zip(p.intids)
                            .any(|(&v, i)| v == vm && i == intid)
                    })
            };
            // SPIs 32 (console) and 33 (Tandem's UART) are never free.
            match (34..VM_SPI_END).rev().find(|&i| !taken(i)) {
                Some(i) => intids[end] = i,
                None => err(format!(
                    "{file}: channel \"{}\": vm \"{}\" has no free interrupt left (SPIs 34..{VM_SPI_END})",
                    c.name, chosen[vm].name
                )),
            }
        }
        let window = c.virtio.map(|_| {
            let k = placed
                .iter()
                .filter(|p| p.window.is_some() && p.vms[0] == a)
                .count() as u64;
            VIRTIO_WINDOW_BASE + k * pv_abi::virtio::WINDOW_SIZE
        });
        if let Some(w) = window {
            if w >= VIRTIO_WINDOW_BASE + MAX_VIRTIO_PER_VM * pv_abi::virtio::WINDOW_SIZE {
                err(format!(
                    "{file}: channel \"{}\": vm \"{}\" fronts more than {MAX_VIRTIO_PER_VM} virtio devices",
                    c.name, chosen[a].name
                ));
            }
            if let Some(d) = chosen[a]
                .devices
                .iter()
                .find(|d| d.overlaps(w & !0xfff, w + 0x200))
            {
                err(format!(
                    "{file}: channel \"{}\": vm \"{}\"'s virtio window {w:#x} is taken by its device \"{}\"",
                    c.name, chosen[a].name, d.name
                ));
            }
        }
        placed.push(Placed {
            channel: c.clone(),
            id: placed.len() as u32,
            vms: [a, b],
            ipa,
            intids,
            window,
        });
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vms::{Board, Config, Machine};

    const FILE: &str = "vms.toml";

    const VMS: &str = r#"
[[vm]]
name = "linux"
default = true
kind = "linux"
image = "linux"
memory_mib = 256
pcpus = [0, 1]

[[vm]]
name = "rtos"
default = true
kind = "bare"
image = "rtos"
memory_mib = 16
pcpus = [2, 3]

[[vm]]
name = "probe"
kind = "bare"
image = "test-probe"
memory_mib = 16
pcpus = [0]
devices = [{ name = "rtc", base = 0x0901_0000, size = 0x1000, irq = 95 }]

[[channel]]
name = "modem-net"
between = ["linux", "rtos"]
size_kib = 1024
virtio = "net"

[[channel]]
name = "modem-at"
between = ["linux", "rtos"]
size_kib = 256
virtio = "console"

[[channel]]
name = "probe-link"
between = ["probe", "rtos"]
size_kib = 4
"#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(&Board::QEMU_VIRT, FILE, text)
    }

    fn machine() -> Machine {
        Machine::new(4, "1G").unwrap()
    }

    /// The default set gets both virtio channels, placed 2 MiB apart, with
    /// interrupts from the top of each vGIC and windows one after the other;
    /// the probe's channel is left out, with a note.
    #[test]
    fn channels_are_placed_for_a_selection() {
        let config = parse(VMS).unwrap();
        assert_eq!(config.channels.len(), 3);
        let s = config.select(None, machine()).unwrap();
        assert_eq!(s.channels.len(), 2);
        let [net, at] = [&s.channels[0], &s.channels[1]];
        assert_eq!((net.id, net.vms, net.ipa), (0, [0, 1], 0xC000_0000));
        assert_eq!((at.id, at.ipa), (1, 0xC020_0000));
        assert_eq!(net.intids, [95, 95]);
        assert_eq!(at.intids, [94, 94]);
        assert_eq!(net.window, Some(VIRTIO_WINDOW_BASE));
        assert_eq!(at.window, Some(VIRTIO_WINDOW_BASE + 0x200));
        assert!(
            s.notes.iter().all(|n| !n.contains("probe-link")),
            "{:?}",
            s.notes
        );
        let d = at.desc();
        assert_eq!(
            (d.name(), d.virtio_device, d.size),
            ("modem-at", 3, 256 << 10)
        );
    }

    /// A VM's passthrough interrupt is never given to a channel.
    #[test]
    fn interrupts_skip_devices() {
        let config = parse(VMS).unwrap();
        let names = ["probe".to_string(), "rtos".to_string()];
        let s = config.select(Some(&names), machine()).unwrap();
        assert_eq!(s.channels.len(), 1);
        assert_eq!(s.channels[0].intids, [94, 95], "probe's 95 is its RTC");
        assert_eq!(s.channels[0].window, None);
    }

    /// Every mistake in a `[[channel]]` table is one line naming it.
    #[test]
    fn bad_channels_are_errors() {
        let cases = [
            (
                r#"name = "Net""#,
                "name \"Net\" must be 1..=15 bytes of a-z, 0-9, - and _",
            ),
            (
                r#"between = ["linux"]"#,
                "between = [\"linux\"]: name exactly two VMs",
            ),
            (
                r#"between = ["linux", "linux"]"#,
                "a channel joins two different VMs",
            ),
            (
                r#"between = ["linux", "modem"]"#,
                "between names vm \"modem\", which this file does not declare",
            ),
            (
                "size_kib = 6",
                "size_kib = 6: want a multiple of 4 in 4..=65536",
            ),
            ("size_kib = 0", "size_kib = 0: want a multiple of 4"),
            (
                r#"virtio = "blk""#,
                "virtio = \"blk\": want \"net\" or \"console\"",
            ),
        ];
        for (line, want) in cases {
            let key = line.split(" = ").next().unwrap();
            let mut table = String::from("\n[[channel]]\n");
            for (k, v) in [
                ("name", "\"x\""),
                ("between", "[\"linux\", \"rtos\"]"),
                ("size_kib", "4"),
            ] {
                if k != key {
                    table.push_str(&format!("{k} = {v}\n"));
                }
            }
            table.push_str(line);
            table.push('\n');
            let e = parse(&format!("{VMS}{table}")).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
            assert!(e.starts_with("vms.toml: channel"), "{e}");
        }
        let dup = format!(
            "{VMS}\n[[channel]]\nname = \"modem-at\"\nbetween = [\"linux\", \"rtos\"]\nsize_kib = 4\n"
        );
        assert!(parse(&dup).unwrap_err().contains("names must be unique"));
        let unknown = format!(
            "{VMS}\n[[channel]]\nname = \"y\"\nbetween = [\"linux\", \"rtos\"]\nsize_kib = 4\nirq = 3\n"
        );
        assert!(parse(&unknown).unwrap_err().contains("unknown field `irq`"));
        let big = VMS.replacen("memory_mib = 256", "memory_mib = 2560", 1);
        let e = parse(&big).unwrap_err();
        assert!(
            e.contains("keeps its RAM below 0xc0000000 (memory_mib <= 2048)"),
            "{e}"
        );
    }
}
