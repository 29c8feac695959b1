//! Mutation tests of the data readers: IDX (plain and gzip), CIFAR-10/100 binary, task TOML,
//! and the declared datasets' `.npy`, `.npz` and CSV readers.
//! Thousands of mutated copies of a valid file each end in `Ok` or an error naming the file,
//! never a panic, and never allocate past a bound far below what a huge length field asks for.

use std::path::Path;

use tanas_core::fuzz::{Alloc, fuzz_reader};
use tanas_data::cifar::{CifarKind, read_cifar};
use tanas_data::idx::{IdxArray, encode_idx, read_idx};
use tanas_data::npy;
use tanas_data::{DataDirs, TaskFile};

#[global_allocator]
static ALLOC: Alloc = Alloc::new(std::alloc::System, usize::MAX);

/// Mutated inputs per reader.
const CASES: u32 = 5_000;
/// No reader of these small files may hold more than this at once.
const BOUND: usize = 16 << 20;

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn readers_survive_mutated_files() {
    let images = encode_idx(&IdxArray {
        dims: vec![3, 28, 28],
        data: (0..3 * 784).map(|i| (i % 251) as u8).collect(),
    });
    let labels = encode_idx(&IdxArray {
        dims: vec![3],
        data: vec![1, 2, 3],
    });
    let cifar10: Vec<u8> = (0..4 * 3073).map(|i| (i % 7) as u8).collect();
    let cifar100: Vec<u8> = (0..4 * 3074).map(|i| (i % 11) as u8).collect();
    let tasks =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks/mnist.toml"))
            .expect("configs/tasks/mnist.toml");

    let idx = |p: &Path| ok(read_idx(p));
    for (file, valid) in [
        ("images-idx3-ubyte", images.clone()),
        ("labels-idx1-ubyte", labels.clone()),
        ("images-idx3-ubyte.gz", gz(&images)),
        ("labels-idx1-ubyte.gz", gz(&labels)),
    ] {
        let s = fuzz_reader(&ALLOC, file, &valid, BOUND, CASES, idx);
        assert!(s.rejected > CASES as usize / 2, "{file}: {s:?}");
    }
    let s = fuzz_reader(&ALLOC, "data_batch_1.bin", &cifar10, BOUND, CASES, |p| {
        ok(read_cifar(&[p], CifarKind::Cifar10))
    });
    assert!(s.rejected > 0, "{s:?}");
    let s = fuzz_reader(&ALLOC, "train.bin.gz", &gz(&cifar100), BOUND, CASES, |p| {
        ok(read_cifar(&[p], CifarKind::Cifar100))
    });
    assert!(s.rejected > 0, "{s:?}");
    let s = fuzz_reader(&ALLOC, "tasks.toml", &tasks, BOUND, CASES, |p| {
        ok(TaskFile::read(p))
    });
    assert!(s.rejected > 0, "{s:?}");

    // Declared datasets: the mutated file is the whole dataset of a declaration over its
    // folder (one class `cat.npy`, one `.npz`, or `train.csv`).
    let declared = |format: &'static str| {
        move |p: &Path| {
            let dir = p.parent().expect("a folder");
            let text = format!(
                "[[dataset]]\nname = \"own\"\nformat = \"{format}\"\npath = \"{}\"\ninput_side = 28\n[[task]]\nid = \"t\"\ndataset = \"own\"\nkind = \"full\"\n",
                dir.display()
            );
            let file =
                TaskFile::parse(&text, &dir.join("tasks.toml")).map_err(|e| e.to_string())?;
            ok(file.load_dataset(&file.tasks[0], &DataDirs::only([])))
        }
    };
    let drawings: Vec<u8> = (0..6 * 784).map(|i| (i % 241) as u8).collect();
    let cat = npy::encode("|u1", &[6, 784], &drawings);
    let s = fuzz_reader(&ALLOC, "cat.npy", &cat, BOUND, CASES, declared("npy"));
    assert!(s.rejected > CASES as usize / 2, "cat.npy: {s:?}");
    let npz = {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("images.npy", opts).expect("zip");
        zip.write_all(&cat).expect("zip");
        zip.start_file("labels.npy", opts).expect("zip");
        zip.write_all(&npy::encode(
            "<i8",
            &[6],
            &[[0u8; 8], [1, 0, 0, 0, 0, 0, 0, 0]].concat().repeat(3),
        ))
        .expect("zip");
        zip.finish().expect("zip").into_inner()
    };
    let s = fuzz_reader(&ALLOC, "data.npz", &npz, BOUND, CASES, declared("npy"));
    assert!(s.rejected > 0, "data.npz: {s:?}");
    let mut csv = String::from("label");
    for i in 0..16 {
        csv += &format!(",p{i}");
    }
    for r in 0..6 {
        csv += &format!("\n{}", r % 3);
        for i in 0..16 {
            csv += &format!(",{}", (r * 16 + i) % 256);
        }
    }
    let s = fuzz_reader(
        &ALLOC,
        "train.csv",
        csv.as_bytes(),
        BOUND,
        CASES,
        declared("csv"),
    );
    assert!(s.rejected > 0, "train.csv: {s:?}");
}
