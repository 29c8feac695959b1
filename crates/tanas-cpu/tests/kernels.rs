//! Every kernel of tanas-cpu against Flex's own op: outputs and gradients through Autodiff,
//! on random shapes with the edge cases (batch 1, odd sizes, stride 2, dilation 2, groups =
//! channels, padding 0-3, kernels 1-7, 1x7 / 7x1).

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tanas_cpu::Cpu;

type A = Autodiff<Cpu>;
type F = Autodiff<Flex>;

fn data(shape: &[usize], seed: u64) -> TensorData {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    TensorData::new(v, shape.to_vec())
}

fn tensor<B: Backend, const D: usize>(d: &TensorData) -> Tensor<B, D> {
    Tensor::from_data(d.clone(), &Default::default())
}

/// Largest absolute difference relative to the largest reference magnitude.
fn rel_err(got: TensorData, want: TensorData) -> f32 {
    let g = got.to_vec::<f32>().expect("f32");
    let w = want.to_vec::<f32>().expect("f32");
    assert_eq!(g.len(), w.len(), "sizes");
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    g.iter()
        .zip(&w)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn close(what: &str, got: TensorData, want: TensorData) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let e = rel_err(got, want);
    assert!(e <= 1e-4, "{what}: relative error {e:e}");
}

/// Runs `f` on both backends with the same inputs and a random output weighting, and
/// compares the output and the gradient of every input.
fn check<const D: usize, const O: usize>(
    what: &str,
    inputs: &[(Vec<usize>, bool)],
    f_a: impl Fn(Vec<Tensor<A, D>>) -> Tensor<A, O>,
    f_f: impl Fn(Vec<Tensor<F, D>>) -> Tensor<F, O>,
) {
    let datas: Vec<TensorData> = inputs
        .iter()
        .enumerate()
        .map(|(i, (s, _))| data(s, 7 + i as u64))
        .collect();
    let xa: Vec<Tensor<A, D>> = datas
        .iter()
        .map(|d| tensor::<A, D>(d).require_grad())
        .collect();
    let xf: Vec<Tensor<F, D>> = datas
        .iter()
        .map(|d| tensor::<F, D>(d).require_grad())
        .collect();
    let ya = f_a(xa.clone());
    let yf = f_f(xf.clone());
    close(&format!("{what}: output"), ya.to_data(), yf.to_data());
    let r = data(&ya.dims(), 99);
    let ga = (ya * tensor::<A, O>(&r)).sum().backward();
    let gf = (yf * tensor::<F, O>(&r)).sum().backward();
    for (i, (_, grad)) in inputs.iter().enumerate() {
        if *grad {
            let a = xa[i].grad(&ga).expect("grad").to_data();
            let b = xf[i].grad(&gf).expect("grad").to_data();
            close(&format!("{what}: gradient of input {i}"), a, b);
        }
    }
}

/// `check` with one body for both backends: `check!(D, O; what, inputs, |v| body)`.
macro_rules! check {
    ($d:literal, $o:literal; $what:expr, $inputs:expr, |$v:ident| $body:expr) => {
        check::<$d, $o>($what, $inputs, |$v| $body, |$v| $body)
    };
}

#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    cin: usize,
    cout: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
    groups: usize,
    bias: bool,
}

fn conv_case(c: Case) {
    let opts = ConvOptions::new(c.stride, c.pad, c.dil, c.groups);
    let mut inputs = vec![
        (vec![c.n, c.cin, c.hw[0], c.hw[1]], true),
        (vec![c.cout, c.cin / c.groups, c.k[0], c.k[1]], true),
    ];
    if c.bias {
        inputs.push((vec![c.cout, 1, 1, 1], true));
    }
    let what = format!("{c:?}");
    check!(4, 4; &what, &inputs, |v| {
        conv2d(
            v[0].clone(),
            v[1].clone(),
            v.get(2).map(|b| b.clone().reshape([c.cout])),
            opts.clone(),
        )
    });
}

fn base() -> Case {
    Case {
        n: 2,
        cin: 3,
        cout: 4,
        hw: [7, 7],
        k: [3, 3],
        stride: [1, 1],
        pad: [1, 1],
        dil: [1, 1],
        groups: 1,
        bias: true,
    }
}

