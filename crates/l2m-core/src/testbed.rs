//! A synthetic, strongly convex testbed on which Proposition 2.3 can be watched.
//!
//! `K` quadratic class losses `L_i(theta) = 0.5 (theta - c_i)^T A_i (theta - c_i) + b_i`,
//! with `A_i` symmetric positive definite, eigenvalues in `[mu, L]` chosen at construction
//! (so the strong-convexity and smoothness constants are known exactly). Gradient descent
//! on `alpha_t^T L(theta)` with learning rate `eta <= 2 / (mu + L)`, and the learn2mix rule
//! on `alpha` after every step, should converge to the joint fixed point
//! `theta* = argmin_theta alpha_inf^T L(theta)`, `alpha_inf = L(theta*) / 1^T L(theta*)`.
//! [`Testbed::fixed_point`] finds that point by a different route (exact minimisation in
//! `theta` for each `alpha`, damped iteration in `alpha`) so the two can be compared.

use rand::Rng;

use crate::{CoreError, MixingRule, Mixture, Result, RngStream, seeded_rng};

/// One class loss `0.5 (theta - c)^T A (theta - c) + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticClass {
    /// `A`, row-major `d x d`, symmetric positive definite.
    pub a: Vec<f64>,
    /// The class optimum `c`.
    pub c: Vec<f64>,
    /// The loss at the optimum, `b >= 0`.
    pub b: f64,
}

/// K strongly convex quadratic class losses in `d` dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Testbed {
    dim: usize,
    mu: f64,
    smooth: f64,
    classes: Vec<QuadraticClass>,
}

/// The path of a gradient-descent run.
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// Parameters after each step (index 0 is the start).
    pub thetas: Vec<Vec<f64>>,
    /// Proportions after each step (index 0 is the start).
    pub alphas: Vec<Mixture>,
}

impl Testbed {
    /// A random testbed: each `A_i = Q_i diag(lambda) Q_i^T` with a random orthogonal `Q_i`
    /// and eigenvalues drawn in `[mu, smooth]` (both included once per class), `c_i` in
    /// `[-3, 3]^d`, `b_i` in `[0.1, 1]`.
    pub fn random(classes: usize, dim: usize, mu: f64, smooth: f64, seed: u64) -> Result<Self> {
        if classes == 0 {
            return Err(CoreError::NoClasses);
        }
        if dim == 0 || !(mu > 0.0 && smooth >= mu && smooth.is_finite()) {
            return Err(CoreError::InvalidTestbed(format!(
                "needs d > 0 and 0 < mu <= L < inf, got d = {dim}, mu = {mu}, L = {smooth}"
            )));
        }
        let mut rng = seeded_rng(seed, RngStream::Data);
        let classes = (0..classes)
            .map(|_| {
                let q = random_orthogonal(dim, &mut rng);
                let mut eig: Vec<f64> = (0..dim).map(|_| rng.random_range(mu..=smooth)).collect();
                eig[0] = mu;
                if dim > 1 {
                    eig[dim - 1] = smooth;
                }
                let mut a = vec![0.0; dim * dim];
                for r in 0..dim {
                    for c in 0..dim {
                        a[r * dim + c] = (0..dim)
                            .map(|k| q[r * dim + k] * eig[k] * q[c * dim + k])
                            .sum();
                    }
                }
                QuadraticClass {
                    a,
                    c: (0..dim).map(|_| rng.random_range(-3.0..3.0)).collect(),
                    b: rng.random_range(0.1..1.0),
                }
            })
            .collect();
        Ok(Self {
            dim,
            mu,
            smooth,
            classes,
        })
    }

    /// Dimension of `theta`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The strong-convexity constant `mu` and gradient Lipschitz constant `L`.
    pub fn constants(&self) -> (f64, f64) {
        (self.mu, self.smooth)
    }

    /// The largest learning rate the proposition allows, `2 / (mu + L)`.
    pub fn max_learning_rate(&self) -> f64 {
        2.0 / (self.mu + self.smooth)
    }

