//! `tanas bench fisher | train`: the measurements behind docs/perf.md, on any device.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tanas_fisher::bench::{FisherTiming, synthetic_split, time_fisher};
use tanas_zoo::{Arch, ModelSpec, ZooModel};

use crate::backend::{BackendJob, dispatch};
use crate::cli::BenchCommand;
use crate::device::DeviceArg;
use crate::output::{outln, print_json};

/// One architecture's Fisher timing.
#[derive(Debug, Serialize)]
struct FisherRow {
    arch: Arch,
    device: String,
    #[serde(flatten)]
    timing: FisherTiming,
}

/// One architecture's training throughput.
#[derive(Debug, Serialize)]
struct TrainRow {
    arch: Arch,
    device: String,
    batch_size: usize,
    images_per_second: f64,
}

/// Runs `tanas bench ...`.
pub fn run(cmd: BenchCommand, device: DeviceArg) -> Result<()> {
    match cmd {
        BenchCommand::Fisher {
            archs,
            samples,
            batch_size,
            naive_samples,
            json,
        } => {
            let mut rows = Vec::new();
            for arch in archs {
                let timing = dispatch(
                    device,
                    FisherJob {
                        arch,
                        samples,
                        batch_size,
                        naive_samples,
                    },
                )?;
                if !json {
                    outln!(
                        "{arch:<10} {device}: forward+backward {:.2} s, exact {:.2} s ({:.2}x), naive {:.1} s ({:.1}x; timed on {} samples)",
                        timing.forward_backward_s,
                        timing.exact_s,
                        timing.exact_ratio,
                        timing.naive_s,
                        timing.naive_ratio,
                        timing.naive_samples
                    );
                }
                rows.push(FisherRow {
                    arch,
                    device: device.to_string(),
                    timing,
                });
            }
            if json { print_json(&rows) } else { Ok(()) }
        }
        BenchCommand::Train {
            archs,
            batch_size,
            steps,
            json,
        } => {
            let mut rows = Vec::new();
            for arch in archs {
                let ips = dispatch(
                    device,
                    TrainJob {
                        arch,
                        batch_size,
                        steps,
                    },
                )?;
                if !json {
                    outln!(
                        "{arch:<10} {device}: {ips:.1} images/s (batch {batch_size}, forward + backward + Adam)"
                    );
                }
                rows.push(TrainRow {
                    arch,
                    device: device.to_string(),
                    batch_size,
                    images_per_second: ips,
                });
            }
            if json { print_json(&rows) } else { Ok(()) }
        }
    }
}

struct FisherJob {
    arch: Arch,
    samples: usize,
    batch_size: usize,
    naive_samples: usize,
}

impl BackendJob for FisherJob {
    type Output = FisherTiming;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<FisherTiming> {
        let model = ZooModel::<B>::new(&ModelSpec::new(self.arch, 10), &device)?;
        let split = synthetic_split(self.samples, 10, 0);
        Ok(time_fisher(
            &model,
            &split,
            self.batch_size,
            self.naive_samples,
            &device,
        )?)
    }
}

struct TrainJob {
    arch: Arch,
    batch_size: usize,
    steps: usize,
}

impl BackendJob for TrainJob {
    type Output = f64;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<f64> {
        Ok(tanas_train::throughput::<B>(
            &ModelSpec::new(self.arch, 10),
            self.batch_size,
            self.steps,
            &device,
        )?)
    }
}