impl Case {
    /// The case with the fields of `spec` changed: `key=value` pairs, a pair of sizes
    /// written `AxB` or one `A` for both, `bias=0` for no bias.
    fn with(mut self, spec: &str) -> Case {
        for field in spec.split_whitespace() {
            let (key, value) = field.split_once('=').expect("key=value");
            let sizes: Vec<usize> = value
                .split('x')
                .map(|v| v.parse().expect("a size"))
                .collect();
            let pair = [sizes[0], *sizes.last().expect("a size")];
            match key {
                "n" => self.n = sizes[0],
                "cin" => self.cin = sizes[0],
                "cout" => self.cout = sizes[0],
                "groups" => self.groups = sizes[0],
                "bias" => self.bias = sizes[0] != 0,
                "hw" => self.hw = pair,
                "k" => self.k = pair,
                "stride" => self.stride = pair,
                "pad" => self.pad = pair,
                "dil" => self.dil = pair,
                _ => panic!("unknown field {key}"),
            }
        }
        self
    }
}

#[test]
fn conv2d_matches_flex_on_edge_cases() {
    let cases = [
        "",
        "n=1",
        "hw=9x6 stride=2",
        "hw=11x10 dil=2 pad=2",
        "k=1 pad=0",
        "k=1 pad=0 stride=2",
        "k=5 pad=3",
        "k=7 pad=3 hw=8",
        "k=1x7 pad=0x3",
        "k=7x1 pad=3x0",
        "k=2x3 pad=0x2 stride=2x1 hw=5x9",
        "cin=4 cout=6 groups=2",
        "cin=5 cout=5 groups=5",
        "cin=5 cout=5 groups=5 k=5 pad=4 dil=2 hw=9",
        "cin=5 cout=5 groups=5 stride=2 hw=8x7",
        "cin=4 cout=8 groups=4",
        "bias=0 n=3 hw=4",
        "n=5 cin=8 cout=16 hw=16",
        // Small maps: several images per gemm, the last chunk shorter.
        "n=10 hw=4",
        "n=10 hw=4 k=1 pad=0",
        "n=9 cin=4 cout=6 groups=2 hw=5x3",
        // Input gradient as a transposed convolution (stride 1, >= 16 input channels).
        "n=3 cin=16 cout=8 hw=6",
        "n=3 cin=32 cout=8 groups=2 k=5x3 pad=1x2 dil=2x1 hw=9x7",
        "n=2 cin=16 cout=4 k=3 pad=3 hw=5",
    ];
    for spec in cases {
        conv_case(base().with(spec));
    }
}

#[test]
fn conv2d_matches_flex_on_random_shapes() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..40 {
        let groups = [1, 1, 2, 3][rng.random_range(0..4)];
        let depthwise = rng.random_bool(0.25);
        let cin = if depthwise {
            rng.random_range(1..6)
        } else {
            groups * rng.random_range(1..4)
        };
        let (cout, groups) = if depthwise {
            (cin, cin)
        } else {
            (groups * rng.random_range(1..4), groups)
        };
        let k = [rng.random_range(1..6), rng.random_range(1..6)];
        let dil = [rng.random_range(1..3), rng.random_range(1..3)];
        let pad = [rng.random_range(0..4), rng.random_range(0..4)];
        let span = |i: usize| dil[i] * (k[i] - 1) + 1;
        let hw = [
            rng.random_range(span(0)..span(0) + 8),
            rng.random_range(span(1)..span(1) + 8),
        ];
        let c = Case {
            n: rng.random_range(1..5),
            cin,
            cout,
            hw,
            k,
            stride: [rng.random_range(1..4), rng.random_range(1..4)],
            pad,
            dil,
            groups,
            bias: rng.random_bool(0.5),
        };
        conv_case(c);
    }
}

