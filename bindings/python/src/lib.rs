//! The native part of the `learn2mix` Python package: l2m-core's mixing rules, batch
//! allocation and class-by-class cyclic sampler (with its rank shards), behind a small
//! PyO3 surface. The Python classes in `python/learn2mix/` are the public API; every
//! number they hand out is computed here, by the same code the Rust toolkit runs.

use l2m_core::{
    Allocation, CoreError, CyclicSampler, Floored, MixingRule, Mixture, Shards, Static,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn value_error(e: CoreError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A mixing rule from l2m-core's registry and the proportions it moves.
#[pyclass(module = "learn2mix._core", name = "Rule")]
struct Rule {
    rule: Box<dyn MixingRule>,
    alpha: Mixture,
}

#[pymethods]
impl Rule {
    /// `gamma` is used by rules with a mixing rate and ignored by the others; `eta` and
    /// `temperature` given to a rule without them are an error.
    #[new]
    #[pyo3(signature = (num_classes, rule, gamma, eta, temperature, floor, alpha))]
    fn new(
        num_classes: usize,
        rule: &str,
        gamma: f64,
        eta: Option<f64>,
        temperature: Option<f64>,
        floor: f64,
        alpha: Option<Vec<f64>>,
    ) -> PyResult<Self> {
        if num_classes == 0 {
            return Err(PyValueError::new_err("num_classes must be at least 1"));
        }
        let entry = l2m_core::rules::rule(rule).map_err(value_error)?;
        for (name, given) in [("eta", eta), ("temperature", temperature)] {
            if given.is_some() && !entry.takes(name) {
                return Err(PyValueError::new_err(format!(
                    "rule {rule:?} takes no {name} (its parameters: {})",
                    entry
                        .params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let built = entry
            .build(&|p| match p {
                "gamma" => Some(gamma),
                "eta" => eta,
                "temperature" => temperature,
                _ => None,
            })
            .map_err(value_error)?;
        let rule: Box<dyn MixingRule> = if floor > 0.0 {
            Box::new(Floored::new(built, floor).map_err(value_error)?)
        } else {
            // Checks the range (a negative floor is an error).
            Floored::new(Box::new(Static), floor).map_err(value_error)?;
            built
        };
        let alpha = match alpha {
            Some(a) => {
                if a.len() != num_classes {
                    return Err(PyValueError::new_err(format!(
                        "alpha has {} entries, expected num_classes = {num_classes}",
                        a.len()
                    )));
                }
                Mixture::new(a).map_err(value_error)?
            }
            None => Mixture::uniform(num_classes).map_err(value_error)?,
        };
        Ok(Self { rule, alpha })
    }

    /// The current proportions.
    fn alpha(&self) -> Vec<f64> {
        self.alpha.as_slice().to_vec()
    }

    /// One step of the rule from the class-wise losses.
    fn update(&mut self, losses: Vec<f64>) -> PyResult<()> {
        if losses.len() != self.alpha.len() {
            return Err(PyValueError::new_err(format!(
                "class_losses has {} entries, expected num_classes = {}",
                losses.len(),
                self.alpha.len()
            )));
        }
        self.alpha = self.rule.step(&self.alpha, &losses).map_err(value_error)?;
        Ok(())
    }

    /// Proportions from a saved state (checked to be on the simplex).
    fn set_alpha(&mut self, alpha: Vec<f64>) -> PyResult<()> {
        if alpha.len() != self.alpha.len() {
            return Err(PyValueError::new_err(format!(
                "the saved alpha has {} entries, this mixture {}",
                alpha.len(),
                self.alpha.len()
            )));
        }
        self.alpha = Mixture::restored(alpha).map_err(value_error)?;
        Ok(())
    }

    /// The rule's name, as l2m-core records it.
    fn name(&self) -> &'static str {
        self.rule.name()
    }
}

/// The paper's cyclic per-class sampler over fixed class members.
#[pyclass(module = "learn2mix._core", name = "Cyclic")]
struct Cyclic {
    members: Vec<Vec<u32>>,
    sampler: CyclicSampler,
}

#[pymethods]
impl Cyclic {
    #[new]
    fn new(members: Vec<Vec<u32>>, seed: u64) -> PyResult<Self> {
        let sampler = CyclicSampler::new(members.clone(), seed).map_err(value_error)?;
        Ok(Self { members, sampler })
    }

    /// Starts over from the members' original order with a new seed: the permutations
    /// of an epoch depend on its seed alone.
    fn reseed(&mut self, seed: u64) -> PyResult<()> {
        self.sampler = CyclicSampler::new(self.members.clone(), seed).map_err(value_error)?;
        Ok(())
    }

    /// The next batch with `counts[c]` samples of class `c`, or `rank`'s slice of it
    /// among `world_size` ranks (the sampler advances by the whole batch on every rank).
    fn batch(&mut self, counts: Vec<usize>, rank: usize, world_size: usize) -> PyResult<Vec<u32>> {
        let mut out = Vec::with_capacity(counts.iter().sum::<usize>() / world_size.max(1) + 1);
        if world_size == 1 && rank == 0 {
            self.sampler
                .fill_batch(&counts, &mut out)
                .map_err(value_error)?;
        } else {
            let shards = Shards::new(&counts, world_size).map_err(value_error)?;
            self.sampler
                .fill_shard(&counts, &shards, rank, &mut out)
                .map_err(value_error)?;
        }
        Ok(out)
    }
}

/// Per-class counts of one batch of `batch_size` from proportions `alpha` (largest
/// remainder, at least one sample for every class with data), as l2m's runs allocate.
#[pyfunction]
fn batch_counts(
    alpha: Vec<f64>,
    batch_size: usize,
    class_sizes: Vec<usize>,
) -> PyResult<Vec<usize>> {
    let alpha = Mixture::restored(alpha).map_err(value_error)?;
    Allocation::default()
        .counts(&alpha, batch_size, &class_sizes)
        .map_err(value_error)
}

/// The names of the registered mixing rules.
#[pyfunction]
fn rule_names() -> Vec<&'static str> {
    l2m_core::rules::rule_names()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Rule>()?;
    m.add_class::<Cyclic>()?;
    m.add_function(wrap_pyfunction!(batch_counts, m)?)?;
    m.add_function(wrap_pyfunction!(rule_names, m)?)?;
    Ok(())
}
