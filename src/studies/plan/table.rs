//! The plan's outputs: the ranked table and plan.csv. Context, expert and precision get columns
//! only when some ranked candidate uses them (a ring, expert parallelism, FP8), and the flow
//! model's TFLOP/s only when some were checked (`plan --check`), so a search without those prints
//! and writes what it did before they existed.

use super::{Plan, Ranked};
use crate::config::Precision;

/// Which of the optional axes the ranking uses.
#[derive(Clone, Copy, Debug, Default)]
struct Columns {
    context: bool,
    expert: bool,
    precision: bool,
    flow: bool,
}

impl Columns {
    fn of(ranked: &[Ranked]) -> Columns {
        let any = |f: &dyn Fn(&Ranked) -> bool| ranked.iter().any(f);
        Columns {
            context: any(&|r| r.candidate.context > 1),
            expert: any(&|r| r.candidate.expert > 1),
            precision: any(&|r| r.candidate.precision == Precision::Fp8),
            flow: any(&|r| r.flow_tflops_per_gpu.is_some()),
        }
    }
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Bf16 => "bf16",
        Precision::Fp8 => "fp8",
    }
}

/// The ranked table, top `k` rows.
pub fn table(plan: &Plan, k: usize) -> String {
    let cols = Columns::of(&plan.ranked);
    let label = |c: &super::Candidate| {
        if cols.context || cols.expert || cols.precision {
            c.split_label()
        } else {
            c.label()
        }
    };
    // at least 34 wide, wider for a long label (a layer split on mixed GPUs)
    let width = plan
        .ranked
        .iter()
        .take(k)
        .map(|r| label(&r.candidate).len())
        .fold(34, usize::max);
    let mut s = format!("{:>4}  {:<width$}", "rank", "configuration");
    if cols.context {
        s += &format!(" {:>7}", "context");
    }
    if cols.expert {
        s += &format!(" {:>10}", "expert");
    }
    if cols.precision {
        s += &format!(" {:>9}", "precision");
    }
    s += &format!(" {:>10}", "TFLOP/s");
    if cols.flow {
        s += &format!(" {:>8}", "flow");
    }
    s += &format!(" {:>12} {:>10} {:>9} {:>8}\n", "iteration", "memory", "bubble", "days");
    for (i, r) in plan.ranked.iter().take(k).enumerate() {
        let c = &r.candidate;
        s += &format!("{:>4}  {:<width$}", i + 1, label(c));
        if cols.context {
            s += &format!(" {:>7}", c.context);
        }
        if cols.expert {
            s += &format!(" {:>10}", c.expert_cell());
        }
        if cols.precision {
            s += &format!(" {:>9}", precision_name(c.precision));
        }
        s += &format!(" {:>10.1}", r.tflops_per_gpu);
        if cols.flow {
            s += &format!(
                " {:>8}",
                r.flow_tflops_per_gpu.map_or("-".into(), |f| format!("{f:.1}"))
            );
        }
        s += &format!(
            " {:>10.3} s {:>6.1} GiB {:>9.3} {:>8}\n",
            r.iteration_time_s,
            r.peak_memory_bytes / (1u64 << 30) as f64,
            r.bubble_fraction,
            r.days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into())
        );
    }
    s
}

/// CSV of every simulated candidate, fastest first.
pub fn csv(plan: &Plan) -> String {
    let cols = Columns::of(&plan.ranked);
    let optional = |on: bool, text: String| if on { text } else { String::new() };
    let mut s = format!(
        "rank,tensor,{}pipeline,data,{}micro,interleave,recompute,sequence_parallel,zero_stage,{}tflops_per_gpu,tokens_per_s,iteration_time_s,peak_memory_bytes,bubble_fraction,days,layers_per_stage{}\n",
        optional(cols.context, "context,".into()),
        optional(cols.expert, "expert,expert_tensor,ep_comm_overlap,".into()),
        optional(cols.precision, "precision,".into()),
        optional(cols.flow, ",flow_tflops_per_gpu".into()),
    );
    for (i, r) in plan.ranked.iter().enumerate() {
        let c = &r.candidate;
        s += &format!(
            "{},{},{}{},{},{}{},{},{},{},{},{}{},{},{},{},{},{},{}{}\n",
            i + 1,
            c.tensor,
            optional(cols.context, format!("{},", c.context)),
            c.pipeline,
            c.data,
            optional(
                cols.expert,
                format!("{},{},{},", c.expert, c.expert_tensor_size(), c.ep_overlap)
            ),
            c.micro,
            c.interleave,
            c.recompute.name(),
            c.sequence_parallel,
            c.zero_stage,
            optional(cols.precision, format!("{},", precision_name(c.precision))),
            r.tflops_per_gpu,
            r.tokens_per_s,
            r.iteration_time_s,
            r.peak_memory_bytes,
            r.bubble_fraction,
            r.days.map(|d| d.to_string()).unwrap_or_default(),
            c.layers_per_stage.as_ref().map_or(String::new(), |l| {
                let list: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                list.join(";")
            }),
            optional(
                cols.flow,
                format!(",{}", r.flow_tflops_per_gpu.map(|f| f.to_string()).unwrap_or_default())
            )
        );
    }
    s
}

/// For a plan some of whose fastest were run again with the flow model (`--check`): those ranks in
/// the flow model's order, fastest first, e.g. `1 3 4 2 5`; none when none were.
pub fn flow_order(plan: &Plan) -> Option<String> {
    let mut checked: Vec<(usize, f64)> = plan
        .ranked
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.flow_tflops_per_gpu.map(|f| (i + 1, f)))
        .collect();
    if checked.is_empty() {
        return None;
    }
    checked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Some(
        checked
            .iter()
            .map(|(rank, _)| rank.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    )
}
