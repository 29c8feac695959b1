//! The architecture names the zoo knows, as used on the command line and in configs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An architecture name the zoo does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{name}`; valid names: {valid}")]
pub struct UnknownArch {
    /// The name that was given.
    pub name: String,
    /// The valid names, comma separated.
    pub valid: String,
}

/// One architecture of the zoo. Its name ([`Arch::name`]) is the string form used by
/// [`FromStr`], [`fmt::Display`] and serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Arch {
    /// The quick epsilon-network (`tanas_zoo::small_cnn`).
    SmallCnn,
    /// VGG-11 with BatchNorm (`tanas_zoo::vgg`).
    Vgg11,
    /// VGG-13 with BatchNorm.
    Vgg13,
    /// VGG-16 with BatchNorm.
    Vgg16,
    /// VGG-19 with BatchNorm.
    Vgg19,
    /// ResNet-18 (`tanas_zoo::resnet`).
    ResNet18,
    /// ResNet-34.
    ResNet34,
    /// DenseNet-121 (`tanas_zoo::densenet`).
    DenseNet121,
    /// DenseNet-161.
    DenseNet161,
    /// A DARTS-style cell network built from a genotype ([`crate::cell`]).
    CellNet,
}

impl Arch {
    /// Every architecture, in the order `tanas model list` shows them.
    pub const ALL: [Arch; 10] = [
        Arch::SmallCnn,
        Arch::Vgg11,
        Arch::Vgg13,
        Arch::Vgg16,
        Arch::Vgg19,
        Arch::ResNet18,
        Arch::ResNet34,
        Arch::DenseNet121,
        Arch::DenseNet161,
        Arch::CellNet,
    ];

    /// The canonical name, e.g. `vgg16`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::SmallCnn => "small-cnn",
            Arch::Vgg11 => "vgg11",
            Arch::Vgg13 => "vgg13",
            Arch::Vgg16 => "vgg16",
            Arch::Vgg19 => "vgg19",
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::DenseNet121 => "densenet121",
            Arch::DenseNet161 => "densenet161",
            Arch::CellNet => "cellnet",
        }
    }

    /// The PyTorch module name of the final classification layer (its tensors are
    /// `<head>.weight` and `<head>.bias`): the layer whose rows mean the task's classes.
    pub fn head(self) -> &'static str {
        match self {
            Arch::SmallCnn => "fc2",
            Arch::Vgg11 | Arch::Vgg13 | Arch::Vgg16 | Arch::Vgg19 | Arch::CellNet => "classifier",
            Arch::ResNet18 | Arch::ResNet34 | Arch::DenseNet121 | Arch::DenseNet161 => "linear",
        }
    }

    /// Whether building this architecture needs a [`Genotype`](crate::cell::Genotype).
    pub fn needs_genotype(self) -> bool {
        self == Arch::CellNet
    }

    /// The valid names, comma separated (for error messages and help texts).
    pub fn valid_names() -> String {
        Self::ALL.map(Arch::name).join(", ")
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;

    /// Parses a canonical name; case and `_` versus `-` do not matter (`ResNet18`,
    /// `small_cnn`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| UnknownArch {
                name: s.to_string(),
                valid: Self::valid_names(),
            })
    }
}

impl TryFrom<String> for Arch {
    type Error = UnknownArch;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> Self {
        a.name().to_string()
    }
}
