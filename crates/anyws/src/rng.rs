//! A small xorshift64* generator: the reconnect delays' jitter, and the property tests'
//! inputs. Not for anything secret.

/// xorshift64*: a 64-bit state that is never 0.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0, which xorshift cannot leave, is replaced).
    pub(crate) fn from_seed(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
