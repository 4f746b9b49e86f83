//! Watch Proposition 2.3 of the learn2mix paper on strongly convex quadratic class losses:
//! gradient descent on `alpha_t^T L(theta)` with the learn2mix rule drives `theta_t` to the
//! joint fixed point `theta*` and `alpha_t` to `L(theta*) / 1^T L(theta*)`.
//!
//! Run with `cargo run -p l2m-core --example testbed --release`.
#![allow(clippy::print_stdout, reason = "an example prints its results")]

use l2m_core::testbed::{Testbed, distance};
use l2m_core::{Learn2Mix, Mixture};

fn main() -> Result<(), l2m_core::CoreError> {
    let tb = Testbed::random(4, 6, 0.5, 5.0, 0)?;
    let (mu, l) = tb.constants();
    let eta = tb.max_learning_rate();
    let (theta_star, alpha_star) = tb.fixed_point(1e-14, 10_000)?;
    println!("K = 4 quadratic classes in d = 6; mu = {mu}, L = {l}, eta = 2/(mu+L) = {eta:.4}");
    println!("fixed point alpha* = {:?}", round(alpha_star.as_slice()));
    let rule = Learn2Mix::new(0.1)?;
    let start = Mixture::new(vec![0.7, 0.1, 0.1, 0.1])?;
    let traj = tb.run(vec![0.0; tb.dim()], start, &rule, eta, 2000)?;
    println!(
        "{:>6}  {:>12}  {:>12}  alpha_t",
        "step", "|theta-t*|", "|alpha-a*|"
    );
    for t in [0, 1, 5, 10, 50, 100, 200, 500, 1000, 2000] {
        let d_theta = distance(&traj.thetas[t], &theta_star);
        let d_alpha = traj.alphas[t].max_abs_diff(&alpha_star);
        println!(
            "{t:>6}  {d_theta:>12.3e}  {d_alpha:>12.3e}  {:?}",
            round(traj.alphas[t].as_slice())
        );
    }
    Ok(())
}

fn round(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 1e4).round() / 1e4).collect()
}
