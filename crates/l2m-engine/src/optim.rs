//! Adam, with moments that can be checkpointed.
//!
//! Candle's `AdamW` keeps its moments private, so a run using it could not be resumed
//! exactly. This is the same algorithm with the same floating-point operations in the
//! same order (a test checks it against `candle_nn::AdamW` bit for bit), plus access to
//! its state: the step count and, per named parameter, the first and second moments.
//!
//! On the CPU the update runs in place, in one pass over each moment and one over the
//! parameter (Candle's tensor arithmetic would allocate ten temporaries per parameter and
//! step); elsewhere it is the same arithmetic as tensor operations. Both give the same bits.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::{EngineError, Result};

/// Adam's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay (AdamW, Loshchilov & Hutter): each step first scales the
    /// parameters by `1 - lr * weight_decay`. 0 is plain Adam.
    pub weight_decay: f64,
}

impl AdamConfig {
    /// PyTorch's defaults (betas 0.9, 0.999; eps 1e-8) with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// These settings with decoupled weight decay `weight_decay` (AdamW; PyTorch's
    /// `torch.optim.AdamW` default is 0.01).
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            ..self
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    m: Var,
    v: Var,
}

/// Adam over named parameters.
pub struct Adam {
    slots: Vec<Slot>,
    cfg: AdamConfig,
    steps: u64,
    /// Whether CPU parameters are updated in place (always, but for a test of the other
    /// path).
    in_place: bool,
}

impl Adam {
    /// Adam over `params` (name, variable), moments at zero.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        let slots = params
            .into_iter()
            .filter(|(_, var)| var.dtype().is_float())
            .map(|(name, var)| {
                let m = Var::zeros(var.shape(), var.dtype(), var.device())?;
                let v = Var::zeros(var.shape(), var.dtype(), var.device())?;
                Ok(Slot { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            cfg,
            steps: 0,
            in_place: true,
        })
    }

    /// Optimiser steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// Back-propagates this rank's part of a data-parallel batch (`loss` already divided by
    /// the global batch size), sums every parameter's gradient over the ranks of `comm`
    /// (a parameter without a gradient here counts as zero, so every rank makes the same
    /// calls), and takes one step; the parameters stay the same bits on every rank.
    pub fn backward_step_summed(
        &mut self,
        loss: &Tensor,
        comm: &dyn crate::collective::Collective,
    ) -> Result<()> {
        let mut grads = loss.backward()?;
        for s in &self.slots {
            let local = match grads.get(&s.var) {
                Some(g) => g.clone(),
                None => s.var.zeros_like()?,
            };
            let g = comm.sum_tensor(&local)?.to_dtype(s.var.dtype())?;
            grads.insert(&s.var, g);
        }
        self.step(&grads)
    }

    /// One step with `grads`; parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        // `None` keeps plain Adam's arithmetic exactly (no multiplication by 1).
        let decay = (weight_decay != 0.0).then_some(1f64 - lr * weight_decay);
        let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let scale_m = 1f64 / (1f64 - beta1.powi(t));
        let scale_v = 1f64 / (1f64 - beta2.powi(t));
        for s in &self.slots {
            let Some(g) = grads.get(&s.var) else {
                continue;
            };
            if self.in_place && s.var.device().is_cpu() && s.var.dtype() == DType::F32 {
                let g = g.contiguous()?;
                s.m.inplace_op2(
                    &g,
                    &Moment {
                        decay: beta1,
                        square: false,
                    },
                )?;
                s.v.inplace_op2(
                    &g,
                    &Moment {
                        decay: beta2,
                        square: true,
                    },
                )?;
                s.var.inplace_op3(
                    s.m.as_tensor(),
                    s.v.as_tensor(),
                    &Update {
                        scale_m,
                        scale_v,
                        eps,
                        lr,
                        decay,
                    },
                )?;
                continue;
            }
            let next_m = ((s.m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((s.v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let adjusted = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let theta = match decay {
                Some(d) => (s.var.as_tensor() * d)?,
                None => s.var.as_tensor().clone(),
            };
            let next_theta = (theta - (adjusted * lr)?)?;
            s.m.set(&next_m)?;
            s.v.set(&next_v)?;
            s.var.set(&next_theta)?;
        }
        Ok(())
    }

    /// The moments, as `adam.m.<name>` and `adam.v.<name>`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (format!("adam.m.{}", s.name), s.m.as_tensor().clone()),
                    (format!("adam.v.{}", s.name), s.v.as_tensor().clone()),
                ]
            })
            .collect()
    }

