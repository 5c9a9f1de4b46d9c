//! The virtio-mmio register file, device side (virtio 1.x §4.2.2, `Version` 2).
//!
//! Tandem traps the front-end's accesses to the 0x200-byte window and forwards each one as
//! `(offset, size, write, value)`; [`Transport::read`] and [`Transport::write`] answer them.
//! Tandem itself answers `QueueNotify` (posting the queue bit, see [`Transport::serve`]),
//! `InterruptStatus` and `InterruptACK`, so those never arrive here. Registers are 32-bit
//! and accessed with 32-bit aligned accesses only; anything else reads 0 and writes nothing.
//! The configuration space at 0x100 takes 1-, 2-, 4- and 8-byte accesses.
#![forbid(unsafe_code)]

use super::pool::{Backing, Pool};
use super::queue::{QUEUE_NUM_MAX, Virtqueue};
use super::{Device, F_VERSION_1, Fault, INT_CONFIG_CHANGE, INT_USED_BUFFER, QUEUES};

/// `MagicValue`: "virt".
pub const MAGIC: u32 = 0x7472_6976;
/// `Version` of the (non-legacy) register layout.
pub const VERSION: u32 = 2;
/// `VendorID`: "TNDM".
pub const VENDOR_ID: u32 = 0x4D44_4E54;

/// Register offsets.
pub mod reg {
    /// `MagicValue` (R).
    pub const MAGIC_VALUE: u16 = 0x000;
    /// `Version` (R).
    pub const VERSION: u16 = 0x004;
    /// `DeviceID` (R).
    pub const DEVICE_ID: u16 = 0x008;
    /// `VendorID` (R).
    pub const VENDOR_ID: u16 = 0x00C;
    /// `DeviceFeatures` (R): 32 feature bits selected by `DeviceFeaturesSel`.
    pub const DEVICE_FEATURES: u16 = 0x010;
    /// `DeviceFeaturesSel` (W).
    pub const DEVICE_FEATURES_SEL: u16 = 0x014;
    /// `DriverFeatures` (W).
    pub const DRIVER_FEATURES: u16 = 0x020;
    /// `DriverFeaturesSel` (W).
    pub const DRIVER_FEATURES_SEL: u16 = 0x024;
    /// `QueueSel` (W).
    pub const QUEUE_SEL: u16 = 0x030;
    /// `QueueNumMax` (R).
    pub const QUEUE_NUM_MAX: u16 = 0x034;
    /// `QueueNum` (W).
    pub const QUEUE_NUM: u16 = 0x038;
    /// `QueueReady` (RW).
    pub const QUEUE_READY: u16 = 0x044;
    /// `QueueNotify` (W, answered by Tandem).
    pub const QUEUE_NOTIFY: u16 = 0x050;
    /// `InterruptStatus` (R, answered by Tandem).
    pub const INTERRUPT_STATUS: u16 = 0x060;
    /// `InterruptACK` (W, answered by Tandem).
    pub const INTERRUPT_ACK: u16 = 0x064;
    /// `Status` (RW).
    pub const STATUS: u16 = 0x070;
    /// `QueueDescLow` (W); `High` at +4.
    pub const QUEUE_DESC_LOW: u16 = 0x080;
    /// `QueueDriverLow` (W); `High` at +4.
    pub const QUEUE_DRIVER_LOW: u16 = 0x090;
    /// `QueueDeviceLow` (W); `High` at +4.
    pub const QUEUE_DEVICE_LOW: u16 = 0x0A0;
    /// `SHMLenLow`/`High`, `SHMBaseLow`/`High` (R): all ones, no shared memory regions.
    pub const SHM_FIRST: u16 = 0x0B0;
    /// Last word of the shared memory region registers.
    pub const SHM_LAST: u16 = 0x0BC;
    /// `ConfigGeneration` (R).
    pub const CONFIG_GENERATION: u16 = 0x0FC;
    /// The device-specific configuration space.
    pub const CONFIG: u16 = 0x100;
    /// End of the window.
    pub const WINDOW_END: u16 = 0x200;
}

/// Device status bits (virtio §2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready: queues are live.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up.
    pub const FAILED: u32 = 0x80;
}

