//! Just enough IPv4 for the modem's own address: ARP, ICMP echo and UDP echo (port 7).
//!
//! [`Inet::handle`] takes one Ethernet frame and returns the reply frame, if any. Every field
//! is checked before it is used (RFC 791/792/768/826): lengths against the frame, the IPv4
//! version, header length and header checksum, the ICMP checksum, and the UDP checksum when it
//! is not zero. A frame that breaks a rule is *malformed* (counted, dropped); a well-formed
//! frame that is not for us or not understood (IPv6, another address, a fragment, another
//! port) is *ignored* (counted, dropped). Replies carry real checksums.
#![forbid(unsafe_code)]

/// Ethernet header length (no VLAN tag).
pub const ETH_HEADER: usize = 14;
/// Largest frame handled: 1500 bytes of IP (the MTU) plus the Ethernet header.
pub const FRAME_MAX: usize = ETH_HEADER + 1500;
/// The UDP echo port (RFC 862).
pub const ECHO_PORT: u16 = 7;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xFF; 6];
const ARP_LEN: usize = 28;
const IPV4_HEADER: usize = 20;
const PROTO_ICMP: u8 = 1;
const PROTO_UDP: u8 = 17;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const REPLY_TTL: u8 = 64;

/// What happened to the frames so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received (handed to [`Inet::handle`]).
    pub rx: u64,
    /// Reply frames produced.
    pub tx: u64,
    /// Malformed frames, dropped.
    pub malformed: u64,
    /// Well-formed frames not for us or not understood, dropped.
    pub ignored: u64,
    /// ARP requests answered.
    pub arp: u64,
    /// ICMP echo requests answered.
    pub icmp: u64,
    /// UDP echo datagrams answered.
    pub udp: u64,
}

/// The one-address IPv4 host.
#[derive(Clone, Debug)]
pub struct Inet {
    mac: [u8; 6],
    ip: [u8; 4],
    ip_id: u16,
    counters: Counters,
}

/// Why a frame is dropped.
enum Drop {
    Malformed,
    Ignored,
}

/// The Internet checksum (RFC 1071) over a sequence of byte runs of any length.
#[derive(Clone, Copy, Default)]
pub struct Checksum {
    sum: u64,
    odd: bool,
}

