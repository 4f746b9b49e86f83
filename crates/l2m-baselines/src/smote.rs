//! SMOTE (Chawla et al. 2002): oversample every class to the size of the largest with
//! synthetic points `x + u (x_nn - x)`, `u ~ U(0, 1)`, `x_nn` one of the `k` nearest
//! same-class neighbours of `x` (exact search, Euclidean, in parallel).
//!
//! Pixel data is interpolated in raw pixel space (the model's normalisation is affine, so
//! this is the same segment) and rounded to the nearest byte. Token ids cannot be
//! interpolated: for them the classes are filled by random oversampling (copies of random
//! members), and the report says so.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use l2m_core::{RngStream, seeded_rng};
use l2m_data::{ClassDataset, Features, Targets};

use crate::{BaselineError, Result};

/// How the classes were filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SMOTE interpolation.
    Interpolation,
    /// Copies of random members (discrete inputs, or a class of one sample).
    RandomOversampling,
}

/// One synthetic sample: `base + u (neighbour - base)` (store indices).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Synthetic {
    /// The sample interpolated from.
    pub base: u32,
    /// The neighbour interpolated toward (equal to `base` for a copy).
    pub neighbour: u32,
    /// The interpolation weight in [0, 1).
    pub u: f32,
}

/// What oversampling did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoteReport {
    /// How the classes were filled.
    pub method: Method,
    /// Neighbours searched per sample.
    pub k: usize,
    /// Synthetic samples added per class.
    pub added_per_class: Vec<usize>,
    /// The recipe of each synthetic sample, in store order after the original samples.
    pub synthetic: Vec<Synthetic>,
}

/// Squared Euclidean distance, summed in 16 interleaved partial sums (which the compiler
/// turns into vector instructions) rather than one running sum.
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// The `k` nearest members to member `i` (a position in `members`, excluding itself), as
/// store indices, nearest first, ties by store index. `rows` holds the members' features,
/// row-major, `dim` per member, in the order of `members`.
pub fn nearest_neighbours(
    rows: &[f32],
    dim: usize,
    members: &[u32],
    i: usize,
    k: usize,
) -> Vec<u32> {
    let x = &rows[i * dim..(i + 1) * dim];
    let mut d: Vec<(f32, u32)> = members
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(j, &m)| (squared_distance(x, &rows[j * dim..(j + 1) * dim]), m))
        .collect();
    let k = k.min(d.len());
    if k == 0 {
        return Vec::new();
    }
    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.truncate(k);
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().map(|(_, j)| j).collect()
}

