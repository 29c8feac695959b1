//! Cell networks: every operation forward and backward, shapes at odd sizes, the DARTS_V2
//! parameter count, the zero cell, parameter paths, and the operations' numerics.

use burn::backend::Autodiff;
use std::collections::BTreeMap;
use tanas_cpu::Cpu;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData, Tolerance};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot};
use tanas_zoo::cell::{
    CellError, CellGenotype, CellNet, CellSkeleton, Edge, EdgeOp, Genotype, Op, SeqLayer,
};

type Ad = Autodiff<Cpu>;
type Grads = <Ad as burn::tensor::backend::AutodiffBackend>::Gradients;

fn device() -> burn::tensor::Device<Cpu> {
    Default::default()
}

fn images<B: Backend>(shape: [usize; 4], seed: u64) -> Tensor<B, 4> {
    B::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// Collects the path of every float tensor and, given gradients, the parameters without one.
struct Paths<'a> {
    stack: Vec<String>,
    paths: Vec<String>,
    grads: Option<&'a Grads>,
    missing_grad: Vec<String>,
}

impl ModuleVisitor<Ad> for Paths<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
        let path = self.stack.join(".");
        let is_buffer = path.ends_with("running_mean") || path.ends_with("running_var");
        if let (Some(grads), false) = (self.grads, is_buffer) {
            match param.val().grad(grads) {
                Some(g) => {
                    let finite = g.is_finite().all().into_scalar();
                    assert!(finite, "non-finite gradient at {path}");
                }
                None => self.missing_grad.push(path.clone()),
            }
        }
        self.paths.push(path);
    }
}

fn visit_paths<'a>(model: &CellNet<Ad>, grads: Option<&'a Grads>) -> Paths<'a> {
    let mut v = Paths {
        stack: vec![],
        paths: vec![],
        grads,
        missing_grad: vec![],
    };
    model.visit(&mut v);
    v
}

#[test]
fn every_op_forward_and_backward() {
    let genotype = Genotype::every_op();
    let skeleton = CellSkeleton::new(4, 3);
    for classes in [10, 2] {
        let model = CellNet::<Ad>::new(&genotype, &skeleton, classes, &device()).expect("build");
        let x = images::<Ad>([2, 3, 32, 32], 7);
        let logits = model.forward(x);
        assert_eq!(logits.dims(), [2, classes]);
        assert!(logits.clone().is_finite().all().into_scalar());
        let targets = Tensor::<Ad, 1, Int>::from_data([0, 1], &device());
        let loss = CrossEntropyLossConfig::new()
            .init(&device())
            .forward(logits, targets);
        let grads = loss.backward();
        let v = visit_paths(&model, Some(&grads));
        assert!(
            v.missing_grad.is_empty(),
            "no gradient: {:?}",
            v.missing_grad
        );
        // Eval mode (running statistics) on the inner backend.
        let eval = model.valid().forward(images::<Cpu>([2, 3, 32, 32], 8));
        assert_eq!(eval.dims(), [2, classes]);
        assert!(eval.is_finite().all().into_scalar());
    }
}

#[test]
fn odd_and_small_inputs_and_skeletons() {
    // 25 -> 13 -> 7: factorized reduce and stride-2 ops on odd sizes.
    let model = net(&Genotype::every_op(), 2, 3, 3);
    assert_eq!(model.forward(images([1, 3, 25, 25], 1)).dims(), [1, 3]);
    // L = 1 and L = 2: the first cell is a reduction cell (DARTS's L/3, 2L/3 rule).
    for layers in [1, 2, 4, 5] {
        let model = net(&Genotype::darts_v2(), 2, layers, 4);
        assert_eq!(model.cells.len(), layers);
        assert_eq!(model.forward(images([1, 3, 16, 16], 2)).dims(), [1, 4]);
    }
}

#[test]
fn darts_v2_has_the_published_parameter_count() {
    let model = net(&Genotype::darts_v2(), 36, 20, 10);
    assert_eq!(model.num_trainable_params(), 3_349_342);
    assert_eq!(model.cells.len(), 20);
    let reductions: Vec<usize> = (0..20).filter(|&i| model.cells[i].reduction).collect();
    assert_eq!(reductions, vec![6, 13]);
}

