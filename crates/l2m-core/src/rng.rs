//! Seeded random number generation: one seed, independent named streams.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The purposes randomness is used for; each gets its own ChaCha stream of one seed, so
/// that adding draws in one place never shifts the numbers drawn in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum RngStream {
    /// Generating synthetic data.
    Data = 1,
    /// Imbalancing (which samples of a class are kept).
    Imbalance = 2,
    /// Initial model parameters.
    Init = 3,
    /// Batch sampling (permutations, shuffles).
    Sampler = 4,
    /// Stochastic layers (dropout) and stochastic strategies.
    Training = 5,
    /// Oversampling and other data-level baselines.
    Resampling = 6,
    /// Noise added to the initial parameters (the authors' reconstruction runs).
    Perturbation = 7,
    /// Which training samples are held out to estimate class-wise losses.
    HeldOut = 8,
}

/// A ChaCha8 generator for `seed` on the given stream: the same `(seed, stream)` gives the
/// same numbers on every platform.
pub fn seeded_rng(seed: u64, stream: RngStream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

/// The exact position of a ChaCha generator, in a form JSON can hold (its 128-bit word
/// position as a decimal string): restoring it continues the same stream of numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte key, as 64 hexadecimal digits.
    pub seed: String,
    /// The stream number.
    pub stream: u64,
    /// Words consumed, in decimal.
    pub word_pos: String,
}

impl From<&ChaCha8Rng> for RngState {
    fn from(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }
}

impl TryFrom<RngState> for ChaCha8Rng {
    type Error = CoreError;

    fn try_from(s: RngState) -> Result<Self, CoreError> {
        let bad = |what: &str| CoreError::InvalidState(format!("random generator {what}"));
        if s.seed.len() != 64 || !s.seed.is_ascii() {
            return Err(bad("seed: expected 64 hexadecimal digits"));
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s.seed[2 * i..2 * i + 2], 16)
                .map_err(|_| bad("seed: expected 64 hexadecimal digits"))?;
        }
        let pos: u128 = s
            .word_pos
            .parse()
            .map_err(|_| bad("word_pos: expected a decimal integer"))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(s.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

/// `#[serde(with = ...)]` for a [`ChaCha8Rng`] field, through [`RngState`].
pub(crate) mod chacha_serde {
    use super::*;

    pub fn serialize<S: serde::Serializer>(rng: &ChaCha8Rng, s: S) -> Result<S::Ok, S::Error> {
        RngState::from(rng).serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ChaCha8Rng, D::Error> {
        ChaCha8Rng::try_from(RngState::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = seeded_rng(7, RngStream::Sampler).random();
        let b: u64 = seeded_rng(7, RngStream::Sampler).random();
        let c: u64 = seeded_rng(7, RngStream::Init).random();
        let d: u64 = seeded_rng(8, RngStream::Sampler).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn a_saved_generator_continues_the_same_stream() {
        let mut rng = seeded_rng(11, RngStream::Sampler);
        let _: Vec<u64> = (0..37).map(|_| rng.random()).collect();
        let state = RngState::from(&rng);
        let json = serde_json::to_string(&state).expect("json");
        let mut back =
            ChaCha8Rng::try_from(serde_json::from_str::<RngState>(&json).expect("state"))
                .expect("valid");
        let a: Vec<u64> = (0..10).map(|_| rng.random()).collect();
        let b: Vec<u64> = (0..10).map(|_| back.random()).collect();
        assert_eq!(a, b);
        let mut bad = state;
        bad.seed.truncate(10);
        assert!(ChaCha8Rng::try_from(bad).is_err());
    }
}
