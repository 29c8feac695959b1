//! The cuDNN calls: one convolution pass on raw device pointers of contiguous f32 NCHW
//! tensors, on the legacy default stream of the device's primary context (the context CubeCL
//! uses). The caller synchronises CubeCL's stream before ([`crate::conv`]); this module
//! synchronises the context after, so CubeCL's later kernels read finished results.
//!
//! TF32 is off unless `TANAS_TF32=1` (`CUDNN_FMA_MATH`: FP32 arithmetic throughout, as the CPU
//! backend; `CUDNN_DEFAULT_MATH` lets cuDNN use TF32 tensor cores, as PyTorch does by default).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cudnn::result as cudnn;
use cudarc::cudnn::sys;
use cudarc::driver::{CudaContext, result as driver};

use crate::geometry::Conv2dGeometry;

/// Which pass of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Pass {
    /// `y = conv(x, w)`.
    Forward,
    /// `dx` from `w` and `dy`.
    Data,
    /// `dw` from `x` and `dy`.
    Filter,
}

/// Device pointers of one pass: the input / its gradient, the filter / its gradient, the
/// output / its gradient (which of them is written depends on the pass).
pub(crate) struct Pointers {
    pub x: u64,
    pub w: u64,
    pub y: u64,
}

/// Whether TF32 tensor-core math is allowed (`TANAS_TF32=1`).
pub(crate) fn tf32() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("TANAS_TF32").is_ok_and(|v| v == "1"))
}

/// The primary context of device `ordinal` (retained once, kept for the process).
fn context(ordinal: usize) -> Result<Arc<CudaContext>, String> {
    static CONTEXTS: OnceLock<Mutex<HashMap<usize, Arc<CudaContext>>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| "cuDNN context table poisoned".to_string())?;
    if let Some(c) = map.get(&ordinal) {
        return Ok(c.clone());
    }
    let c = CudaContext::new(ordinal).map_err(|e| format!("CUDA device {ordinal}: {e:?}"))?;
    map.insert(ordinal, c.clone());
    Ok(c)
}

/// Per thread and device: a cuDNN handle and a workspace (pointer, bytes).
struct ThreadState {
    handle: sys::cudnnHandle_t,
    workspace: (u64, usize),
}

thread_local! {
    static STATE: RefCell<HashMap<usize, ThreadState>> = RefCell::new(HashMap::new());
}

/// A pass's algorithm.
#[derive(Debug, Clone, Copy)]
enum Algo {
    Forward(sys::cudnnConvolutionFwdAlgo_t),
    Data(sys::cudnnConvolutionBwdDataAlgo_t),
    Filter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

/// What an algorithm is chosen for: the geometry, the pass, whether TF32 is allowed.
type AlgoKey = (Conv2dGeometry, Pass, bool);

/// The algorithm chosen for a pass of a geometry (cuDNN's heuristic, asked once).
fn algorithms() -> &'static Mutex<HashMap<AlgoKey, Algo>> {
    static ALGOS: OnceLock<Mutex<HashMap<AlgoKey, Algo>>> = OnceLock::new();
    ALGOS.get_or_init(Default::default)
}

/// A descriptor destroyed when dropped.
struct Descriptors {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
}