#[test]
fn none_only_cells_give_the_head_bias() {
    let genotype = Genotype::dense(3, &[Op::None; 9], &[Op::None; 9]).expect("genotype");
    let model =
        CellNet::<Ad>::new(&genotype, &CellSkeleton::new(4, 3), 5, &device()).expect("build");
    let logits = model.forward(images([2, 3, 32, 32], 3));
    assert_eq!(logits.dims(), [2, 5]);
    let bias = model
        .classifier
        .bias
        .as_ref()
        .expect("classifier has a bias")
        .val();
    let expected = bias.clone().unsqueeze::<2>().repeat_dim(0, 2);
    logits
        .clone()
        .into_data()
        .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
    let grads = logits.sum().backward();
    let g = bias.grad(&grads).expect("bias gradient");
    g.into_data()
        .assert_approx_eq::<f32>(&TensorData::from([2.0f32; 5]), Tolerance::default());
}

/// A cell network of `genotype` with C = `c`, `layers` cells and `classes` outputs.
fn net(genotype: &Genotype, c: usize, layers: usize, classes: usize) -> CellNet<Cpu> {
    CellNet::new(genotype, &CellSkeleton::new(c, layers), classes, &device()).expect("build")
}

/// Every `(name, shape)` of `expected` is in the state dict `sd`.
fn assert_shapes(sd: &BTreeMap<String, Vec<usize>>, expected: &[(&str, &[usize])]) {
    for (name, shape) in expected {
        assert_eq!(sd.get(*name).map(Vec::as_slice), Some(*shape), "{name}");
    }
}

/// Tensor names and shapes as the zoo exports them: enum variants skipped, PyTorch adapter.
fn state_dict<B: Backend>(model: &CellNet<B>) -> BTreeMap<String, Vec<usize>> {
    let snapshots = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
    let n = snapshots.len();
    let names: BTreeMap<String, Vec<usize>> = snapshots
        .iter()
        .map(|s| (s.full_path(), s.shape.to_vec()))
        .collect();
    assert_eq!(names.len(), n, "duplicate tensor names");
    names
}

