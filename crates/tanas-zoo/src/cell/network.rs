//! The cell network: DARTS's `NetworkCIFAR` (without the auxiliary head) built from a
//! [`Genotype`] and a [`CellSkeleton`].

use burn::module::Module;
use burn::module::{ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};

use super::edge::EdgeOp;
use super::layers::{
    ConvSpec, FactorizedReduce, ReluConvBn, SeqLayer, Zero, batch_norm, sequential,
};
use tanas_core::cell::CellSkeleton;
use tanas_core::cell::{CellError, CellKind};
use tanas_core::cell::{CellGenotype, Genotype, INPUT_NODES};

/// Input channels of the stem (RGB).
pub const STEM_IN_CHANNELS: usize = 3;

/// DARTS's stem as a sequence: [3x3 conv from 3 to `cout` channels (padding 1, no bias), BN]
/// (no ReLU). Tensors: `stem.0.weight`, `stem.1.*`.
fn stem<B: Backend>(cout: usize, device: &B::Device) -> Vec<SeqLayer<B>> {
    vec![
        ConvSpec::square(STEM_IN_CHANNELS, cout, 3, 1).layer(device),
        SeqLayer::BatchNorm(batch_norm(cout, device)),
    ]
}

/// Preprocessing of a cell's first input `c_{k-2}`: a factorized reduce when the previous
/// cell was a reduction cell (so `c_{k-2}` is twice the size of `c_{k-1}`), else a 1x1
/// ReLU-conv-BN.
// A network holds a few hundred of these at most; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Preprocess<B: Backend> {
    /// 1x1 ReLU-conv-BN.
    ReluConvBn(ReluConvBn<B>),
    /// Factorized reduce (halves the spatial size).
    FactorizedReduce(FactorizedReduce<B>),
}

impl<B: Backend> Preprocess<B> {
    /// Applies the preprocessing, parameterised layers through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        match self {
            Preprocess::ReluConvBn(m) => m.forward_hooked(x, h),
            Preprocess::FactorizedReduce(m) => m.forward_hooked(x, h),
        }
    }
}

/// One cell: preprocessing of both inputs, one [`EdgeOp`] per genotype edge (same order), and
/// the wiring. Output channels: `nodes * C`. Field names are DARTS's (`_ops` included).
#[derive(Module, Debug)]
pub struct Cell<B: Backend> {
    /// Preprocessing of `c_{k-2}`.
    pub preprocess0: Preprocess<B>,
    /// Preprocessing of `c_{k-1}` (1x1 ReLU-conv-BN).
    pub preprocess1: ReluConvBn<B>,
    /// The edge operations, in the genotype's edge order (DARTS's `_ops`).
    pub _ops: Vec<EdgeOp<B>>,
    /// `(from, to)` of each edge, aligned with `_ops`.
    pub edges: Vec<(usize, usize)>,
    /// Number of intermediate nodes.
    pub nodes: usize,
    /// Whether this is a reduction cell.
    pub reduction: bool,
}

impl<B: Backend> Cell<B> {
    /// Builds a cell from a validated cell genotype. `channels` = `[C_{k-2}, C_{k-1}, C]`.
    fn new(
        genotype: &CellGenotype,
        channels: [usize; 3],
        reduction: bool,
        reduction_prev: bool,
        device: &B::Device,
    ) -> Self {
        let [c_prev_prev, c_prev, c] = channels;
        let preprocess0 = if reduction_prev {
            Preprocess::FactorizedReduce(FactorizedReduce::new(c_prev_prev, c, device))
        } else {
            Preprocess::ReluConvBn(ReluConvBn::new(c_prev_prev, c, 1, 1, device))
        };
        let _ops = genotype
            .edges
            .iter()
            .map(|e| {
                let stride = if reduction && e.from < INPUT_NODES {
                    2
                } else {
                    1
                };
                EdgeOp::new(e.op, c, stride, device)
            })
            .collect();
        Cell {
            preprocess0,
            preprocess1: ReluConvBn::new(c_prev, c, 1, 1, device),
            _ops,
            edges: genotype.edges.iter().map(|e| (e.from, e.to)).collect(),
            nodes: genotype.nodes,
            reduction,
        }
    }

    /// Runs the cell on `c_{k-2}` and `c_{k-1}`; returns the concat of the intermediate nodes.
    /// Parameterised layers go through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(
        &self,
        s0: Tensor<B, 4>,
        s1: Tensor<B, 4>,
        h: &mut H,
    ) -> Tensor<B, 4> {
        let mut states = vec![
            self.preprocess0.forward_hooked(s0, h),
            self.preprocess1.forward_hooked(s1, h),
        ];
        for node in INPUT_NODES..INPUT_NODES + self.nodes {
            let mut sum: Option<Tensor<B, 4>> = None;
            for ((from, to), op) in self.edges.iter().zip(&self._ops) {
                if *to != node {
                    continue;
                }
                if let Some(input) = states.get(*from) {
                    let out = op.forward_hooked(input.clone(), h);
                    sum = Some(match sum {
                        Some(acc) => acc + out,
                        None => out,
                    });
                }
            }
            // A validated genotype gives every node an input; a node without one is zero.
            let sum = sum.unwrap_or_else(|| {
                let stride = if self.reduction { 2 } else { 1 };
                Zero { stride }.forward(&states[1])
            });
            states.push(sum);
        }
        Tensor::cat(states.split_off(INPUT_NODES), 1)
    }
}

