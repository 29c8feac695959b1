//! Training throughput of a zoo network on the Cpu (CPU) backend.
//!
//! `cargo run --release -p tanas-train --example throughput -- [ARCH] [BATCH] [STEPS]`
//! (defaults: small-cnn 128 20).

use burn::backend::Autodiff;
use tanas_cpu::Cpu;
use tanas_zoo::{Arch, ModelSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch: Arch = args.first().map_or("small-cnn", String::as_str).parse()?;
    let batch: usize = args.get(1).map_or(Ok(128), |s| s.parse())?;
    let steps: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let spec = ModelSpec::new(arch, 10);
    let ips = tanas_train::throughput::<Autodiff<Cpu>>(&spec, batch, steps, &Default::default())?;
    println!("{arch}: {ips:.0} images/s (batch {batch}, {steps} steps, forward + backward + Adam)");
    Ok(())
}