#[test]
fn tensor_names_are_darts_state_dict_names() {
    let model = net(&Genotype::darts_v2(), 36, 20, 10);
    let sd = state_dict(&model);
    let expected: &[(&str, &[usize])] = &[
        ("stem.0.weight", &[108, 3, 3, 3]),
        ("stem.1.weight", &[108]),
        ("stem.1.running_var", &[108]),
        ("cells.0.preprocess0.op.1.weight", &[36, 108, 1, 1]),
        ("cells.0.preprocess1.op.1.weight", &[36, 108, 1, 1]),
        ("cells.0.preprocess1.op.2.bias", &[36]),
        // sep_conv_3x3: [ReLU, dw, pw, BN, ReLU, dw, pw, BN]
        ("cells.0._ops.0.op.1.weight", &[36, 1, 3, 3]),
        ("cells.0._ops.0.op.2.weight", &[36, 36, 1, 1]),
        ("cells.0._ops.0.op.3.weight", &[36]),
        ("cells.0._ops.0.op.5.weight", &[36, 1, 3, 3]),
        ("cells.0._ops.0.op.6.weight", &[36, 36, 1, 1]),
        ("cells.0._ops.0.op.7.running_mean", &[36]),
        // dil_conv_3x3: [ReLU, dilated dw, pw, BN]
        ("cells.0._ops.7.op.1.weight", &[36, 1, 3, 3]),
        ("cells.0._ops.7.op.3.running_var", &[36]),
        ("cells.1.preprocess0.op.1.weight", &[36, 108, 1, 1]),
        ("cells.1.preprocess1.op.1.weight", &[36, 144, 1, 1]),
        ("cells.6.preprocess0.op.1.weight", &[72, 144, 1, 1]),
        ("cells.6.preprocess1.op.1.weight", &[72, 144, 1, 1]),
        // After a reduction cell: FactorizedReduce.
        ("cells.7.preprocess0.conv_1.weight", &[36, 144, 1, 1]),
        ("cells.7.preprocess0.conv_2.weight", &[36, 144, 1, 1]),
        ("cells.7.preprocess0.bn.weight", &[72]),
        ("cells.7.preprocess1.op.1.weight", &[72, 288, 1, 1]),
        ("cells.13.preprocess1.op.1.weight", &[144, 288, 1, 1]),
        ("cells.14.preprocess0.conv_1.weight", &[72, 288, 1, 1]),
        ("cells.14.preprocess1.op.1.weight", &[144, 576, 1, 1]),
        ("classifier.weight", &[10, 576]),
        ("classifier.bias", &[10]),
    ];
    assert_shapes(&sd, expected);
    // The reduction cells of DARTS_V2 hold only pools and identities.
    assert!(!sd.keys().any(|k| k.starts_with("cells.6._ops")));
    assert!(!sd.keys().any(|k| k.contains("gamma") || k.contains("Conv")));
    let trainable: usize = sd
        .iter()
        .filter(|(k, _)| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(trainable, 3_349_342);
}

#[test]
fn tensor_names_of_every_op() {
    let model = net(&Genotype::every_op(), 4, 3, 10);
    let sd = state_dict(&model);
    let c = 8; // reduction cell 1: C doubled
    let expected: &[(&str, &[usize])] = &[
        // skip_connect at stride 2 (edge 1 of the reduction cell): FactorizedReduce
        ("cells.1._ops.1.conv_1.weight", &[c / 2, c, 1, 1]),
        ("cells.1._ops.1.bn.running_mean", &[c]),
        // conv_3x3 as ReLUConvBN
        ("cells.1._ops.4.op.1.weight", &[c, c, 3, 3]),
        ("cells.1._ops.6.op.1.weight", &[c, c, 7, 7]),
        ("cells.1._ops.10.op.1.weight", &[c, 1, 5, 5]),
        // conv_7x1_1x7: a bare Sequential
        ("cells.1._ops.11.1.weight", &[c, c, 1, 7]),
        ("cells.1._ops.11.2.weight", &[c, c, 7, 1]),
        ("cells.1._ops.11.3.bias", &[c]),
        ("cells.2.preprocess0.conv_1.weight", &[8, 16, 1, 1]),
    ];
    assert_shapes(&sd, expected);
}

#[test]
fn trainable_params_leave_out_running_stats() {
    let model = net(&Genotype::darts_v2(), 4, 3, 10);
    let paths = visit_paths_flex(&model);
    let buffers: usize = paths
        .iter()
        .filter(|(p, _)| p.ends_with("running_mean") || p.ends_with("running_var"))
        .map(|(_, n)| n)
        .sum();
    assert!(buffers > 0);
    assert_eq!(model.num_trainable_params() + buffers, model.num_params());
    // burn's own paths carry the enum variants.
    assert!(
        paths
            .iter()
            .any(|(p, _)| p == "cells.0._ops.0.SepConv.op.1.Conv.weight")
    );
    assert!(paths.iter().any(|(p, _)| p == "stem.1.BatchNorm.gamma"));
}

/// burn paths (variants included) and element counts of every float tensor.
fn visit_paths_flex(model: &CellNet<Cpu>) -> Vec<(String, usize)> {
    struct V {
        stack: Vec<String>,
        out: Vec<(String, usize)>,
    }
    impl ModuleVisitor<Cpu> for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Cpu, D>>) {
            self.out
                .push((self.stack.join("."), p.shape().num_elements()));
        }
    }
    let mut v = V {
        stack: vec![],
        out: vec![],
    };
    model.visit(&mut v);
    v.out
}

#[test]
fn invalid_configurations_are_errors() {
    let bad = Genotype {
        normal: CellGenotype {
            nodes: 1,
            edges: vec![Edge::new(0, 1, Op::Conv3x3)],
        },
        reduce: Genotype::darts_v2().reduce,
    };
    let skeleton = CellSkeleton::new(4, 3);
    let err = CellNet::<Cpu>::new(&bad, &skeleton, 10, &device()).expect_err("bad genotype");
    assert!(matches!(err, CellError::EdgeToInput { .. }), "{err}");
    let g = Genotype::darts_v2();
    let err = CellNet::<Cpu>::new(&g, &skeleton, 0, &device()).expect_err("no classes");
    assert!(matches!(err, CellError::Config(_)), "{err}");
    let err =
        CellNet::<Cpu>::new(&g, &CellSkeleton::new(4, 0), 10, &device()).expect_err("no layers");
    assert!(matches!(err, CellError::Config(_)), "{err}");
}

#[test]
fn record_round_trip_reproduces_outputs() {
    let g = Genotype::every_op();
    let s = CellSkeleton::new(2, 3);
    let a = CellNet::<Cpu>::new(&g, &s, 4, &device()).expect("build");
    let b = CellNet::<Cpu>::new(&g, &s, 4, &device()).expect("build");
    let x = images::<Cpu>([1, 3, 16, 16], 5);
    let ya = a.forward(x.clone());
    let b = b.load_record(a.clone().into_record());
    ya.into_data()
        .assert_approx_eq::<f32>(&b.forward(x).into_data(), Tolerance::default());
}

