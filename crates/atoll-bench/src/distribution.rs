//! Key choosers: uniform, zipfian (YCSB's scrambled zipfian) and latest.

/// YCSB's skew.
const ZIPFIAN_THETA: f64 = 0.99;

/// How a workload picks keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// A few keys hot (YCSB's scrambled zipfian, theta 0.99).
    Zipfian,
    /// Recently inserted keys most likely.
    Latest,
}

/// A zipfian generator over `0..items` (Gray et al., as in YCSB).
#[derive(Clone, Debug)]
pub struct Zipfian {
    items: u64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    half_pow_theta: f64,
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// A generator over `items` ranks (computing zeta is O(items), done once).
    pub fn new(items: u64) -> Zipfian {
        let items = items.max(1);
        let zetan = zeta(items, ZIPFIAN_THETA);
        let zeta2 = zeta(2, ZIPFIAN_THETA);
        let alpha = 1.0 / (1.0 - ZIPFIAN_THETA);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - ZIPFIAN_THETA)) / (1.0 - zeta2 / zetan);
        Zipfian {
            items,
            alpha,
            zetan,
            eta,
            half_pow_theta: 0.5f64.powf(ZIPFIAN_THETA),
        }
    }

    /// A rank: 0 is the most popular.
    pub fn next(&self, rng: &mut fastrand::Rng) -> u64 {
        let u = rng.f64();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1.min(self.items - 1);
        }
        let rank = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.items - 1)
    }
}

/// FNV-1a, to scatter zipfian ranks over the key space (YCSB's "scrambled" zipfian).
fn fnv(value: u64) -> u64 {
    value
        .to_le_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Picks key indexes in `0..items` (and newer ones for `latest`).
#[derive(Clone, Debug)]
pub struct KeyChooser {
    distribution: Distribution,
    items: u64,
    zipfian: Option<Zipfian>,
}

impl KeyChooser {
    /// A chooser over `items` loaded keys.
    pub fn new(distribution: Distribution, items: u64) -> KeyChooser {
        let zipfian = match distribution {
            Distribution::Uniform => None,
            _ => Some(Zipfian::new(items)),
        };
        KeyChooser {
            distribution,
            items: items.max(1),
            zipfian,
        }
    }

    /// A key index; `newest` is the highest index inserted so far.
    pub fn next(&self, rng: &mut fastrand::Rng, newest: u64) -> u64 {
        match (&self.zipfian, self.distribution) {
            (Some(zipfian), Distribution::Zipfian) => fnv(zipfian.next(rng)) % self.items,
            (Some(zipfian), Distribution::Latest) => newest.saturating_sub(zipfian.next(rng)),
            _ => rng.u64(0..self.items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipfian_is_skewed_and_in_range() {
        let zipfian = Zipfian::new(10_000);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut hits_of_zero = 0;
        for _ in 0..100_000 {
            let rank = zipfian.next(&mut rng);
            assert!(rank < 10_000);
            if rank == 0 {
                hits_of_zero += 1;
            }
        }
        // With theta 0.99 over 10,000 items rank 0 takes about 10% of draws.
        assert!(hits_of_zero > 5_000, "{hits_of_zero}");
        let latest = KeyChooser::new(Distribution::Latest, 1000);
        assert!(latest.next(&mut rng, 5000) <= 5000);
    }
}
