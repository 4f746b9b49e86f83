//! Strategies: how the batches of an epoch are composed.

use serde::{Deserialize, Serialize};

use l2m_core::{
    Allocation, ClassLossEstimate, CyclicSampler, Estimator, Mixer, Mixture, ShuffledSampler,
};
use l2m_data::ClassDataset;

use crate::{EngineError, Result};

/// The names `StrategySpec::parse` accepts.
pub const STRATEGY_NAMES: &[&str] = &[
    "learn2mix",
    "classical",
    "stratified",
    "focal",
    "smote",
    "importance",
    "curriculum",
];

/// A training strategy, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum StrategySpec {
    /// learn2mix: batches drawn class by class with proportions `alpha_t`, moved toward the
    /// normalised class-wise losses after every epoch.
    #[serde(rename = "learn2mix")]
    Learn2Mix {
        /// Mixing rate in (0, 1].
        gamma: f64,
        /// Per-batch class counts from `alpha` (default: largest remainder, one per class).
        #[serde(default)]
        allocation: Allocation,
        /// Which per-sample losses estimate the class-wise losses (default: epoch mean).
        #[serde(default)]
        estimator: Estimator,
    },
    /// Classical training: the whole training set shuffled and cut into batches.
    Classical,
    /// Classical training with stratified batches: exactly `alpha*` per batch, drawn by the
    /// same cyclic sampler as learn2mix (the authors' regression code).
    Stratified {
        /// Per-batch class counts from `alpha*`.
        #[serde(default)]
        allocation: Allocation,
    },
    /// Focal training: shuffled batches, class-balanced focal loss (inverse-frequency
    /// weights summing to K) instead of cross-entropy.
    Focal {
        /// Focusing parameter (2 in the paper).
        gamma_focal: f64,
    },
    /// SMOTE training: every class oversampled to the largest with SMOTE, then shuffled
    /// batches, `floor(N / B)` per epoch (N the original training size).
    Smote {
        /// Neighbours per sample (5).
        k: usize,
    },
    /// Importance sampling: from each shuffled batch of B, train on B/2 samples drawn
    /// without replacement with probability proportional to their loss.
    Importance,
    /// Curriculum learning: a classical warm-up scores each sample by `1 - p(y|x)`; training
    /// restarts from the initial weights on the easiest `0.5 * 1.2^floor(epoch/10)`.
    Curriculum {
        /// Warm-up epochs before scoring.
        warmup_epochs: usize,
    },
}

impl StrategySpec {
    /// The name used in records, tables and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::Learn2Mix { .. } => "learn2mix",
            StrategySpec::Classical => "classical",
            StrategySpec::Stratified { .. } => "stratified",
            StrategySpec::Focal { .. } => "focal",
            StrategySpec::Smote { .. } => "smote",
            StrategySpec::Importance => "importance",
            StrategySpec::Curriculum { .. } => "curriculum",
        }
    }

    /// Whether the strategy needs class labels as targets.
    pub fn needs_classes(&self) -> bool {
        matches!(
            self,
            StrategySpec::Focal { .. } | StrategySpec::Curriculum { .. }
        )
    }

    /// Parses a command-line name; learn2mix takes `gamma` from the experiment.
    pub fn parse(name: &str, gamma: f64) -> Result<Self> {
        match name {
            "learn2mix" | "l2m" => Ok(StrategySpec::Learn2Mix {
                gamma,
                allocation: Allocation::default(),
                estimator: Estimator::default(),
            }),
            "classical" => Ok(StrategySpec::Classical),
            "stratified" => Ok(StrategySpec::Stratified {
                allocation: Allocation::default(),
            }),
            "focal" => Ok(StrategySpec::Focal { gamma_focal: 2.0 }),
            "smote" => Ok(StrategySpec::Smote { k: 5 }),
            "importance" => Ok(StrategySpec::Importance),
            "curriculum" => Ok(StrategySpec::Curriculum { warmup_epochs: 1 }),
            other => Err(EngineError::Config(format!(
                "unknown strategy {other:?}: expected one of {}",
                STRATEGY_NAMES.join(", ")
            ))),
        }
    }

    /// The estimator whose class-wise losses this strategy consumes.
    pub(crate) fn estimator(&self) -> Estimator {
        match self {
            StrategySpec::Learn2Mix { estimator, .. } => *estimator,
            _ => Estimator::EpochMean,
        }
    }

    /// The batch policy for `train`, seeded.
    pub(crate) fn policy(
        &self,
        train: &ClassDataset,
        batch_size: usize,
        seed: u64,
    ) -> Result<Box<dyn BatchPolicy>> {
        Ok(match self {
            StrategySpec::Learn2Mix {
                gamma, allocation, ..
            } => Box::new(MixedBatches {
                mixer: Mixer::learn2mix(*gamma, *allocation, batch_size, train.class_sizes())?,
                sampler: CyclicSampler::new(train.members().to_vec(), seed)?,
                counts: Vec::new(),
            }),
            StrategySpec::Stratified { allocation } => Box::new(MixedBatches {
                mixer: Mixer::stratified(*allocation, batch_size, train.class_sizes())?,
                sampler: CyclicSampler::new(train.members().to_vec(), seed)?,
                counts: Vec::new(),
            }),
            StrategySpec::Classical
            | StrategySpec::Focal { .. }
            | StrategySpec::Smote { .. }
            | StrategySpec::Importance
            | StrategySpec::Curriculum { .. } => Box::new(ShuffledBatches {
                sampler: ShuffledSampler::new(train.all_members(), seed)?,
                batch_size,
                alpha: train.alpha_star()?,
            }),
        })
    }
}