impl Checksum {
    /// Adds bytes (continuing an odd run where the last one stopped). Eight bytes at a time:
    /// the data path checksums every byte of a datagram twice (check, then reply).
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        let mut bytes = bytes;
        if self.odd {
            let Some((&low, rest)) = bytes.split_first() else {
                return self;
            };
            self.sum += u64::from(low);
            self.odd = false;
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            // Four big-endian 16-bit words; the u64 sum cannot overflow below 2^47 bytes.
            let v = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.sum += (v >> 48) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF);
        }
        for pair in words.remainder().chunks(2) {
            match *pair {
                [high, low] => self.sum += u64::from(u16::from_be_bytes([high, low])),
                [high] => {
                    self.sum += u64::from(high) << 8;
                    self.odd = true;
                }
                _ => {}
            }
        }
        self
    }

    /// The one's-complement of the folded sum: what goes in a checksum field, and 0 when
    /// the covered bytes include a correct checksum.
    pub fn finish(&self) -> u16 {
        let mut s = self.sum;
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        !(s as u16)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

impl Inet {
    /// The host with Ethernet address `mac` and IPv4 address `ip`.
    pub const fn new(mac: [u8; 6], ip: [u8; 4]) -> Self {
        Self {
            mac,
            ip,
            ip_id: 0,
            counters: Counters {
                rx: 0,
                tx: 0,
                malformed: 0,
                ignored: 0,
                arp: 0,
                icmp: 0,
                udp: 0,
            },
        }
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Counts a frame dropped before it could be handled (e.g. larger than [`FRAME_MAX`]).
    pub fn count_malformed(&mut self) {
        self.counters.rx += 1;
        self.counters.malformed += 1;
    }

    /// Handles one received frame; returns the reply's length in `reply`, if there is one.
    pub fn handle(&mut self, frame: &[u8], reply: &mut [u8; FRAME_MAX]) -> Option<usize> {
        self.counters.rx += 1;
        match self.dispatch(frame, reply) {
            Ok(n) => {
                self.counters.tx += 1;
                Some(n)
            }
            Err(Drop::Malformed) => {
                self.counters.malformed += 1;
                None
            }
            Err(Drop::Ignored) => {
                self.counters.ignored += 1;
                None
            }
        }
    }

    fn dispatch(&mut self, frame: &[u8], reply: &mut [u8; FRAME_MAX]) -> Result<usize, Drop> {
        if frame.len() < ETH_HEADER || frame.len() > FRAME_MAX {
            return Err(Drop::Malformed);
        }
        let dst = &frame[0..6];
        if dst != self.mac && dst != BROADCAST {
            return Err(Drop::Ignored);
        }
        let payload = &frame[ETH_HEADER..];
        let (ethertype, n) = match be16(frame, 12) {
            ETHERTYPE_ARP => (ETHERTYPE_ARP, self.arp(payload, &mut reply[ETH_HEADER..])?),
            ETHERTYPE_IPV4 => (
                ETHERTYPE_IPV4,
                self.ipv4(payload, &mut reply[ETH_HEADER..])?,
            ),
            _ => return Err(Drop::Ignored),
        };
        reply[0..6].copy_from_slice(&frame[6..12]);
        reply[6..12].copy_from_slice(&self.mac);
        put16(reply, 12, ethertype);
        Ok(ETH_HEADER + n)
    }

    fn arp(&mut self, p: &[u8], out: &mut [u8]) -> Result<usize, Drop> {
        if p.len() < ARP_LEN {
            return Err(Drop::Malformed);
        }
        // Ethernet hardware (1), IPv4 protocol, 6-byte and 4-byte addresses.
        if be16(p, 0) != 1 || be16(p, 2) != ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4 {
            return Err(Drop::Malformed);
        }
        let (op, sha, spa, tpa) = (be16(p, 6), &p[8..14], &p[14..18], &p[24..28]);
        if op != 1 || tpa != self.ip {
            return Err(Drop::Ignored);
        }
        out[..8].copy_from_slice(&p[..8]);
        put16(out, 6, 2);
        out[8..14].copy_from_slice(&self.mac);
        out[14..18].copy_from_slice(&self.ip);
        out[18..24].copy_from_slice(sha);
        out[24..28].copy_from_slice(spa);
        self.counters.arp += 1;
        Ok(ARP_LEN)
    }

    fn ipv4(&mut self, p: &[u8], out: &mut [u8]) -> Result<usize, Drop> {
        if p.len() < IPV4_HEADER || p[0] >> 4 != 4 {
            return Err(Drop::Malformed);
        }
        let ihl = usize::from(p[0] & 0xF) * 4;
        let total = usize::from(be16(p, 2));
        // Ethernet may pad short packets, so the frame can be longer than `total`.
        if ihl < IPV4_HEADER || total < ihl || total > p.len() {
            return Err(Drop::Malformed);
        }
        if Checksum::default().add(&p[..ihl]).finish() != 0 {
            return Err(Drop::Malformed);
        }
        let (flags_fragment, proto) = (be16(p, 6), p[9]);
        let (src, dst) = (&p[12..16], &p[16..20]);
        if dst != self.ip {
            return Err(Drop::Ignored);
        }
        // More-fragments set or a fragment offset: reassembly is not supported.
        if flags_fragment & 0x3FFF != 0 {
            return Err(Drop::Ignored);
        }
        let body = &p[ihl..total];
        let (hdr, rest) = out.split_at_mut(IPV4_HEADER);
        let n = match proto {
            PROTO_ICMP => self.icmp(body, rest)?,
            PROTO_UDP => self.udp(src, dst, body, rest)?,
            _ => return Err(Drop::Ignored),
        };
        // A fresh header without options: from us, back to the sender.
        hdr.fill(0);
        hdr[0] = 0x45;
        put16(hdr, 2, (IPV4_HEADER + n) as u16);
        self.ip_id = self.ip_id.wrapping_add(1);
        put16(hdr, 4, self.ip_id);
        hdr[8] = REPLY_TTL;
        hdr[9] = proto;
        hdr[12..16].copy_from_slice(&self.ip);
        hdr[16..20].copy_from_slice(src);
        let sum = Checksum::default().add(hdr).finish();
        put16(hdr, 10, sum);
        Ok(IPV4_HEADER + n)
    }

    fn icmp(&mut self, m: &[u8], out: &mut [u8]) -> Result<usize, Drop> {
        if m.len() < 8 || Checksum::default().add(m).finish() != 0 {
            return Err(Drop::Malformed);
        }
        if m[0] != ICMP_ECHO_REQUEST || m[1] != 0 {
            return Err(Drop::Ignored);
        }
        let out = out.get_mut(..m.len()).ok_or(Drop::Malformed)?;
        out.copy_from_slice(m);
        out[0] = ICMP_ECHO_REPLY;
        put16(out, 2, 0);
        let sum = Checksum::default().add(out).finish();
        put16(out, 2, sum);
        self.counters.icmp += 1;
        Ok(m.len())
    }

    fn udp(&mut self, src: &[u8], dst: &[u8], d: &[u8], out: &mut [u8]) -> Result<usize, Drop> {
        if d.len() < 8 {
            return Err(Drop::Malformed);
        }
        let len = usize::from(be16(d, 4));
        if len < 8 || len > d.len() {
            return Err(Drop::Malformed);
        }
        let d = &d[..len];
        if be16(d, 6) != 0 && udp_checksum(src, dst, d) != 0 {
            return Err(Drop::Malformed);
        }
        let (sport, dport) = (be16(d, 0), be16(d, 2));
        if dport != ECHO_PORT {
            return Err(Drop::Ignored);
        }
        let out = out.get_mut(..len).ok_or(Drop::Malformed)?;
        out.copy_from_slice(d);
        put16(out, 0, dport);
        put16(out, 2, sport);
        // The reply swaps the ports and the pseudo-header's addresses and changes nothing else,
        // and a one's-complement sum does not depend on order: a checked, non-zero checksum is
        // the reply's too. Without one, it is computed over the reply's pseudo-header (from us,
        // to the sender); 0 is sent as 0xFFFF, since 0 means "no checksum".
        if be16(d, 6) == 0 {
            let sum = match udp_checksum(&self.ip, src, out) {
                0 => 0xFFFF,
                s => s,
            };
            put16(out, 6, sum);
        }
        self.counters.udp += 1;
        Ok(len)
    }
}

/// The UDP checksum over the IPv4 pseudo-header and `datagram` (0 if `datagram` holds a
/// correct checksum).
fn udp_checksum(src: &[u8], dst: &[u8], datagram: &[u8]) -> u16 {
    let len = (datagram.len() as u16).to_be_bytes();
    Checksum::default()
        .add(src)
        .add(dst)
        .add(&[0, PROTO_UDP])
        .add(&len)
        .add(datagram)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x77, 0x00, 0x01];
    const IP: [u8; 4] = [169, 254, 77, 1];
    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const PEER_IP: [u8; 4] = [169, 254, 77, 2];

    fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend(PEER_MAC);
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend(PEER_MAC);
        a.extend(PEER_IP);
        a.extend([0; 6]);
        a.extend(tpa);
        eth(BROADCAST, ETHERTYPE_ARP, &a)
    }

    fn ipv4(proto: u8, dst: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        h.extend(PEER_IP);
        h.extend(dst);
        put16(&mut h, 2, (20 + body.len()) as u16);
        let sum = Checksum::default().add(&h).finish();
        put16(&mut h, 10, sum);
        h.extend(body);
        eth(MAC, ETHERTYPE_IPV4, &h)
    }

    fn echo_request(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![ICMP_ECHO_REQUEST, 0, 0, 0, 0x00, 0x42, 0x00, 0x01];
        m.extend(payload);
        let sum = Checksum::default().add(&m).finish();
        put16(&mut m, 2, sum);
        m
    }

    fn udp(sport: u16, dport: u16, payload: &[u8], with_checksum: bool) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend(sport.to_be_bytes());
        d.extend(dport.to_be_bytes());
        d.extend(((8 + payload.len()) as u16).to_be_bytes());
        d.extend([0, 0]);
        d.extend(payload);
        if with_checksum {
            let sum = udp_checksum(&PEER_IP, &IP, &d);
            put16(&mut d, 6, sum);
        }
        d
    }

    fn handle(inet: &mut Inet, frame: &[u8]) -> Option<Vec<u8>> {
        let mut reply = [0u8; FRAME_MAX];
        inet.handle(frame, &mut reply).map(|n| reply[..n].to_vec())
    }

    fn host() -> Inet {
        Inet::new(MAC, IP)
    }

    /// Checks the reply's IPv4 header and returns its body.
    fn ip_body(reply: &[u8], proto: u8) -> Vec<u8> {
        assert_eq!(&reply[0..6], &PEER_MAC);
        assert_eq!(&reply[6..12], &MAC);
        assert_eq!(be16(reply, 12), ETHERTYPE_IPV4);
        let ip = &reply[14..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(usize::from(be16(ip, 2)), ip.len());
        assert_eq!(ip[9], proto);
        assert_eq!(&ip[12..16], &IP);
        assert_eq!(&ip[16..20], &PEER_IP);
        assert_eq!(
            Checksum::default().add(&ip[..20]).finish(),
            0,
            "IP checksum"
        );
        ip[20..].to_vec()
    }

    /// The RFC 1071 example sums to 0xddf2 (checksum 0x220d), across odd-length runs too.
    #[test]
    fn checksum_rfc1071() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::default().add(&data).finish(), !0xddf2);
        let mut c = Checksum::default();
        c.add(&data[..3]).add(&data[3..5]).add(&data[5..]);
        assert_eq!(c.finish(), !0xddf2);
    }

    /// The word-at-a-time sum equals the byte-at-a-time definition for any data split into
    /// runs of any lengths.
    #[test]
    fn checksum_matches_bytewise() {
        fn bytewise(data: &[u8]) -> u16 {
            let mut sum = 0u64;
            for (i, &b) in data.iter().enumerate() {
                sum += if i % 2 == 0 {
                    u64::from(b) << 8
                } else {
                    u64::from(b)
                };
            }
            while sum > 0xFFFF {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
            !(sum as u16)
        }
        let mut seed = 0x5EED_u32;
        let mut rand = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        for _ in 0..2000 {
            let data: Vec<u8> = (0..rand() % 100).map(|_| rand() as u8).collect();
            let mut c = Checksum::default();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = (rand() as usize % 11).min(rest.len());
                c.add(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(c.finish(), bytewise(&data), "{data:?}");
        }
    }

    /// An ARP request for our address is answered; one for another address is ignored.
    #[test]
    fn arp_reply() {
        let mut h = host();
        let r = handle(&mut h, &arp_request(IP)).expect("a reply");
        assert_eq!(&r[..6], &PEER_MAC);
        assert_eq!(be16(&r, 12), ETHERTYPE_ARP);
        let a = &r[14..];
        assert_eq!(be16(a, 6), 2, "reply");
        assert_eq!((&a[8..14], &a[14..18]), (&MAC[..], &IP[..]));
        assert_eq!((&a[18..24], &a[24..28]), (&PEER_MAC[..], &PEER_IP[..]));
        assert_eq!(handle(&mut h, &arp_request([169, 254, 77, 3])), None);
        let c = h.counters();
        assert_eq!((c.rx, c.tx, c.arp, c.ignored), (2, 1, 1, 1));
    }

    /// An echo request gets an echo reply with the same identifier, sequence and data, and
    /// correct checksums.
    #[test]
    fn ping() {
        let mut h = host();
        let req = echo_request(b"0123456789abcdefg");
        let r = handle(&mut h, &ipv4(PROTO_ICMP, IP, &req)).expect("a reply");
        let m = ip_body(&r, PROTO_ICMP);
        assert_eq!(m[0], ICMP_ECHO_REPLY);
        assert_eq!(&m[4..], &req[4..]);
        assert_eq!(Checksum::default().add(&m).finish(), 0, "ICMP checksum");
        assert_eq!(h.counters().icmp, 1);
    }

    /// UDP to port 7 comes back with the ports swapped and a correct checksum, whether the
    /// request had one or not; other ports are ignored.
    #[test]
    fn udp_echo() {
        let mut h = host();
        for with_checksum in [true, false] {
            let d = udp(40000, ECHO_PORT, b"hello, modem", with_checksum);
            let r = handle(&mut h, &ipv4(PROTO_UDP, IP, &d)).expect("a reply");
            let u = ip_body(&r, PROTO_UDP);
            assert_eq!((be16(&u, 0), be16(&u, 2)), (ECHO_PORT, 40000));
            assert_eq!(&u[8..], b"hello, modem");
            assert_ne!(be16(&u, 6), 0);
            assert_eq!(udp_checksum(&IP, &PEER_IP, &u), 0, "UDP checksum");
        }
        let d = udp(40000, 9, b"x", true);
        assert_eq!(handle(&mut h, &ipv4(PROTO_UDP, IP, &d)), None);
        let c = h.counters();
        assert_eq!((c.udp, c.ignored, c.malformed), (2, 1, 0));
    }

    /// Every broken rule is counted as malformed and dropped.
    #[test]
    fn malformed_frames() {
        let good_ping = ipv4(PROTO_ICMP, IP, &echo_request(b"data"));
        let good_udp = ipv4(PROTO_UDP, IP, &udp(1, ECHO_PORT, b"data", true));
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("runt", good_ping[..10].to_vec()),
            ("short ARP", arp_request(IP)[..30].to_vec()),
            ("short IP", good_ping[..30].to_vec()),
            ("oversize", vec![0xFF; FRAME_MAX + 1]),
        ];
        let mut bad_arp = arp_request(IP);
        bad_arp[14 + 4] = 8;
        cases.push(("ARP hlen", bad_arp));
        let mut edit = |name: &'static str, base: &Vec<u8>, at: usize, v: u8| {
            let mut f = base.clone();
            f[at] = v;
            cases.push((name, f));
        };
        edit("version", &good_ping, 14, 0x65);
        edit("IHL < 5", &good_ping, 14, 0x44);
        edit("IHL past total", &good_ping, 14, 0x4F);
        edit("total too long", &good_ping, 14 + 2, 0x7F);
        edit("IP checksum", &good_ping, 14 + 10, 0x00);
        edit("ICMP checksum", &good_ping, 34 + 2, 0x00);
        edit("UDP checksum", &good_udp, 34 + 6, 0x01);
        edit("UDP length", &good_udp, 34 + 5, 0xFF);
        for (name, frame) in cases {
            let mut h = host();
            assert_eq!(handle(&mut h, &frame), None, "{name}");
            assert_eq!(h.counters().malformed, 1, "{name}");
        }
    }

    /// Frames for someone else, IPv6, fragments and unknown protocols are ignored.
    #[test]
    fn ignored_frames() {
        let ping = ipv4(PROTO_ICMP, IP, &echo_request(b"data"));
        let mut other_mac = ping.clone();
        other_mac[0] = 0x02;
        let mut fragment = ipv4(PROTO_ICMP, IP, &echo_request(b"data"));
        fragment[14 + 6] = 0x20; // MF
        fragment[14 + 10..14 + 12].fill(0);
        let sum = Checksum::default().add(&fragment[14..34]).finish();
        put16(&mut fragment, 14 + 10, sum);
        let cases = [
            ("other MAC", other_mac),
            ("IPv6", eth(MAC, 0x86DD, &[0x60; 40])),
            ("other IP", ipv4(PROTO_ICMP, PEER_IP, &echo_request(b"x"))),
            ("fragment", fragment),
            ("TCP", ipv4(6, IP, &[0; 20])),
        ];
        for (name, frame) in cases {
            let mut h = host();
            assert_eq!(handle(&mut h, &frame), None, "{name}");
            assert_eq!(h.counters().ignored, 1, "{name}");
        }
    }

    /// Property: truncated and corrupted frames never panic, and a reply never exceeds the
    /// request it answers (so it always fits).
    #[test]
    fn random_frames_never_panic() {
        let seeds = [
            arp_request(IP),
            ipv4(PROTO_ICMP, IP, &echo_request(&[7; 100])),
            ipv4(PROTO_UDP, IP, &udp(5, ECHO_PORT, &[9; 300], true)),
        ];
        let mut h = host();
        let mut seed = 0xDEAD_BEEFu32;
        for base in &seeds {
            for len in 0..base.len() {
                let _ = handle(&mut h, &base[..len]);
            }
            for _ in 0..20_000 {
                let mut f = base.clone();
                for _ in 0..3 {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let at = (seed >> 8) as usize % f.len();
                    f[at] = (seed >> 24) as u8;
                }
                if let Some(r) = handle(&mut h, &f) {
                    assert!(r.len() <= f.len().max(ETH_HEADER + ARP_LEN));
                }
            }
        }
    }
}
