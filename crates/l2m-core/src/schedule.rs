//! When and from what the proportions move: the update cadence, the class-loss estimate
//! of each period and an optional exponential moving average of it.

use serde::{Deserialize, Serialize};

use crate::{
    ClassLossAccumulator, ClassLossEstimate, CoreError, Estimator, Mixer, Mixture, Result,
};

/// How often the proportions are updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cadence {
    /// Once per epoch, from the epoch's class-wise losses (the paper).
    #[default]
    Epoch,
    /// Every `S` optimiser steps, from the losses of the steps since the last update
    /// (periods may straddle epochs). `S` = steps per epoch is the paper's rule exactly.
    Steps(usize),
}

/// A [`Mixer`] driven by per-step class-wise losses: it accumulates them with an
/// [`Estimator`], optionally smooths them with an exponential moving average, and moves the
/// proportions at the [`Cadence`]'s times.
///
/// A training loop calls [`Schedule::record_step`] after every optimiser step (or in
/// bursts: only the order matters) and [`Schedule::end_epoch`] after the last step of an
/// epoch; both say whether the proportions moved, so that the next batch's counts are
/// recomputed.
#[derive(Debug)]
pub struct Schedule {
    mixer: Mixer,
    acc: ClassLossAccumulator,
    cadence: Cadence,
    ema: Option<f64>,
    state: ScheduleState,
}

/// What a [`Schedule`] must remember between runs (a checkpoint), beside nothing else: with
/// it a resumed loop updates exactly as an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The current proportions.
    pub alpha: Vec<f64>,
    /// The smoothed class-wise losses (with an EMA, after its first update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothed: Option<Vec<f64>>,
    /// Steps recorded since the last update.
    #[serde(default)]
    pub since: usize,
    /// Pending per-class loss sums and counts since the last update (step cadence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<(Vec<f64>, Vec<u64>)>,
}

impl Schedule {
    /// `mixer` updated at `cadence` from `estimator`'s class-wise losses, smoothed by an EMA
    /// with weight `ema` on the past (`None` or 0: no smoothing; otherwise in [0, 1)).
    pub fn new(
        mixer: Mixer,
        estimator: Estimator,
        ema: Option<f64>,
        cadence: Cadence,
    ) -> Result<Self> {
        if let Some(beta) = ema
            && !(0.0..1.0).contains(&beta)
        {
            return Err(CoreError::InvalidParameter {
                name: "ema",
                value: beta,
                expected: "in [0, 1)",
            });
        }
        if cadence == Cadence::Steps(0) {
            return Err(CoreError::InvalidParameter {
                name: "update_every",
                value: 0.0,
                expected: "at least 1 step",
            });
        }
        let k = mixer.alpha().len();
        let alpha = mixer.alpha().as_slice().to_vec();
        Ok(Self {
            mixer,
            acc: ClassLossAccumulator::new(k, estimator)?,
            cadence,
            ema: ema.filter(|&b| b > 0.0),
            state: ScheduleState {
                alpha,
                smoothed: None,
                since: 0,
                pending: None,
            },
        })
    }

    /// The current proportions.
    pub fn alpha(&self) -> &Mixture {
        self.mixer.alpha()
    }

    /// Per-class counts of the next batch.
    pub fn counts(&self) -> Result<Vec<usize>> {
        self.mixer.counts()
    }

    /// The cadence.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// Whether recording `pending` more steps will update the proportions (so a loop that
    /// keeps losses on an accelerator knows when it must read them).
    pub fn update_due(&self, pending: usize) -> bool {
        matches!(self.cadence, Cadence::Steps(s) if self.state.since + pending >= s)
    }