    /// The class-wise losses at `theta`.
    pub fn losses(&self, theta: &[f64]) -> Vec<f64> {
        self.classes
            .iter()
            .map(|q| {
                let diff: Vec<f64> = theta.iter().zip(&q.c).map(|(t, c)| t - c).collect();
                0.5 * dot(&diff, &matvec(&q.a, &diff)) + q.b
            })
            .collect()
    }

    /// The gradient of `alpha^T L(theta)`: `sum_i alpha_i A_i (theta - c_i)`.
    pub fn gradient(&self, theta: &[f64], alpha: &Mixture) -> Vec<f64> {
        let mut g = vec![0.0; self.dim];
        for (q, &w) in self.classes.iter().zip(alpha.as_slice()) {
            let diff: Vec<f64> = theta.iter().zip(&q.c).map(|(t, c)| t - c).collect();
            for (gi, v) in g.iter_mut().zip(matvec(&q.a, &diff)) {
                *gi += w * v;
            }
        }
        g
    }

    /// The exact minimiser of `alpha^T L(theta)`:
    /// `(sum_i alpha_i A_i)^{-1} sum_i alpha_i A_i c_i`.
    pub fn minimiser(&self, alpha: &Mixture) -> Vec<f64> {
        let d = self.dim;
        let mut h = vec![0.0; d * d];
        let mut rhs = vec![0.0; d];
        for (q, &w) in self.classes.iter().zip(alpha.as_slice()) {
            h.iter_mut().zip(&q.a).for_each(|(h, a)| *h += w * a);
            for (r, v) in rhs.iter_mut().zip(matvec(&q.a, &q.c)) {
                *r += w * v;
            }
        }
        solve(h, rhs, d)
    }

    /// The joint fixed point `(theta*, L(theta*) / 1^T L(theta*))`, found by damped
    /// iteration `alpha <- (1 - 0.5) alpha + 0.5 L(theta*(alpha)) / 1^T L` with the exact
    /// minimiser for each `alpha`, until `alpha` moves less than `tol`.
    pub fn fixed_point(&self, tol: f64, max_iter: usize) -> Result<(Vec<f64>, Mixture)> {
        let mut alpha = Mixture::uniform(self.classes.len())?;
        for _ in 0..max_iter {
            let theta = self.minimiser(&alpha);
            let target = Mixture::normalised(&self.losses(&theta))?;
            let next = alpha.lerp(&target, 0.5)?;
            let moved = next.max_abs_diff(&alpha);
            alpha = next;
            if moved < tol {
                break;
            }
        }
        Ok((self.minimiser(&alpha), alpha))
    }

    /// Gradient descent on `alpha_t^T L(theta)` from `theta0`, with `rule` applied to
    /// `alpha` after each step using the losses at the pre-update parameters.
    pub fn run(
        &self,
        theta0: Vec<f64>,
        alpha0: Mixture,
        rule: &dyn MixingRule,
        eta: f64,
        steps: usize,
    ) -> Result<Trajectory> {
        let mut thetas = vec![theta0];
        let mut alphas = vec![alpha0];
        for _ in 0..steps {
            let (theta, alpha) = (&thetas[thetas.len() - 1], &alphas[alphas.len() - 1]);
            let g = self.gradient(theta, alpha);
            let losses = self.losses(theta);
            let next_theta: Vec<f64> = theta.iter().zip(&g).map(|(t, g)| t - eta * g).collect();
            let next_alpha = rule.step(alpha, &losses)?;
            thetas.push(next_theta);
            alphas.push(next_alpha);
        }
        Ok(Trajectory { thetas, alphas })
    }
}

/// Euclidean distance between two vectors.
pub fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn matvec(a: &[f64], x: &[f64]) -> Vec<f64> {
    a.chunks_exact(x.len()).map(|row| dot(row, x)).collect()
}

