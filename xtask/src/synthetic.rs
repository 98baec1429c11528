//! Seeded synthetic datasets, generated in memory.
//!
//! The recipes follow the peer benchmark's generator (`../shared/peers/gen.py`), with this
//! crate's own random streams (xoshiro256++), so the distributions match and the bytes differ:
//! to compare with a peer on identical vectors, give both the files gen.py writes.
//!
//! - `random-D`: uniform in `[0, 1)^D`: no structure, the hardest case for HNSW.
//! - `clustered-D`: 100 centres drawn from `N(0, 1)^D`; a point is a uniformly chosen centre
//!   plus `N(0, 0.3²)` noise in every coordinate. Queries come from the same mixture.
//!
//! The base set of size `n` is the first `n` rows of one stream, so smaller sets are prefixes of
//! larger ones; queries come from a separate stream.

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::texmex::Vectors;

/// A synthetic family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Uniform in the unit cube.
    Random,
    /// A Gaussian mixture of 100 centres.
    Clustered,
}

/// A named synthetic dataset: family, dimension and seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synthetic {
    /// The family.
    pub family: Family,
    /// Vector dimension.
    pub dim: usize,
    /// Seed of every stream.
    pub seed: u64,
}

const N_CENTRES: usize = 100;
const SIGMA: f32 = 0.3;

impl Synthetic {
    /// Parses `random-D` or `clustered-D` (`D` from 1 to 65536), with the family's default seed.
    pub fn parse(name: &str) -> Result<Self, String> {
        let (fam, dim) = name.rsplit_once('-').ok_or_else(|| format!("dataset {name:?}: expected FAMILY-DIM"))?;
        let dim: usize = dim.parse().map_err(|_| format!("dataset {name:?}: {dim:?} is not a dimension"))?;
        if !(1..=65536).contains(&dim) {
            return Err(format!("dataset {name:?}: dimension {dim} out of range 1..=65536"));
        }
        let (family, seed) = match fam {
            "random" => (Family::Random, 20240101),
            "clustered" => (Family::Clustered, 20240202),
            _ => return Err(format!("dataset {name:?}: unknown family {fam:?} (random or clustered)")),
        };
        Ok(Synthetic { family, dim, seed })
    }

    /// The dataset's name, `FAMILY-DIM`.
    pub fn name(&self) -> String {
        let fam = match self.family {
            Family::Random => "random",
            Family::Clustered => "clustered",
        };
        format!("{fam}-{}", self.dim)
    }

    /// One sentence on how the vectors are made.
    pub fn describe(&self) -> String {
        match self.family {
            Family::Random => format!("uniform in [0,1)^{}, xoshiro256++ seed {}", self.dim, self.seed),
            Family::Clustered => format!(
                "{N_CENTRES} centres ~ N(0,1)^{}, point = centre + N(0, {SIGMA}^2) noise, xoshiro256++ seed {}",
                self.dim, self.seed
            ),
        }
    }

    fn rng(&self, stream: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// `n` base vectors and `nq` queries.
    pub fn generate(&self, n: usize, nq: usize) -> (Vectors, Vectors) {
        let dim = self.dim;
        match self.family {
            Family::Random => {
                let uniform = |stream, count: usize| {
                    let mut rng = self.rng(stream);
                    Vectors { dim, data: (0..count * dim).map(|_| rng.random::<f32>()).collect() }
                };
                (uniform(1, n), uniform(2, nq))
            }
            Family::Clustered => {
                let mut rng = self.rng(0);
                let centres: Vec<f32> =
                    (0..N_CENTRES * dim).map(|_| StandardNormal.sample(&mut rng)).collect::<Vec<f32>>();
                let mixture = |stream, count: usize| {
                    let mut rng = self.rng(stream);
                    let mut data = Vec::with_capacity(count * dim);
                    for _ in 0..count {
                        let c = rng.random_range(0..N_CENTRES);
                        for j in 0..dim {
                            let noise: f32 = StandardNormal.sample(&mut rng);
                            data.push(centres[c * dim + j] + SIGMA * noise);
                        }
                    }
                    Vectors { dim, data }
                };
                (mixture(1, n), mixture(2, nq))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_names_are_errors() {
        let s = Synthetic::parse("clustered-128").unwrap();
        assert_eq!((s.family, s.dim, s.name()), (Family::Clustered, 128, "clustered-128".to_string()));
        for bad in ["clustered", "gauss-12", "random-0", "random-x", "random-100000"] {
            assert!(Synthetic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn smaller_sets_are_prefixes_and_generation_is_deterministic() {
        for name in ["random-8", "clustered-8"] {
            let s = Synthetic::parse(name).unwrap();
            let (a, qa) = s.generate(100, 10);
            let (b, qb) = s.generate(50, 10);
            assert_eq!(&a.data[..50 * 8], &b.data[..]);
            assert_eq!(qa, qb);
            assert_ne!(a.row(0), qa.row(0));
        }
    }
}
