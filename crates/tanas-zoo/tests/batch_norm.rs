//! The training-mode BatchNorm of [`Plain`] (one op on tanas-cpu) against burn-nn's own
//! `BatchNorm::forward`: outputs, gradients of input, gamma and beta, running statistics.

use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::BatchNorm;
use burn::tensor::{Distribution, Tensor, TensorData};
use tanas_cpu::Cpu;
use tanas_zoo::hooks::{LayerHooks, Plain};

type A = Autodiff<Cpu>;

fn assert_close(what: &str, got: TensorData, want: TensorData) {
    let (g, w) = (
        got.to_vec::<f32>().expect("f32"),
        want.to_vec::<f32>().expect("f32"),
    );
    let scale = w.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let err = g
        .iter()
        .zip(&w)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    assert!(err <= 1e-5, "{what}: relative error {err:e}");
}

fn layer(c: usize) -> BatchNorm<A> {
    let device = Default::default();
    let mut bn = tanas_zoo::layers::batch_norm::<A>(c, &device);
    bn.gamma = Param::from_tensor(Tensor::random(
        [c],
        Distribution::Uniform(0.5, 1.5),
        &device,
    ));
    bn.beta = Param::from_tensor(Tensor::random(
        [c],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    ));
    bn
}

#[test]
fn plain_batch_norm_is_burn_nns() {
    let device = Default::default();
    <A as burn::tensor::backend::Backend>::seed(&device, 3);
    let ours = layer(6);
    let theirs = ours.clone();
    let x = Tensor::<A, 4>::random([5, 6, 7, 9], Distribution::Normal(0.5, 2.0), &device);
    let weight = Tensor::<A, 4>::random([5, 6, 7, 9], Distribution::Default, &device);
    // Two steps: the second one starts from the running statistics the first one left.
    for step in 0..2 {
        // Two leaves (clones of one tensor would share its autodiff node).
        let leaf = || Tensor::<A, 4>::from_data(x.to_data(), &device).require_grad();
        let (xa, xb) = (leaf(), leaf());
        let ya = Plain.batch_norm(&ours, xa.clone());
        let yb = theirs.forward(xb.clone());
        assert_close(&format!("output {step}"), ya.to_data(), yb.to_data());
        let ga = (ya * weight.clone()).sum().backward();
        let gb = (yb * weight.clone()).sum().backward();
        let grad = |t: &Tensor<A, 4>, g, side| t.grad(g).expect(side).to_data();
        assert_close("dx", grad(&xa, &ga, "ours"), grad(&xb, &gb, "burn-nn"));
        let p = |bn: &BatchNorm<A>, g| {
            (
                bn.gamma.grad(g).expect("dgamma").to_data(),
                bn.beta.grad(g).expect("dbeta").to_data(),
            )
        };
        let ((dga, dba), (dgb, dbb)) = (p(&ours, &ga), p(&theirs, &gb));
        assert_close("dgamma", dga, dgb);
        assert_close("dbeta", dba, dbb);
        let run = |bn: &BatchNorm<A>| {
            (
                bn.running_mean.value().to_data(),
                bn.running_var.value().to_data(),
            )
        };
        let ((ma, va), (mb, vb)) = (run(&ours), run(&theirs));
        assert_close("running mean", ma, mb);
        assert_close("running var", va, vb);
    }
}