/// One virtio-mmio device: registers, status, queues, and the device behind them.
pub struct Transport<D, B> {
    device: D,
    pool: Pool<B>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: [Virtqueue; QUEUES],
    faults: u64,
    last_fault: Option<Fault>,
}

impl<D: Device, B: Backing> Transport<D, B> {
    /// The device in its reset state, its buffers in `pool`.
    pub fn new(device: D, pool: Pool<B>) -> Self {
        Self {
            device,
            pool,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues: [Virtqueue::default(); QUEUES],
            faults: 0,
            last_fault: None,
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The features the driver accepted (valid once `FEATURES_OK`).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Times the front-end broke the rules (each set `DEVICE_NEEDS_RESET`), and the last way.
    pub fn faults(&self) -> (u64, Option<Fault>) {
        (self.faults, self.last_fault)
    }

    fn selected(&mut self) -> Option<&mut Virtqueue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Answers a read of `size` bytes at `offset`.
    pub fn read(&mut self, offset: u16, size: u8) -> u64 {
        if offset >= reg::CONFIG {
            return self.config_read(offset - reg::CONFIG, size);
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        let features = self.device.features();
        let v = match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_id(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => match self.selected() {
                Some(_) => u32::from(QUEUE_NUM_MAX),
                None => 0,
            },
            reg::QUEUE_READY => self.selected().map_or(0, |q| u32::from(q.ready())),
            reg::STATUS => self.status,
            reg::SHM_FIRST..=reg::SHM_LAST => u32::MAX,
            _ => 0,
        };
        u64::from(v)
    }

    fn config_read(&self, offset: u16, size: u8) -> u64 {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return 0;
        }
        (0..usize::from(size)).rev().fold(0u64, |v, i| {
            (v << 8) | u64::from(self.device.config_byte(usize::from(offset) + i))
        })
    }

    /// Carries out a write of `size` bytes at `offset`; returns the `InterruptStatus` bits to
    /// raise.
    pub fn write(&mut self, offset: u16, size: u8, value: u64) -> u32 {
        if size != 4 || !offset.is_multiple_of(4) || offset >= reg::CONFIG {
            // Registers are 32-bit; no configuration field here is writable.
            return 0;
        }
        let v = value as u32;
        let configurable = self.status & (status::FEATURES_OK | status::DRIVER_OK) == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES if configurable => match self.driver_features_sel {
                0 => self.driver_features = (self.driver_features & !0xFFFF_FFFF) | u64::from(v),
                1 => {
                    self.driver_features =
                        (self.driver_features & 0xFFFF_FFFF) | (u64::from(v) << 32)
                }
                _ => {}
            },
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM => self.configure(|q| q.num = v.min(u32::from(u16::MAX)) as u16),
            reg::QUEUE_DESC_LOW => self.configure(|q| set_low(&mut q.desc, v)),
            reg::QUEUE_DRIVER_LOW => self.configure(|q| set_low(&mut q.driver, v)),
            reg::QUEUE_DEVICE_LOW => self.configure(|q| set_low(&mut q.device, v)),
            o if o == reg::QUEUE_DESC_LOW + 4 => self.configure(|q| set_high(&mut q.desc, v)),
            o if o == reg::QUEUE_DRIVER_LOW + 4 => self.configure(|q| set_high(&mut q.driver, v)),
            o if o == reg::QUEUE_DEVICE_LOW + 4 => self.configure(|q| set_high(&mut q.device, v)),
            reg::QUEUE_READY => return self.queue_ready(v),
            reg::STATUS => return self.set_status(v),
            _ => {}
        }
        0
    }

    /// Changes the selected queue's configuration, which is fixed while it is ready.
    fn configure(&mut self, f: impl FnOnce(&mut Virtqueue)) {
        if let Some(q) = self.selected().filter(|q| !q.ready()) {
            f(q);
        }
    }

    fn queue_ready(&mut self, v: u32) -> u32 {
        let Self {
            pool,
            queues,
            queue_sel,
            ..
        } = self;
        let Some(q) = queues.get_mut(*queue_sel as usize) else {
            return 0;
        };
        if v == 0 {
            q.disable();
            return 0;
        }
        if q.ready() {
            return 0;
        }
        match q.enable(pool) {
            Ok(()) => 0,
            Err(f) => self.fail(f),
        }
    }

    fn set_status(&mut self, v: u32) -> u32 {
        if v == 0 {
            self.reset();
            return 0;
        }
        let was = self.status;
        // DEVICE_NEEDS_RESET is the device's to set; only a reset clears it.
        let mut new = (v & !status::DEVICE_NEEDS_RESET) | (was & status::DEVICE_NEEDS_RESET);
        if new & status::FEATURES_OK != 0 && was & status::FEATURES_OK == 0 {
            let offered = self.device.features();
            let acceptable =
                self.driver_features & !offered == 0 && self.driver_features & F_VERSION_1 != 0;
            if !acceptable {
                // The driver reads FEATURES_OK back and gives up.
                new &= !status::FEATURES_OK;
            }
        }
        self.status = new;
        if new & status::DRIVER_OK != 0 && was & status::DRIVER_OK == 0 {
            // Buffers may have been made available before DRIVER_OK.
            return self.serve(u32::MAX);
        }
        0
    }

    fn reset(&mut self) {
        self.device.reset();
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        for q in &mut self.queues {
            q.reset();
        }
    }

    /// The front-end broke the rules: `DEVICE_NEEDS_RESET` and a configuration-change
    /// interrupt (once; the queues are ignored until a reset).
    fn fail(&mut self, f: Fault) -> u32 {
        self.faults += 1;
        self.last_fault = Some(f);
        if self.status & status::DEVICE_NEEDS_RESET != 0 {
            return 0;
        }
        self.status |= status::DEVICE_NEEDS_RESET;
        INT_CONFIG_CHANGE
    }

    /// Serves the queues after the driver notified those in `notified` (bit n = queue n,
    /// from `VIRTIO_POLL`); returns the `InterruptStatus` bits to raise.
    pub fn serve(&mut self, notified: u32) -> u32 {
        let live = self.status & (status::DRIVER_OK | status::DEVICE_NEEDS_RESET);
        if live != status::DRIVER_OK {
            return 0;
        }
        let Self {
            device,
            pool,
            queues,
            ..
        } = self;
        let mut bits = 0;
        let mut result = device.serve(queues, pool, notified);
        for q in queues.iter_mut() {
            match q.take_interrupt(pool) {
                Ok(true) => bits |= INT_USED_BUFFER,
                Ok(false) => {}
                Err(f) => result = Err(f),
            }
        }
        match result {
            Ok(()) => bits,
            Err(f) => bits | self.fail(f),
        }
    }
}

fn set_low(field: &mut u64, v: u32) {
    *field = (*field & !0xFFFF_FFFF) | u64::from(v);
}

fn set_high(field: &mut u64, v: u32) {
    *field = (*field & 0xFFFF_FFFF) | (u64::from(v) << 32);
}

/// A front-end's register accesses, for the tests of the transport and the devices.
#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::virtio::pool::fake::Ram;
    use crate::virtio::queue::fake::{Driver, setup};