/// A DARTS-style cell network (`NetworkCIFAR` without auxiliary head or drop-path).
///
/// Stem (3 -> 3C, BN), L cells (reduction cells at `L / 3` and `2L / 3` double the channels),
/// global average pooling, linear classifier. Input `[N, 3, H, W]`, output logits
/// `[N, num_classes]`. BatchNorm uses batch statistics on an autodiff backend and running
/// statistics on the inner backend (`valid()`), as everywhere in burn.
///
/// Field names mirror DARTS's modules, so that tensors collected with `skip_enum_variants`
/// and the PyTorch adapter (the zoo's weights module) carry exactly the `state_dict` names of
/// DARTS's `NetworkCIFAR`: `stem.0.weight`, `stem.1.running_mean`,
/// `cells.{i}.preprocess0.op.1.weight` (or `.conv_1.weight` after a reduction cell),
/// `cells.{i}.preprocess1.op.2.weight`, `cells.{i}._ops.{j}.op.1.weight` (edge `j` is the
/// genotype's edge `j`), `classifier.weight`. burn's own paths add the enum variant names
/// (`cells.0._ops.0.SepConv.op.1.Conv.weight`) and call BN's affine parameters `gamma`/`beta`.
#[derive(Module, Debug)]
pub struct CellNet<B: Backend> {
    /// The stem: [conv 3x3, BN].
    pub stem: Vec<SeqLayer<B>>,
    /// The cells.
    pub cells: Vec<Cell<B>>,
    /// The linear head.
    pub classifier: Linear<B>,
    /// The genotype the network was built from.
    pub genotype: Genotype,
    /// The skeleton the network was built with.
    pub skeleton: CellSkeleton,
    /// Number of output classes.
    pub num_classes: usize,
}

impl<B: Backend> CellNet<B> {
    /// Builds the network; every problem with the genotype, skeleton or class count is a
    /// [`CellError`].
    pub fn new(
        genotype: &Genotype,
        skeleton: &CellSkeleton,
        num_classes: usize,
        device: &B::Device,
    ) -> Result<Self, CellError> {
        genotype.validate()?;
        skeleton.validate()?;
        if num_classes == 0 {
            return Err(CellError::Config("num_classes must be at least 1".into()));
        }
        let c_stem = CellSkeleton::STEM_MULTIPLIER * skeleton.channels;
        let stem = stem(c_stem, device);
        let (mut c_prev_prev, mut c_prev, mut c) = (c_stem, c_stem, skeleton.channels);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(skeleton.layers);
        for i in 0..skeleton.layers {
            let reduction = skeleton.is_reduction(i);
            let kind = if reduction {
                c *= 2;
                CellKind::Reduce
            } else {
                CellKind::Normal
            };
            let cell_genotype = genotype.cell(kind);
            cells.push(Cell::new(
                cell_genotype,
                [c_prev_prev, c_prev, c],
                reduction,
                reduction_prev,
                device,
            ));
            reduction_prev = reduction;
            (c_prev_prev, c_prev) = (c_prev, cell_genotype.nodes * c);
        }
        Ok(CellNet {
            stem,
            cells,
            classifier: LinearConfig::new(c_prev, num_classes).init(device),
            genotype: genotype.clone(),
            skeleton: *skeleton,
            num_classes,
        })
    }

    /// Logits `[N, num_classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with the parameterised layers applied through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 2> {
        let s = sequential(&self.stem, x, h);
        let (mut s0, mut s1) = (s.clone(), s);
        for cell in &self.cells {
            let out = cell.forward_hooked(s0, s1.clone(), h);
            (s0, s1) = (s1, out);
        }
        let [n, c, _, _] = s1.dims();
        let pooled = s1.mean_dim(3).mean_dim(2).reshape([n, c]);
        h.linear(&self.classifier, pooled)
    }

    /// The number of trainable parameters (PyTorch's `sum(p.numel() for p in
    /// model.parameters())`): unlike burn's `Module::num_params`, BatchNorm running statistics
    /// are not counted.
    pub fn num_trainable_params(&self) -> usize {
        let mut counter = TrainableCounter::default();
        self.visit(&mut counter);
        counter.count
    }
}

/// Counts the elements of every float tensor that is not a BatchNorm running statistic.
#[derive(Default)]
struct TrainableCounter {
    /// The innermost module (field) name entered.
    current: String,
    /// Elements counted so far.
    count: usize,
}

impl<B: Backend> ModuleVisitor<B> for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.current = name.to_string();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !matches!(self.current.as_str(), "running_mean" | "running_var") {
            self.count += param.shape().num_elements();
        }
    }
}
