//! Declared datasets on small generated files: every format, the resize rule, the IDX / PNG
//! equivalence, the cache, and every kind of bad input named by its file.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::Write as _;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage, RgbaImage};
use tanas_data::batch::to_input;
use tanas_data::idx::{IdxArray, write_idx};
use tanas_data::npy::encode as npy;
use tanas_data::{DataDirs, Dataset, DatasetName, TaskData, TaskFile};

/// A task file declaring `decl` (a `[[dataset]]` body named `own`) with one full task on it.
fn task_file(dir: &Path, decl: &str) -> PathBuf {
    let path = dir.join("tasks.toml");
    std::fs::write(
        &path,
        format!("[[dataset]]\nname = \"own\"\n{decl}\n\n[[task]]\nid = \"own-full\"\ndataset = \"own\"\nkind = \"full\"\n"),
    )
    .unwrap();
    path
}

fn load(dir: &Path, decl: &str) -> Result<Dataset, String> {
    let file = TaskFile::read(&task_file(dir, decl)).map_err(|e| e.to_string())?;
    file.load_dataset(&file.tasks[0], &DataDirs::only([]))
        .map_err(|e| e.to_string())
}

fn grey(seed: u32, w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        image::Luma([((x * 7 + y * 13 + seed * 31) % 256) as u8])
    })
}

fn save(img: &DynamicImage, path: &Path, format: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, format).unwrap();
}

#[test]
fn image_folder_of_mixed_sizes_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    save(
        &grey(1, 28, 28).into(),
        &root.join("cat/a.png"),
        ImageFormat::Png,
    );
    save(
        &RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 9])).into(),
        &root.join("cat/b.jpg"),
        ImageFormat::Jpeg,
    );
    save(
        &RgbaImage::from_pixel(16, 16, image::Rgba([10, 20, 30, 0])).into(),
        &root.join("dog/c.png"),
        ImageFormat::Png,
    );
    save(
        &grey(2, 50, 50).into(),
        &root.join("dog/sub/d.bmp"),
        ImageFormat::Bmp,
    );
    let ds = load(
        dir.path(),
        "format = \"image-folder\"\npath = \"set\"\ntest_fraction = 0.5",
    )
    .unwrap();
    assert_eq!(ds.classes, ["cat", "dog"]);
    assert_eq!(
        (ds.train.channels, ds.train.height, ds.train.width),
        (3, 32, 32)
    );
    assert_eq!(ds.train.len() + ds.test.len(), 4);
    assert_eq!(ds.train.len(), 2, "one of each class drawn for test");
    // The RGBA image: alpha dropped, resized (flat stays flat), planar.
    let all: Vec<&[u8]> = (0..ds.train.len())
        .map(|i| ds.train.image(i))
        .chain((0..ds.test.len()).map(|i| ds.test.image(i)))
        .collect();
    let flat = all
        .iter()
        .find(|im| im[..1024].iter().all(|&v| v == 10))
        .expect("the RGBA image");
    assert!(flat[1024..2048].iter().all(|&v| v == 20) && flat[2048..].iter().all(|&v| v == 30));
    // Grey images copied to each channel of a colour set.
    assert!(
        all.iter()
            .filter(|im| im[..1024] == im[1024..2048] && im[..1024] == im[2048..])
            .count()
            >= 2
    );
    assert!(ds.digest.is_some());
}