#[test]
fn depthwise_stride_1_matches_flex_on_random_shapes() {
    // The padded-plane kernels, padding past the kernel's reach included (whose input
    // gradient falls back to the row-run walker).
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..30 {
        let c: usize = rng.random_range(1..7);
        let k: [usize; 2] = [rng.random_range(1..8), rng.random_range(1..8)];
        let dil = [rng.random_range(1..3), rng.random_range(1..3)];
        let pad: [usize; 2] = [rng.random_range(0..4), rng.random_range(0..4)];
        let span = |i: usize| dil[i] * (k[i] - 1) + 1;
        let hw = [
            rng.random_range(span(0).saturating_sub(2 * pad[0]).max(1)..span(0) + 9),
            rng.random_range(span(1).saturating_sub(2 * pad[1]).max(1)..span(1) + 9),
        ];
        conv_case(Case {
            n: rng.random_range(1..4),
            cin: c,
            cout: c,
            hw,
            k,
            stride: [1, 1],
            pad,
            dil,
            groups: c,
            bias: rng.random_bool(0.3),
        });
    }
}

#[test]
fn pools_match_flex() {
    // (n, c, h, w, kernel, stride, padding, dilation)
    let cases = [
        (2, 3, 8, 8, [2, 2], [2, 2], [0, 0], [1, 1]),
        (1, 2, 7, 9, [2, 2], [2, 2], [0, 0], [1, 1]),
        (1, 2, 9, 9, [2, 2], [2, 2], [0, 0], [2, 2]),
        (1, 2, 7, 9, [3, 3], [1, 1], [1, 1], [1, 1]),
        (3, 4, 9, 8, [3, 3], [2, 2], [1, 1], [1, 1]),
        (2, 2, 11, 10, [3, 2], [2, 3], [1, 0], [2, 1]),
        (1, 1, 5, 5, [5, 5], [1, 1], [2, 2], [1, 1]),
    ];
    for (n, c, h, w, k, s, p, d) in cases {
        let shape = vec![n, c, h, w];
        let what = format!("max {shape:?} k{k:?} s{s:?} p{p:?} d{d:?}");
        check!(4, 4; &what, &[(shape.clone(), true)], |v| max_pool2d(v[0].clone(), k, s, p, d, false));
        if d == [1, 1] {
            for include in [true, false] {
                let what = format!("avg {shape:?} k{k:?} s{s:?} p{p:?} include_pad={include}");
                check!(4, 4; &what, &[(shape.clone(), true)], |v| avg_pool2d(v[0].clone(), k, s, p, include, false));
            }
        }
    }
    for (hw, out) in [
        ([8, 8], [1, 1]),
        ([7, 5], [3, 2]),
        ([4, 4], [4, 4]),
        ([5, 9], [2, 4]),
    ] {
        let shape = vec![2, 3, hw[0], hw[1]];
        check!(4, 4; &format!("adaptive {shape:?} -> {out:?}"), &[(shape, true)], |v| adaptive_avg_pool2d(v[0].clone(), out));
    }
}

#[test]
fn max_pool_ties_and_ceil_mode_follow_flex() {
    // All-equal planes: the first maximum wins on both backends (stride 2: the 2x2 kernel).
    for stride in [[1, 1], [2, 2]] {
        let x = Tensor::<A, 4>::ones([1, 1, 4, 4], &Default::default()).require_grad();
        let y = Tensor::<F, 4>::ones([1, 1, 4, 4], &Default::default()).require_grad();
        let ga = max_pool2d(x.clone(), [2, 2], stride, [0, 0], [1, 1], false)
            .sum()
            .backward();
        let gf = max_pool2d(y.clone(), [2, 2], stride, [0, 0], [1, 1], false)
            .sum()
            .backward();
        close(
            "ties",
            x.grad(&ga).expect("grad").to_data(),
            y.grad(&gf).expect("grad").to_data(),
        );
    }
    // ceil_mode is handed to Flex: same result by construction, but it must run.
    let z = Tensor::<Cpu, 4>::random([1, 2, 5, 5], Distribution::Default, &Default::default());
    let zf = Tensor::<Flex, 4>::from_data(z.to_data(), &Default::default());
    close(
        "ceil",
        max_pool2d(z, [2, 2], [2, 2], [0, 0], [1, 1], true).to_data(),
        max_pool2d(zf, [2, 2], [2, 2], [0, 0], [1, 1], true).to_data(),
    );
}