    /// Does what Linux's `virtio_mmio` + a driver do at probe: check the identity, reset,
    /// negotiate `features` (accepted by the device?), set up queue 0 and 1 of size `num` in
    /// the pool (as [`setup`] lays them out) and set `DRIVER_OK`. Returns the queues' drivers.
    pub fn probe<D: Device>(
        t: &mut Transport<D, Ram>,
        features: u64,
        num: u16,
    ) -> [Driver; QUEUES] {
        let drivers = probe_queues(t, features, num);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
        t.write(reg::STATUS, 4, u64::from(s));
        drivers
    }

    /// [`probe`] up to `DRIVER_OK`, not included.
    pub fn probe_queues<D: Device>(
        t: &mut Transport<D, Ram>,
        features: u64,
        num: u16,
    ) -> [Driver; QUEUES] {
        assert_eq!(t.read(reg::MAGIC_VALUE, 4), u64::from(MAGIC));
        assert_eq!(t.read(reg::VERSION, 4), 2);
        t.write(reg::STATUS, 4, 0);
        t.write(reg::STATUS, 4, u64::from(status::ACKNOWLEDGE));
        t.write(
            reg::STATUS,
            4,
            u64::from(status::ACKNOWLEDGE | status::DRIVER),
        );
        for sel in 0..2u64 {
            t.write(reg::DRIVER_FEATURES_SEL, 4, sel);
            t.write(
                reg::DRIVER_FEATURES,
                4,
                (features >> (32 * sel)) & 0xFFFF_FFFF,
            );
        }
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        t.write(reg::STATUS, 4, u64::from(s));
        assert_eq!(t.read(reg::STATUS, 4), u64::from(s), "features accepted");
        [0u64, 1].map(|i| {
            // The layout the queue tests use, programmed through the registers.
            let d = setup(&crate::virtio::queue::fake::new_pool(), i, num);
            // Fresh rings are zeroed, as the DMA API hands them out.
            t.pool.write(d.q.desc, &[0; 0x1000]).unwrap();
            t.write(reg::QUEUE_SEL, 4, i);
            assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
            assert!(t.read(reg::QUEUE_NUM_MAX, 4) >= u64::from(num));
            t.write(reg::QUEUE_NUM, 4, u64::from(num));
            for (low, addr) in [
                (reg::QUEUE_DESC_LOW, d.q.desc),
                (reg::QUEUE_DRIVER_LOW, d.q.driver),
                (reg::QUEUE_DEVICE_LOW, d.q.device),
            ] {
                t.write(low, 4, addr & 0xFFFF_FFFF);
                t.write(low + 4, 4, addr >> 32);
            }
            assert_eq!(t.write(reg::QUEUE_READY, 4, 1), 0);
            assert_eq!(t.read(reg::QUEUE_READY, 4), 1);
            d
        })
    }

