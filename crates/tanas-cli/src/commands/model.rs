//! `tanas model list | info | eval` and `tanas genotype show`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tanas_data::{DataDirs, TaskData, TaskFile, prior_shift_from};
use tanas_train::{Tally, evaluate};
use tanas_zoo::cell::{CellSkeleton, Genotype};
use tanas_zoo::{Arch, ModelSpec, TensorInfo, ZooModel};

use crate::backend::{BackendJob, dispatch};
use crate::cli::{Decision, GenotypeCommand, ModelArgs, ModelCommand, TrainedOn};
use crate::device::DeviceArg;
use crate::output::outln;
use crate::output::print_json;

/// The model a command names: architecture, class count, genotype for cell networks.
pub fn model_spec(args: &ModelArgs) -> Result<ModelSpec> {
    let c = &args.cells;
    let spec = ModelSpec::new(args.arch.parse::<Arch>()?, args.num_classes);
    with_cells(spec, c.genotype.as_deref(), c.channels, c.layers)
}

/// `spec` with the genotype read from `genotype` (if given) and the skeleton C, L of a cell
/// network (which the other architectures ignore).
pub fn with_cells(
    spec: ModelSpec,
    genotype: Option<&Path>,
    channels: usize,
    layers: usize,
) -> Result<ModelSpec> {
    let spec = spec.with_skeleton(CellSkeleton::new(channels, layers));
    Ok(match genotype {
        Some(path) => spec.with_genotype(read_genotype(path)?),
        None => spec,
    })
}

/// Reads a genotype JSON file.
pub fn read_genotype(path: &Path) -> Result<Genotype> {
    let text = tanas_core::read_text(path).with_context(|| path.display().to_string())?;
    Genotype::from_json(&text).with_context(|| path.display().to_string())
}

/// `model info` output.
#[derive(Debug, Serialize)]
struct ModelInfo {
    arch: Arch,
    num_classes: usize,
    params: usize,
    tensors: Vec<TensorInfo>,
}

/// `model eval` output.
#[derive(Debug, Serialize)]
struct EvalInfo {
    samples: usize,
    loss: f64,
    /// Plain arg-max accuracy.
    accuracy: f64,
    balanced_accuracy: f64,
    /// With `--decision prior` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    prior_accuracy: Option<f64>,
}

/// Runs `tanas model ...`.
pub fn run(cmd: ModelCommand, dirs: &DataDirs, device: DeviceArg) -> Result<()> {
    match cmd {
        ModelCommand::List => {
            for arch in Arch::ALL {
                let note = if arch.needs_genotype() {
                    "  (needs --genotype)"
                } else {
                    ""
                };
                outln!("{arch}{note}");
            }
            Ok(())
        }
        ModelCommand::Info { model, json } => {
            let spec = model_spec(&model)?;
            let net = ZooModel::<burn::backend::Flex>::new(&spec, &Default::default())?;
            let info = ModelInfo {
                arch: spec.arch,
                num_classes: spec.num_classes,
                params: net.num_params(),
                tensors: net.tensor_infos(),
            };
            if json {
                return print_json(&info);
            }
            outln!(
                "{} with {} classes: {} trainable parameters",
                info.arch,
                info.num_classes,
                info.params
            );
            for t in &info.tensors {
                outln!("  {:<48} {:?}", t.name, t.shape);
            }
            Ok(())
        }
        ModelCommand::Eval {
            model,
            weights,
            tasks,
            task,
            split,
            limit,
            batch_size,
            decision,
            trained_on,
            json,
        } => {
            let spec = model_spec(&model)?;
            let file = TaskFile::read(&tasks)?;
            let task_spec = file.get(&task)?;
            let data = TaskData::build(task_spec, &file.load_dataset(task_spec, dirs)?)?;
            if data.num_labels > spec.num_classes {
                bail!(
                    "task `{task}` has {} labels but the network has {} outputs (--num-classes)",
                    data.num_labels,
                    spec.num_classes
                );
            }
            let samples = data.split(split).truncated(limit.unwrap_or(usize::MAX));
            // The prior-shifted decisions only when asked, from the frequencies the user
            // states (docs/decisions.md): tanas never assumes how given weights were trained.
            let prior_shift = match (decision, trained_on) {
                (Decision::Argmax, None) => None,
                (Decision::Argmax, Some(_)) => bail!("--trained-on needs --decision prior"),
                (Decision::Prior, Some(TrainedOn::Frequencies(f))) => {
                    if f.len() != data.num_labels {
                        bail!(
                            "--trained-on gives {} frequencies but task `{task}` has {} labels",
                            f.len(),
                            data.num_labels
                        );
                    }
                    Some(prior_shift_from(&data.dataset_prior, &f))
                }
                (Decision::Prior, Some(TrainedOn::Task)) => Some(data.test_prior_shift()),
                (Decision::Prior, None) => bail!(
                    "--decision prior needs --trained-on: `task` or the training label frequencies"
                ),
            };
            let eval = dispatch(
                device,
                EvalJob {
                    spec,
                    weights,
                    samples,
                    prior_shift,
                    batch_size,
                },
            )?;
            if json {
                print_json(&eval)
            } else {
                let prior = eval
                    .prior_accuracy
                    .map(|a| format!(", with the dataset's label prior {a:.4}"))
                    .unwrap_or_default();
                outln!(
                    "{task} {split}: {} samples, loss {:.4}, accuracy {:.4}, balanced accuracy {:.4}{prior}",
                    eval.samples,
                    eval.loss,
                    eval.accuracy,
                    eval.balanced_accuracy
                );
                Ok(())
            }
        }
    }
}

/// Evaluation of a model with given weights on some samples.
struct EvalJob {
    spec: ModelSpec,
    weights: PathBuf,
    samples: tanas_data::TaskSplit,
    /// The logit shift of the prior decisions ([`tanas_data::prior_shift_from`]), if asked.
    prior_shift: Option<Vec<f64>>,
    batch_size: usize,
}

impl BackendJob for EvalJob {
    type Output = EvalInfo;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<EvalInfo> {
        let model = ZooModel::<B>::new(&self.spec, &device)?;
        let model = tanas_zoo::load_pytorch(model, &self.weights)?.valid();
        let tally = self
            .prior_shift
            .map_or_else(Tally::default, |s| Tally::with_prior_shift(&s));
        let e = evaluate(&model, &self.samples, self.batch_size, tally, &device)?;
        Ok(EvalInfo {
            samples: e.samples,
            loss: e.loss,
            accuracy: e.accuracy,
            balanced_accuracy: e.balanced_accuracy,
            prior_accuracy: e.prior_accuracy,
        })
    }
}

/// Runs `tanas genotype ...`.
pub fn run_genotype(cmd: GenotypeCommand) -> Result<()> {
    match cmd {
        GenotypeCommand::Show { file, dot } => {
            let g = read_genotype(&file)?;
            if dot {
                crate::output::write_out(format_args!("{}", g.to_dot()));
            } else {
                outln!("{g}");
            }
            Ok(())
        }
    }
}
