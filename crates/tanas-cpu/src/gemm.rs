//! A safe face for the `gemm` crate: strided f32 matrix views whose extents are checked
//! before the one `unsafe` call.

use gemm::Parallelism;

/// A strided view of a matrix: element (i, j) is `data[i * rs + j * cs]`, inside `data`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<D> {
    data: D,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A read-only view.
pub(crate) type MatRef<'a> = Mat<&'a [f32]>;

/// A mutable view whose elements do not overlap.
pub(crate) type MatMut<'a> = Mat<&'a mut [f32]>;

/// The number of elements a `rows x cols` view with strides `rs`, `cs` reaches.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl<D: AsRef<[f32]>> Mat<D> {
    /// Any strided view; panics if it reaches past `data`.
    fn new(data: D, rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.as_ref().len(),
            "matrix view out of bounds"
        );
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix whose rows start `rs` elements apart.
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        Self::new(data, rows, cols, rs, 1)
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

impl<'a> MatMut<'a> {
    /// A row-major `rows x cols` matrix whose rows start `rs >= cols` elements apart.
    pub(crate) fn rows(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(rows <= 1 || rs >= cols, "overlapping matrix rows");
        Self::new(data, rows, cols, rs, 1)
    }
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` with `accumulate`. Panics if the shapes disagree.
///
/// The sum over the inner dimension runs in the same order whatever `threads` is: gemm
/// splits the output into tiles among threads, never the inner dimension.
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: Threads,
) {
    assert!(
        lhs.rows == dst.rows && rhs.cols == dst.cols && lhs.cols == rhs.rows,
        "matmul shapes: {}x{} x {}x{} -> {}x{}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols,
        dst.rows,
        dst.cols
    );
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    if lhs.cols == 0 {
        if !accumulate {
            for i in 0..dst.rows {
                dst.data[i * dst.rs..i * dst.rs + dst.cols].fill(0.0);
            }
        }
        return;
    }
    let parallelism = match threads {
        Threads::One => Parallelism::None,
        Threads::All => Parallelism::Rayon(rayon::current_num_threads()),
    };
    // SAFETY: the three views were checked on construction to lie inside their slices
    // (`extent`), `dst` is borrowed mutably and its elements do not overlap (rs >= cols,
    // cs = 1), so gemm reads and writes only memory these borrows own; the shapes agree
    // (asserted above) and all of m, n, k are non-zero. Strides fit in isize because they
    // index into existing slices.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Whether a gemm call may use the thread pool (when the caller is not already parallel).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Threads {
    /// On the calling thread only.
    One,
    /// On rayon's pool.
    All,
}