    /// The shared pool the transport serves (to play the driver's side in it).
    pub fn pool<D: Device>(t: &Transport<D, Ram>) -> &crate::virtio::pool::Pool<Ram> {
        &t.pool
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{pool, probe, probe_queues};
    use super::*;
    use crate::virtio::pool::fake::Ram;
    use crate::virtio::queue::fake::{BASE, new_pool};
    use crate::virtio::{F_ACCESS_PLATFORM, INT_USED_BUFFER};

    /// A loopback device: each transmit-queue (1) chain is copied into a receive-queue (0)
    /// buffer. Config space: 4 bytes 0x11 0x22 0x33 0x44.
    #[derive(Default)]
    struct Loop {
        resets: u32,
    }

    impl Device for Loop {
        fn device_id(&self) -> u32 {
            42
        }
        fn features(&self) -> u64 {
            F_VERSION_1 | F_ACCESS_PLATFORM | 1
        }
        fn config_byte(&self, offset: usize) -> u8 {
            [0x11, 0x22, 0x33, 0x44].get(offset).copied().unwrap_or(0)
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
        fn serve<B: Backing>(
            &mut self,
            queues: &mut [Virtqueue; QUEUES],
            pool: &Pool<B>,
            _notified: u32,
        ) -> Result<(), Fault> {
            let [rx, tx] = queues;
            while let Some(mut out) = tx.pop(pool)? {
                let mut buf = [0u8; 64];
                let n = out.read_all(pool, &mut buf)?.min(64);
                tx.push(pool, &out, 0)?;
                if let Some(mut inb) = rx.pop(pool)? {
                    let w = inb.write_all(pool, &[&buf[..n]])?;
                    rx.push(pool, &inb, w as u32)?;
                }
            }
            Ok(())
        }
    }

    fn transport() -> Transport<Loop, Ram> {
        Transport::new(Loop::default(), new_pool())
    }

    const FEATURES: u64 = F_VERSION_1 | F_ACCESS_PLATFORM;

    /// Identity registers, features by halves, and the configuration space at any size.
    #[test]
    fn identity_and_config() {
        let mut t = transport();
        assert_eq!(t.read(reg::DEVICE_ID, 4), 42);
        assert_eq!(t.read(reg::VENDOR_ID, 4), u64::from(VENDOR_ID));
        assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 1);
        t.write(reg::DEVICE_FEATURES_SEL, 4, 1);
        assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 0b11);
        t.write(reg::DEVICE_FEATURES_SEL, 4, 2);
        assert_eq!(t.read(reg::DEVICE_FEATURES, 4), 0);
        assert_eq!(t.read(reg::CONFIG, 1), 0x11);
        assert_eq!(t.read(reg::CONFIG + 1, 2), 0x3322);
        assert_eq!(t.read(reg::CONFIG, 4), 0x4433_2211);
        assert_eq!(t.read(reg::CONFIG + 2, 8), 0x4433);
        assert_eq!(t.read(reg::CONFIG, 3), 0);
        assert_eq!(t.read(reg::CONFIG_GENERATION, 4), 0);
        assert_eq!(t.read(reg::SHM_FIRST, 4), u64::from(u32::MAX));
        // Registers only answer aligned 32-bit accesses.
        assert_eq!(t.read(reg::MAGIC_VALUE, 2), 0);
        assert_eq!(t.read(reg::MAGIC_VALUE + 1, 4), 0);
        assert_eq!(t.read(0x0F0, 4), 0);
    }

