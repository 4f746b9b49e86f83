//! `f32` matrix product on AVX-512: packed panels and a 14 x 32 register-blocked
//! micro-kernel, the layout of BLIS and of the BLAS libraries PyTorch links.
//!
//! `C (+)= A B`: for each block of [`KC`] steps of the inner dimension, the block of `B` is
//! packed into panels of [`NR`] columns (zero-padded at the edge), and each block of [`MC`]
//! rows of `A` into panels of [`MR`] rows; the micro-kernel keeps an `MR x NR` tile of `C`
//! in 28 registers and, per step, loads two vectors of `B` and broadcasts `MR` values of
//! `A`. Every element of `C` is summed in the same order (the `KC` blocks in turn, each
//! in order) however the rows are split across threads, so the result does not depend on
//! the thread count.
#![allow(
    unsafe_code,
    reason = "AVX-512 intrinsics and the unchecked loads of the micro-kernel; the packing \
              functions check every extent and the micro-kernel reads only packed buffers \
              of known size"
)]

use std::arch::x86_64::{
    __m512, __mmask16, _MM_HINT_T0, _mm_prefetch, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_mask_loadu_ps, _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_storeu_ps,
};

use rayon::prelude::*;

use super::avx512::{LANES, available};
use super::gemm::{Mat, MatMut};

/// Rows of `A` per micro-kernel.
const MR: usize = 14;
/// Columns of `B` per micro-kernel (two vectors).
const NR: usize = 32;
/// Steps of the inner dimension per packed block (a 14 x 256 panel of `A` and a
/// 256 x 32 panel of `B`, 46 KiB, about the L1 cache; 192 and 384 measured slower).
const KC: usize = 256;
/// Most rows of `A` per packed block (a multiple of [`MR`]).
const MC: usize = 8 * MR;

