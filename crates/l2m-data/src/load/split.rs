//! Seeded, stratified train/test splits of one sample store.

use rand::seq::SliceRandom;

use l2m_core::{RngStream, seeded_rng};

use crate::{ClassDataset, DataError, Result};

/// Sample indices per class.
pub type ClassIndices = Vec<Vec<u32>>;

/// Per-class index lists of a stratified split of `members` (each class's indices):
/// `(train, test)`, each sorted. A fraction `test_fraction` of each class, rounded to the
/// nearest sample, goes to the test side.
pub fn stratified_indices(
    members: &[Vec<u32>],
    test_fraction: f64,
    seed: u64,
) -> Result<(ClassIndices, ClassIndices)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DataError::InvalidParameter {
            what: "test fraction",
            reason: format!("expected a number in (0, 1), got {test_fraction}"),
        });
    }
    let mut rng = seeded_rng(seed, RngStream::Data);
    let mut train = Vec::with_capacity(members.len());
    let mut test = Vec::with_capacity(members.len());
    for m in members {
        let mut shuffled = m.clone();
        shuffled.shuffle(&mut rng);
        let n_test = (m.len() as f64 * test_fraction).round() as usize;
        let mut te = shuffled[..n_test].to_vec();
        let mut tr = shuffled[n_test..].to_vec();
        te.sort_unstable();
        tr.sort_unstable();
        train.push(tr);
        test.push(te);
    }
    Ok((train, test))
}

/// Splits `dataset`'s members class by class: a fraction `test_fraction` of each class
/// (rounded to the nearest sample) goes to the test view, the rest to the training view.
/// Both views share the sample store; the choice is seeded.
pub fn stratified_split(
    dataset: &ClassDataset,
    test_fraction: f64,
    seed: u64,
) -> Result<(ClassDataset, ClassDataset)> {
    let (train, test) = stratified_indices(dataset.members(), test_fraction, seed)?;
    let name = dataset.name().to_string();
    Ok((
        dataset
            .with_members(train, " in the training split")?
            .renamed(format!("{name}/train")),
        dataset
            .with_members(test, " in the test split")?
            .renamed(format!("{name}/test")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Targets;

    #[test]
    fn splits_each_class_and_is_seeded() {
        let classes: Vec<u32> = (0..100).map(|i| u32::from(i % 4 == 0)).collect();
        let d = ClassDataset::new(
            "d",
            (0..100).map(|i| i as f32).collect::<Vec<_>>(),
            vec![1],
            Targets::Classes,
            classes,
            vec!["a".into(), "b".into()],
        )
        .expect("valid");
        let (train, test) = stratified_split(&d, 0.2, 1).expect("split");
        assert_eq!(train.class_sizes(), vec![60, 20]);
        assert_eq!(test.class_sizes(), vec![15, 5]);
        assert_eq!(train.name(), "d/train");
        for c in 0..2 {
            assert!(
                train.members()[c]
                    .iter()
                    .all(|i| !test.members()[c].contains(i))
            );
        }
        let (again, _) = stratified_split(&d, 0.2, 1).expect("split");
        assert_eq!(again.members(), train.members());
        let (other, _) = stratified_split(&d, 0.2, 2).expect("split");
        assert_ne!(other.members(), train.members());
        assert!(stratified_split(&d, 1.0, 1).is_err());
    }
}