    /// The whole life of a device: probe, traffic with interrupts, reset, probe again.
    #[test]
    fn probe_traffic_reset() {
        let mut t = transport();
        let [mut rx, mut tx] = probe(&mut t, FEATURES, 8);
        assert_eq!(t.driver_features(), FEATURES);
        let p = pool(&t);
        let inb = rx.add(p, &[], 64, true);
        tx.add(p, b"ping", 4, false);
        assert_eq!(t.serve(0b10), INT_USED_BUFFER, "{:?}", t.faults());
        let p = pool(&t);
        assert_eq!(tx.used(p), [(0, 0)]);
        assert_eq!(rx.used(p), [(0, 4)]);
        let mut got = [0u8; 4];
        p.read(inb, &mut got).unwrap();
        assert_eq!(&got, b"ping");

        t.write(reg::STATUS, 4, 0);
        assert_eq!(t.status(), 0);
        assert_eq!(t.device().resets, 2, "probe resets first");
        t.write(reg::QUEUE_SEL, 4, 0);
        assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
        // Nothing is served until the driver is ready again.
        assert_eq!(t.serve(u32::MAX), 0);
        let [_rx, _tx] = probe(&mut t, FEATURES, 4);
    }

    /// Features not offered, or a driver without VERSION_1 (legacy), do not get FEATURES_OK.
    #[test]
    fn feature_negotiation() {
        for bad in [FEATURES | 1 << 40, F_ACCESS_PLATFORM] {
            let mut t = transport();
            t.write(reg::DRIVER_FEATURES_SEL, 4, 0);
            t.write(reg::DRIVER_FEATURES, 4, bad & 0xFFFF_FFFF);
            t.write(reg::DRIVER_FEATURES_SEL, 4, 1);
            t.write(reg::DRIVER_FEATURES, 4, bad >> 32);
            t.write(
                reg::STATUS,
                4,
                u64::from(status::DRIVER | status::FEATURES_OK),
            );
            assert_eq!(
                t.read(reg::STATUS, 4),
                u64::from(status::DRIVER),
                "{bad:#x}"
            );
        }
    }

    /// A queue's configuration is frozen while it is ready; a queue outside the pool is a
    /// device error, not an enabled queue.
    #[test]
    fn queue_configuration() {
        let mut t = transport();
        let [rx, _tx] = probe(&mut t, FEATURES, 8);
        t.write(reg::QUEUE_SEL, 4, 0);
        t.write(reg::QUEUE_DESC_LOW, 4, 0x1234);
        assert_eq!(t.queues[0].desc, rx.q.desc);
        t.write(reg::QUEUE_SEL, 4, 7);
        assert_eq!(t.read(reg::QUEUE_NUM_MAX, 4), 0);
        t.write(reg::QUEUE_READY, 4, 1);

        let mut t = transport();
        t.write(reg::QUEUE_SEL, 4, 1);
        t.write(reg::QUEUE_NUM, 4, 8);
        t.write(reg::QUEUE_DESC_LOW, 4, 0x1000);
        assert_eq!(t.write(reg::QUEUE_READY, 4, 1), INT_CONFIG_CHANGE);
        assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(t.faults(), (1, Some(Fault::OutsidePool)));
    }

