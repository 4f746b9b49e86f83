//! A bounds-checked `f32` matrix product over strided slices.
//!
//! The convolution calls it once per sample from its own rayon tasks, so there the product
//! runs on the calling thread ([`matmul`]); the linear layer's products are large and
//! split over the rayon pool ([`matmul_parallel`]). On a CPU with AVX-512F the product is
//! the packed AVX-512 kernel of `sgemm.rs` when the product is large enough to repay the
//! packing; otherwise it is the `gemm` crate Candle's CPU
//! matmul uses (whose AVX-512 kernels need a nightly compiler). This module checks every
//! index the product can touch before calling either.

use candle_core::{Error, Result};

/// A read-only strided matrix over a slice: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A writable strided matrix over a slice: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Row-major `rows x cols` view of `data`.
pub(crate) fn rows(data: &[f32], rows: usize, cols: usize) -> Mat<'_> {
    Mat {
        data,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

/// Row-major `rows x cols` writable view of `data`.
pub(crate) fn rows_mut(data: &mut [f32], rows: usize, cols: usize) -> MatMut<'_> {
    MatMut {
        data,
        rows,
        cols,
        rs: cols,
        cs: 1,
    }
}

impl<'a> Mat<'a> {
    /// The transpose, as a view of the same elements.
    pub fn t(self) -> Mat<'a> {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// Largest index a `rows x cols` view with strides `rs`, `cs` reads, plus one.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

fn fits(what: &str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<()> {
    match extent(rows, cols, rs, cs) {
        Some(e) if e <= len && isize::try_from(rs.max(cs)).is_ok() => Ok(()),
        _ => Err(Error::Msg(format!(
            "gemm: the {what} view {rows}x{cols} (strides {rs}, {cs}) does not fit its {len} elements"
        ))),
    }
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` when `accumulate`, on this thread.
pub(crate) fn matmul(dst: MatMut<'_>, lhs: Mat<'_>, rhs: Mat<'_>, accumulate: bool) -> Result<()> {
    product(dst, lhs, rhs, accumulate, gemm::Parallelism::None)
}

/// [`matmul`] split over the threads of the current rayon pool. The split is over blocks
/// of the destination, so every element is summed in the same order as by [`matmul`].
pub(crate) fn matmul_parallel(
    dst: MatMut<'_>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
) -> Result<()> {
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && dst.rows * dst.cols * lhs.cols >= 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    product(dst, lhs, rhs, accumulate, par)
}

fn product(
    dst: MatMut<'_>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) -> Result<()> {
    if lhs.cols != rhs.rows || dst.rows != lhs.rows || dst.cols != rhs.cols {
        return Err(Error::Msg(format!(
            "gemm: shapes {}x{} = {}x{} * {}x{} do not chain",
            dst.rows, dst.cols, lhs.rows, lhs.cols, rhs.rows, rhs.cols
        )));
    }
    fits(
        "destination",
        dst.data.len(),
        dst.rows,
        dst.cols,
        dst.rs,
        dst.cs,
    )?;
    fits("left", lhs.data.len(), lhs.rows, lhs.cols, lhs.rs, lhs.cs)?;
    fits("right", rhs.data.len(), rhs.rows, rhs.cols, rhs.rs, rhs.cs)?;
    if dst.rows == 0 || dst.cols == 0 {
        return Ok(());
    }
    if lhs.cols == 0 {
        if !accumulate {
            for i in 0..dst.rows {
                for j in 0..dst.cols {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if super::sgemm::pays(dst.rows, lhs.cols, dst.cols) {
        let parallel = matches!(parallelism, gemm::Parallelism::Rayon(_));
        super::sgemm::product(dst, lhs, rhs, accumulate, parallel);
        return Ok(());
    }
    // `fits` checked that every stride fits in an isize.
    let s = |v: usize| v as isize;
    #[allow(unsafe_code)]
    // SAFETY: `fits` checked that every element (i, j) the product reads from `lhs` and
    // `rhs`, and writes to `dst`, lies inside its slice; `dst` is borrowed mutably, so it
    // aliases neither operand; with `Parallelism::Rayon`, `gemm` gives each thread its own
    // blocks of `dst` and returns only when all are done.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            s(dst.cs),
            s(dst.rs),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.cs),
            s(lhs.rs),
            rhs.data.as_ptr(),
            s(rhs.cs),
            s(rhs.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Mat, b: &Mat) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|k| a.data[i * a.rs + k * a.cs] * b.data[k * b.rs + j * b.cs])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_the_definition() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..63).map(|i| (i as f32 * 0.11).cos()).collect();
        // 5x7 row-major times (9x7 row-major)^T = 5x9.
        let lhs = rows(&a, 5, 7);
        let rhs = rows(&b, 9, 7).t();
        let want = naive(&lhs, &rhs);
        let mut got = vec![0f32; 45];
        matmul(rows_mut(&mut got, 5, 9), lhs, rhs, false).expect("product");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // Accumulating adds the same product again; a column-major destination works too.
        let mut col_major = vec![1f32; 45];
        let dst = MatMut {
            data: &mut col_major,
            rows: 5,
            cols: 9,
            rs: 1,
            cs: 5,
        };
        matmul(dst, lhs, rhs, true).expect("product");
        for i in 0..5 {
            for j in 0..9 {
                let w = 1.0 + want[i * 9 + j];
                assert!((col_major[i + j * 5] - w).abs() < 1e-5);
            }
        }
    }

    /// The parallel product gives the same bits as the single-threaded one, so results do
    /// not depend on the thread count.
    #[test]
    fn the_parallel_product_is_bitwise_the_serial_one() {
        let (m, k, n) = (301, 257, 129);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 1000) as f32 / 991.0 - 0.5)
            .collect();
        let mut serial = vec![0f32; m * n];
        let mut parallel = vec![0f32; m * n];
        matmul(
            rows_mut(&mut serial, m, n),
            rows(&a, m, k),
            rows(&b, k, n),
            false,
        )
        .expect("serial");
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("pool");
        pool.install(|| {
            matmul_parallel(
                rows_mut(&mut parallel, m, n),
                rows(&a, m, k),
                rows(&b, k, n),
                false,
            )
        })
        .expect("parallel");
        assert!(
            serial
                .iter()
                .zip(&parallel)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
    }

    /// Shapes at and across every block edge of the AVX-512 kernel (14-row and 32-column
    /// tiles, 192-step and 112-row blocks), operands in either orientation, destinations
    /// row- and column-major, stored or accumulated: all equal the definition.
    #[test]
    fn every_shape_and_orientation_matches_the_definition() {
        let shapes = [
            (1, 1, 1),
            (13, 31, 5),
            (14, 32, 192),
            (15, 33, 193),
            (113, 70, 400),
            (29, 65, 385),
            (230, 17, 64),
        ];
        for (m, n, k) in shapes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53) % 97) as f32 / 48.0 - 1.0)
                .collect();
            for a_t in [false, true] {
                for b_t in [false, true] {
                    let lhs = if a_t {
                        rows(&a, k, m).t()
                    } else {
                        rows(&a, m, k)
                    };
                    let rhs = if b_t {
                        rows(&b, n, k).t()
                    } else {
                        rows(&b, k, n)
                    };
                    let want = naive(&lhs, &rhs);
                    for (col_major, accumulate, kernel) in [
                        (false, false, 0),
                        (true, true, 0),
                        (false, true, 0),
                        (false, false, 1),
                        (true, true, 1),
                        (false, true, 1),
                    ] {
                        let mut got = vec![0.5f32; m * n];
                        let (rs, cs) = if col_major { (1, m) } else { (n, 1) };
                        let dst = MatMut {
                            data: &mut got,
                            rows: m,
                            cols: n,
                            rs,
                            cs,
                        };
                        if kernel == 0 {
                            matmul_parallel(dst, lhs, rhs, accumulate).expect("product");
                        } else {
                            // The AVX-512 kernel itself, also on the shapes `matmul`
                            // gives to the `gemm` crate.
                            #[cfg(target_arch = "x86_64")]
                            if super::super::avx512::available() {
                                super::super::sgemm::product(dst, lhs, rhs, accumulate, true);
                            } else {
                                continue;
                            }
                            #[cfg(not(target_arch = "x86_64"))]
                            continue;
                        }
                        for i in 0..m {
                            for j in 0..n {
                                let w = want[i * n + j] + if accumulate { 0.5 } else { 0.0 };
                                let g = got[i * rs + j * cs];
                                assert!(
                                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                    "{m}x{n}x{k} a_t {a_t} b_t {b_t} col_major {col_major} \
                                     accumulate {accumulate} kernel {kernel} at ({i}, {j}): \
                                     {g} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn views_that_overrun_their_slice_are_refused() {
        let a = vec![0f32; 10];
        let mut d = vec![0f32; 4];
        let e = matmul(
            rows_mut(&mut d, 2, 2),
            rows(&a, 2, 6),
            rows(&a, 6, 2),
            false,
        )
        .expect_err("2x6 needs 12 elements");
        assert!(e.to_string().contains("does not fit"), "{e}");
        let e = matmul(
            rows_mut(&mut d, 2, 2),
            rows(&a, 2, 3),
            rows(&a, 2, 2),
            false,
        )
        .expect_err("inner sizes differ");
        assert!(e.to_string().contains("do not chain"), "{e}");
    }
}