#[test]
fn the_same_images_as_idx_and_as_png_folder_give_the_same_input() {
    let dir = tempfile::tempdir().unwrap();
    let images = |n: usize, seed: usize| -> Vec<u8> {
        (0..n * 784)
            .map(|i| ((i * 37 + seed * 101) % 253) as u8)
            .collect()
    };
    let labels = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 7 % 10) as u8).collect() };
    let idx = dir.path().join("idx/mnist");
    std::fs::create_dir_all(&idx).unwrap();
    for (split, n, seed) in [("train", 60, 1), ("t10k", 20, 2)] {
        let (px, lab) = (images(n, seed), labels(n));
        write_idx(
            &idx.join(format!("{split}-images-idx3-ubyte")),
            &IdxArray {
                dims: vec![n, 28, 28],
                data: px.clone(),
            },
        )
        .unwrap();
        write_idx(
            &idx.join(format!("{split}-labels-idx1-ubyte")),
            &IdxArray {
                dims: vec![n],
                data: lab.clone(),
            },
        )
        .unwrap();
        let folder = if split == "train" { "train" } else { "test" };
        for i in 0..n {
            let img = GrayImage::from_raw(28, 28, px[i * 784..(i + 1) * 784].to_vec()).unwrap();
            save(
                &img.into(),
                &dir.path()
                    .join(format!("png/{folder}/{}/{i:05}.png", lab[i])),
                ImageFormat::Png,
            );
        }
    }
    let from_idx = DataDirs::only([dir.path().join("idx")])
        .load(DatasetName::Mnist)
        .unwrap();
    let from_png = load(
        dir.path(),
        "format = \"image-folder\"\npath = \"png\"\ninput_side = 28",
    )
    .unwrap();
    assert_eq!(from_png.classes, from_idx.classes);
    for (a, b) in [
        (&from_idx.train, &from_png.train),
        (&from_idx.test, &from_png.test),
    ] {
        assert_eq!((b.channels, b.height), (1, 28));
        // The folder lists class by class; within a class, file order.
        let mut order: Vec<usize> = (0..a.len()).collect();
        order.sort_by_key(|&i| (a.labels[i], i));
        for (j, &i) in order.iter().enumerate() {
            assert_eq!(a.labels[i], b.labels[j]);
            assert_eq!(to_input(a, i), to_input(b, j));
        }
    }
    // And a task on it builds like the IDX one.
    let file = TaskFile::parse("[[dataset]]\nname = \"own\"\nformat = \"image-folder\"\npath = \"png\"\ninput_side = 28\n[[task]]\nid = \"own-2\"\ndataset = \"own\"\nkind = \"indicator\"\nclasses = [\"3\"]\n", &dir.path().join("t.toml")).unwrap();
    let data = TaskData::build(
        &file.tasks[0],
        &file
            .load_dataset(&file.tasks[0], &DataDirs::only([]))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data.num_labels, 2);
    assert!(data.dataset_digest.is_some());
}

#[test]
fn npy_layouts_and_npz() {
    let dir = tempfile::tempdir().unwrap();
    // Quick, Draw!: one <class>.npy of N x 784.
    let qd = dir.path().join("qd");
    std::fs::create_dir_all(&qd).unwrap();
    std::fs::write(qd.join("cat.npy"), npy("|u1", &[10, 784], &[5; 7840])).unwrap();
    std::fs::write(qd.join("dog.npy"), npy("|u1", &[6, 28, 28], &[9; 6 * 784])).unwrap();
    let ds = load(
        dir.path(),
        "format = \"npy\"\npath = \"qd\"\ninput_side = 28\nmax_per_class = 8",
    )
    .unwrap();
    assert_eq!(ds.classes, ["cat", "dog"]);
    assert_eq!(ds.train.len() + ds.test.len(), 8 + 6);
    assert_eq!(
        ds.test.class_counts(tanas_data::task::LabelKind::Fine, 2),
        vec![2, 1]
    );
    let ds = load(
        dir.path(),
        "format = \"npy\"\npath = \"qd\"\nclasses = [\"dog\"]",
    )
    .unwrap();
    assert_eq!((ds.classes.len(), ds.train.height), (1, 32));

    // images.npy + labels.npy in train/ and test/, labels int64, images N x H x W x 3.
    let arr = dir.path().join("arr");
    for (split, n) in [("train", 6), ("test", 3)] {
        let d = arr.join(split);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("images.npy"),
            npy("|u1", &[n, 32, 32, 3], &vec![7; n * 3072]),
        )
        .unwrap();
        let labels: Vec<u8> = (0..n)
            .flat_map(|i| ((i % 3) as i64).to_le_bytes())
            .collect();
        std::fs::write(d.join("labels.npy"), npy("<i8", &[n], &labels)).unwrap();
    }
    let ds = load(
        dir.path(),
        "format = \"npy\"\npath = \"arr\"\nclasses = [\"a\", \"b\", \"c\"]",
    )
    .unwrap();
    assert_eq!(
        (ds.train.len(), ds.test.len(), ds.train.channels),
        (6, 3, 3)
    );
    assert_eq!(ds.classes, ["a", "b", "c"]);

    // One .npz holding images and labels (stored and deflated entries).
    let z = dir.path().join("z");
    std::fs::create_dir_all(&z).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(z.join("data.npz")).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("images.npy", deflated).unwrap();
    zip.write_all(&npy("|u1", &[20, 16, 16], &[3; 20 * 256]))
        .unwrap();
    zip.start_file("labels.npy", stored).unwrap();
    zip.write_all(&npy("|u1", &[20], &[0, 1, 2, 3, 4].repeat(4)))
        .unwrap();
    zip.finish().unwrap();
    let ds = load(dir.path(), "format = \"npy\"\npath = \"z\"").unwrap();
    assert_eq!(ds.classes, ["0", "1", "2", "3", "4"]);
    assert_eq!((ds.train.len(), ds.test.len()), (15, 5));
    assert_eq!(ds.train.height, 32, "16x16 resized to the default side");
}