/// Whether [`product`] runs on this CPU and pays for `m x k` by `k x n`: packing costs
/// about one pass over each operand, which products of fewer than a million
/// multiply-adds do not repay, and a destination narrower than one tile ([`NR`] columns,
/// such as the attention's `weights x V` with 16 columns) or shorter than one ([`MR`]
/// rows) would leave most of the registers idle; those stay with the `gemm` crate, which
/// multiplies small operands unpacked. (The attention's `Q K^T`, inner dimension 16 but
/// 500 x 500 outputs, runs here: about 5% faster per transformer epoch at length 500.)
pub(crate) fn pays(m: usize, k: usize, n: usize) -> bool {
    n >= NR && m >= MR && m.saturating_mul(n).saturating_mul(k) >= 1 << 20 && available()
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` when `accumulate`; shapes and extents were
/// checked by the caller (`gemm::product`). With `parallel`, blocks of rows run on
/// rayon's pool.
pub(crate) fn product(
    dst: MatMut<'_>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    let (rs, cs) = (dst.rs, dst.cs);
    let mut packed_b = vec![0f32; n.div_ceil(NR) * NR * KC.min(k)];
    let dst_ptr = SendPtr(dst.data.as_mut_ptr());
    let dst_len = dst.data.len();
    let grid = Grid::new(
        m,
        n,
        if parallel {
            rayon::current_num_threads()
        } else {
            1
        },
    );
    for (step, k0) in (0..k).step_by(KC).enumerate() {
        let kc = KC.min(k - k0);
        pack_b(rhs, k0, kc, &mut packed_b);
        let add = accumulate || step > 0;
        let task = |packed_a: &mut Vec<f32>, t: usize| {
            let (i0, mc, panels) = grid.task(t);
            // Every element is written by `pack_a`: growing the buffer is its only zeroing.
            packed_a.resize(mc.div_ceil(MR) * MR * kc, 0.0);
            pack_a(lhs, i0, mc, k0, kc, packed_a);
            for p in panels {
                let j0 = p * NR;
                let nc = NR.min(n - j0);
                let b = &packed_b[p * NR * kc..(p + 1) * NR * kc];
                for r0 in (0..mc).step_by(MR) {
                    let a = &packed_a[(r0 / MR) * MR * kc..(r0 / MR + 1) * MR * kc];
                    let tile = Tile {
                        dst: dst_ptr,
                        dst_len,
                        first: (i0 + r0) * rs + j0 * cs,
                        rows: MR.min(mc - r0),
                        cols: nc,
                        rs,
                        cs,
                        add,
                    };
                    // SAFETY: AVX-512F was checked by `pays` before this module was
                    // chosen; `a` and `b` hold `MR * kc` and `NR * kc` elements; the tile's
                    // `rows x cols` elements of `dst` are inside it (the caller checked the
                    // destination view) and no other task writes them (the grid's tasks
                    // are disjoint blocks of rows and panels).
                    unsafe { micro(a, b, kc, &tile) };
                }
            }
        };
        if grid.tasks() > 1 {
            (0..grid.tasks())
                .into_par_iter()
                .for_each_init(Vec::new, task);
        } else {
            task(&mut Vec::new(), 0);
        }
    }
}

/// How a product's destination is cut into tasks for `threads` threads: blocks of rows
/// (at most [`MC`], fewer when that leaves threads idle) by ranges of column panels (all
/// of them, unless there are too few rows to keep every thread busy). Each task packs its
/// rows of `A`; each element of `C` belongs to one task.
#[derive(Debug, Clone, Copy)]
struct Grid {
    m: usize,
    mc: usize,
    row_blocks: usize,
    panels: usize,
    panels_per_task: usize,
    col_blocks: usize,
}

impl Grid {
    fn new(m: usize, n: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        let panels = n.div_ceil(NR);
        let row_panels = m.div_ceil(MR);
        let (mc, col_split) = if threads == 1 {
            (MC, 1)
        } else if row_panels >= 2 * threads {
            // Enough rows: blocks of rows only, at least one per thread.
            ((row_panels.div_ceil(threads) * MR).min(MC), 1)
        } else {
            // Few rows: one block of them, the column panels split across threads.
            ((row_panels * MR).min(MC), threads)
        };
        let row_blocks = m.div_ceil(mc).max(1);
        let panels_per_task = panels.div_ceil(col_split.min(panels).max(1)).max(1);
        Self {
            m,
            mc,
            row_blocks,
            panels,
            panels_per_task,
            col_blocks: panels.div_ceil(panels_per_task).max(1),
        }
    }

    fn tasks(&self) -> usize {
        self.row_blocks * self.col_blocks
    }

    /// Task `t`'s first row, row count and column panels.
    fn task(&self, t: usize) -> (usize, usize, std::ops::Range<usize>) {
        let (rb, cb) = (t / self.col_blocks, t % self.col_blocks);
        let i0 = rb * self.mc;
        let p0 = cb * self.panels_per_task;
        (
            i0,
            self.mc.min(self.m - i0),
            p0..(p0 + self.panels_per_task).min(self.panels),
        )
    }
}

/// A raw destination pointer that rayon's tasks may share: they write disjoint rows.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the tasks of `product` write disjoint rows of the destination and the borrow of
// it outlives them.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// `B[k0 .. k0 + kc, :]` as panels of `NR` columns: panel `p`, step `t`, column `c` at
/// `(p * kc + t) * NR + c`, zero beyond `B`'s columns.
fn pack_b(rhs: Mat<'_>, k0: usize, kc: usize, out: &mut [f32]) {
    let n = rhs.cols;
    for (p, panel) in out.chunks_mut(NR * kc).take(n.div_ceil(NR)).enumerate() {
        let j0 = p * NR;
        let nc = NR.min(n - j0);
        for t in 0..kc {
            let row = &mut panel[t * NR..(t + 1) * NR];
            let base = (k0 + t) * rhs.rs + j0 * rhs.cs;
            if rhs.cs == 1 {
                row[..nc].copy_from_slice(&rhs.data[base..base + nc]);
            } else {
                for (c, v) in row[..nc].iter_mut().enumerate() {
                    *v = rhs.data[base + c * rhs.cs];
                }
            }
            row[nc..].fill(0.0);
        }
    }
}

/// `A[i0 .. i0 + mc, k0 .. k0 + kc]` as panels of `MR` rows: panel `p`, step `t`, row `r`
/// at `(p * kc + t) * MR + r`, zero beyond `A`'s rows.
fn pack_a(lhs: Mat<'_>, i0: usize, mc: usize, k0: usize, kc: usize, out: &mut [f32]) {
    for (p, panel) in out.chunks_mut(MR * kc).enumerate() {
        let r0 = p * MR;
        let rows = MR.min(mc - r0);
        if lhs.cs == 1 {
            // Rows of A are contiguous: read the `rows` rows side by side, write the panel
            // in order.
            let row: [&[f32]; MR] = std::array::from_fn(|r| {
                let base = (i0 + r0 + r.min(rows - 1)) * lhs.rs + k0;
                &lhs.data[base..base + kc]
            });
            for (t, out) in panel.chunks_exact_mut(MR).enumerate() {
                for (o, row) in out.iter_mut().zip(&row).take(rows) {
                    *o = row[t];
                }
            }
        } else {
            for t in 0..kc {
                let base = (i0 + r0) * lhs.rs + (k0 + t) * lhs.cs;
                for r in 0..rows {
                    panel[t * MR + r] = lhs.data[base + r * lhs.rs];
                }
            }
        }
        for t in 0..kc {
            panel[t * MR + rows..(t + 1) * MR].fill(0.0);
        }
    }
}

/// Where one micro-kernel's tile goes.
struct Tile {
    dst: SendPtr,
    dst_len: usize,
    first: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    add: bool,
}

/// The `MR x NR` product of a packed panel of `A` and one of `B` over `kc` steps, stored
/// (or added) into the tile's `rows x cols` corner.
///
/// # Safety
/// AVX-512F must be available; `a` must hold `MR * kc` and `b` `NR * kc` elements; the
/// tile's elements must be inside the destination and written by no one else meanwhile.
#[target_feature(enable = "avx512f")]
unsafe fn micro(a: &[f32], b: &[f32], kc: usize, tile: &Tile) {
    debug_assert!(a.len() >= MR * kc && b.len() >= NR * kc);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    if tile.cs == 1 {
        // The tile of C is read (or written) after the loop: fetch its lines meanwhile.
        for r in 0..tile.rows {
            let at = tile.first + r * tile.rs;
            // Prefetching never faults; the addresses are inside the destination anyway.
            _mm_prefetch::<_MM_HINT_T0>(tile.dst.0.wrapping_add(at) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(tile.dst.0.wrapping_add(at + LANES) as *const i8);
        }
    }
    for t in 0..kc {
        // SAFETY: `t < kc`, so every read is inside `a` and `b`.
        unsafe {
            let b0 = _mm512_loadu_ps(bp.add(t * NR));
            let b1 = _mm512_loadu_ps(bp.add(t * NR + LANES));
            let at = ap.add(t * MR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*at.add(r));
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
    }
    let d = tile.dst.0;
    for (r, acc) in acc.iter().enumerate().take(tile.rows) {
        let row = tile.first + r * tile.rs;
        if tile.cs == 1 {
            for (h, &v) in acc.iter().enumerate() {
                let c0 = h * LANES;
                if c0 >= tile.cols {
                    break;
                }
                let live = (tile.cols - c0).min(LANES);
                let mask: __mmask16 = if live == LANES {
                    u16::MAX
                } else {
                    (1u16 << live) - 1
                };
                debug_assert!(row + c0 + live <= tile.dst_len);
                // SAFETY: the tile's elements are inside the destination (caller).
                unsafe {
                    let p = d.add(row + c0);
                    let v: __m512 = if tile.add {
                        _mm512_add_ps(_mm512_mask_loadu_ps(_mm512_setzero_ps(), mask, p), v)
                    } else {
                        v
                    };
                    if live == LANES {
                        _mm512_storeu_ps(p, v);
                    } else {
                        _mm512_mask_storeu_ps(p, mask, v);
                    }
                }
            }
        } else {
            let mut lanes = [0f32; NR];
            // SAFETY: `lanes` holds two vectors.
            unsafe {
                _mm512_storeu_ps(lanes.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(lanes.as_mut_ptr().add(LANES), acc[1]);
            }
            for (c, &v) in lanes.iter().enumerate().take(tile.cols) {
                let at = row + c * tile.cs;
                debug_assert!(at < tile.dst_len);
                // SAFETY: the tile's elements are inside the destination (caller).
                unsafe {
                    let p = d.add(at);
                    *p = if tile.add { *p + v } else { v };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element of the destination belongs to exactly one task, for row counts
    /// around the block sizes and any thread count, and no thread is left without a task
    /// when there is work for it.
    #[test]
    fn the_grid_covers_every_element_once() {
        for m in [1, 13, 14, 15, 32, 100, 112, 113, 128, 1000] {
            for n in [1, 31, 32, 33, 100, 784] {
                for threads in 1..=5 {
                    let grid = Grid::new(m, n, threads);
                    let panels = n.div_ceil(NR);
                    let mut owner = vec![0u32; m * panels];
                    for t in 0..grid.tasks() {
                        let (i0, mc, ps) = grid.task(t);
                        assert!(mc > 0 && i0 + mc <= m, "{m}x{n}/{threads}: task {t}");
                        for i in i0..i0 + mc {
                            for p in ps.clone() {
                                owner[i * panels + p] += 1;
                            }
                        }
                    }
                    assert!(owner.iter().all(|&c| c == 1), "{m}x{n}/{threads}: {grid:?}");
                    // Balance: no task holds more than twice an even share of the
                    // micro-kernel tiles (or one block of rows by one panel).
                    let work = m.div_ceil(MR) * panels;
                    let largest = (0..grid.tasks())
                        .map(|t| {
                            let (_, mc, ps) = grid.task(t);
                            mc.div_ceil(MR) * ps.len()
                        })
                        .max()
                        .unwrap_or(0);
                    let share = work.div_ceil(threads);
                    assert!(
                        threads == 1 || largest <= (2 * share).max(MC / MR),
                        "{m}x{n}/{threads}: largest task {largest} tiles of {work}: {grid:?}"
                    );
                }
            }
        }
    }
}
