//! Mutation tests of the zoo's readers: safetensors and `torch.save` (`.pt`) weights, genotype
//! JSON. Thousands of mutated copies of a valid file each end in `Ok` or an error naming the
//! file, never a panic, and never allocate past a bound far below what a huge length asks for.
//!
//! The weights are those of a tiny cell network (23 tensors, 272 parameters), so that each
//! mutated file is read in well under a millisecond; `tiny_cellnet.pt` is its `state_dict`
//! written by `torch.save` (fixtures/torch/tiny_pt.py).

mod common;

use std::path::Path;

use tanas_core::fuzz::{Alloc, fuzz_reader};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{load_pytorch, save_pytorch};

use common::{fixtures, tiny};

#[global_allocator]
static ALLOC: Alloc = Alloc::new(std::alloc::System, usize::MAX);

/// Mutated inputs per reader.
const CASES: u32 = 5_000;
/// Far below what any huge length field would ask for.
const BOUND: usize = 16 << 20;

#[test]
fn readers_survive_mutated_files() {
    let model = tiny();
    let dir = tempfile::tempdir().expect("tempdir");
    let safetensors = dir.path().join("tiny.safetensors");
    save_pytorch(&model, &safetensors).expect("save");
    let weights = |p: &Path| {
        load_pytorch(model.clone(), p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for (file, valid) in [
        ("tiny.safetensors", std::fs::read(&safetensors)),
        (
            "tiny_cellnet.pt",
            std::fs::read(fixtures().join("tiny_cellnet.pt")),
        ),
    ] {
        let valid = valid.expect("weights file");
        let s = fuzz_reader(&ALLOC, file, &valid, BOUND, CASES, weights);
        assert!(s.rejected > 0, "{file}: {s:?}");
    }
    let genotype = Genotype::darts_v2().to_json().expect("json");
    let s = fuzz_reader(
        &ALLOC,
        "genotype.json",
        genotype.as_bytes(),
        BOUND,
        CASES,
        |p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Genotype::from_json(&text)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", p.display()))
        },
    );
    assert!(s.rejected > 0, "{s:?}");
}
