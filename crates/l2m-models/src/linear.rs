//! A linear layer with a fast CPU path, optionally fused with ReLU or a sigmoid.
//!
//! [`Linear`] has candle-nn's interface (`Module::forward`, inputs `[.., in]`) plus
//! [`Linear::forward_relu`] and [`Linear::forward_sigmoid`]. On the CPU with `f32` data
//! each is one op (`crate::kernels::linear`); elsewhere, and in the tests, they are
//! Candle's matmul, broadcast add and activation.

use candle_core::{Module, Tensor};

use crate::kernels::{self, linear::Activation};

/// `y = act(x W^T + b)` with `W [out, in]` and `b [out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// A layer with `weight` `[out, in]` and `bias` `[out]`.
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    /// The weight.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `max(0, x W^T + b)`.
    pub fn forward_relu(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, Activation::Relu)
    }

    /// `sigmoid(x W^T + b)`.
    pub fn forward_sigmoid(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, Activation::Sigmoid)
    }

    fn apply(&self, xs: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        let fast = kernels::applies(xs)
            && kernels::applies(&self.weight)
            && kernels::applies(&self.bias)
            && xs.rank() >= 1;
        if !fast {
            return reference(xs, &self.weight, &self.bias, act);
        }
        let (out, inp) = self.weight.dims2()?;
        let dims = xs.dims();
        let n = dims[..dims.len() - 1].iter().product::<usize>();
        if dims[dims.len() - 1] != inp {
            return Err(candle_core::Error::ShapeMismatchBinaryOp {
                lhs: xs.shape().clone(),
                rhs: self.weight.shape().clone(),
                op: "linear",
            });
        }
        let op = kernels::linear::LinearOp { n, inp, out, act };
        let y = xs.reshape((n, inp))?.contiguous()?.apply_op3(
            &self.weight.contiguous()?,
            &self.bias.contiguous()?,
            op,
        )?;
        let mut shape = dims[..dims.len() - 1].to_vec();
        shape.push(out);
        y.reshape(shape)
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, Activation::Identity)
    }
}

/// The same computation from Candle's own operations (candle-nn's `Linear`, then the
/// activation).
fn reference(xs: &Tensor, w: &Tensor, b: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    let y = candle_nn::Linear::new(w.clone(), Some(b.clone())).forward(xs)?;
    match act {
        Activation::Identity => Ok(y),
        Activation::Relu => y.relu(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(&y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{grads_of_weighted_sum, max_rel_diff, random};
    use candle_core::Var;

    /// Forward and the three gradients against candle-nn's `Linear` and Candle's
    /// activations, for ranks 2 and 3, odd sizes, and a product large enough to be split
    /// over threads. Tolerance: relative 1e-5 forward, 1e-4 for gradients.
    #[test]
    fn agrees_with_candle_forward_and_gradients() {
        let cases: [&[usize]; 4] = [&[7, 5], &[3, 11, 13], &[1, 1], &[300, 97]];
        let outs = [3usize, 17, 1, 129];
        for (i, (dims, &out)) in cases.iter().zip(&outs).enumerate() {
            for (a, act) in [Activation::Identity, Activation::Relu, Activation::Sigmoid]
                .into_iter()
                .enumerate()
            {
                let seed = (i * 10 + a) as u64;
                let inp = *dims.last().expect("rank");
                let x = Var::from_tensor(&random(dims, seed)).expect("x");
                let w = Var::from_tensor(&random(&[out, inp], seed + 1)).expect("w");
                let b = Var::from_tensor(&random(&[out], seed + 2)).expect("b");
                let layer = Linear::new(w.as_tensor().clone(), b.as_tensor().clone());
                let y1 = layer.apply(x.as_tensor(), act).expect("ours");
                let y2 = reference(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).expect("ref");
                assert_eq!(y1.dims(), y2.dims());
                let d = max_rel_diff(&y1, &y2);
                assert!(d < 1e-5, "forward, case {i} {act:?}: {d}");
                let weights = random(y1.dims(), seed + 3);
                let g1 = grads_of_weighted_sum(&y1, &weights);
                let g2 = grads_of_weighted_sum(&y2, &weights);
                for (name, v) in [("input", &x), ("weight", &w), ("bias", &b)] {
                    let d = max_rel_diff(
                        g1.get(v).expect("ours has the gradient"),
                        g2.get(v).expect("candle has the gradient"),
                    );
                    assert!(d < 1e-4, "{name} gradient, case {i} {act:?}: {d}");
                }
                // An untracked input gets no gradient.
                let data = random(dims, seed);
                let g = layer
                    .apply(&data, act)
                    .and_then(|y| y.sum_all())
                    .and_then(|t| t.backward())
                    .expect("g");
                assert!(g.get(&data).is_none() && g.get(&w).is_some());
            }
        }
    }
}
