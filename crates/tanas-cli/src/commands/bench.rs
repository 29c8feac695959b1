//! `tanas bench fisher | train | grads | conv`: the measurements behind docs/perf.md, on any
//! device (`grads`: [`crate::commands::bench_grads`]; `conv`: [`crate::commands::bench_conv`]).

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tanas_fisher::bench::{FisherTiming, synthetic_split, time_fisher};
use tanas_zoo::{Arch, ModelSpec, ZooModel};

use crate::backend::{BackendJob, dispatch};
use crate::cli::{BenchCommand, CellArgs};
use crate::commands::model::with_cells;
use crate::device::DeviceArg;
use crate::output::{outln, print_json};

/// Classes of the benchmark networks (synthetic labels below 10).
const CLASSES: usize = 10;

/// One architecture's Fisher timing.
#[derive(Debug, Serialize)]
struct FisherRow {
    arch: Arch,
    device: String,
    #[serde(flatten)]
    cells: Option<CellsInfo>,
    #[serde(flatten)]
    timing: FisherTiming,
    /// Peak resident memory of this process so far (VmHWM), MiB; `null` off Linux.
    peak_rss_mib: Option<f64>,
}

/// One architecture's training throughput.
#[derive(Debug, Serialize)]
struct TrainRow {
    arch: Arch,
    device: String,
    #[serde(flatten)]
    cells: Option<CellsInfo>,
    batch_size: usize,
    steps: usize,
    /// Trainable parameters.
    params: usize,
    images_per_second: f64,
    /// Peak resident memory of this process so far (VmHWM), MiB; `null` off Linux.
    peak_rss_mib: Option<f64>,
}

/// One architecture's gradient comparison.
#[derive(Debug, Serialize)]
struct GradsArchRow {
    arch: Arch,
    #[serde(flatten)]
    cells: Option<CellsInfo>,
    #[serde(flatten)]
    row: crate::commands::bench_grads::GradsRow,
}

/// The genotype file and skeleton of a cell network's row.
#[derive(Debug, Serialize)]
struct CellsInfo {
    genotype: String,
    channels: usize,
    layers: usize,
}

/// The benchmark network of `arch`: 10 classes, and for a cell network the genotype and
/// skeleton of `cells`.
fn bench_spec(arch: Arch, cells: &CellArgs) -> Result<(ModelSpec, Option<CellsInfo>)> {
    let spec = ModelSpec::new(arch, CLASSES);
    if !arch.needs_genotype() {
        return Ok((spec, None));
    }
    // Building without a genotype gives the zoo's own "needs a genotype" error.
    let genotype = cells.genotype.as_deref();
    let spec = with_cells(spec, genotype, cells.channels, cells.layers)?;
    let info = CellsInfo {
        genotype: genotype
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        channels: cells.channels,
        layers: cells.layers,
    };
    Ok((spec, Some(info)))
}

/// The peak resident set size of this process (`VmHWM` in `/proc/self/status`) in MiB, or
/// `None` where that file does not exist (not Linux) or lacks the line.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   123456 kB` in a `/proc/<pid>/status` text, in MiB.
fn parse_vm_hwm(status: &str) -> Option<f64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let mut fields = value.split_whitespace();
    let kib: f64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(kib / 1024.0),
        _ => None,
    }
}

/// One row per architecture: `row(arch, its spec, its cells)`, in order.
fn per_arch<R>(
    archs: Vec<Arch>,
    cells: &CellArgs,
    mut row: impl FnMut(Arch, ModelSpec, Option<CellsInfo>) -> Result<R>,
) -> Result<Vec<R>> {
    archs
        .into_iter()
        .map(|arch| {
            let (spec, cells) = bench_spec(arch, cells)?;
            row(arch, spec, cells)
        })
        .collect()
}

/// Runs `tanas bench ...`.
pub fn run(cmd: BenchCommand, device: DeviceArg) -> Result<()> {
    match cmd {
        BenchCommand::Fisher {
            archs,
            samples,
            batch_size,
            naive_samples,
            cells,
            json,
        } => {
            let rows = per_arch(archs, &cells, |arch, spec, cells| {
                let timing = dispatch(
                    device,
                    FisherJob {
                        spec,
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
                Ok(FisherRow {
                    arch,
                    device: device.to_string(),
                    cells,
                    timing,
                    peak_rss_mib: peak_rss_mib(),
                })
            })?;
            if json { print_json(&rows) } else { Ok(()) }
        }
        BenchCommand::Grads {
            archs,
            batch_size,
            cells,
            json,
        } => {
            let rows = per_arch(archs, &cells, |arch, spec, cells| {
                let row = crate::commands::bench_grads::compare(&spec, batch_size, device)?;
                if !json {
                    outln!(
                        "{arch:<10} {device} vs cpu: loss {:.6} vs {:.6}, gradients' relative L2 error {:.3e} (largest of one tensor {:.3e}, {})",
                        row.loss,
                        row.cpu_loss,
                        row.relative_error,
                        row.worst_tensor_error,
                        row.worst_tensor
                    );
                }
                Ok(GradsArchRow { arch, cells, row })
            })?;
            if json { print_json(&rows) } else { Ok(()) }
        }
        BenchCommand::Conv { reps, json } => {
            let rows = dispatch(device, crate::commands::bench_conv::ConvJob { reps })?;
            if json {
                return print_json(&rows);
            }
            for r in &rows {
                outln!(
                    "{:<22} {:<7} {device}: {:.3} ms",
                    r.shape.name,
                    r.pass,
                    r.ms
                );
            }
            Ok(())
        }
        BenchCommand::Train {
            archs,
            batch_size,
            steps,
            cells,
            json,
        } => {
            let rows = per_arch(archs, &cells, |arch, spec, cells| {
                let (params, ips) = dispatch(
                    device,
                    TrainJob {
                        spec,
                        batch_size,
                        steps,
                    },
                )?;
                let peak = peak_rss_mib();
                if !json {
                    let mem = peak
                        .map(|m| format!(", peak {m:.0} MiB"))
                        .unwrap_or_default();
                    outln!(
                        "{arch:<10} {device}: {ips:.1} images/s (batch {batch_size}, forward + backward + Adam; {params} parameters{mem})"
                    );
                }
                Ok(TrainRow {
                    arch,
                    device: device.to_string(),
                    cells,
                    batch_size,
                    steps,
                    params,
                    images_per_second: ips,
                    peak_rss_mib: peak,
                })
            })?;
            if json { print_json(&rows) } else { Ok(()) }
        }
    }
}

struct FisherJob {
    spec: ModelSpec,
    samples: usize,
    batch_size: usize,
    naive_samples: usize,
}

impl BackendJob for FisherJob {
    type Output = FisherTiming;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<FisherTiming> {
        let model = ZooModel::<B>::new(&self.spec, &device)?;
        let split = synthetic_split(self.samples, CLASSES, 0);
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
    spec: ModelSpec,
    batch_size: usize,
    steps: usize,
}

impl BackendJob for TrainJob {
    /// Trainable parameters and images/s.
    type Output = (usize, f64);
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<(usize, f64)> {
        // Counted on a model of its own, dropped before the timed one is built.
        let params = ZooModel::<B>::new(&self.spec, &device)?.num_params();
        let ips = tanas_train::throughput::<B>(&self.spec, self.batch_size, self.steps, &device)?;
        Ok((params, ips))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_mib() {
        let status = "Name:\ttanas\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2.0));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 1 MB\n"), None);
    }
}