    /// Restores the moments from `tensors` (as written by [`Adam::state_tensors`]) and the
    /// step count. Every parameter's moments must be present with its shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for s in &self.slots {
            for (kind, var) in [("m", &s.m), ("v", &s.v)] {
                let key = format!("adam.{kind}.{}", s.name);
                let t = tensors.get(&key).ok_or_else(|| {
                    EngineError::Checkpoint(format!("the optimiser state lacks {key}"))
                })?;
                if t.shape() != var.shape() {
                    return Err(EngineError::Checkpoint(format!(
                        "{key} has shape {:?}, the model needs {:?}",
                        t.dims(),
                        var.dims()
                    )));
                }
                var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// Elements per rayon task of the in-place update.
const CHUNK: usize = 1 << 14;

/// Below this many elements the update runs on the calling thread: handing work to
/// rayon's pool from outside it costs a wake-up that a small update does not repay.
const PARALLEL_MIN: usize = 1 << 15;

fn f32s<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("Adam: strided operand".into()))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

fn f32s_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("Adam: strided parameter".into()))?;
    match s {
        CpuStorage::F32(v) => Ok(&mut v[a..b]),
        _ => Err(candle_core::Error::Msg("Adam: not an f32 parameter".into())),
    }
}

/// `m <- m * decay + g * (1 - decay)` (`g * g` for the second moment), rounded as Candle's
/// `affine` and `add` round them.
struct Moment {
    decay: f64,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "l2m-adam-moment"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        g: &CpuStorage,
        g_l: &Layout,
    ) -> candle_core::Result<()> {
        let m = f32s_mut(dst, dst_l)?;
        let g = f32s(g, g_l)?;
        if g.len() != m.len() {
            return Err(candle_core::Error::Msg(
                "Adam: gradient size differs".into(),
            ));
        }
        let (keep, take) = (self.decay as f32, (1.0 - self.decay) as f32);
        let square = self.square;
        let update = |(m, g): (&mut [f32], &[f32])| {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = if square { g * g } else { g };
                *m = (*m * keep + 0.0) + (g * take + 0.0);
            }
        };
        if m.len() < PARALLEL_MIN {
            update((m, g));
        } else {
            m.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .for_each(update);
        }
        Ok(())
    }
}

/// `theta <- theta * decay - lr * m_hat / (sqrt(v_hat) + eps)` (no `decay` factor for plain
/// Adam), rounded as the tensor path rounds.
struct Update {
    scale_m: f64,
    scale_v: f64,
    eps: f64,
    lr: f64,
    decay: Option<f64>,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "l2m-adam-update"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        m: &CpuStorage,
        m_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> candle_core::Result<()> {
        let theta = f32s_mut(dst, dst_l)?;
        let (m, v) = (f32s(m, m_l)?, f32s(v, v_l)?);
        if m.len() != theta.len() || v.len() != theta.len() {
            return Err(candle_core::Error::Msg("Adam: moment size differs".into()));
        }
        let (sm, sv) = (self.scale_m as f32, self.scale_v as f32);
        let (eps, lr) = (self.eps as f32, self.lr as f32);
        let decay = self.decay.map(|d| d as f32);
        let update = |(t, (m, v)): (&mut [f32], (&[f32], &[f32]))| {
            for (t, (&m, &v)) in t.iter_mut().zip(m.iter().zip(v)) {
                let m_hat = m * sm + 0.0;
                let v_hat = v * sv + 0.0;
                let adjusted = m_hat / (v_hat.sqrt() * 1.0 + eps);
                if let Some(d) = decay {
                    *t = *t * d + 0.0;
                }
                *t -= adjusted * lr + 0.0;
            }
        };
        if theta.len() < PARALLEL_MIN {
            update((theta, (m, v)));
        } else {
            theta
                .par_chunks_mut(CHUNK)
                .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
                .for_each(update);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Optimizer;

    fn problem() -> (Var, Tensor) {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], (2, 2), &dev).expect("var");
        let x = Tensor::from_vec(vec![1f32, 2.0, -3.0, 0.5, 0.1, 4.0], (3, 2), &dev).expect("x");
        (w, x)
    }