#[test]
fn csv_as_mnist_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("csv");
    std::fs::create_dir_all(&root).unwrap();
    let header: Vec<String> = std::iter::once("label".to_string())
        .chain((0..16).map(|i| format!("p{i}")))
        .collect();
    let row = |l: usize, v: u8| format!("{l},{}", vec![v.to_string(); 16].join(","));
    let body = |rows: &[String]| format!("{}\n{}\n", header.join(","), rows.join("\n"));
    std::fs::write(
        root.join("train.csv"),
        body(&[row(0, 1), row(1, 2), row(2, 3), row(1, 4)]),
    )
    .unwrap();
    std::fs::write(root.join("test.csv"), body(&[row(2, 5)])).unwrap();
    let ds = load(
        dir.path(),
        "format = \"csv\"\npath = \"csv\"\ninput_side = 8",
    )
    .unwrap();
    assert_eq!((ds.train.len(), ds.test.len(), ds.classes.len()), (4, 1, 3));
    assert_eq!(ds.train.labels, vec![0, 1, 2, 1]);
    assert!(ds.train.image(1).iter().all(|&v| v == 2));
    assert_eq!(ds.train.height, 8);
}

/// The error of loading `decl`, which must name `file`.
fn names(dir: &Path, decl: &str, file: &Path, what: &str) {
    let e = load(dir, decl).expect_err(what);
    assert!(
        e.contains(&file.display().to_string()) && !e.contains('\n'),
        "{what}: {e}"
    );
}

/// A PNG that declares `w x h` pixels and holds almost nothing.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        [
            (data.len() as u32).to_be_bytes().to_vec(),
            kind.to_vec(),
            data.to_vec(),
            crc.sum().to_be_bytes().to_vec(),
        ]
        .concat()
    };
    let ihdr = [
        w.to_be_bytes().to_vec(),
        h.to_be_bytes().to_vec(),
        vec![8, 0, 0, 0, 0],
    ]
    .concat();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0; 1 << 16]).unwrap();
    [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        chunk(b"IHDR", &ihdr),
        chunk(b"IDAT", &z.finish().unwrap()),
        chunk(b"IEND", &[]),
    ]
    .concat()
}

