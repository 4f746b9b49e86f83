//! The learn2mix mathematics, free of any tensor library and of any I/O.
//!
//! learn2mix (Venkatasubramanian & Tarokh, "Learn2Mix: Training Neural Networks Using
//! Adaptive Data Integration", arXiv 2412.16482) changes *which classes fill each batch*:
//! after every epoch the class proportions `alpha` move toward the normalised class-wise
//! losses,
//!
//! ```text
//! alpha_{t+1} = alpha_t + gamma * ( L(theta_t) / (1^T L(theta_t)) - alpha_t ),   gamma in (0, 1]
//! ```
//!
//! a convex combination of two points of the probability simplex.
//!
//! # Where to start
//! - [`Mixture`]: a point of the simplex (the class proportions).
//! - [`MixingRule`]: how proportions move; [`Learn2Mix`] is the paper's rule, [`Static`]
//!   the fixed proportions of classical training, [`ExponentiatedGradient`] Group DRO's
//!   multiplicative rule, [`Tempered`] learn2mix toward `L^(1/T)`; [`Floored`] mixes any
//!   rule's output with uniform.
//! - [`Allocation`]: per-class sample counts of one batch from a mixture.
//! - [`CyclicSampler`] (Eqs. 12-13 of the paper) and [`ShuffledSampler`]: indices of the
//!   samples that make up each batch.
//! - [`ClassLossAccumulator`]: class-wise loss estimates (Eq. 10) from per-sample losses.
//! - [`Mixer`]: rule + allocation + current proportions, the state a training loop keeps.
//! - [`Schedule`]: a mixer fed per-step class losses, updated every epoch or every `S`
//!   steps ([`Cadence`]), optionally through an exponential moving average.
//! - [`convergence`]: epochs-to-target, the alpha fixed point, confidence intervals.
//! - [`testbed`]: strongly convex quadratic class losses on which Proposition 2.3 of the
//!   paper can be watched numerically.
//!
//! Every random choice takes an explicit seed ([`seeded_rng`]); nothing here reads a clock,
//! a file or a global RNG.

mod allocation;
pub mod convergence;
mod eg;
mod error;
mod estimate;
mod floor;
mod mixer;
mod mixture;
mod rng;
mod rule;
mod sampler;
mod schedule;
mod tempered;
pub mod testbed;

pub use allocation::Allocation;
pub use eg::ExponentiatedGradient;
pub use error::{CoreError, Result};
pub use estimate::{ClassLossAccumulator, ClassLossEstimate, Estimator};
pub use floor::Floored;
pub use mixer::Mixer;
pub use mixture::Mixture;
pub use rng::{RngState, RngStream, seeded_rng};
pub use rule::{Learn2Mix, MixingRule, Static};
pub use sampler::{CyclicSampler, ShuffledSampler};
pub use schedule::{Cadence, Schedule, ScheduleState};
pub use tempered::Tempered;