/// Elements of the trainable tensors of a module (BatchNorm running statistics left out).
fn num_trainable<M: Module<Cpu>>(m: &M) -> usize {
    m.collect(None, None, true)
        .iter()
        .filter(|s| {
            let p = s.full_path();
            !p.ends_with("running_mean") && !p.ends_with("running_var")
        })
        .map(|s| s.shape.num_elements())
        .sum()
}

fn op(op: Op, c: usize, stride: usize) -> EdgeOp<Cpu> {
    EdgeOp::new(op, c, stride, &device())
}

#[test]
fn every_op_keeps_or_halves_the_size() {
    for o in Op::ALL {
        for (size, half) in [(8, 4), (7, 4), (1, 1)] {
            let x = images::<Cpu>([2, 4, size, size], 9);
            assert_eq!(
                op(o, 4, 1).forward(x.clone()).dims(),
                [2, 4, size, size],
                "{o}"
            );
            assert_eq!(
                op(o, 4, 2).forward(x).dims(),
                [2, 4, half, half],
                "{o} stride 2"
            );
        }
    }
}

#[test]
fn pooling_ignores_padding() {
    // Average pooling does not count padding: a constant stays constant at the borders.
    let ones = Tensor::<Cpu, 4>::ones([1, 1, 5, 5], &device());
    let avg = op(Op::AvgPool3x3, 1, 1).forward(ones.clone());
    avg.into_data()
        .assert_approx_eq::<f32>(&ones.clone().into_data(), Tolerance::default());
    // Max pooling pads with -inf, not 0.
    let neg = ones.clone().neg();
    let max = op(Op::MaxPool3x3, 1, 2).forward(neg.clone());
    max.into_data().assert_approx_eq::<f32>(
        &Tensor::<Cpu, 4>::ones([1, 1, 3, 3], &device())
            .neg()
            .into_data(),
        Tolerance::default(),
    );
    // A 3x3 average over the top-left corner of 0..25 counts only the 4 real pixels.
    let ramp = Tensor::<Cpu, 1, Int>::arange(0..25, &device())
        .float()
        .reshape([1, 1, 5, 5]);
    let corner: f32 = op(Op::AvgPool3x3, 1, 1)
        .forward(ramp)
        .slice([0..1, 0..1, 0..1, 0..1])
        .into_scalar();
    assert!(
        (corner - (0.0 + 1.0 + 5.0 + 6.0) / 4.0).abs() < 1e-6,
        "{corner}"
    );
    // Zero is zero, identity is identity.
    let x = images::<Cpu>([1, 2, 4, 4], 4);
    assert_eq!(
        op(Op::None, 2, 1)
            .forward(x.clone())
            .abs()
            .sum()
            .into_scalar(),
        0.0
    );
    x.clone()
        .into_data()
        .assert_eq(&op(Op::SkipConnect, 2, 1).forward(x).into_data(), true);
}

#[test]
fn operation_parameter_counts_match_darts() {
    let c = 8;
    let bn = 2 * c;
    for (o, params) in [
        (Op::None, 0),
        (Op::SkipConnect, 0),
        (Op::MaxPool3x3, 0),
        (Op::AvgPool3x3, 0),
        (Op::Conv3x3, 9 * c * c + bn),
        (Op::Conv5x5, 25 * c * c + bn),
        (Op::Conv7x7, 49 * c * c + bn),
        (Op::SepConv3x3, 2 * (9 * c + c * c + bn)),
        (Op::SepConv5x5, 2 * (25 * c + c * c + bn)),
        (Op::DilConv3x3, 9 * c + c * c + bn),
        (Op::DilConv5x5, 25 * c + c * c + bn),
        (Op::Conv7x1And1x7, 14 * c * c + bn),
    ] {
        assert_eq!(num_trainable(&op(o, c, 1)), params, "{o}");
    }
    // At stride 2, skip_connect is a factorized reduce: two 1x1 convs to C/2 and a BN.
    assert_eq!(num_trainable(&op(Op::SkipConnect, c, 2)), c * c + bn);
    match op(Op::DilConv5x5, c, 1) {
        EdgeOp::DilConv(d) => match &d.op[1] {
            SeqLayer::Conv(dw) => assert_eq!((dw.dilation, dw.groups), ([2, 2], c)),
            other => panic!("layer 1 of dil_conv_5x5 is {other:?}"),
        },
        other => panic!("dil_conv_5x5 built as {other:?}"),
    }
}
