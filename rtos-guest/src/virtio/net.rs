//! virtio-net (device ID 1), device side: the modem's network interface towards Linux.
//!
//! Features offered: `VERSION_1`, `ACCESS_PLATFORM` and `MAC` (no checksum offload, no GSO,
//! no mergeable buffers, no control queue), so every frame is whole, carries its own
//! checksums and is preceded by the 12-byte `virtio_net_hdr_v1`. Queue 0 is receiveq (frames
//! to Linux), queue 1 transmitq (frames from Linux). Each frame from Linux goes to
//! [`Inet`]; its reply, if any, goes into the next receive buffer.
#![forbid(unsafe_code)]

use super::pool::{Backing, Pool};
use super::queue::Virtqueue;
use super::{Device, F_ACCESS_PLATFORM, F_VERSION_1, Fault, QUEUES};
use crate::inet::{Counters, FRAME_MAX, Inet};

/// The virtio device ID of a network card.
pub const DEVICE_ID: u32 = 1;
/// `VIRTIO_NET_F_MAC`: the device has a MAC address in its configuration space.
pub const F_MAC: u64 = 1 << 5;
/// `virtio_net_hdr_v1`: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers.
pub const HDR_LEN: usize = 12;
/// Receive queue index.
pub const RX: usize = 0;
/// Transmit queue index.
pub const TX: usize = 1;

/// The header on every received frame: no checksum or GSO work, one buffer.
const RX_HDR: [u8; HDR_LEN] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

/// A virtio-net device answering for one IPv4 address.
pub struct Net {
    mac: [u8; 6],
    inet: Inet,
    no_rx_buffer: u64,
}

impl Net {
    /// The card with address `mac`, answering for `ip`.
    pub const fn new(mac: [u8; 6], ip: [u8; 4]) -> Self {
        Self {
            mac,
            inet: Inet::new(mac, ip),
            no_rx_buffer: 0,
        }
    }

    /// The IP counters.
    pub fn counters(&self) -> Counters {
        self.inet.counters()
    }

    /// Replies dropped because Linux had no receive buffer (or too small a one) for them.
    pub fn no_rx_buffer(&self) -> u64 {
        self.no_rx_buffer
    }

    /// Puts `frame` into the next receive buffer.
    fn deliver<B: Backing>(
        &mut self,
        rx: &mut Virtqueue,
        pool: &Pool<B>,
        frame: &[u8],
    ) -> Result<(), Fault> {
        let Some(mut chain) = rx.pop(pool)? else {
            self.no_rx_buffer += 1;
            return Ok(());
        };
        let written = chain.write_all(pool, &[&RX_HDR, frame])?;
        if written < HDR_LEN + frame.len() {
            self.no_rx_buffer += 1;
        }
        rx.push(pool, &chain, written as u32)
    }
}

/// What the `rtos-net:` statistics line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetReport {
    /// The IP counters.
    pub ip: Counters,
    /// Replies dropped for want of a receive buffer.
    pub no_rx_buffer: u64,
    /// Rule breaks by the front-end (each a `DEVICE_NEEDS_RESET`).
    pub faults: u64,
}

impl NetReport {
    /// Writes `rtos-net: ch=… rx=… tx=… malformed=… ignored=… arp=… icmp=… udp=… nobuf=…
    /// faults=…` for the device on channel `channel` (within the console's 200-byte line while
    /// every counter is below 10^10).
    pub fn write_line(&self, channel: u32, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        let c = &self.ip;
        write!(
            w,
            "rtos-net: ch={channel} rx={} tx={} malformed={} ignored={} arp={} icmp={} udp={} nobuf={} faults={}",
            c.rx,
            c.tx,
            c.malformed,
            c.ignored,
            c.arp,
            c.icmp,
            c.udp,
            self.no_rx_buffer,
            self.faults
        )
    }
}