/// Curriculum batches: each epoch, a shuffled pass over the easiest fraction of the
/// training set (positions in `order`, easiest first).
pub(crate) struct CurriculumBatches {
    pub order: Vec<u32>,
    pub batch_size: usize,
    pub epoch: usize,
    pub seed: u64,
    pub sampler: Option<ShuffledSampler>,
    pub alpha: Mixture,
}

impl BatchPolicy for CurriculumBatches {
    fn save(&self) -> PolicyState {
        PolicyState::Curriculum {
            order: self.order.clone(),
            epoch: self.epoch,
        }
    }

    fn restore(&mut self, state: PolicyState) -> Result<()> {
        match state {
            PolicyState::Curriculum { order, epoch } => {
                self.order = order;
                self.epoch = epoch;
                self.sampler = None;
                Ok(())
            }
            other => Err(wrong_kind("curriculum", &other)),
        }
    }

    fn begin_epoch(&mut self) -> Result<()> {
        let f = l2m_baselines::curriculum::fraction(self.epoch);
        let n = ((self.order.len() as f64 * f).ceil() as usize)
            .clamp(self.batch_size.min(self.order.len()), self.order.len());
        // A new sampler per pool size; the stream continues through the seed and epoch.
        self.sampler = Some(ShuffledSampler::new(
            self.order[..n].to_vec(),
            self.seed ^ (self.epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )?);
        self.epoch += 1;
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        match &mut self.sampler {
            Some(s) => Ok(s.next_batch(self.batch_size, out)?),
            None => Err(EngineError::Config(
                "curriculum batches before the first epoch".into(),
            )),
        }
    }

    fn end_epoch(&mut self, _estimate: &ClassLossEstimate) -> Result<()> {
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        &self.alpha
    }
}

/// What a batch policy must remember between epochs, saved in a checkpoint: with it a
/// resumed run draws exactly the batches the uninterrupted run would have drawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub(crate) enum PolicyState {
    /// Class-by-class batches (learn2mix, stratified): the proportions and the sampler.
    Mixed {
        alpha: Vec<f64>,
        sampler: CyclicSampler,
    },
    /// Shuffled batches: the sampler.
    Shuffled { sampler: ShuffledSampler },
    /// Curriculum: the difficulty order (easiest first) and the next epoch.
    Curriculum { order: Vec<u32>, epoch: usize },
}

impl PolicyState {
    fn kind(&self) -> &'static str {
        match self {
            PolicyState::Mixed { .. } => "mixed",
            PolicyState::Shuffled { .. } => "shuffled",
            PolicyState::Curriculum { .. } => "curriculum",
        }
    }
}

fn wrong_kind(expected: &str, got: &PolicyState) -> EngineError {
    EngineError::Checkpoint(format!(
        "the checkpoint holds {} batches, the strategy draws {expected} batches",
        got.kind()
    ))
}

/// The per-epoch behaviour of a strategy inside the training loop.
pub(crate) trait BatchPolicy {
    /// The state to checkpoint at the end of an epoch.
    fn save(&self) -> PolicyState;
    /// Continues from a saved state.
    fn restore(&mut self, state: PolicyState) -> Result<()>;
    /// Start of an epoch: reshuffle, compute this epoch's class counts.
    fn begin_epoch(&mut self) -> Result<()>;
    /// Appends the next batch's sample indices.
    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()>;
    /// End of an epoch with the class-wise losses of the epoch.
    fn end_epoch(&mut self, estimate: &ClassLossEstimate) -> Result<()>;
    /// The class proportions batches are drawn with (in expectation for shuffled batches).
    fn alpha(&self) -> &Mixture;
}

