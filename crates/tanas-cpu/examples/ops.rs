//! Times the ops tanas-cpu implements against Flex's, on the layer shapes of small-cnn,
//! resnet18 and a DARTS cell network (batch 128 / 64): `cargo run -p tanas-cpu --example ops`.

use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use tanas_cpu::Cpu;

fn time<R>(reps: usize, mut f: impl FnMut() -> R) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    t.elapsed().as_secs_f64() / reps as f64 * 1e3
}

/// (name, n, cin, h, cout, k, stride, pad, dilation, groups)
type Layer = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

fn conv<B: Backend>(l: Layer) -> [f64; 3] {
    let (_, n, cin, h, cout, k, s, p, d, g) = l;
    let dev = Default::default();
    let x = Tensor::<B, 4>::random([n, cin, h, h], Distribution::Default, &dev);
    let w = Tensor::<B, 4>::random([cout, cin / g, k, k], Distribution::Default, &dev);
    let o = ConvOptions::new([s, s], [p, p], [d, d], g);
    let y = B::conv2d(
        x.clone().into_primitive().tensor(),
        w.clone().into_primitive().tensor(),
        None,
        o.clone(),
    );
    let xp = || x.clone().into_primitive().tensor();
    let wp = || w.clone().into_primitive().tensor();
    let reps = 6;
    [
        time(reps, || B::conv2d(xp(), wp(), None, o.clone())),
        time(reps, || {
            B::conv2d_x_backward(xp(), wp(), y.clone(), o.clone())
        }),
        time(reps, || {
            B::conv2d_weight_backward(xp(), wp(), y.clone(), o.clone())
        }),
    ]
}

fn main() {
    let layers: [Layer; 9] = [
        ("small-cnn conv1", 128, 3, 32, 32, 3, 1, 1, 1, 1),
        ("small-cnn conv2", 128, 32, 16, 64, 3, 1, 1, 1, 1),
        ("small-cnn conv3", 128, 64, 8, 128, 3, 1, 1, 1, 1),
        ("resnet18 64x32", 128, 64, 32, 64, 3, 1, 1, 1, 1),
        ("resnet18 512x4", 128, 512, 4, 512, 3, 1, 1, 1, 1),
        ("cell 1x1 64x32", 64, 64, 32, 64, 1, 1, 0, 1, 1),
        ("cell dw3 64x32", 64, 64, 32, 64, 3, 1, 1, 1, 64),
        ("cell dw5 d2 64x32", 64, 64, 32, 64, 5, 1, 4, 2, 64),
        ("cell dw3 s2 64x32", 64, 64, 32, 64, 3, 2, 1, 1, 64),
    ];
    println!(
        "{:<20} {:>28} {:>28}",
        "layer (ms)", "tanas-cpu fwd / dx / dw", "flex fwd / dx / dw"
    );
    for l in layers {
        let a = conv::<Cpu>(l);
        let b = conv::<Flex>(l);
        println!(
            "{:<20} {:>8.2} {:>8.2} {:>8.2}   {:>8.2} {:>8.2} {:>8.2}",
            l.0, a[0], a[1], a[2], b[0], b[1], b[2]
        );
    }
}
