//! The front door for a training loop of one's own: [`Learn2MixSampler`].

use serde::{Deserialize, Serialize};

use crate::{
    Allocation, Cadence, ClassLossEstimate, CoreError, CyclicSampler, Estimator, Floored, Mixer,
    MixingRule, Mixture, Result, Schedule, ScheduleState, Static,
};

/// The rule a [`Learn2MixSampler`] moves its proportions with.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Rule {
    /// The paper's rule with mixing rate `gamma` in (0, 1].
    Learn2Mix {
        /// Mixing rate.
        gamma: f64,
    },
    /// Exponentiated gradient with step size `eta` (Group DRO's rule).
    ExponentiatedGradient {
        /// Step size.
        eta: f64,
    },
    /// learn2mix toward `L^(1/T)`.
    Tempered {
        /// Mixing rate.
        gamma: f64,
        /// Temperature.
        temperature: f64,
    },
    /// Fixed proportions `alpha*` (stratified batches).
    Fixed,
}

impl Rule {
    /// Built through the registry ([`crate::rules`]), as every rule a caller names is.
    fn build(self) -> Result<Box<dyn MixingRule>> {
        let (name, params): (&str, Vec<(&str, f64)>) = match self {
            Rule::Learn2Mix { gamma } => ("learn2mix", vec![("gamma", gamma)]),
            Rule::ExponentiatedGradient { eta } => ("eg", vec![("eta", eta)]),
            Rule::Tempered { gamma, temperature } => (
                "tempered",
                vec![("gamma", gamma), ("temperature", temperature)],
            ),
            Rule::Fixed => return Ok(Box::new(Static)),
        };
        crate::rules::rule(name)?.build(&|p| params.iter().find(|(n, _)| *n == p).map(|(_, v)| *v))
    }
}

/// How a [`Learn2MixSampler`] is set up; every field but the classes and the batch size
/// has the paper's default. Build it with [`Learn2MixSampler::builder`].
#[derive(Debug, Clone)]
pub struct SamplerBuilder {
    members: Vec<Vec<u32>>,
    batch_size: usize,
    rule: Rule,
    seed: u64,
    allocation: Allocation,
    estimator: Estimator,
    floor: f64,
    ema: Option<f64>,
    cadence: Cadence,
}

impl SamplerBuilder {
    /// The rule (default: learn2mix with gamma 0.1).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rule = rule;
        self
    }

    /// The seed of every permutation (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Per-batch class counts from the proportions (default: largest remainder, at least
    /// one sample per class).
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// Which losses of a period estimate the class-wise losses (default: their mean).
    pub fn estimator(mut self, estimator: Estimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// Mixes every update with uniform by `eps` in [0, 1) (default 0).
    pub fn floor(mut self, eps: f64) -> Self {
        self.floor = eps;
        self
    }

    /// Smooths the class-wise losses by an exponential moving average with weight `beta`
    /// on the past (default: none).
    pub fn ema(mut self, beta: f64) -> Self {
        self.ema = Some(beta);
        self
    }

    /// Updates every `steps` steps instead of at [`Learn2MixSampler::end_epoch`].
    pub fn update_every(mut self, steps: usize) -> Self {
        self.cadence = Cadence::Steps(steps);
        self
    }

    /// The sampler; errors name the bad parameter.
    pub fn build(self) -> Result<Learn2MixSampler> {
        let sizes: Vec<usize> = self.members.iter().map(Vec::len).collect();
        let n: usize = sizes.iter().sum();
        if self.batch_size == 0 {
            return Err(CoreError::ZeroBatchSize);
        }
        let rule = self.rule.build()?;
        let rule: Box<dyn MixingRule> = if self.floor > 0.0 {
            Box::new(Floored::new(rule, self.floor)?)
        } else {
            Floored::new(Box::new(Static), self.floor)?; // checks the range
            rule
        };
        let mixer = Mixer::new(rule, self.allocation, self.batch_size, sizes.clone())?;
        let schedule = Schedule::new(mixer, self.estimator, self.ema, self.cadence)?;
        let sampler = CyclicSampler::new(self.members, self.seed)?;
        Ok(Learn2MixSampler {
            counts: schedule.counts()?,
            schedule,
            sampler,
            steps_per_epoch: n / self.batch_size,
        })
    }
}

/// One batch: the sample indices and the class of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Indices into the caller's dataset.
    pub indices: Vec<u32>,
    /// The class of each index, in the same order.
    pub classes: Vec<usize>,
}

/// learn2mix for any training loop: hands out each step's sample indices (drawn class by
/// class with the current proportions, by the paper's cyclic sampler), takes the batch's
/// per-sample (or per-class) losses, and moves the proportions at the end of each epoch
/// (or every `S` steps). Its state serialises for checkpoints.
///
/// It holds no data and no model: `members[c]` are the caller's indices of class `c`, and
/// the losses are plain numbers, so it serves Candle, Burn, tch or anything else.
#[derive(Debug)]
pub struct Learn2MixSampler {
    schedule: Schedule,
    sampler: CyclicSampler,
    counts: Vec<usize>,
    steps_per_epoch: usize,
}

/// What a checkpoint of a [`Learn2MixSampler`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplerState {
    /// Proportions, smoothed losses and the pending period.
    pub schedule: ScheduleState,
    /// Permutations, cursors and the random generator.
    pub sampler: CyclicSampler,
}

