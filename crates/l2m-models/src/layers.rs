//! Layers initialised as PyTorch initialises them by default.

use candle_nn::{Init, Linear, VarBuilder};

use crate::Result;

/// `torch.nn.Linear(in_dim, out_dim)`: weight and bias uniform in
/// `[-1/sqrt(in_dim), 1/sqrt(in_dim)]` (PyTorch's `kaiming_uniform_(a = sqrt(5))` on the
/// weight reduces to this bound).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (in_dim.max(1) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(Linear::new(weight, Some(bias)))
}