    fn loss(w: &Var, x: &Tensor) -> Tensor {
        x.matmul(w.as_tensor())
            .and_then(|y| y.sqr())
            .and_then(|y| y.sum_all())
            .expect("loss")
    }

    #[test]
    fn matches_candle_adamw_bit_for_bit() {
        for in_place in [true, false] {
            for weight_decay in [0.0, 0.01, 0.3] {
                matches_candle_adamw(in_place, weight_decay);
            }
        }
    }

    fn matches_candle_adamw(in_place: bool, weight_decay: f64) {
        let (w1, x) = problem();
        let w2 = Var::from_tensor(&w1.as_tensor().copy().expect("copy")).expect("var");
        let mut ours = Adam::new(
            vec![("w".into(), w1.clone())],
            AdamConfig::with_lr(0.01).with_weight_decay(weight_decay),
        )
        .expect("adam");
        ours.in_place = in_place;
        let mut theirs = candle_nn::AdamW::new(
            vec![w2.clone()],
            candle_nn::ParamsAdamW {
                lr: 0.01,
                weight_decay,
                ..Default::default()
            },
        )
        .expect("adamw");
        for _ in 0..20 {
            ours.backward_step(&loss(&w1, &x)).expect("step");
            theirs.backward_step(&loss(&w2, &x)).expect("step");
        }
        let a: Vec<f32> = w1.flatten_all().and_then(|t| t.to_vec1()).expect("a");
        let b: Vec<f32> = w2.flatten_all().and_then(|t| t.to_vec1()).expect("b");
        assert_eq!(a, b, "in place {in_place}, weight decay {weight_decay}");
        assert_eq!(ours.steps(), 20);
    }

    #[test]
    fn saved_state_resumes_the_same_trajectory() {
        let (w, x) = problem();
        let mut a =
            Adam::new(vec![("w".into(), w.clone())], AdamConfig::with_lr(0.05)).expect("adam");
        for _ in 0..5 {
            a.backward_step(&loss(&w, &x)).expect("step");
        }
        let saved: HashMap<String, Tensor> = a
            .state_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.copy().expect("copy")))
            .collect();
        let w_saved = w.as_tensor().copy().expect("copy");
        for _ in 0..5 {
            a.backward_step(&loss(&w, &x)).expect("step");
        }
        let straight: Vec<f32> = w.flatten_all().and_then(|t| t.to_vec1()).expect("w");

        let w2 = Var::from_tensor(&w_saved).expect("var");
        let mut b =
            Adam::new(vec![("w".into(), w2.clone())], AdamConfig::with_lr(0.05)).expect("adam");
        b.load_state(&saved, 5).expect("load");
        for _ in 0..5 {
            b.backward_step(&loss(&w2, &x)).expect("step");
        }
        let resumed: Vec<f32> = w2.flatten_all().and_then(|t| t.to_vec1()).expect("w");
        assert_eq!(straight, resumed);

        let mut missing = saved.clone();
        missing.remove("adam.v.w");
        let e = b.load_state(&missing, 5).expect_err("missing");
        assert!(e.to_string().contains("adam.v.w"), "{e}");
        let mut wrong = saved;
        wrong.insert(
            "adam.m.w".into(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).expect("t"),
        );
        let e = b.load_state(&wrong, 5).expect_err("shape");
        assert!(e.to_string().contains("shape [3]"), "{e}");
    }
}
