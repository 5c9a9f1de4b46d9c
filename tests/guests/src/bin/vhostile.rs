//! `vhostile`: a hostile virtio front-end. It drives the virtio-net device its VM is given
//! (a Tandem virtio channel served by another VM, the modem) the way a broken or malicious
//! driver would, and checks each time that the back-end refuses (DEVICE_NEEDS_RESET) and
//! recovers on reset, never serving anything outside the shared pool:
//!
//! 1. `vhostile::probe`: MagicValue, Version 2 and DeviceID 1 arrive through Tandem's
//!    forwarding; the features offer VERSION_1 and ACCESS_PLATFORM.
//! 2. `vhostile::rings_outside_pool`: the virtqueue's rings at the back-end's own RAM.
//! 3. `vhostile::buffer_outside_pool`: a descriptor pointing at the back-end's RAM.
//! 4. `vhostile::descriptor_loop`: a chain whose next links loop.
//! 5. `vhostile::huge_length`: a descriptor longer than the pool.
//! 6. `vhostile::notify_storm`: 20,000 QueueNotify writes (valid and invalid queue indices);
//!    Tandem answers each without the back-end, and the device still answers afterwards.
//!
//! Then `N passed, N failed`, and forever: every 10 ms a `CHANNEL_NOTIFY` of its channel and a
//! read of MagicValue, printing `vhostile: doorbell <STATUS> magic <value>` whenever either
//! changes (the system test stops and restarts the back-end VM and watches this line).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("vhostile: a Tandem test guest; it runs only on aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod guest {
    use core::ptr::{read_volatile, write_volatile};

    use test_guests::fdt::{self, Node};
    use test_guests::harness::Harness;
    use test_guests::{check, println, rt, timer};

    test_guests::entry!(main);

    const MAGIC: u64 = 0x000;
    const VERSION: u64 = 0x004;
    const DEVICE_ID: u64 = 0x008;
    const DEVICE_FEATURES: u64 = 0x010;
    const DEVICE_FEATURES_SEL: u64 = 0x014;
    const DRIVER_FEATURES: u64 = 0x020;
    const DRIVER_FEATURES_SEL: u64 = 0x024;
    const QUEUE_SEL: u64 = 0x030;
    const QUEUE_NUM_MAX: u64 = 0x034;
    const QUEUE_NUM: u64 = 0x038;
    const QUEUE_READY: u64 = 0x044;
    const QUEUE_NOTIFY: u64 = 0x050;
    const STATUS: u64 = 0x070;
    const QUEUE_DESC: u64 = 0x080;
    const QUEUE_DRIVER: u64 = 0x090;
    const QUEUE_DEVICE: u64 = 0x0a0;

    const ACKNOWLEDGE: u32 = 1;
    const DRIVER: u32 = 2;
    const DRIVER_OK: u32 = 4;
    const FEATURES_OK: u32 = 8;
    const NEEDS_RESET: u32 = 0x40;
    const DESC_NEXT: u16 = 1;
    /// The transmit queue of virtio-net.
    const TX: u32 = 1;
    const QUEUE_SIZE: u32 = 8;
    /// The back-end's own RAM in its IPA space: never the front-end's to name.
    const BACK_END_RAM: u64 = 0x4000_0000;

    /// The device's register window.
    struct Device {
        base: u64,
    }

    impl Device {
        fn read(&self, off: u64) -> u32 {
            // SAFETY: the window is this VM's virtio-mmio device (its device tree says so);
            // Tandem traps and forwards the access.
            unsafe { read_volatile((self.base + off) as *const u32) }
        }

        fn write(&self, off: u64, v: u32) {
            // SAFETY: as `read`.
            unsafe { write_volatile((self.base + off) as *mut u32, v) }
        }

        fn write64(&self, off: u64, v: u64) {
            self.write(off, v as u32);
            self.write(off + 4, (v >> 32) as u32);
        }

        /// Resets the device and negotiates VERSION_1 and ACCESS_PLATFORM; whether the
        /// device accepted (FEATURES_OK stuck).
        fn negotiate(&self) -> bool {
            self.write(STATUS, 0);
            if self.read(STATUS) != 0 {
                return false;
            }
            self.write(STATUS, ACKNOWLEDGE);
            self.write(STATUS, ACKNOWLEDGE | DRIVER);
            self.write(DRIVER_FEATURES_SEL, 1);
            self.write(DRIVER_FEATURES, 0b11);
            self.write(DRIVER_FEATURES_SEL, 0);
            self.write(DRIVER_FEATURES, 0);
            self.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
            self.read(STATUS) & FEATURES_OK != 0
        }

        /// Sets up the transmit queue with its rings at `desc`, `avail`, `used`, then DRIVER_OK.
        fn tx_queue(&self, desc: u64, avail: u64, used: u64) {
            self.write(QUEUE_SEL, TX);
            let max = self.read(QUEUE_NUM_MAX);
            self.write(QUEUE_NUM, QUEUE_SIZE.min(max));
            self.write64(QUEUE_DESC, desc);
            self.write64(QUEUE_DRIVER, avail);
            self.write64(QUEUE_DEVICE, used);
            self.write(QUEUE_READY, 1);
            self.write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        }

        /// Whether the device flags DEVICE_NEEDS_RESET within 100 ms (or refused the queue).
        fn refuses(&self) -> bool {
            let until = timer::now() + timer::hz() / 10;
            timer::spin_until(until, || self.read(STATUS) & NEEDS_RESET != 0)
        }
    }

    /// The shared DMA pool, written through this VM's own (uncached) view.
    struct Pool {
        base: u64,
        size: u64,
    }

    impl Pool {
        /// Stores `value` at pool address `at`.
        fn store<T>(&self, at: u64, value: T) {
            assert!(at >= self.base && at + size_of::<T>() as u64 <= self.base + self.size);
            // SAFETY: inside the pool (checked), which is this VM's memory (the device tree's
            // restricted-dma-pool); callers pass aligned addresses (the MMU is off).
            unsafe { write_volatile(at as *mut T, value) }
        }

        fn desc(&self, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
            let at = self.base + 16 * i;
            self.store(at, addr);
            self.store(at + 8, len);
            self.store(at + 12, flags);
            self.store(at + 14, next);
        }

        /// Publishes descriptor 0 in the available ring at `avail` as entry `n`.
        fn offer(&self, avail: u64, n: u16) {
            self.store(avail + 4 + 2 * u64::from(n % QUEUE_SIZE as u16), 0u16);
            self.store(avail + 2, n + 1);
        }
    }

    fn main(dtb: u64) -> ! {
        let mut h = Harness::new();
        // SAFETY: the device tree Tandem placed at `dtb`, at most its header's size.
        let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, 64 << 10) };
        let (Some(dev), Some(pool)) = (
            fdt::find_compatible(blob, "virtio,mmio"),
            fdt::find_compatible(blob, "restricted-dma-pool"),
        ) else {
            println!("vhostile: no virtio device in the device tree: nothing to attack");
            rt::power_off();
        };
        println!(
            "vhostile: virtio-mmio at {:#x} (INTID {:?}, channel {:?}), pool {:#x}+{:#x}",
            dev.base, dev.intid, dev.channel, pool.base, pool.size
        );
        let d = Device { base: dev.base };
        let p = Pool {
            base: pool.base,
            size: pool.size,
        };
        probe(&mut h, &d);
        attacks(&mut h, &d, &p);
        notify_storm(&mut h, &d);
        h.summary();
        watch(&d, dev);
    }

    fn probe(h: &mut Harness, d: &Device) {
        let (magic, version, id) = (d.read(MAGIC), d.read(VERSION), d.read(DEVICE_ID));
        check!(
            h,
            "vhostile::probe",
            magic == 0x7472_6976 && version == 2 && id == 1,
            "magic {magic:#x} version {version} device {id}"
        );
        d.write(DEVICE_FEATURES_SEL, 1);
        let high = d.read(DEVICE_FEATURES);
        check!(
            h,
            "vhostile::features",
            high & 0b11 == 0b11,
            "features[63:32] = {high:#x}: VERSION_1 and ACCESS_PLATFORM"
        );
    }

    fn attacks(h: &mut Harness, d: &Device, p: &Pool) {
        let (desc, avail, used, buf) = (p.base, p.base + 0x1000, p.base + 0x2000, p.base + 0x3000);
        // Rings in the back-end's own RAM.
        let ok = d.negotiate();
        d.tx_queue(BACK_END_RAM, BACK_END_RAM + 0x1000, BACK_END_RAM + 0x2000);
        d.write(QUEUE_NOTIFY, TX);
        let refused = d.refuses() || {
            d.write(QUEUE_SEL, TX);
            d.read(QUEUE_READY) == 0
        };
        check!(
            h,
            "vhostile::rings_outside_pool",
            ok && refused,
            "negotiated {ok}, refused {refused}"
        );

        let cases: [(&str, &dyn Fn()); 3] = [
            ("vhostile::buffer_outside_pool", &|| {
                p.desc(0, BACK_END_RAM, 64, 0, 0)
            }),
            ("vhostile::descriptor_loop", &|| {
                p.desc(0, buf, 16, DESC_NEXT, 1);
                p.desc(1, buf + 16, 16, DESC_NEXT, 0);
            }),
            ("vhostile::huge_length", &|| {
                p.desc(0, buf, (p.size as u32).wrapping_add(0x1000), 0, 0)
            }),
        ];
        for (name, plant) in cases {
            let ok = d.negotiate();
            for off in (0..0x3000).step_by(8) {
                p.store(p.base + off, 0u64);
            }
            d.tx_queue(desc, avail, used);
            plant();
            p.offer(avail, 0);
            d.write(QUEUE_NOTIFY, TX);
            let refused = d.refuses();
            d.write(STATUS, 0);
            let recovered = d.read(STATUS) == 0 && d.read(MAGIC) == 0x7472_6976;
            check!(
                h,
                name,
                ok && refused && recovered,
                "negotiated {ok}, DEVICE_NEEDS_RESET {refused}, reset clears it {recovered}"
            );
        }
    }

    fn notify_storm(h: &mut Harness, d: &Device) {
        const N: u32 = 20_000;
        let start = timer::now();
        for i in 0..N {
            let queue = match i % 4 {
                0 => 0,
                1 => TX,
                2 => 99,
                _ => u32::MAX,
            };
            d.write(QUEUE_NOTIFY, queue);
        }
        let ticks = timer::now() - start;
        let ns_each = ticks * 1_000_000_000 / timer::hz() / u64::from(N);
        let alive = d.read(MAGIC) == 0x7472_6976;
        check!(
            h,
            "vhostile::notify_storm",
            alive,
            "{N} notifies, {ns_each} ns each; the device answers afterwards: {alive}"
        );
    }

    /// Forever: ring the channel and read MagicValue every 10 ms; print changes.
    fn watch(d: &Device, dev: Node) -> ! {
        let channel = u64::from(dev.channel.unwrap_or(u32::MAX));
        let mut last = None;
        loop {
            let ring = test_guests::smccc::hvc(test_guests::smccc::regs(
                pv_abi::HypercallId::ChannelNotify.fid().to_reg(),
                &[channel],
            ));
            let status = pv_abi::Status::from_reg(ring[0]).map_or("?", pv_abi::Status::name);
            let magic = d.read(MAGIC);
            if last != Some((status, magic)) {
                println!("vhostile: doorbell {status} magic {magic:#x}");
                last = Some((status, magic));
            }
            let until = timer::now() + timer::hz() / 100;
            timer::spin_until(until, || false);
        }
    }
}
