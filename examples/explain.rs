use clustersim::config::{Document, HardwareSpec, ModelSpec, Recompute};
use clustersim::model::compute::ComputeModel;
use clustersim::workload::transformer::{LayerShape, Piece};
use clustersim::workload::Kernel;
fn main() {
    let doc = Document::parse("x", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
    let hw = HardwareSpec::from_document(&doc).unwrap();
    let cm = ComputeModel::new(&hw.gpu);
    let model = ModelSpec {
        layers: 4,
        hidden: 4096,
        heads: 128,
        seq_len: 2048,
        vocab: 51200,
    };
    for b in [1u64, 16] {
        let sh = LayerShape::new(&model, b, 1);
        let tally = |pieces: Vec<Piece>| {
            let (mut g, mut m, mut n) = (0.0, 0.0, 0);
            for p in pieces {
                if let Piece::Compute(_, ks) = p {
                    for k in ks {
                        n += 1;
                        let t = cm.kernel_seconds(&k);
                        match k {
                            Kernel::Gemm { .. } => g += t,
                            _ => m += t,
                        }
                    }
                }
            }
            (g * 1e3, m * 1e3, n)
        };
        println!("b={b} fwd gemm/stream/kernels {:?}", tally(sh.forward()));
        println!("b={b} bwd {:?}", tally(sh.backward(Recompute::Full)));
        println!(
            "b={b} logits fwd {:?} bwd {:?}",
            tally(sh.logits_forward()),
            tally(sh.logits_backward())
        );
    }
    let opt = clustersim::workload::transformer::optimizer_kernels(1_020_000_000);
    println!(
        "optimizer {:.1} ms",
        opt.iter().map(|k| cm.kernel_seconds(k)).sum::<f64>() * 1e3
    );
}