    /// Records one step's per-class loss sums and sample counts; `true` when the
    /// proportions moved.
    pub fn record_step(&mut self, sums: &[f64], counts: &[u64]) -> Result<bool> {
        self.acc.begin_batch();
        self.acc.add_sums(sums, counts)?;
        self.state.since += 1;
        match self.cadence {
            Cadence::Steps(s) if self.state.since >= s => {
                self.update_from(&self.acc.estimate())?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Counts one step whose class-wise losses come from elsewhere (a held-out split);
    /// `true` when an update is due now: the caller then passes the estimate to
    /// [`Schedule::update_from`].
    pub fn tick(&mut self) -> bool {
        self.state.since += 1;
        matches!(self.cadence, Cadence::Steps(s) if self.state.since >= s)
    }

    /// Whether the proportions move at the end of every epoch (the epoch cadence).
    pub fn updates_at_epoch_end(&self) -> bool {
        self.cadence == Cadence::Epoch
    }

    /// The end of an epoch; `true` when the proportions moved (epoch cadence).
    pub fn end_epoch(&mut self) -> Result<bool> {
        match self.cadence {
            Cadence::Epoch => {
                self.update_from(&self.acc.estimate())?;
                Ok(true)
            }
            Cadence::Steps(_) => Ok(false),
        }
    }

    /// Moves the proportions from `estimate` (for example the losses on a held-out split
    /// instead of the training steps'), and starts a new period.
    pub fn update_from(&mut self, estimate: &ClassLossEstimate) -> Result<()> {
        let losses = match (self.ema, &self.state.smoothed) {
            (None, _) => estimate.losses.clone(),
            (Some(_), None) => estimate.losses.clone(),
            (Some(beta), Some(old)) => old
                .iter()
                .zip(&estimate.losses)
                .zip(&estimate.counts)
                // A class with no sample in the period keeps its smoothed value.
                .map(|((o, l), &c)| {
                    if c == 0 {
                        *o
                    } else {
                        beta * o + (1.0 - beta) * l
                    }
                })
                .collect(),
        };
        if self.ema.is_some() {
            self.state.smoothed = Some(losses.clone());
        }
        self.mixer.update(&ClassLossEstimate {
            losses,
            counts: estimate.counts.clone(),
        })?;
        self.acc.reset();
        self.state.since = 0;
        Ok(())
    }

    /// The state to checkpoint.
    pub fn save(&self) -> ScheduleState {
        let (sums, counts) = self.acc.parts();
        ScheduleState {
            alpha: self.mixer.alpha().as_slice().to_vec(),
            smoothed: self.state.smoothed.clone(),
            since: self.state.since,
            pending: (self.state.since > 0).then(|| (sums.to_vec(), counts.to_vec())),
        }
    }

    /// Continues from a saved state.
    pub fn restore(&mut self, state: ScheduleState) -> Result<()> {
        self.mixer
            .set_alpha(Mixture::restored(state.alpha.clone())?)?;
        let k = self.mixer.alpha().len();
        if let Some(s) = &state.smoothed
            && s.len() != k
        {
            return Err(CoreError::ClassCountMismatch {
                expected: k,
                got: s.len(),
            });
        }
        self.acc.reset();
        if let Some((sums, counts)) = &state.pending {
            self.acc.add_sums(sums, counts)?;
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Allocation, Learn2Mix};
    use proptest::prelude::*;

    fn mixer(gamma: f64, sizes: &[usize]) -> Mixer {
        Mixer::new(
            Box::new(Learn2Mix::new(gamma).expect("gamma")),
            Allocation::default(),
            10,
            sizes.to_vec(),
        )
        .expect("mixer")
    }

    proptest! {
        /// S = steps per epoch reproduces the per-epoch rule exactly, for both estimators.
        #[test]
        fn steps_per_epoch_cadence_is_the_epoch_rule(
            sizes in proptest::collection::vec(1usize..50, 2..6),
            rows in proptest::collection::vec(proptest::collection::vec(0.0f64..10.0, 6), 1..8),
            epochs in 1usize..4,
            gamma in 0.01f64..1.0,
            last in any::<bool>(),
        ) {
            let k = sizes.len();
            let est = if last { Estimator::LastBatch } else { Estimator::EpochMean };
            let m = rows.len();
            let mut a = Schedule::new(mixer(gamma, &sizes), est, None, Cadence::Epoch).expect("a");
            let mut b = Schedule::new(mixer(gamma, &sizes), est, None, Cadence::Steps(m)).expect("b");
            for _ in 0..epochs {
                for row in &rows {
                    let sums: Vec<f64> = row[..k].to_vec();
                    let counts = vec![2u64; k];
                    prop_assert!(!a.record_step(&sums, &counts).expect("a"));
                    b.record_step(&sums, &counts).expect("b");
                }
                prop_assert!(a.end_epoch().expect("a"));
                prop_assert!(!b.end_epoch().expect("b"));
                prop_assert_eq!(a.alpha(), b.alpha());
            }
        }

        /// A checkpoint mid-period resumes to the same proportions.
        #[test]
        fn save_and_restore_mid_period(
            rows in proptest::collection::vec(proptest::collection::vec(0.0f64..10.0, 3), 2..12),
            cut in 0usize..12,
            every in 1usize..5,
            ema in proptest::option::of(0.0f64..0.95),
        ) {
            let cut = cut % rows.len();
            let make = || Schedule::new(mixer(0.3, &[5, 9, 3]), Estimator::EpochMean, ema, Cadence::Steps(every)).expect("s");
            let mut straight = make();
            let mut first = make();
            for r in &rows {
                straight.record_step(r, &[1, 1, 1]).expect("s");
            }
            for r in &rows[..cut] {
                first.record_step(r, &[1, 1, 1]).expect("f");
            }
            let json = serde_json::to_string(&first.save()).expect("json");
            let mut second = make();
            second.restore(serde_json::from_str(&json).expect("state")).expect("restore");
            for r in &rows[cut..] {
                second.record_step(r, &[1, 1, 1]).expect("s");
            }
            prop_assert_eq!(straight.alpha(), second.alpha());
        }
    }

    #[test]
    fn ema_smooths_and_keeps_unseen_classes() {
        let mut s = Schedule::new(
            mixer(1.0, &[1, 1]),
            Estimator::EpochMean,
            Some(0.5),
            Cadence::Steps(1),
        )
        .expect("schedule");
        s.record_step(&[1.0, 3.0], &[1, 1]).expect("step"); // smoothed (1, 3)
        assert!((s.alpha().as_slice()[1] - 0.75).abs() < 1e-12);
        s.record_step(&[3.0, 0.0], &[1, 0]).expect("step"); // (2, 3): class 1 unseen
        assert!(
            (s.alpha().as_slice()[1] - 0.6).abs() < 1e-12,
            "{:?}",
            s.alpha()
        );
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        let e = Schedule::new(
            mixer(0.1, &[1, 1]),
            Estimator::EpochMean,
            Some(1.0),
            Cadence::Epoch,
        )
        .expect_err("ema");
        assert!(matches!(e, CoreError::InvalidParameter { name: "ema", .. }));
        let e = Schedule::new(
            mixer(0.1, &[1, 1]),
            Estimator::EpochMean,
            None,
            Cadence::Steps(0),
        )
        .expect_err("cadence");
        assert!(matches!(
            e,
            CoreError::InvalidParameter {
                name: "update_every",
                ..
            }
        ));
    }
}
