//! The operations table: every operation a cell edge can carry, with its name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::CellError;

/// An operation on a cell edge (DARTS's operation set plus the papers' plain convolutions).
///
/// All operations map `C` channels to `C` channels. On an edge leaving an input node of a
/// reduction cell they run with stride 2 (see [`Op::name`] for the forms). The names are the
/// DARTS names and are what genotype JSON, [`Display`](fmt::Display) and [`FromStr`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Op {
    /// `none`: the zero operation (a zero tensor of the output size; no parameters).
    None,
    /// `skip_connect`: identity; FactorizedReduce (ReLU, two shifted 1x1 stride-2 convs, BN)
    /// at stride 2.
    SkipConnect,
    /// `max_pool_3x3`: 3x3 max pooling, padding 1.
    MaxPool3x3,
    /// `avg_pool_3x3`: 3x3 average pooling, padding 1, padding not counted.
    AvgPool3x3,
    /// `conv_3x3`: ReLU, 3x3 conv (padding 1, no bias), BN.
    Conv3x3,
    /// `conv_5x5`: ReLU, 5x5 conv (padding 2, no bias), BN.
    Conv5x5,
    /// `conv_7x7`: ReLU, 7x7 conv (padding 3, no bias), BN.
    Conv7x7,
    /// `sep_conv_3x3`: two ReLU, 3x3 depthwise conv, 1x1 conv, BN blocks (DARTS SepConv).
    SepConv3x3,
    /// `sep_conv_5x5`: two ReLU, 5x5 depthwise conv, 1x1 conv, BN blocks (DARTS SepConv).
    SepConv5x5,
    /// `dil_conv_3x3`: ReLU, 3x3 depthwise conv with dilation 2 (padding 2), 1x1 conv, BN.
    DilConv3x3,
    /// `dil_conv_5x5`: ReLU, 5x5 depthwise conv with dilation 2 (padding 4), 1x1 conv, BN.
    DilConv5x5,
    /// `conv_7x1_1x7`: ReLU, 1x7 conv, 7x1 conv, BN.
    Conv7x1And1x7,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 12] = [
        Op::None,
        Op::SkipConnect,
        Op::MaxPool3x3,
        Op::AvgPool3x3,
        Op::Conv3x3,
        Op::Conv5x5,
        Op::Conv7x7,
        Op::SepConv3x3,
        Op::SepConv5x5,
        Op::DilConv3x3,
        Op::DilConv5x5,
        Op::Conv7x1And1x7,
    ];

    /// The papers' general search space (paper 003, section IV): zero, identity, maxpool3x3,
    /// avepool3x3, conv3x3, conv5x5, conv7x7, dil-conv3x3, dil-conv5x5, conv7x1-1x7: every
    /// operation but the separable convolutions, in table order.
    pub const GENERAL_SPACE: [Op; 10] = {
        let mut space = [Op::None; 10];
        let (mut i, mut n) = (0, 0);
        while i < Op::ALL.len() {
            if !matches!(Op::ALL[i], Op::SepConv3x3 | Op::SepConv5x5) {
                space[n] = Op::ALL[i];
                n += 1;
            }
            i += 1;
        }
        assert!(n == 10);
        space
    };

    /// The operation's name (`sep_conv_3x3`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::MaxPool3x3 => "max_pool_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
            Op::Conv3x3 => "conv_3x3",
            Op::Conv5x5 => "conv_5x5",
            Op::Conv7x7 => "conv_7x7",
            Op::SepConv3x3 => "sep_conv_3x3",
            Op::SepConv5x5 => "sep_conv_5x5",
            Op::DilConv3x3 => "dil_conv_3x3",
            Op::DilConv5x5 => "dil_conv_5x5",
            Op::Conv7x1And1x7 => "conv_7x1_1x7",
        }
    }

    /// A one-line description of the operation, for humans.
    pub fn description(self) -> &'static str {
        match self {
            Op::None => "zero",
            Op::SkipConnect => "identity (factorized reduce at stride 2)",
            Op::MaxPool3x3 => "3x3 max pooling",
            Op::AvgPool3x3 => "3x3 average pooling (padding not counted)",
            Op::Conv3x3 => "ReLU-conv 3x3-BN",
            Op::Conv5x5 => "ReLU-conv 5x5-BN",
            Op::Conv7x7 => "ReLU-conv 7x7-BN",
            Op::SepConv3x3 => "2x (ReLU-depthwise 3x3-pointwise-BN)",
            Op::SepConv5x5 => "2x (ReLU-depthwise 5x5-pointwise-BN)",
            Op::DilConv3x3 => "ReLU-dilated depthwise 3x3 (dilation 2)-pointwise-BN",
            Op::DilConv5x5 => "ReLU-dilated depthwise 5x5 (dilation 2)-pointwise-BN",
            Op::Conv7x1And1x7 => "ReLU-conv 1x7-conv 7x1-BN",
        }
    }

    /// Whether the operation has trainable parameters at stride 1 (at stride 2, `skip_connect`
    /// becomes a factorized reduce and has parameters too).
    pub fn has_params(self) -> bool {
        !matches!(
            self,
            Op::None | Op::SkipConnect | Op::MaxPool3x3 | Op::AvgPool3x3
        )
    }

    /// All names, comma-separated (for error messages and help texts).
    pub fn names_joined() -> String {
        Op::ALL.map(Op::name).join(", ")
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = CellError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| CellError::UnknownOp {
                name: s.to_string(),
                at: None,
            })
    }
}

impl TryFrom<String> for Op {
    type Error = CellError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Op> for &'static str {
    fn from(op: Op) -> Self {
        op.name()
    }
}
