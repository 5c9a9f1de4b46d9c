//! The modem workload's computation: CRC-32 and a fixed-point FFT.
//!
//! Real radio stacks spend their frame budget on exactly this kind of work: CRCs over
//! transport blocks and FFTs over OFDM symbols. Both are deterministic integer code, so under
//! `-icount` each job's cost is the same instruction count every time.
#![forbid(unsafe_code)]

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0xFFFF_FFFF, data) ^ 0xFFFF_FFFF
}

/// Continues a CRC-32 over `data` from the raw register value `crc` (no final XOR).
pub fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// FFT length (points).
pub const FFT_N: usize = 256;
const FFT_LOG2: u32 = FFT_N.trailing_zeros();

/// A complex sample in Q15 fixed point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cq15 {
    /// Real part.
    pub re: i16,
    /// Imaginary part.
    pub im: i16,
}

/// sin(x) for |x| ≤ π by a Taylor series (compile-time only: builds the twiddle table).
const fn sin(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    let mut n = 1;
    while n < 20 {
        term = -term * x * x / ((2 * n) as f64 * (2 * n + 1) as f64);
        sum += term;
        n += 1;
    }
    sum
}

/// Twiddle factors e^{-2πik/N} for k in 0..N/2, in Q15.
const TWIDDLES: [Cq15; FFT_N / 2] = {
    let mut t = [Cq15 { re: 0, im: 0 }; FFT_N / 2];
    let mut k = 0;
    while k < FFT_N / 2 {
        let a = 2.0 * core::f64::consts::PI * k as f64 / FFT_N as f64;
        // cos(a) = sin(π/2 - a), with the argument kept within [-π, π].
        let c = sin(core::f64::consts::FRAC_PI_2 - a);
        let s = sin(if a > core::f64::consts::FRAC_PI_2 {
            core::f64::consts::PI - a
        } else {
            a
        });
        t[k] = Cq15 {
            re: q15(c),
            im: q15(-s),
        };
        k += 1;
    }
    t
};

const fn q15(x: f64) -> i16 {
    let v = x * 32768.0;
    let v = if v >= 0.0 { v + 0.5 } else { v - 0.5 };
    if v >= 32767.0 {
        32767
    } else if v <= -32768.0 {
        -32768
    } else {
        v as i16
    }
}

fn mul_q15(a: i16, b: i16) -> i32 {
    (i32::from(a) * i32::from(b) + (1 << 14)) >> 15
}

/// In-place radix-2 decimation-in-time FFT of [`FFT_N`] Q15 points, scaled by 1/N (halved at
/// every stage) so that no stage can overflow.
pub fn fft_q15(x: &mut [Cq15; FFT_N]) {
    for i in 0..FFT_N {
        let j = (i as u32).reverse_bits() >> (32 - FFT_LOG2);
        if (j as usize) > i {
            x.swap(i, j as usize);
        }
    }
    let mut half = 1;
    while half < FFT_N {
        let step = FFT_N / (2 * half);
        for start in (0..FFT_N).step_by(2 * half) {
            for k in 0..half {
                let w = TWIDDLES[k * step];
                let b = x[start + k + half];
                let tr = mul_q15(b.re, w.re) - mul_q15(b.im, w.im);
                let ti = mul_q15(b.re, w.im) + mul_q15(b.im, w.re);
                let a = x[start + k];
                let (ar, ai) = (i32::from(a.re), i32::from(a.im));
                x[start + k] = Cq15 {
                    re: ((ar + tr) >> 1) as i16,
                    im: ((ai + ti) >> 1) as i16,
                };
                x[start + k + half] = Cq15 {
                    re: ((ar - tr) >> 1) as i16,
                    im: ((ai - ti) >> 1) as i16,
                };
            }
        }
        half *= 2;
    }
}

/// A test tone: `amplitude · cos(2π·bin·n/N)` in Q15, from the twiddle table.
pub fn tone(bin: usize, amplitude: i16) -> [Cq15; FFT_N] {
    let mut x = [Cq15::default(); FFT_N];
    for (n, s) in x.iter_mut().enumerate() {
        let k = (bin * n) % FFT_N;
        // cos over the full circle from the half-circle table: cos(a + π) = -cos(a).
        let c = if k < FFT_N / 2 {
            TWIDDLES[k].re
        } else {
            TWIDDLES[k - FFT_N / 2].re.saturating_neg()
        };
        s.re = mul_q15(c, amplitude) as i16;
    }
    x
}

/// The bin with the largest magnitude (squared) among the first N/2.
pub fn peak_bin(x: &[Cq15; FFT_N]) -> usize {
    let mag = |c: &Cq15| i64::from(c.re) * i64::from(c.re) + i64::from(c.im) * i64::from(c.im);
    (0..FFT_N / 2).max_by_key(|&i| mag(&x[i])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard check value of CRC-32.
    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// Updating in pieces equals one pass.
    #[test]
    fn crc32_is_incremental() {
        let data = b"The quick brown fox jumps over the lazy dog";
        let split = crc32_update(crc32_update(0xFFFF_FFFF, &data[..10]), &data[10..]) ^ 0xFFFF_FFFF;
        assert_eq!(split, crc32(data));
        assert_eq!(crc32(data), 0x414F_A339);
    }

    /// The twiddle table starts at 1 and is a unit circle to Q15 precision.
    #[test]
    fn twiddles_are_unit_circle() {
        assert_eq!(TWIDDLES[0], Cq15 { re: 32767, im: 0 });
        assert!(TWIDDLES[FFT_N / 4].re.abs() <= 1);
        assert!((TWIDDLES[FFT_N / 4].im + 32767).abs() <= 1);
        for w in TWIDDLES {
            let m = i64::from(w.re).pow(2) + i64::from(w.im).pow(2);
            assert!((m - (1 << 30)).abs() < 1 << 17, "{w:?}");
        }
    }

    /// A pure tone at bin k peaks at bin k.
    #[test]
    fn fft_finds_tone() {
        for bin in [1, 5, 17, 100] {
            let mut x = tone(bin, 16000);
            fft_q15(&mut x);
            assert_eq!(peak_bin(&x), bin);
        }
    }

    /// A constant input puts all its energy in bin 0, scaled by 1/N.
    #[test]
    fn fft_of_dc() {
        let mut x = [Cq15 { re: 8192, im: 0 }; FFT_N];
        fft_q15(&mut x);
        assert_eq!(x[0].re, 8192);
        assert!(x[1..].iter().all(|c| c.re.abs() <= 1 && c.im.abs() <= 1));
    }
}