#[test]
fn strided_reshape_matches_flex() {
    // BatchNorm's swap_dims(0, 1) + reshape, a permutation, a sliced view, a transposed
    // innermost dimension (left to Flex), and their gradients.
    let shape = vec![3, 4, 5, 6];
    check!(4, 2; "swap_dims + reshape", &[(shape.clone(), true)], |v| v[0].clone().swap_dims(0, 1).reshape([4, 90]));
    check!(4, 2; "permute + reshape", &[(shape.clone(), true)], |v| v[0].clone().permute([2, 0, 1, 3]).reshape([15, 24]));
    check!(4, 2; "slice + reshape", &[(shape.clone(), true)], |v| {
        v[0].clone()
            .slice([0..3, 1..3, 0..5, 2..6])
            .reshape([6, 20])
    });
    check!(4, 2; "transpose + reshape", &[(shape, true)], |v| v[0].clone().swap_dims(2, 3).reshape([12, 30]));
}

#[test]
fn broadcast_arithmetic_matches_flex() {
    // BatchNorm's per-channel operands, a scalar-like operand, a strided operand, both
    // sides broadcast, and the same-shape contiguous case (Flex's own path).
    let cases: [(Vec<usize>, Vec<usize>); 6] = [
        (vec![4, 3, 5, 5], vec![1, 3, 1, 1]),
        (vec![1, 3, 1, 1], vec![4, 3, 5, 5]),
        (vec![2, 3, 4, 6], vec![1, 1, 1, 1]),
        (vec![2, 1, 4, 1], vec![1, 3, 1, 6]),
        (vec![2, 3, 4, 6], vec![2, 3, 4, 6]),
        (vec![64, 16, 16, 16], vec![1, 16, 1, 1]),
    ];
    for (a, b) in cases {
        let inputs = [(a.clone(), true), (b.clone(), true)];
        let what = format!("{a:?} op {b:?}");
        check!(4, 4; &what, &inputs, |v| (v[0].clone() + v[1].clone()) * v[0].clone() - v[1].clone());
        check!(4, 4; &what, &inputs, |v| v[0].clone() / (v[1].clone().abs() + 1.0));
        // A transposed (strided) operand.
        let what = format!("{a:?} op transposed {b:?}");
        check!(4, 4; &what, &inputs, |v| v[0].clone().swap_dims(2, 3).swap_dims(2, 3) * v[1].clone());
    }
    check!(4, 4; "strided lhs", &[(vec![3, 4, 5, 6], true), (vec![3, 4, 6, 5], true)], |v| v[0].clone() * v[1].clone().swap_dims(2, 3));
}

#[test]
fn in_place_arithmetic_matches_flex() {
    // Without autodiff the intermediates are unshared, so each op writes into one of its
    // operands: the full-shape left one, or the full-shape right one.
    let (x, m) = (data(&[4, 3, 5, 5], 1), data(&[1, 3, 1, 1], 2));
    let a = {
        let (x, m) = (tensor::<Cpu, 4>(&x), tensor::<Cpu, 4>(&m));
        let y = (x.clone() * 2.0 - m.clone()) / (m.clone().abs() + 1.0);
        (m.clone() - y * m.clone()) + x
    };
    let b = {
        let (x, m) = (tensor::<Flex, 4>(&x), tensor::<Flex, 4>(&m));
        let y = (x.clone() * 2.0 - m.clone()) / (m.clone().abs() + 1.0);
        (m.clone() - y * m.clone()) + x
    };
    close("in place", a.to_data(), b.to_data());
}