impl Descriptors {
    fn new(g: &Conv2dGeometry) -> Result<Self, String> {
        let err = |what: &'static str| move |e: cudnn::CudnnError| format!("cuDNN {what}: {e:?}");
        let d = Self {
            x: cudnn::create_tensor_descriptor().map_err(err("tensor descriptor"))?,
            y: cudnn::create_tensor_descriptor().map_err(err("tensor descriptor"))?,
            w: cudnn::create_filter_descriptor().map_err(err("filter descriptor"))?,
            conv: cudnn::create_convolution_descriptor().map_err(err("convolution descriptor"))?,
        };
        let (float, nchw) = (
            sys::cudnnDataType_t::CUDNN_DATA_FLOAT,
            sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW,
        );
        let math = if tf32() {
            sys::cudnnMathType_t::CUDNN_DEFAULT_MATH
        } else {
            sys::cudnnMathType_t::CUDNN_FMA_MATH
        };
        // SAFETY: the four descriptors were just created and are destroyed only by `drop`;
        // the values set are the checked geometry's.
        unsafe {
            cudnn::set_tensor4d_descriptor(d.x, nchw, float, g.x).map_err(err("input shape"))?;
            cudnn::set_tensor4d_descriptor(d.y, nchw, float, g.y).map_err(err("output shape"))?;
            cudnn::set_filter4d_descriptor(d.w, float, nchw, g.w).map_err(err("filter shape"))?;
            cudnn::set_convolution2d_descriptor(
                d.conv,
                g.pad[0],
                g.pad[1],
                g.stride[0],
                g.stride[1],
                g.dilation[0],
                g.dilation[1],
                sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                float,
            )
            .map_err(err("convolution"))?;
            cudnn::set_convolution_group_count(d.conv, g.groups).map_err(err("group count"))?;
            cudnn::set_convolution_math_type(d.conv, math).map_err(err("math type"))?;
        }
        Ok(d)
    }
}

impl Drop for Descriptors {
    fn drop(&mut self) {
        // SAFETY: each descriptor was created in `new` and is destroyed once, here.
        unsafe {
            let _ = cudnn::destroy_tensor_descriptor(self.x);
            let _ = cudnn::destroy_tensor_descriptor(self.y);
            let _ = cudnn::destroy_filter_descriptor(self.w);
            let _ = cudnn::destroy_convolution_descriptor(self.conv);
        }
    }
}

/// Runs `f` with this thread's cuDNN handle and workspace for device `ordinal`, cuDNN loaded
/// (before any cuDNN call: cudarc's own loader would not find the wheel's library) and the
/// device's primary context bound to the thread; returns when everything `f` queued is
/// finished (the context is synchronised), so CubeCL's later kernels read finished results.
/// Descriptors made in `f` may be dropped in it: cuDNN reads them when the call is queued.
fn with_handle<T>(
    ordinal: usize,
    f: impl FnOnce(&mut ThreadState) -> Result<T, String>,
) -> Result<T, String> {
    crate::library::load()?;
    let ctx = context(ordinal)?;
    ctx.bind_to_thread()
        .map_err(|e| format!("CUDA device {ordinal}: {e:?}"))?;
    let out = STATE.with(|state| {
        let mut state = state.borrow_mut();
        let s = match state.entry(ordinal) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let handle = cudnn::create_handle().map_err(|e| format!("cuDNN handle: {e:?}"))?;
                e.insert(ThreadState {
                    handle,
                    workspace: (0, 0),
                })
            }
        };
        f(s)
    })?;
    ctx.synchronize()
        .map_err(|e| format!("CUDA synchronise after cuDNN: {e:?}"))?;
    Ok(out)
}

impl ThreadState {
    /// A workspace of at least `bytes` bytes (grown, never shrunk).
    fn workspace(&mut self, bytes: usize) -> Result<(*mut c_void, usize), String> {
        if bytes > self.workspace.1 {
            if self.workspace.0 != 0 {
                // SAFETY: the old workspace was allocated by `malloc_sync` below in this
                // context and no call is using it (the last one was synchronised).
                unsafe { driver::free_sync(self.workspace.0) }
                    .map_err(|e| format!("CUDA free: {e:?}"))?;
                self.workspace = (0, 0);
            }
            // SAFETY: the context is bound to this thread (`with_handle`); the pointer is
            // kept in the thread's state and freed only above, when a larger one replaces it.
            let ptr = unsafe { driver::malloc_sync(bytes) }
                .map_err(|e| format!("cuDNN workspace of {bytes} bytes: {e:?}"))?;
            self.workspace = (ptr, bytes);
        }
        Ok((self.workspace.0 as *mut c_void, self.workspace.1))
    }
}

