//! The mixing state a training loop carries: rule, allocation and current proportions.

use crate::{
    Allocation, ClassLossEstimate, CoreError, Learn2Mix, MixingRule, Mixture, Result, Static,
};

/// Current class proportions together with the rule that moves them and the allocation
/// that turns them into per-batch counts.
#[derive(Debug)]
pub struct Mixer {
    alpha: Mixture,
    rule: Box<dyn MixingRule>,
    allocation: Allocation,
    batch_size: usize,
    class_sizes: Vec<usize>,
}

impl Mixer {
    /// A mixer starting from the dataset's proportions `alpha*` (as learn2mix does).
    ///
    /// Errors: no classes, a batch size of zero, every class empty, or a minimum per class
    /// that does not fit the batch.
    pub fn new(
        rule: Box<dyn MixingRule>,
        allocation: Allocation,
        batch_size: usize,
        class_sizes: Vec<usize>,
    ) -> Result<Self> {
        let alpha = Mixture::from_counts(&class_sizes)?;
        let mixer = Self {
            alpha,
            rule,
            allocation,
            batch_size,
            class_sizes,
        };
        mixer.counts()?; // validates batch size and minimum up front
        Ok(mixer)
    }

    /// learn2mix with mixing rate `gamma`.
    pub fn learn2mix(
        gamma: f64,
        allocation: Allocation,
        batch_size: usize,
        class_sizes: Vec<usize>,
    ) -> Result<Self> {
        Self::new(
            Box::new(Learn2Mix::new(gamma)?),
            allocation,
            batch_size,
            class_sizes,
        )
    }

    /// Fixed proportions `alpha*` (classical training with stratified batches).
    pub fn stratified(
        allocation: Allocation,
        batch_size: usize,
        class_sizes: Vec<usize>,
    ) -> Result<Self> {
        Self::new(Box::new(Static), allocation, batch_size, class_sizes)
    }

    /// The current proportions.
    pub fn alpha(&self) -> &Mixture {
        &self.alpha
    }

    /// Replaces the proportions (for example when resuming a run).
    pub fn set_alpha(&mut self, alpha: Mixture) -> Result<()> {
        if alpha.len() != self.alpha.len() {
            return Err(CoreError::ClassCountMismatch {
                expected: self.alpha.len(),
                got: alpha.len(),
            });
        }
        self.alpha = alpha;
        Ok(())
    }

    /// The rule's name.
    pub fn rule_name(&self) -> &'static str {
        self.rule.name()
    }

    /// Per-class counts of the next batch under the current proportions.
    pub fn counts(&self) -> Result<Vec<usize>> {
        self.allocation
            .counts(&self.alpha, self.batch_size, &self.class_sizes)
    }

    /// Moves the proportions given the class-wise losses of the last period.
    pub fn update(&mut self, estimate: &ClassLossEstimate) -> Result<&Mixture> {
        self.alpha = self.rule.step(&self.alpha, &estimate.losses)?;
        Ok(&self.alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn2mix_mixer_moves_toward_hard_classes() {
        let mut m = Mixer::learn2mix(0.5, Allocation::default(), 10, vec![50, 50]).expect("valid");
        assert_eq!(m.counts().expect("valid"), vec![5, 5]);
        m.update(&ClassLossEstimate {
            losses: vec![1.0, 9.0],
            counts: vec![5, 5],
        })
        .expect("valid");
        // 0.5 + 0.5 * (0.1 - 0.5) = 0.3
        assert!((m.alpha().as_slice()[0] - 0.3).abs() < 1e-12);
        assert_eq!(m.counts().expect("valid"), vec![3, 7]);
    }

    #[test]
    fn stratified_mixer_keeps_alpha_star() {
        let mut m = Mixer::stratified(Allocation::default(), 10, vec![20, 80]).expect("valid");
        m.update(&ClassLossEstimate {
            losses: vec![100.0, 1.0],
            counts: vec![2, 8],
        })
        .expect("valid");
        assert_eq!(m.counts().expect("valid"), vec![2, 8]);
    }

    #[test]
    fn construction_validates() {
        assert!(matches!(
            Mixer::learn2mix(0.0, Allocation::default(), 10, vec![1, 1]),
            Err(CoreError::InvalidGamma(_))
        ));
        assert!(matches!(
            Mixer::learn2mix(0.5, Allocation::default(), 0, vec![1, 1]),
            Err(CoreError::ZeroBatchSize)
        ));
        assert!(matches!(
            Mixer::learn2mix(0.5, Allocation::default(), 10, vec![]),
            Err(CoreError::NoClasses)
        ));
        assert!(matches!(
            Mixer::learn2mix(0.5, Allocation::default(), 10, vec![0, 0]),
            Err(CoreError::EmptyClass { .. })
        ));
    }
}