impl Learn2MixSampler {
    /// A sampler over `members[c]` (the sample indices of class `c`) with batches of
    /// `batch_size`, learn2mix with mixing rate `gamma`, seeded with `seed`.
    pub fn new(members: Vec<Vec<u32>>, batch_size: usize, gamma: f64, seed: u64) -> Result<Self> {
        Self::builder(members, batch_size)
            .rule(Rule::Learn2Mix { gamma })
            .seed(seed)
            .build()
    }

    /// A builder with the paper's defaults, for the other options.
    pub fn builder(members: Vec<Vec<u32>>, batch_size: usize) -> SamplerBuilder {
        SamplerBuilder {
            members,
            batch_size,
            rule: Rule::Learn2Mix { gamma: 0.1 },
            seed: 0,
            allocation: Allocation::default(),
            estimator: Estimator::default(),
            floor: 0.0,
            ema: None,
            cadence: Cadence::Epoch,
        }
    }

    /// `floor(N / B)`: the steps of one epoch (as many as classical training takes).
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// The current class proportions.
    pub fn alpha(&self) -> &Mixture {
        self.schedule.alpha()
    }

    /// Starts an epoch: every class's permutation is reshuffled and its cursor reset.
    pub fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        self.counts = self.schedule.counts()?;
        Ok(())
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let mut indices = Vec::new();
        self.sampler.fill_batch(&self.counts, &mut indices)?;
        let classes = self
            .counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
            .collect();
        Ok(Batch { indices, classes })
    }

    /// Records the batch's per-sample losses (`classes[i]` is the class of `losses[i]`);
    /// `true` when the proportions moved (only with [`SamplerBuilder::update_every`]).
    pub fn record(&mut self, classes: &[usize], losses: &[f64]) -> Result<bool> {
        if classes.len() != losses.len() {
            return Err(CoreError::ClassCountMismatch {
                expected: classes.len(),
                got: losses.len(),
            });
        }
        let k = self.alpha().len();
        let mut sums = vec![0.0; k];
        let mut counts = vec![0u64; k];
        for (&c, &l) in classes.iter().zip(losses) {
            if c >= k {
                return Err(CoreError::ClassOutOfRange {
                    class: c,
                    classes: k,
                });
            }
            sums[c] += l;
            counts[c] += 1;
        }
        self.record_class_sums(&sums, &counts)
    }

    /// Records one step's per-class loss sums and counts (for losses summed on an
    /// accelerator); `true` when the proportions moved.
    pub fn record_class_sums(&mut self, sums: &[f64], counts: &[u64]) -> Result<bool> {
        let moved = self.schedule.record_step(sums, counts)?;
        if moved {
            self.counts = self.schedule.counts()?;
        }
        Ok(moved)
    }

    /// Moves the proportions from losses measured elsewhere (a validation split).
    pub fn update_from(&mut self, estimate: &ClassLossEstimate) -> Result<()> {
        self.schedule.update_from(estimate)?;
        self.counts = self.schedule.counts()?;
        Ok(())
    }

    /// Ends an epoch: with the default cadence the proportions move now; `true` if they did.
    pub fn end_epoch(&mut self) -> Result<bool> {
        self.schedule.end_epoch()
    }

    /// The state to checkpoint.
    pub fn state(&self) -> SamplerState {
        SamplerState {
            schedule: self.schedule.save(),
            sampler: self.sampler.clone(),
        }
    }

    /// Continues from a checkpointed state (the same classes are required).
    pub fn restore(&mut self, state: SamplerState) -> Result<()> {
        if state.sampler.class_sizes() != self.sampler.class_sizes() {
            return Err(CoreError::InvalidState(format!(
                "the saved sampler has class sizes {:?}, this one {:?}",
                state.sampler.class_sizes(),
                self.sampler.class_sizes()
            )));
        }
        self.schedule.restore(state.schedule)?;
        self.sampler = state.sampler;
        self.counts = self.schedule.counts()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Vec<u32>> {
        vec![(0..60).collect(), (60..90).collect(), (90..100).collect()]
    }

    #[test]
    fn batches_have_b_samples_of_the_right_classes_and_the_state_round_trips() {
        let mut s = Learn2MixSampler::new(members(), 10, 0.5, 3).expect("sampler");
        assert_eq!(s.steps_per_epoch(), 10);
        s.begin_epoch().expect("epoch");
        let b = s.next_batch().expect("batch");
        assert_eq!(b.indices.len(), 10);
        for (&i, &c) in b.indices.iter().zip(&b.classes) {
            assert!(members()[c].contains(&i));
        }
        s.record(&b.classes, &[1.0; 10]).expect("record");
        let json = serde_json::to_string(&s.state()).expect("json");
        let mut t = Learn2MixSampler::new(members(), 10, 0.5, 99).expect("sampler");
        t.restore(serde_json::from_str(&json).expect("state"))
            .expect("restore");
        assert_eq!(s.next_batch().expect("a"), t.next_batch().expect("b"));
        s.end_epoch().expect("end");
        t.end_epoch().expect("end");
        assert_eq!(s.alpha(), t.alpha());
        assert!(
            Learn2MixSampler::builder(members(), 10)
                .floor(1.5)
                .build()
                .is_err()
        );
        assert!(Learn2MixSampler::new(members(), 0, 0.5, 0).is_err());
    }
}
