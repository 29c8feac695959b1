//! tanas's CPU backend for burn 0.21: [`Cpu`] is Flex with its own convolution (forward and
//! both backward passes), pooling (max, average, adaptive average), broadcast arithmetic and
//! contiguous copies; [`batch_norm`], BatchNorm with batch statistics as one op; and
//! [`conv2d_weight_grad_sq_sum`], the exact Fisher's sum of squared per-sample gradients.
//!
//! Every other op forwards to Flex (`forward.rs`, generated from burn-backend's op traits by
//! `tools/forward.py`), and the tensors are Flex's, so the two backends exchange tensors
//! freely. Where a kernel does not cover a case (another float type, `ceil_mode` pooling) it
//! hands the call to Flex too.
//!
//! Results do not depend on the number of threads: work is split into pieces fixed by the
//! shapes alone, and partial sums are added in a fixed order.

mod alloc;
mod backend;
mod batch_norm;
mod binary;
mod buffer;
mod conv;
mod copy;
mod forward;
mod gemm;
mod module;
mod norm;
mod per_sample;
mod pool;
mod reduce;
mod simd;
mod tensor;

pub use alloc::{Allocator, keep_freed_memory};
pub use backend::Cpu;
pub use batch_norm::{BatchNormed, batch_norm};
/// The device of [`Cpu`] (Flex's).
pub use burn_flex::FlexDevice as CpuDevice;
pub use per_sample::conv2d_weight_grad_sq_sum;
