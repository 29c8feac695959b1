//! Hand-designed baselines for a target: a zoo network (small-cnn, resnet18, vgg16, ...)
//! trained exactly like a searched network's final step (the dictionary's final-training
//! settings: same samples, epochs, optimiser, seed, BatchNorm refresh) and tested once, so
//! that the search tables compare networks, not training recipes.

use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use tanas_data::TaskData;
use tanas_search::{FinalConfig, SearchConfig, SearchData, TestScore, cell_spec, retrain_and_test};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec};

use crate::dictionary::{TaskDictionary, search_error};
use crate::error::{PipelineError, Result};
use crate::matrix::write_json;

/// The report file of a baseline run.
pub const BASELINE_FILE: &str = "baseline.json";

/// What a baseline run measured (`baseline.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineReport {
    /// The target task.
    pub target: String,
    /// The hand-designed architecture.
    pub arch: Arch,
    /// The cells of a `cellnet` baseline (a hand-chosen genotype, e.g. DARTS_V2, on the
    /// dictionary's skeleton).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genotype: Option<Genotype>,
    /// Its trainable parameters (PyTorch count).
    pub params: usize,
    /// Its one evaluation on the target's test split.
    #[serde(flatten)]
    pub score: TestScore,
    /// Samples per training epoch.
    pub train_samples: usize,
    /// The training settings (the dictionary's final step).
    pub training: FinalConfig,
    /// Wall-clock seconds of training and testing.
    pub seconds: f64,
    /// The device it ran on.
    pub device: String,
}

/// Trains `arch` on `target` like the dictionary's searched networks are finally trained and
/// tests it, into `out/baseline.json` (and `out/weights.safetensors`). A `cellnet` baseline
/// takes its `genotype` (required there) on the dictionary's skeleton, so that it has the
/// size of the searched networks. A finished run with the same target, network and settings
/// is returned as it is.
pub fn baseline_target<B: AutodiffBackend>(
    dict: &TaskDictionary,
    target: &TaskData,
    arch: Arch,
    genotype: Option<&Genotype>,
    out: &Path,
    device_name: &str,
    device: &B::Device,
) -> Result<BaselineReport> {
    // As stored (`quiet` is not serialised, so it stays false here and in a stored report).
    let settings = &dict.manifest().settings;
    let training = settings.search.final_config();
    let spec = match (arch, genotype) {
        (Arch::CellNet, Some(g)) => cell_spec(g, settings.skeleton, target.num_labels),
        (Arch::CellNet, None) => {
            return Err(PipelineError::Config {
                path: out.into(),
                problem: "a cellnet baseline needs a genotype (--genotype)".into(),
            });
        }
        _ => ModelSpec::new(arch, target.num_labels),
    };
    let genotype = spec.genotype.clone();
    let path = out.join(BASELINE_FILE);
    if let Some(done) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<BaselineReport>(&t).ok())
        .filter(|r| {
            r.target == target.spec.id
                && r.arch == arch
                && r.genotype == genotype
                && r.training == training
        })
    {
        tracing::info!(file = %path.display(), "baseline already trained");
        return Ok(done);
    }
    std::fs::create_dir_all(out).map_err(|source| PipelineError::Io {
        path: out.into(),
        source,
    })?;
    let t0 = Instant::now();
    let fin = retrain_and_test::<B, _>(
        &spec,
        SearchData::from_task(target),
        &target.test,
        &FinalConfig {
            quiet: true,
            ..training.clone()
        },
        Some(&out.join("weights.safetensors")),
        device,
    )
    .map_err(search_error)?;
    let report = BaselineReport {
        target: target.spec.id.clone(),
        arch,
        genotype,
        params: fin.params,
        score: TestScore::from(&fin.test),
        train_samples: fin.train_samples,
        training,
        seconds: t0.elapsed().as_secs_f64(),
        device: device_name.to_string(),
    };
    write_json(&path, &report)?;
    Ok(report)
}