/// Oversamples every class of `dataset` to the largest class's size. Returns the balanced
/// dataset (a new store: the original samples, then the synthetic ones) and a report.
pub fn smote(dataset: &ClassDataset, k: usize, seed: u64) -> Result<(ClassDataset, SmoteReport)> {
    if k == 0 {
        return Err(BaselineError::InvalidParameter {
            what: "SMOTE k",
            reason: "at least one neighbour is needed".into(),
        });
    }
    let samples = dataset.samples();
    let dim = samples.feature_dim();
    let sizes = dataset.class_sizes();
    let target = sizes.iter().copied().max().unwrap_or(0);
    let discrete = matches!(samples.features(), Features::Tokens(_));
    let rows = |i: u32| -> Vec<f32> {
        match samples.features() {
            Features::F32(v) => v[i as usize * dim..(i as usize + 1) * dim].to_vec(),
            Features::Pixels { data, .. } => data[i as usize * dim..(i as usize + 1) * dim]
                .iter()
                .map(|&p| f32::from(p))
                .collect(),
            Features::Tokens(v) => v[i as usize * dim..(i as usize + 1) * dim]
                .iter()
                .map(|&t| t as f32)
                .collect(),
        }
    };
    let mut rng = seeded_rng(seed, RngStream::Resampling);
    let mut synthetic = Vec::new();
    let mut added = vec![0usize; sizes.len()];
    for (c, members) in dataset.members().iter().enumerate() {
        let need = target - members.len();
        added[c] = need;
        if need == 0 {
            continue;
        }
        // Draw every base and u first (sequential, seeded), then search neighbours in
        // parallel for the distinct bases.
        // (position of the base in `members`, u, which neighbour)
        let picks: Vec<(usize, f32, usize)> = (0..need)
            .map(|_| {
                let at = rng.random_range(0..members.len());
                (at, rng.random::<f32>(), rng.random_range(0..k))
            })
            .collect();
        if discrete || members.len() == 1 {
            synthetic.extend(picks.iter().map(|&(at, _, _)| Synthetic {
                base: members[at],
                neighbour: members[at],
                u: 0.0,
            }));
            continue;
        }
        // The class's features as one f32 matrix, converted once.
        let mut matrix = vec![0f32; members.len() * dim];
        matrix
            .par_chunks_mut(dim.max(1))
            .zip(members.par_iter())
            .for_each(|(row, &m)| row.copy_from_slice(&rows(m)));
        let mut bases: Vec<usize> = picks.iter().map(|p| p.0).collect();
        bases.sort_unstable();
        bases.dedup();
        let neighbours: Vec<Vec<u32>> = bases
            .par_iter()
            .map(|&at| nearest_neighbours(&matrix, dim, members, at, k))
            .collect();
        for (at, u, which) in picks {
            let nn = &neighbours[bases.binary_search(&at).unwrap_or(0)];
            let neighbour = nn[which % nn.len()];
            synthetic.push(Synthetic {
                base: members[at],
                neighbour,
                u,
            });
        }
    }
    let method = if discrete {
        Method::RandomOversampling
    } else {
        Method::Interpolation
    };

    // The new store: every original sample, then the synthetic ones.
    let n0 = samples.len();
    let mut classes = samples.classes().to_vec();
    for (c, &n) in added.iter().enumerate() {
        classes.extend(std::iter::repeat_n(c as u32, n));
    }
    let mix = |s: &Synthetic| -> Vec<f32> {
        let a = rows(s.base);
        let b = rows(s.neighbour);
        a.iter().zip(&b).map(|(x, y)| x + s.u * (y - x)).collect()
    };
    let features = match samples.features() {
        Features::F32(v) => {
            let mut out = v.clone();
            for s in &synthetic {
                out.extend(mix(s));
            }
            Features::F32(out)
        }
        Features::Pixels { data, mean, std } => {
            let mut out = data.clone();
            for s in &synthetic {
                out.extend(
                    mix(s)
                        .into_iter()
                        .map(|v| v.round().clamp(0.0, 255.0) as u8),
                );
            }
            Features::Pixels {
                data: out,
                mean: mean.clone(),
                std: std.clone(),
            }
        }
        Features::Tokens(v) => {
            let mut out = v.clone();
            for s in &synthetic {
                out.extend_from_slice(&v[s.base as usize * dim..(s.base as usize + 1) * dim]);
            }
            Features::Tokens(out)
        }
    };
    let targets = match samples.targets() {
        Targets::Regression(t) => {
            let mut out = t.clone();
            out.extend(synthetic.iter().map(|s| {
                let (a, b) = (t[s.base as usize], t[s.neighbour as usize]);
                a + s.u * (b - a)
            }));
            Targets::Regression(out)
        }
        other => other.clone(),
    };
    let all = ClassDataset::new(
        format!("{}+smote", dataset.name()),
        features,
        samples.sample_shape().to_vec(),
        targets,
        classes,
        dataset.class_names().to_vec(),
    )?;
    // Members: the original members, then each class's synthetic samples.
    let mut members: Vec<Vec<u32>> = dataset.members().to_vec();
    let mut next = n0 as u32;
    for (c, &n) in added.iter().enumerate() {
        members[c].extend(next..next + n as u32);
        next += n as u32;
    }
    let balanced = all.with_member_lists(members)?;
    Ok((
        balanced,
        SmoteReport {
            method,
            k,
            added_per_class: added,
            synthetic,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(features: Features, sizes: &[usize], dim: usize) -> ClassDataset {
        let classes: Vec<u32> = sizes
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
            .collect();
        ClassDataset::new(
            "d",
            features,
            vec![dim],
            Targets::Classes,
            classes,
            (0..sizes.len()).map(|c| format!("c{c}")).collect(),
        )
        .expect("valid")
    }

    fn random_f32(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = seeded_rng(seed, RngStream::Data);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn synthetic_points_lie_between_a_sample_and_one_of_its_k_nearest_neighbours() {
        let sizes = [40, 12, 5];
        let dim = 3;
        let n: usize = sizes.iter().sum();
        let feats = random_f32(n * dim, 1);
        let d = dataset(Features::F32(feats.clone()), &sizes, dim);
        let (balanced, report) = smote(&d, 5, 3).expect("smote");
        assert_eq!(
            balanced.class_sizes(),
            vec![40, 40, 40],
            "uniform class counts"
        );
        assert_eq!(report.added_per_class, vec![0, 28, 35]);
        assert_eq!(report.method, Method::Interpolation);
        let Features::F32(all) = balanced.samples().features() else {
            panic!("f32")
        };
        let row = |i: u32| feats[i as usize * dim..(i as usize + 1) * dim].to_vec();
        for (j, s) in report.synthetic.iter().enumerate() {
            let class = d.samples().classes()[s.base as usize] as usize;
            assert_eq!(
                d.samples().classes()[s.neighbour as usize] as usize,
                class,
                "same class"
            );
            // Brute force, independent of the implementation: the neighbour is among the
            // 5 nearest other members of the class.
            let mut dists: Vec<(f32, u32)> = d.members()[class]
                .iter()
                .filter(|&&m| m != s.base)
                .map(|&m| (squared_distance(&row(s.base), &row(m)), m))
                .collect();
            dists.sort_by(|a, b| a.0.total_cmp(&b.0));
            let kth = dists[4.min(dists.len() - 1)].0;
            assert!(squared_distance(&row(s.base), &row(s.neighbour)) <= kth + 1e-6);
            // On the segment.
            assert!((0.0..1.0).contains(&s.u));
            let p = &all[(n + j) * dim..(n + j + 1) * dim];
            for ((pv, a), b) in p.iter().zip(row(s.base)).zip(row(s.neighbour)) {
                assert!((pv - (a + s.u * (b - a))).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn same_seed_same_points_and_originals_kept() {
        let d = dataset(Features::F32(random_f32(30 * 2, 2)), &[20, 10], 2);
        let (a, ra) = smote(&d, 5, 9).expect("smote");
        let (b, rb) = smote(&d, 5, 9).expect("smote");
        let (_, rc) = smote(&d, 5, 10).expect("smote");
        assert_eq!(ra, rb);
        assert_eq!(a.samples().features(), b.samples().features());
        assert_ne!(ra.synthetic, rc.synthetic);
        assert!(
            d.members()[1].iter().all(|i| a.members()[1].contains(i)),
            "originals stay members"
        );
    }

    #[test]
    fn tokens_fall_back_to_random_oversampling_and_pixels_round() {
        let d = dataset(Features::Tokens((0..24).collect()), &[4, 2], 4);
        let (b, r) = smote(&d, 5, 0).expect("smote");
        assert_eq!(r.method, Method::RandomOversampling);
        assert_eq!(b.class_sizes(), vec![4, 4]);
        let Features::Tokens(t) = b.samples().features() else {
            panic!("tokens")
        };
        for (j, s) in r.synthetic.iter().enumerate() {
            let copy = &t[(6 + j) * 4..(7 + j) * 4];
            assert_eq!(
                copy,
                &t[s.base as usize * 4..(s.base as usize + 1) * 4],
                "an exact copy"
            );
        }
        let px = Features::Pixels {
            data: vec![0, 0, 10, 10, 200, 200, 255, 255],
            mean: vec![0.0],
            std: vec![1.0],
        };
        let d = ClassDataset::new(
            "p",
            px,
            vec![1, 2],
            Targets::Classes,
            vec![0, 0, 0, 1],
            vec!["a".into(), "b".into()],
        )
        .expect("valid");
        let (b, _) = smote(&d, 5, 0).expect("smote");
        assert_eq!(b.class_sizes(), vec![3, 3]);
        assert!(smote(&d, 0, 0).is_err());
    }
}