impl Device for Net {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_ACCESS_PLATFORM | F_MAC
    }

    fn config_byte(&self, offset: usize) -> u8 {
        // struct virtio_net_config: mac[6], then fields of features not offered.
        self.mac.get(offset).copied().unwrap_or(0)
    }

    fn reset(&mut self) {}

    fn serve<B: Backing>(
        &mut self,
        queues: &mut [Virtqueue; QUEUES],
        pool: &Pool<B>,
        _notified: u32,
    ) -> Result<(), Fault> {
        let [rx, tx] = queues;
        let mut frame = [0u8; HDR_LEN + FRAME_MAX];
        let mut reply = [0u8; FRAME_MAX];
        // At most one queue's worth per call: what was waiting when the notify was polled.
        for _ in 0..tx.num {
            let Some(mut chain) = tx.pop(pool)? else {
                break;
            };
            let len = chain.read_all(pool, &mut frame)?;
            tx.push(pool, &chain, 0)?;
            if len < HDR_LEN || len > frame.len() {
                self.inet.count_malformed();
                continue;
            }
            if let Some(n) = self.inet.handle(&frame[HDR_LEN..len], &mut reply) {
                self.deliver(rx, pool, &reply[..n])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::INT_USED_BUFFER;
    use crate::virtio::mmio::fake::{pool, probe};
    use crate::virtio::mmio::{Transport, reg};
    use crate::virtio::queue::fake::new_pool;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x77, 0x00, 0x01];
    const IP: [u8; 4] = [169, 254, 77, 1];

    fn arp_request() -> Vec<u8> {
        let mut f = vec![0xFF; 6];
        f.extend([2, 0, 0, 0, 0, 2, 0x08, 0x06]);
        f.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 169, 254, 77, 2]);
        f.extend([0; 6]);
        f.extend(IP);
        f
    }

    /// The statistics line has every counter, and fits the console line.
    #[test]
    fn report_line() {
        let mut r = NetReport::default();
        r.ip.icmp = 3;
        r.faults = 1;
        let mut line = crate::fmt::LineBuf::<256>::new();
        r.write_line(2, &mut line).unwrap();
        assert_eq!(
            line.as_str(),
            "rtos-net: ch=2 rx=0 tx=0 malformed=0 ignored=0 arp=0 icmp=3 udp=0 nobuf=0 faults=1"
        );
        let m = 9_999_999_999;
        let ip = Counters {
            rx: m,
            tx: m,
            malformed: m,
            ignored: m,
            arp: m,
            icmp: m,
            udp: m,
        };
        let big = NetReport {
            ip,
            no_rx_buffer: m,
            faults: m,
        };
        let mut line = crate::fmt::LineBuf::<256>::new();
        big.write_line(u32::MAX, &mut line).unwrap();
        assert!(line.as_str().len() <= crate::stats::LINE_MAX);
    }

    /// The MAC is in the configuration space; the features are the ones promised.
    #[test]
    fn config_and_features() {
        let mut t = Transport::new(Net::new(MAC, IP), new_pool());
        let mac: Vec<u8> = (0..6).map(|i| t.read(reg::CONFIG + i, 1) as u8).collect();
        assert_eq!(mac, MAC);
        assert_eq!(t.read(reg::CONFIG + 6, 2), 0);
        assert_eq!(t.read(reg::DEVICE_ID, 4), 1);
        assert_eq!(t.read(reg::DEVICE_FEATURES, 4), F_MAC);
        t.write(reg::DEVICE_FEATURES_SEL, 4, 1);
        assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 0b11);
    }

    /// An ARP request sent by Linux comes back, behind a receive header, in a receive buffer.
    #[test]
    fn arp_round_trip() {
        let mut t = Transport::new(Net::new(MAC, IP), new_pool());
        let features = F_VERSION_1 | F_ACCESS_PLATFORM | F_MAC;
        let [mut rx, mut tx] = probe(&mut t, features, 8);
        let p = pool(&t);
        let buf = rx.add(p, &[], (HDR_LEN + 1514) as u32, true);
        let mut out = vec![0u8; HDR_LEN];
        out.extend(arp_request());
        tx.add(p, &out, out.len() as u32, false);
        assert_eq!(t.serve(1 << TX), INT_USED_BUFFER);
        let p = pool(&t);
        assert_eq!(tx.used(p).len(), 1);
        let used = rx.used(p);
        assert_eq!(used, [(0, (HDR_LEN + 14 + 28) as u32)]);
        let mut got = vec![0u8; used[0].1 as usize];
        p.read(buf, &mut got).unwrap();
        assert_eq!(&got[..HDR_LEN], &RX_HDR);
        assert_eq!(&got[HDR_LEN..HDR_LEN + 6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&got[HDR_LEN + 6..HDR_LEN + 12], &MAC);
        let c = t.device().counters();
        assert_eq!((c.rx, c.tx, c.arp), (1, 1, 1));
    }

    /// A reply with no receive buffer is counted, not lost silently; a frame shorter than
    /// the header is malformed.
    #[test]
    fn no_buffer_and_short_frames() {
        let mut t = Transport::new(Net::new(MAC, IP), new_pool());
        let [_rx, mut tx] = probe(&mut t, F_VERSION_1 | F_ACCESS_PLATFORM, 8);
        let p = pool(&t);
        let mut out = vec![0u8; HDR_LEN];
        out.extend(arp_request());
        tx.add(p, &out, out.len() as u32, false);
        tx.add(p, &[0; 5], 5, false);
        tx.add(p, &[0; 64], 3000, false);
        t.serve(1 << TX);
        assert_eq!(t.device().no_rx_buffer(), 1);
        assert_eq!(t.device().counters().malformed, 2);
        assert_eq!(tx.used(pool(&t)).len(), 3);
    }
}