/// Gram-Schmidt on a random matrix: the columns of the result are orthonormal.
fn random_orthogonal(d: usize, rng: &mut impl Rng) -> Vec<f64> {
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(d);
    while cols.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
        for u in &cols {
            let p = dot(&v, u);
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-6 {
            cols.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut q = vec![0.0; d * d];
    for (k, col) in cols.iter().enumerate() {
        for (r, &x) in col.iter().enumerate() {
            q[r * d + k] = x;
        }
    }
    q
}

/// Solves `h x = rhs` by Gaussian elimination with partial pivoting (`h` is SPD here).
fn solve(mut h: Vec<f64>, mut rhs: Vec<f64>, d: usize) -> Vec<f64> {
    for col in 0..d {
        let pivot = (col..d)
            .max_by(|&i, &j| h[i * d + col].abs().total_cmp(&h[j * d + col].abs()))
            .unwrap_or(col);
        if pivot != col {
            for k in 0..d {
                h.swap(col * d + k, pivot * d + k);
            }
            rhs.swap(col, pivot);
        }
        for row in col + 1..d {
            let f = h[row * d + col] / h[col * d + col];
            for k in col..d {
                h[row * d + k] -= f * h[col * d + k];
            }
            rhs[row] -= f * rhs[col];
        }
    }
    let mut x = vec![0.0; d];
    for row in (0..d).rev() {
        let s: f64 = (row + 1..d).map(|k| h[row * d + k] * x[k]).sum();
        x[row] = (rhs[row] - s) / h[row * d + row];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Learn2Mix, Static};

    #[test]
    fn minimiser_zeroes_the_gradient() {
        let tb = Testbed::random(3, 5, 0.5, 4.0, 1).expect("valid");
        let alpha = Mixture::new(vec![0.2, 0.3, 0.5]).expect("valid");
        let theta = tb.minimiser(&alpha);
        let g = tb.gradient(&theta, &alpha);
        assert!(g.iter().all(|x| x.abs() < 1e-10), "{g:?}");
    }

    #[test]
    fn proposition_2_3_theta_and_alpha_converge_to_the_fixed_point() {
        for seed in 0..5 {
            let tb = Testbed::random(4, 6, 0.5, 5.0, seed).expect("valid");
            let (theta_star, alpha_star) = tb.fixed_point(1e-14, 10_000).expect("valid");
            // alpha* really is L(theta*)/sum L(theta*).
            let fp = crate::convergence::alpha_fixed_point(&tb.losses(&theta_star)).expect("valid");
            assert!(fp.max_abs_diff(&alpha_star) < 1e-10);

            let rule = Learn2Mix::new(0.1).expect("valid");
            let start = Mixture::new(vec![0.7, 0.1, 0.1, 0.1]).expect("valid");
            let traj = tb
                .run(vec![0.0; 6], start, &rule, tb.max_learning_rate(), 3000)
                .expect("valid");
            let theta_t = traj.thetas.last().expect("steps");
            let alpha_t = traj.alphas.last().expect("steps");
            assert!(
                distance(theta_t, &theta_star) < 1e-6,
                "seed {seed}: theta off by {}",
                distance(theta_t, &theta_star)
            );
            assert!(
                alpha_t.max_abs_diff(&alpha_star) < 1e-6,
                "seed {seed}: alpha off"
            );
        }
    }

    #[test]
    fn classical_training_converges_elsewhere() {
        // The static rule minimises alpha_0^T L: a different point whenever alpha_0 is not
        // the learn2mix fixed point, so the test above is not passing by accident.
        let tb = Testbed::random(4, 6, 0.5, 5.0, 0).expect("valid");
        let (theta_star, _) = tb.fixed_point(1e-14, 10_000).expect("valid");
        let start = Mixture::uniform(4).expect("valid");
        let traj = tb
            .run(
                vec![0.0; 6],
                start.clone(),
                &Static,
                tb.max_learning_rate(),
                3000,
            )
            .expect("valid");
        let theta_t = traj.thetas.last().expect("steps");
        assert!(distance(theta_t, &tb.minimiser(&start)) < 1e-6);
        assert!(distance(theta_t, &theta_star) > 1e-2);
    }
}