#[test]
fn unfold4d_matches_flex() {
    use burn::tensor::module::unfold4d;
    use burn::tensor::ops::UnfoldOptions;
    for (shape, k, s, p, d) in [
        ([2, 3, 7, 7], [3, 3], [1, 1], [1, 1], [1, 1]),
        ([1, 4, 9, 8], [3, 2], [2, 1], [0, 1], [2, 1]),
        ([3, 2, 5, 5], [1, 1], [1, 1], [0, 0], [1, 1]),
        ([2, 5, 8, 6], [5, 5], [1, 2], [2, 3], [1, 1]),
    ] {
        let what = format!("unfold4d {shape:?} k{k:?} s{s:?} p{p:?} d{d:?}");
        let o = UnfoldOptions::new(s, p, d);
        // On the inner backend (as the Fisher calls it) and through autodiff.
        let x = data(&shape, 3);
        let a = unfold4d(tensor::<Cpu, 4>(&x), k, o.clone());
        let b = unfold4d(tensor::<Flex, 4>(&x), k, o.clone());
        close(&what, a.to_data(), b.to_data());
        check!(4, 3; &what, &[(shape.to_vec(), true)], |v| unfold4d(v[0].clone(), k, o.clone()));
    }
}

/// BatchNorm with batch statistics composed of tensor ops (burn-nn's formula).
fn composed_batch_norm<B: Backend>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 4>,
    beta: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let stat = |t: Tensor<B, 4>| t.mean_dim(0).mean_dim(2).mean_dim(3);
    let mean = stat(x.clone());
    let centered = x.sub(mean);
    let var = stat(centered.clone().powi_scalar(2));
    centered
        .div(var.add_scalar(1e-5).sqrt())
        .mul(gamma)
        .add(beta)
}

#[test]
fn batch_norm_matches_composed_ops() {
    // At least 3 values per channel: with 2 the input gradient is zero up to epsilon, and
    // both sides return rounding noise.
    let mut rng = StdRng::seed_from_u64(5);
    let mut shapes = vec![
        [1, 1, 1, 3],
        [1, 3, 5, 5],
        [2, 16, 32, 32],
        [7, 5, 3, 1],
        [4, 64, 8, 8],
    ];
    shapes.extend((0..8).map(|_| {
        [
            rng.random_range(1..6),
            rng.random_range(1..20),
            rng.random_range(2..12),
            rng.random_range(1..12),
        ]
    }));
    for [n, c, h, w] in shapes {
        let what = format!("batch_norm {n}x{c}x{h}x{w}");
        let per_channel = vec![1, c, 1, 1];
        let inputs = [
            (vec![n, c, h, w], true),
            (per_channel.clone(), true),
            (per_channel, true),
        ];
        check::<4, 4>(
            &what,
            &inputs,
            |v| {
                let r = |t: &Tensor<A, 4>| t.clone().reshape([c]);
                let out = tanas_cpu::batch_norm(&v[0], &r(&v[1]), &r(&v[2]), 1e-5)
                    .expect("Autodiff<Cpu>");
                out.output
            },
            |v| composed_batch_norm(v[0].clone(), v[1].clone(), v[2].clone()),
        );
    }
    // A strided input, and the statistics it returns.
    let x = tensor::<Cpu, 4>(&data(&[3, 4, 6, 6], 1)).swap_dims(2, 3);
    let (g, b) = (
        tensor::<Cpu, 1>(&data(&[4], 2)),
        tensor::<Cpu, 1>(&data(&[4], 3)),
    );
    let out = tanas_cpu::batch_norm(&x, &g, &b, 1e-5).expect("Cpu");
    let want = composed_batch_norm(x.clone(), g.reshape([1, 4, 1, 1]), b.reshape([1, 4, 1, 1]));
    close(
        "batch_norm of a strided input",
        out.output.to_data(),
        want.to_data(),
    );
    let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3).reshape([4]);
    close(
        "batch_norm mean",
        out.mean.to_data(),
        mean.clone().to_data(),
    );
    let var = x
        .sub(mean.reshape([1, 4, 1, 1]))
        .powi_scalar(2)
        .mean_dim(0)
        .mean_dim(2)
        .mean_dim(3);
    close(
        "batch_norm variance",
        out.var.to_data(),
        var.reshape([4]).to_data(),
    );
    // Other backends are left to the caller.
    let xf = tensor::<Flex, 4>(&data(&[1, 2, 2, 2], 1));
    let gf = tensor::<Flex, 1>(&data(&[2], 2));
    assert!(tanas_cpu::batch_norm(&xf, &gf, &gf, 1e-5).is_none());
}