/// Host scalars 1 and 0 as cuDNN's `alpha` / `beta` (f32 for f32 tensors).
const ONE: f32 = 1.0;
const ZERO: f32 = 0.0;

/// `ONE` and `ZERO` as the pointers cuDNN takes.
fn alpha_beta() -> (*const c_void, *const c_void) {
    (
        &ONE as *const f32 as *const c_void,
        &ZERO as *const f32 as *const c_void,
    )
}

/// Runs `pass` of the convolution `g` on device `ordinal` over the pointers `p`, each a
/// contiguous f32 NCHW (filter: KCRS) buffer of the geometry's shape, every input complete
/// (the caller synchronised the stream that wrote it). Returns when the result is written.
pub(crate) fn run(
    ordinal: usize,
    g: &Conv2dGeometry,
    pass: Pass,
    p: &Pointers,
) -> Result<(), String> {
    with_handle(ordinal, |s| {
        let d = Descriptors::new(g)?;
        let algo = algorithm(s.handle, &d, g, pass)?;
        let need = workspace_size(s.handle, &d, algo)?;
        let (ws, ws_bytes) = s.workspace(need)?;
        let (alpha, beta) = alpha_beta();
        let (x, w, y) = (p.x as *mut c_void, p.w as *mut c_void, p.y as *mut c_void);
        // SAFETY: the handle and descriptors are alive; the pointers are device buffers of the
        // shapes the descriptors state (the caller's contract), the workspace holds at least
        // the bytes cuDNN asked for this algorithm, alpha and beta point at host f32 statics,
        // and the context of the buffers is bound to this thread.
        let result = unsafe {
            match algo {
                Algo::Forward(a) => cudnn::convolution_forward(
                    s.handle, alpha, d.x, x, d.w, w, d.conv, a, ws, ws_bytes, beta, d.y, y,
                ),
                Algo::Data(a) => cudnn::convolution_backward_data(
                    s.handle, alpha, d.w, w, d.y, y, d.conv, a, ws, ws_bytes, beta, d.x, x,
                ),
                Algo::Filter(a) => cudnn::convolution_backward_filter(
                    s.handle, alpha, d.x, x, d.y, y, d.conv, a, ws, ws_bytes, beta, d.w, w,
                ),
            }
        };
        result.map_err(|e| format!("cuDNN {pass:?} of {g:?}: {e:?}"))
    })
}

/// Device pointers of a BatchNorm pass over `[n, c, h, w]`: the input, the per-channel
/// scale, and the batch mean and inverse standard deviation cuDNN saves in the forward
/// pass and reads in the backward pass.
pub(crate) struct NormPointers {
    pub x: u64,
    pub gamma: u64,
    pub mean: u64,
    pub inv_std: u64,
}

/// The two tensor descriptors of a BatchNorm: the NCHW input (and output, and their
/// gradients) and the `[1, c, 1, 1]` per-channel tensors; destroyed when dropped.
struct NormDescriptors {
    x: sys::cudnnTensorDescriptor_t,
    channel: sys::cudnnTensorDescriptor_t,
}

/// BatchNorm over the whole batch and plane per channel (`SPATIAL`, as BatchNorm2d).
const NORM_MODE: sys::cudnnBatchNormMode_t = sys::cudnnBatchNormMode_t::CUDNN_BATCHNORM_SPATIAL;

impl NormDescriptors {
    fn new(shape: [i32; 4]) -> Result<Self, String> {
        let err = |what: &'static str| move |e: cudnn::CudnnError| format!("cuDNN {what}: {e:?}");
        let d = Self {
            x: cudnn::create_tensor_descriptor().map_err(err("tensor descriptor"))?,
            channel: cudnn::create_tensor_descriptor().map_err(err("tensor descriptor"))?,
        };
        // SAFETY: both descriptors were just created and are destroyed only by `drop`.
        unsafe {
            cudnn::set_tensor4d_descriptor(
                d.x,
                sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW,
                sys::cudnnDataType_t::CUDNN_DATA_FLOAT,
                shape,
            )
            .map_err(err("BatchNorm input shape"))?;
            sys::cudnnDeriveBNTensorDescriptor(d.channel, d.x, NORM_MODE)
                .result()
                .map_err(err("BatchNorm channel shape"))?;
        }
        Ok(d)
    }
}

