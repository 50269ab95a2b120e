//! Pipeline bubbles on hardware/ideal.yaml (free communication, time = FLOPs / peak) against the
//! closed forms. With vocab = 0 there is no embedding or output layer, so every stage does the same
//! work (t_f forward, t_b backward per microbatch) and the optimizer step (streaming only) is free:
//! - gpipe and 1f1b: the iteration is (m + p - 1)(t_f + t_b), of which each stage is idle
//!   (p - 1)(t_f + t_b): bubble / iteration = (p-1)/(m+p-1), bubble / busy = (p-1)/m;
//! - interleaved with v chunks: the idle time shrinks to (p-1)(t_f + t_b)/v:
//!   bubble / iteration = ((p-1)/v)/(m+(p-1)/v), bubble / busy = (p-1)/(v m).

use super::common::report;

fn sets(p: u32, m: u32, v: u32, schedule: &str) -> Vec<String> {
    // d = 1, b = 1, so m = B; one layer per model chunk keeps the run small.
    vec![
        "workload.model.vocab=0".into(),
        "workload.model.hidden=1024".into(),
        "workload.model.heads=16".into(),
        "workload.model.seq_len=512".into(),
        format!("workload.model.layers={}", p * v),
        format!("workload.batch.global={m}"),
        "workload.batch.micro=1".into(),
        "workload.parallel.tensor=1".into(),
        format!("workload.parallel.pipeline={p}"),
        "workload.parallel.data=1".into(),
        format!("workload.parallel.interleave={v}"),
        format!("workload.schedule={schedule}"),
    ]
}

#[test]
fn gpipe_and_1f1b_bubble_is_p_minus_1_over_m_plus_p_minus_1() {
    for schedule in ["gpipe", "1f1b"] {
        for p in [1u32, 2, 3, 4, 8] {
            for m in [1u32, 2, 5, 8, 16, 32] {
                let r = report("ideal", "gpt-5.9b", &sets(p, m, 1, schedule));
                let (p, m) = (p as f64, m as f64);
                let fraction = (p - 1.0) / (m + p - 1.0);
                assert!(
                    (r.bubble.fraction - fraction).abs() < 1e-9,
                    "{schedule} p{p} m{m}: {} vs {fraction}",
                    r.bubble.fraction
                );
                assert!(
                    (r.bubble.ratio - (p - 1.0) / m).abs() < 1e-9,
                    "{schedule} p{p} m{m}: ratio {}",
                    r.bubble.ratio
                );
                for s in &r.bubble.per_stage {
                    assert!(
                        (s.fraction - fraction).abs() < 1e-9,
                        "{schedule} p{p} m{m} stage {}: {}",
                        s.stage,
                        s.fraction
                    );
                }
            }
        }
    }
}

#[test]
fn interleaved_bubble_shrinks_by_v() {
    for p in [2u32, 4] {
        for v in [2u32, 3, 4] {
            for m in [p, 2 * p, 4 * p] {
                let r = report("ideal", "gpt-5.9b", &sets(p, m, v, "interleaved"));
                let (pf, mf, vf) = (p as f64, m as f64, v as f64);
                let idle = (pf - 1.0) / vf;
                let fraction = idle / (mf + idle);
                assert!(
                    (r.bubble.fraction - fraction).abs() < 1e-9,
                    "p{p} v{v} m{m}: {} vs {fraction}",
                    r.bubble.fraction
                );
                assert!(
                    (r.bubble.ratio - (pf - 1.0) / (vf * mf)).abs() < 1e-9,
                    "p{p} v{v} m{m}: ratio {}",
                    r.bubble.ratio
                );
            }
        }
    }
}

/// Megatron-LM SC'21 Figure 6: with t = 1, n GPUs, b' = B/b microbatches per batch and d replicas,
/// p = n/d and m = b'/d, so the bubble is (p-1)/m = (n-d)/b'. The published values are rounded to
/// two decimals, so each simulated point must be within 0.005 of its published value.
#[test]
fn bubble_ratio_reproduces_megatron_figure_6() {
    let csv = include_str!("../../workloads/reference/megatron-figure6.csv");
    let mut points = 0;
    for line in csv.lines().filter(|l| !l.starts_with('#') && !l.starts_with("gpus")) {
        let f: Vec<u32> = line.split(',').map(|x| x.parse::<f64>().unwrap() as u32).collect();
        let published: f64 = line.split(',').nth(3).unwrap().parse().unwrap();
        let (n, b_prime, d) = (f[0], f[1], f[2]);
        let (p, m) = (n / d, b_prime / d);
        let mut s = sets(p, m, 1, "1f1b");
        s.push(format!("workload.parallel.data={d}"));
        s.push(format!("workload.batch.global={b_prime}"));
        s.push(format!("workload.gpus={n}"));
        let r = report("ideal", "gpt-5.9b", &s);
        assert!(
            (r.bubble.ratio - published).abs() <= 0.005 + 1e-9,
            "n{n} b'{b_prime} d{d}: simulated {} vs published {published}",
            r.bubble.ratio
        );
        points += 1;
    }
    assert_eq!(points, 26, "every point of Figure 6 is checked");
}