#[test]
fn squared_per_sample_weight_gradients_match_flex() {
    // (n, cin, cout, hw, kernel, stride, padding, dilation, groups): plain, strided,
    // dilated, grouped, depthwise, pointwise.
    let cases = [
        (3, 4, 5, [7, 6], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        (2, 3, 4, [9, 9], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        (4, 2, 3, [8, 8], [3, 3], [1, 1], [2, 2], [2, 2], 1),
        (2, 4, 6, [5, 7], [1, 3], [1, 1], [0, 1], [1, 1], 2),
        (3, 5, 5, [6, 6], [3, 3], [1, 1], [1, 1], [1, 1], 5),
        (5, 6, 4, [4, 4], [1, 1], [1, 1], [0, 0], [1, 1], 1),
    ];
    for (n, cin, cout, hw, k, s, p, d, groups) in cases {
        let opts = ConvOptions::new(s, p, d, groups);
        let xd = data(&[n, cin, hw[0], hw[1]], 1);
        let wd = data(&[cout, cin / groups, k[0], k[1]], 2);
        let w = tensor::<Flex, 4>(&wd);
        let [_, _, ho, wo] = conv2d(tensor::<Flex, 4>(&xd), w.clone(), None, opts.clone()).dims();
        let dyd = data(&[n, cout, ho, wo], 3);
        // Flex: the weight gradient of each sample by autodiff, squared and summed.
        let mut want = Tensor::<Flex, 4>::zeros(wd.shape.clone(), &Default::default());
        for i in 0..n {
            let x = tensor::<F, 4>(&xd).narrow(0, i, 1);
            let w = tensor::<F, 4>(&wd).require_grad();
            let dy = tensor::<F, 4>(&dyd).narrow(0, i, 1);
            let grads = (conv2d(x, w.clone(), None, opts.clone()) * dy)
                .sum()
                .backward();
            want = want + w.grad(&grads).expect("grad").square();
        }
        let got = tanas_cpu::conv2d_weight_grad_sq_sum(
            &tensor::<Cpu, 4>(&xd),
            &tensor::<Cpu, 4>(&dyd),
            [cout, cin / groups, k[0], k[1]],
            &opts,
        )
        .expect("Cpu");
        close(
            &format!("squared gradients {n}x{cin}->{cout} k{k:?} s{s:?} g{groups}"),
            got.to_data(),
            want.to_data(),
        );
    }
    let xf = tensor::<Flex, 4>(&data(&[1, 1, 3, 3], 1));
    let none = tanas_cpu::conv2d_weight_grad_sq_sum(
        &xf,
        &xf,
        [1, 1, 1, 1],
        &ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    );
    assert!(none.is_none(), "other backends are left to the caller");
}

#[test]
fn fused_ops_do_not_depend_on_the_thread_count() {
    // Enough samples and channels that the parts and planes are split among threads.
    let xd = data(&[9, 6, 10, 10], 1);
    let dyd = data(&[9, 8, 10, 10], 2);
    let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let x = tensor::<Cpu, 4>(&xd);
            let sq = tanas_cpu::conv2d_weight_grad_sq_sum(&x, &tensor(&dyd), [8, 6, 3, 3], &opts)
                .expect("Cpu");
            let xa = tensor::<A, 4>(&xd).require_grad();
            let g = tensor::<A, 1>(&data(&[6], 3)).require_grad();
            let b = tensor::<A, 1>(&data(&[6], 4)).require_grad();
            let bn = tanas_cpu::batch_norm(&xa, &g, &b, 1e-5).expect("Autodiff<Cpu>");
            let grads = (bn.output.clone() * tensor::<A, 4>(&data(&[9, 6, 10, 10], 5)))
                .sum()
                .backward();
            [
                sq.to_data(),
                bn.output.to_data(),
                bn.var.to_data(),
                xa.grad(&grads).expect("dx").to_data(),
                g.grad(&grads).expect("dgamma").to_data(),
            ]
        })
    };
    let (one, two) = (run(1), run(2));
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(
            a.as_bytes(),
            b.as_bytes(),
            "results differ between 1 and 2 threads"
        );
    }
}