    /// A hostile descriptor: DEVICE_NEEDS_RESET with one configuration-change interrupt, the
    /// queues left alone until a reset, after which the device works again.
    #[test]
    fn hostile_descriptor_needs_reset() {
        let mut t = transport();
        let [_rx, mut tx] = probe(&mut t, FEATURES, 8);
        let p = pool(&t);
        tx.desc(p, 0, BASE - 0x1000, 64, 0, 0);
        tx.publish(p, 0);
        assert_eq!(t.serve(0b10), INT_CONFIG_CHANGE);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
        assert_eq!(
            t.read(reg::STATUS, 4),
            u64::from(s | status::DEVICE_NEEDS_RESET)
        );
        // The driver cannot clear the bit, and further notifies are ignored.
        t.write(reg::STATUS, 4, u64::from(s));
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(t.serve(0b10), 0);
        assert_eq!(t.faults().0, 1);

        let [mut rx, mut tx] = probe(&mut t, FEATURES, 8);
        let p = pool(&t);
        rx.add(p, &[], 64, true);
        tx.add(p, b"ok", 2, false);
        assert_eq!(t.serve(0b10), INT_USED_BUFFER);
        assert_eq!(rx.used(pool(&t)), [(0, 2)]);
    }

    /// Buffers made available before DRIVER_OK are served when it is set.
    #[test]
    fn served_at_driver_ok() {
        let mut t = transport();
        let [mut rx, mut tx] = probe_queues(&mut t, FEATURES, 8);
        let p = pool(&t);
        rx.add(p, &[], 64, true);
        tx.add(p, b"early", 5, false);
        assert_eq!(t.serve(0b10), 0, "not before DRIVER_OK");
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
        assert_eq!(t.write(reg::STATUS, 4, u64::from(s)), INT_USED_BUFFER);
        assert_eq!(rx.used(pool(&t)), [(0, 5)]);
    }

    /// Property: a probed device whose rings then fill with random bytes, hit by any sequence
    /// of register accesses and notifies, never panics and never touches memory outside the
    /// pool (the fake panics if it would).
    #[test]
    fn random_register_storms() {
        let mut seed = 0x0123_4567_89AB_CDEFu64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut faults, mut used) = (0, 0);
        for round in 0..300 {
            let mut t = transport();
            let [mut rx, mut tx] = probe(&mut t, FEATURES, 8);
            let p = pool(&t);
            if round % 2 == 0 {
                // A well-behaved driver's traffic, which the storm then disturbs.
                for _ in 0..4 {
                    rx.add(p, &[], 64, true);
                    tx.add(p, b"data", 4, false);
                }
            } else {
                // Random rings and buffers, with small avail indices half the time.
                for off in (0..crate::virtio::queue::fake::SIZE as u64).step_by(8) {
                    p.write(BASE + off, &rand().to_le_bytes()).unwrap();
                }
                for q in 0..2 {
                    let driver = BASE + q * 0x4000 + 0x400;
                    if rand() % 2 == 0 {
                        p.write_u16(driver + 2, (rand() % 10) as u16).unwrap();
                    }
                }
            }
            for _ in 0..50 {
                let r = rand();
                if r % 3 != 0 {
                    if t.serve((r >> 8) as u32 & 0b111) & INT_USED_BUFFER != 0 {
                        used += 1;
                    }
                    continue;
                }
                let offset = match (r >> 8) % 4 {
                    0 => (r >> 16) as u16 % reg::WINDOW_END,
                    _ => [
                        reg::STATUS,
                        reg::QUEUE_SEL,
                        reg::QUEUE_NUM,
                        reg::QUEUE_READY,
                        reg::QUEUE_DESC_LOW,
                        reg::QUEUE_DRIVER_LOW,
                        reg::QUEUE_DEVICE_LOW,
                        reg::DRIVER_FEATURES,
                    ][(r >> 16) as usize % 8],
                };
                let size = [1, 2, 4, 8][(r >> 24) as usize % 4];
                let value = match (r >> 32) % 3 {
                    0 => (r >> 40) % 300,
                    1 => BASE + (r >> 40) % (crate::virtio::queue::fake::SIZE as u64 + 64),
                    _ => r,
                };
                if r & (1 << 60) != 0 {
                    t.read(offset, size);
                } else if t.write(offset, size, value) & INT_USED_BUFFER != 0 {
                    used += 1;
                }
            }
            faults += t.faults().0;
        }
        // The storms reach both the serving and the fault paths, not just the register file.
        assert!(faults > 100 && used > 100, "faults {faults}, used {used}");
    }
}