#[test]
fn every_bad_input_is_one_line_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = |name: &str| {
        let root = d.join(name);
        save(
            &grey(1, 8, 8).into(),
            &root.join("a/ok.png"),
            ImageFormat::Png,
        );
        save(
            &grey(2, 8, 8).into(),
            &root.join("b/ok.png"),
            ImageFormat::Png,
        );
        root
    };
    let decl = |name: &str| format!("format = \"image-folder\"\npath = \"{name}\"");

    let root = folder("corrupt");
    let mut png = std::fs::read(root.join("a/ok.png")).unwrap();
    png.truncate(png.len() / 2);
    std::fs::write(root.join("a/cut.png"), &png).unwrap();
    names(
        d,
        &decl("corrupt"),
        &root.join("a/cut.png"),
        "truncated PNG",
    );
    // Skipped and counted where the dataset says so.
    let file = TaskFile::read(&task_file(
        d,
        &format!("{}\non_error = \"skip\"", decl("corrupt")),
    ))
    .unwrap();
    let (ds, info) = file.datasets[0]
        .load_with_info(&DataDirs::only([]))
        .unwrap();
    assert_eq!((ds.train.len() + ds.test.len(), info.skipped.len()), (2, 1));
    assert_eq!(info.skipped[0].file, root.join("a/cut.png"));

    let root = folder("text");
    std::fs::write(root.join("b/notes.txt"), "not an image").unwrap();
    names(
        d,
        &decl("text"),
        &root.join("b/notes.txt"),
        "non-image file",
    );

    let root = folder("empty");
    std::fs::create_dir_all(root.join("c")).unwrap();
    names(d, &decl("empty"), &root.join("c"), "empty class folder");

    let root = folder("bomb");
    std::fs::write(root.join("a/bomb.png"), bomb_png(100_000, 100_000)).unwrap();
    let e = load(d, &decl("bomb")).unwrap_err();
    assert!(e.contains("bomb.png") && e.contains("100000x100000"), "{e}");

    #[cfg(unix)]
    {
        let root = folder("loop");
        std::os::unix::fs::symlink(root.join("a"), root.join("a/again")).unwrap();
        names(d, &decl("loop"), &root.join("a"), "symlink loop");
        let root = folder("self");
        std::os::unix::fs::symlink(root.join("a/me"), root.join("a/me")).unwrap();
        names(
            d,
            &decl("self"),
            &root.join("a/me"),
            "self-referencing link",
        );
    }

    let qd = d.join("qd");
    std::fs::create_dir_all(&qd).unwrap();
    std::fs::write(qd.join("cat.npy"), npy("|u1", &[2, 784], &[0; 1568])).unwrap();
    std::fs::write(qd.join("dog.npy"), npy("<f4", &[2, 784], &[0; 4 * 1568])).unwrap();
    names(
        d,
        "format = \"npy\"\npath = \"qd\"",
        &qd.join("dog.npy"),
        "float npy",
    );
    std::fs::write(qd.join("dog.npy"), npy("|O", &[2], b"\x80\x04pickle")).unwrap();
    let e = load(d, "format = \"npy\"\npath = \"qd\"").unwrap_err();
    assert!(e.contains("dog.npy") && e.contains("pickle"), "{e}");
    std::fs::write(qd.join("dog.npy"), npy("|u1", &[2, 784], &[0; 100])).unwrap();
    names(
        d,
        "format = \"npy\"\npath = \"qd\"",
        &qd.join("dog.npy"),
        "truncated npy",
    );

    let csv = d.join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    std::fs::write(csv.join("train.csv"), "label,a,b,c,d\n0,1,2,3,4\n1,1,2,3\n").unwrap();
    let e = load(d, "format = \"csv\"\npath = \"csv\"").unwrap_err();
    assert!(
        e.contains("train.csv:3") && e.contains("4 columns, the header has 5"),
        "{e}"
    );
    std::fs::write(
        csv.join("train.csv"),
        "label,a,b,c,d\n0,1,2,3,4\n1,1,x,3,4\n",
    )
    .unwrap();
    let e = load(d, "format = \"csv\"\npath = \"csv\"").unwrap_err();
    assert!(
        e.contains("train.csv:3") && e.contains("`x` is not a pixel value"),
        "{e}"
    );
    std::fs::write(csv.join("train.csv"), "label,a,b,c\n0,1,2,3\n").unwrap();
    let e = load(d, "format = \"csv\"\npath = \"csv\"").unwrap_err();
    assert!(
        e.contains("train.csv") && e.contains("square number"),
        "{e}"
    );

    // Declarations themselves.
    let e = load(d, "format = \"npy\"\ninput_side = 4096").unwrap_err();
    assert!(
        e.contains("tasks.toml") && e.contains("input_side 4096"),
        "{e}"
    );
    let e = load(d, "format = \"npy\"").unwrap_err();
    assert!(
        e.contains("dataset `own` not found") && e.contains("own/"),
        "{e}"
    );
    let e = TaskFile::parse("[[dataset]]\nname = \"mnist\"\nformat = \"npy\"\n[[task]]\nid = \"t\"\ndataset = \"mnist\"\nkind = \"full\"", Path::new("x.toml")).unwrap_err().to_string();
    assert!(e.contains("x.toml") && e.contains("built-in"), "{e}");
}

/// `n` grey PNGs of `side` pixels in two classes under `dir/set`, and a task file declaring
/// them as `own`.
fn png_set(dir: &Path, n: u32, side: u32) -> (PathBuf, TaskFile) {
    let root = dir.join("set");
    for i in 0..n {
        let path = root.join(format!("{}/{i}.png", i % 2));
        save(&grey(i, side, side).into(), &path, ImageFormat::Png);
    }
    let tasks = task_file(dir, "format = \"image-folder\"\npath = \"set\"");
    (root, TaskFile::read(&tasks).unwrap())
}