struct MixedBatches {
    mixer: Mixer,
    sampler: CyclicSampler,
    counts: Vec<usize>,
}

impl BatchPolicy for MixedBatches {
    fn save(&self) -> PolicyState {
        PolicyState::Mixed {
            alpha: self.mixer.alpha().as_slice().to_vec(),
            sampler: self.sampler.clone(),
        }
    }

    fn restore(&mut self, state: PolicyState) -> Result<()> {
        match state {
            PolicyState::Mixed { alpha, sampler } => {
                if sampler.class_sizes() != self.sampler.class_sizes() {
                    return Err(EngineError::Checkpoint(format!(
                        "the saved sampler has class sizes {:?}, the training set {:?}",
                        sampler.class_sizes(),
                        self.sampler.class_sizes()
                    )));
                }
                self.mixer.set_alpha(Mixture::new(alpha)?)?;
                self.sampler = sampler;
                Ok(())
            }
            other => Err(wrong_kind("class-by-class", &other)),
        }
    }

    fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        self.counts = self.mixer.counts()?;
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.fill_batch(&self.counts, out)?)
    }

    fn end_epoch(&mut self, estimate: &ClassLossEstimate) -> Result<()> {
        self.mixer.update(estimate)?;
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        self.mixer.alpha()
    }
}

struct ShuffledBatches {
    sampler: ShuffledSampler,
    batch_size: usize,
    alpha: Mixture,
}

impl BatchPolicy for ShuffledBatches {
    fn save(&self) -> PolicyState {
        PolicyState::Shuffled {
            sampler: self.sampler.clone(),
        }
    }

    fn restore(&mut self, state: PolicyState) -> Result<()> {
        match state {
            PolicyState::Shuffled { sampler } => {
                if sampler.len() != self.sampler.len() {
                    return Err(EngineError::Checkpoint(format!(
                        "the saved sampler covers {} samples, the training set {}",
                        sampler.len(),
                        self.sampler.len()
                    )));
                }
                self.sampler = sampler;
                Ok(())
            }
            other => Err(wrong_kind("shuffled", &other)),
        }
    }

    fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.next_batch(self.batch_size, out)?)
    }

    fn end_epoch(&mut self, _estimate: &ClassLossEstimate) -> Result<()> {
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        &self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            StrategySpec::parse("classical", 0.1).expect("valid").name(),
            "classical"
        );
        assert!(matches!(
            StrategySpec::parse("learn2mix", 0.3).expect("valid"),
            StrategySpec::Learn2Mix { gamma, .. } if gamma == 0.3
        ));
        for name in STRATEGY_NAMES {
            assert_eq!(StrategySpec::parse(name, 0.1).expect("known").name(), *name);
        }
        let e = StrategySpec::parse("dro", 0.1).expect_err("unknown");
        assert!(e.to_string().contains("unknown strategy \"dro\""));
    }

    #[test]
    fn curriculum_draws_only_from_the_easiest_fraction() {
        let order: Vec<u32> = (0..100).rev().collect(); // easiest first: 99, 98, ...
        let mut c = CurriculumBatches {
            order: order.clone(),
            batch_size: 10,
            epoch: 0,
            seed: 1,
            sampler: None,
            alpha: Mixture::uniform(2).expect("valid"),
        };
        let mut seen = Vec::new();
        for epoch in 0..25 {
            c.begin_epoch().expect("epoch");
            let mut out = Vec::new();
            for _ in 0..10 {
                c.next_batch(&mut out).expect("batch");
            }
            let pool = (100.0 * l2m_baselines::curriculum::fraction(epoch)).ceil() as usize;
            assert!(
                out.iter().all(|i| order[..pool].contains(i)),
                "epoch {epoch}"
            );
            seen.push(out.iter().collect::<std::collections::BTreeSet<_>>().len());
        }
        assert_eq!(
            seen[0], 50,
            "the first epochs cover exactly the easiest half"
        );
        // Epoch 20: a pool of 0.5 * 1.2^2 = 72% (7 full batches per pass, then a new pass).
        assert!((70..=72).contains(&seen[20]), "{}", seen[20]);
    }

    #[test]
    fn serde_round_trip() {
        let s = StrategySpec::parse("learn2mix", 0.01).expect("valid");
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"kind":"learn2mix","gamma":0.01,"allocation":{"kind":"largest-remainder","min_per_class":1},"estimator":"epoch-mean"}"#
        );
        let back: StrategySpec =
            serde_json::from_str(r#"{"kind":"learn2mix","gamma":0.5}"#).expect("defaults");
        assert!(matches!(back, StrategySpec::Learn2Mix { .. }));
    }
}