impl Drop for NormDescriptors {
    fn drop(&mut self) {
        // SAFETY: each descriptor was created in `new` and is destroyed once, here.
        unsafe {
            let _ = cudnn::destroy_tensor_descriptor(self.x);
            let _ = cudnn::destroy_tensor_descriptor(self.channel);
        }
    }
}

/// BatchNorm's training forward pass on device `ordinal`: `y = (x - mean) * inv_std *
/// gamma + beta` with the batch's own statistics, written with `mean` and `inv_std` (`[c]`, for
/// the backward pass). Running statistics are not touched (the caller keeps them). Every
/// pointer is a contiguous f32 buffer of its shape, every input complete.
pub(crate) fn norm_forward(
    ordinal: usize,
    shape: [i32; 4],
    epsilon: f64,
    p: &NormPointers,
    beta_ptr: u64,
    y: u64,
) -> Result<(), String> {
    with_handle(ordinal, |s| {
        let d = NormDescriptors::new(shape)?;
        let (one, zero) = alpha_beta();
        let null = std::ptr::null_mut();
        // SAFETY: handle and descriptors are alive; x and y are [n, c, h, w], gamma, beta,
        // mean and inv_std [c] device buffers (the caller's contract); the running mean and
        // variance are both null, which cuDNN allows (they are then not updated); epsilon is
        // at least CUDNN_BN_MIN_EPSILON (checked by the caller).
        unsafe {
            sys::cudnnBatchNormalizationForwardTraining(
                s.handle,
                NORM_MODE,
                one,
                zero,
                d.x,
                p.x as *const c_void,
                d.x,
                y as *mut c_void,
                d.channel,
                p.gamma as *const c_void,
                beta_ptr as *const c_void,
                1.0,
                null,
                null,
                epsilon,
                p.mean as *mut c_void,
                p.inv_std as *mut c_void,
            )
            .result()
        }
        .map_err(|e| format!("cuDNN BatchNorm forward of {shape:?}: {e:?}"))
    })
}

/// BatchNorm's backward pass on device `ordinal`: `dx`, `dgamma` and `dbeta` from the
/// output gradient `dy` and what the forward pass saved (`p`). Every pointer is a contiguous
/// f32 buffer of its shape, every input complete.
pub(crate) fn norm_backward(
    ordinal: usize,
    shape: [i32; 4],
    epsilon: f64,
    p: &NormPointers,
    dy: u64,
    [dx, dgamma, dbeta]: [u64; 3],
) -> Result<(), String> {
    with_handle(ordinal, |s| {
        let d = NormDescriptors::new(shape)?;
        let (one, zero) = alpha_beta();
        // SAFETY: handle and descriptors are alive; x, dy and dx are [n, c, h, w], gamma,
        // dgamma, dbeta, mean and inv_std [c] device buffers (the caller's contract), mean
        // and inv_std as the forward pass of the same x, gamma and epsilon saved them.
        unsafe {
            sys::cudnnBatchNormalizationBackward(
                s.handle,
                NORM_MODE,
                one,
                zero,
                one,
                zero,
                d.x,
                p.x as *const c_void,
                d.x,
                dy as *const c_void,
                d.x,
                dx as *mut c_void,
                d.channel,
                p.gamma as *const c_void,
                dgamma as *mut c_void,
                dbeta as *mut c_void,
                epsilon,
                p.mean as *const c_void,
                p.inv_std as *const c_void,
            )
            .result()
        }
        .map_err(|e| format!("cuDNN BatchNorm backward of {shape:?}: {e:?}"))
    })
}