#[test]
fn decoding_happens_once_and_a_changed_file_is_decoded_again() {
    let dir = tempfile::tempdir().unwrap();
    let (root, file) = png_set(dir.path(), 6, 20);
    let decl = &file.datasets[0];
    let dirs = DataDirs::only([]).with_cache(Some(dir.path().join("cache")));
    let (first, info) = decl.load_with_info(&dirs).unwrap();
    let (again, info2) = decl.load_with_info(&dirs).unwrap();
    assert!(info.cached && info2.cached);
    assert_eq!(
        (first.train.pixels.clone(), first.test.labels.clone()),
        (again.train.pixels.clone(), again.test.labels.clone())
    );
    assert_eq!(first.digest, again.digest);
    let entries = || {
        std::fs::read_dir(dir.path().join("cache/dataset"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    assert_eq!(entries(), 1);
    // Another image in a file: decoded again, under another key.
    save(
        &grey(99, 20, 20).into(),
        &root.join("0/0.png"),
        ImageFormat::Png,
    );
    let (changed, _) = decl.load_with_info(&dirs).unwrap();
    assert_ne!(changed.digest, first.digest);
    assert_eq!(entries(), 2);
    // A damaged cache file is rebuilt, never used.
    let entry = std::fs::read_dir(dir.path().join("cache/dataset"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.join("train.u8").is_file())
        .unwrap();
    let mut bytes = std::fs::read(entry.join("train.u8")).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(entry.join("train.u8"), bytes).unwrap();
    let (a, _) = decl.load_with_info(&dirs).unwrap();
    let (b, _) = decl.load_with_info(&DataDirs::only([])).unwrap();
    assert_eq!(a.train.pixels, b.train.pixels);
}

#[test]
fn datasets_may_live_in_their_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // sets/datasets.toml declares `own` over sets/csv; tasks/tasks.toml includes it.
    std::fs::create_dir_all(d.join("sets/csv")).unwrap();
    std::fs::create_dir_all(d.join("tasks")).unwrap();
    std::fs::write(
        d.join("sets/csv/train.csv"),
        "label,a,b,c,d\n0,1,2,3,4\n1,5,6,7,8\n0,1,2,3,4\n1,5,6,7,8\n0,1,1,1,1\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sets/datasets.toml"),
        "[[dataset]]\nname = \"own\"\nformat = \"csv\"\npath = \"csv\"\ntest_fraction = 0.4\n",
    )
    .unwrap();
    std::fs::write(
        d.join("tasks/tasks.toml"),
        "include = [\"../sets/datasets.toml\"]\n[[task]]\nid = \"own-full\"\ndataset = \"own\"\nkind = \"full\"\n",
    )
    .unwrap();
    let file = TaskFile::read(&d.join("tasks/tasks.toml")).unwrap();
    assert_eq!(
        file.datasets[0].declared_in,
        d.join("tasks/../sets/datasets.toml")
    );
    let ds = file
        .load_dataset(&file.tasks[0], &DataDirs::only([]))
        .unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (3, 2));
    // The dataset file alone: what `tanas data info FILE` reads.
    let alone = TaskFile::read_declarations(&d.join("sets/datasets.toml")).unwrap();
    assert_eq!((alone.datasets.len(), alone.tasks.len()), (1, 0));
    // An include loop ends in an error naming a file.
    std::fs::write(
        d.join("sets/datasets.toml"),
        "include = [\"../tasks/tasks.toml\"]\n",
    )
    .unwrap();
    let e = TaskFile::read(&d.join("tasks/tasks.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tasks.toml") && e.contains("nested"), "{e}");
    // A task on a dataset nobody declares names the ones there are.
    std::fs::write(
        d.join("t.toml"),
        "[[task]]\nid = \"t\"\ndataset = \"nope\"\nkind = \"full\"\n",
    )
    .unwrap();
    let e = TaskFile::read(&d.join("t.toml")).unwrap_err().to_string();
    assert!(
        e.contains("unknown dataset `nope`") && e.contains("mnist"),
        "{e}"
    );
}

#[test]
fn a_cache_that_cannot_be_written_costs_the_decoding_only() {
    let dir = tempfile::tempdir().unwrap();
    let (root, file) = png_set(dir.path(), 4, 12);
    // A file where the cache folder should be: nothing can be written below it.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"a file").unwrap();
    let dirs = DataDirs::only([]).with_cache(Some(blocked));
    let (ds, info) = file.datasets[0].load_with_info(&dirs).unwrap();
    assert!(!info.cached);
    assert_eq!(ds.train.len() + ds.test.len(), 4);
    // A bad image is still the dataset's error, cache or not.
    std::fs::write(root.join("0/bad.png"), b"not a png").unwrap();
    let e = file.datasets[0]
        .load_with_info(&dirs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.png"), "{e}");
    let cache = DataDirs::only([]).with_cache(Some(dir.path().join("cache")));
    let e = file.datasets[0]
        .load_with_info(&cache)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.png") && !e.contains("not decoded"), "{e}");
}