/// The algorithm of `pass` for `g`: cuDNN's heuristic (`..._v7`), its first successful answer,
/// remembered per geometry.
fn algorithm(
    handle: sys::cudnnHandle_t,
    d: &Descriptors,
    g: &Conv2dGeometry,
    pass: Pass,
) -> Result<Algo, String> {
    let key = (*g, pass, tf32());
    if let Some(&a) = algorithms()
        .lock()
        .map_err(|_| "cuDNN algorithm table poisoned")?
        .get(&key)
    {
        return Ok(a);
    }
    const ASK: usize = 8;
    let mut returned = 0;
    let err = |e: cudnn::CudnnError| format!("cuDNN {pass:?} algorithm of {g:?}: {e:?}");
    let success = sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS;
    // SAFETY: handle and descriptors are alive; the result arrays hold ASK entries, the count
    // asked for, and `returned` says how many cuDNN filled.
    let chosen = unsafe {
        match pass {
            Pass::Forward => {
                let mut perf = [std::mem::zeroed::<sys::cudnnConvolutionFwdAlgoPerf_t>(); ASK];
                cudnn::get_convolution_forward_algorithm(
                    handle,
                    d.x,
                    d.w,
                    d.conv,
                    d.y,
                    ASK as i32,
                    &mut returned,
                    perf.as_mut_ptr(),
                )
                .map_err(err)?;
                perf[..returned.max(0) as usize]
                    .iter()
                    .find(|p| p.status == success)
                    .map(|p| Algo::Forward(p.algo))
            }
            Pass::Data => {
                let mut perf = [std::mem::zeroed::<sys::cudnnConvolutionBwdDataAlgoPerf_t>(); ASK];
                cudnn::get_convolution_backward_data_algorithm(
                    handle,
                    d.w,
                    d.y,
                    d.conv,
                    d.x,
                    ASK as i32,
                    &mut returned,
                    perf.as_mut_ptr(),
                )
                .map_err(err)?;
                perf[..returned.max(0) as usize]
                    .iter()
                    .find(|p| p.status == success)
                    .map(|p| Algo::Data(p.algo))
            }
            Pass::Filter => {
                let mut perf =
                    [std::mem::zeroed::<sys::cudnnConvolutionBwdFilterAlgoPerf_t>(); ASK];
                cudnn::get_convolution_backward_filter_algorithm(
                    handle,
                    d.x,
                    d.y,
                    d.conv,
                    d.w,
                    ASK as i32,
                    &mut returned,
                    perf.as_mut_ptr(),
                )
                .map_err(err)?;
                perf[..returned.max(0) as usize]
                    .iter()
                    .find(|p| p.status == success)
                    .map(|p| Algo::Filter(p.algo))
            }
        }
    }
    .ok_or_else(|| format!("cuDNN has no {pass:?} algorithm for {g:?}"))?;
    algorithms()
        .lock()
        .map_err(|_| "cuDNN algorithm table poisoned")?
        .insert(key, chosen);
    Ok(chosen)
}

/// The workspace bytes of `algo`.
fn workspace_size(
    handle: sys::cudnnHandle_t,
    d: &Descriptors,
    algo: Algo,
) -> Result<usize, String> {
    // SAFETY: handle and descriptors are alive; the algorithm is cuDNN's own answer for this
    // pass and these descriptors' geometry.
    unsafe {
        match algo {
            Algo::Forward(a) => {
                cudnn::get_convolution_forward_workspace_size(handle, d.x, d.w, d.conv, d.y, a)
            }
            Algo::Data(a) => cudnn::get_convolution_backward_data_workspace_size(
                handle, d.w, d.y, d.conv, d.x, a,
            ),
            Algo::Filter(a) => cudnn::get_convolution_backward_filter_workspace_size(
                handle, d.x, d.y, d.conv, d.w, a,
            ),
        }
    }
    .map_err(|e| format!("cuDNN {algo:?} workspace size: {e:?}"))
}
