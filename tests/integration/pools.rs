//! The engine's ready-order streams (pools: ASTRA-sim's issue rule, which imported Chakra sets
//! use): a pool starts its ready task of lowest priority whenever it has room, whatever the
//! stream's order; a pool without a limit starts every ready task at once; ready order can
//! deadlock where ranks issue collectives in different orders, and the message says so.

use clustersim::config::{Document, HardwareSpec};
use clustersim::ops::CollectiveOp;
use clustersim::sim::{simulate, SimOptions, SpanSink};
use clustersim::units::{SimDuration, SimTime};
use clustersim::workload::builder::GraphBuilder;
use clustersim::workload::graph::{Phase, Pools, Stream, TaskGraph, TaskKind, TaskLabel};
use clustersim::workload::TaskId;

const LABEL: TaskLabel = TaskLabel {
    phase: Phase::Other,
    chunk: 0,
    layer: u16::MAX,
    microbatch: u32::MAX,
};

fn hardware() -> HardwareSpec {
    let doc = Document::parse("dgx-a100", clustersim::config::builtin_hardware("dgx-a100").unwrap()).unwrap();
    HardwareSpec::from_document(&doc).unwrap()
}

/// Start and end of every task, in microseconds.
struct Spans(Vec<(u64, u64)>);
impl SpanSink for Spans {
    fn wants(&self, _rank: u32) -> bool {
        true
    }
    fn span(&mut self, task: TaskId, start: SimTime, end: SimTime) {
        self.0[task as usize] = (start.0 / 1000, end.0 / 1000);
    }
}

fn run(g: &TaskGraph) -> clustersim::error::Result<Vec<(u64, u64)>> {
    let mut spans = Spans(vec![(0, 0); g.len()]);
    simulate(g, &hardware(), SimOptions { seed: 1 }, &mut spans)?;
    Ok(spans.0)
}

fn us(d: u64) -> SimDuration {
    SimDuration(d * 1000)
}

/// One rank: on the data-parallel stream W (5 us); on the compute stream, in this order, X
/// (priority 3, 10 us), Y (priority 1, 10 us, waits for W), Z (priority 2, 10 us).
/// In order: X 0-10, Y 10-20, Z 20-30. As a pool of one: at 0 the ready ones are X and Z, so Z
/// (2) runs 0-10; Y is ready at 5 but the place is taken; at 10 Y (1) goes before X (3): Y 10-20,
/// X 20-30.
#[test]
fn a_pool_of_one_runs_the_ready_task_of_lowest_priority() {
    let build = |pools: bool| {
        let mut b = GraphBuilder::new(1);
        let d5 = b.delay(us(5));
        let d10 = b.delay(us(10));
        let x = b.task(0, Stream::Compute, TaskKind::Delay(d10), LABEL) as usize;
        let y = b.task(0, Stream::Compute, TaskKind::Delay(d10), LABEL) as usize;
        let z = b.task(0, Stream::Compute, TaskKind::Delay(d10), LABEL) as usize;
        let w = b.task(0, Stream::DataParallel, TaskKind::Delay(d5), LABEL) as usize;
        b.depend(w as TaskId, y as TaskId);
        // added stream by stream, the tasks keep their ids
        let mut g = b.finish();
        if pools {
            let mut priority = vec![0; 4];
            (priority[x], priority[y], priority[z], priority[w]) = (3, 1, 2, 0);
            g.pools = Some(Box::new(Pools {
                capacity: [1; 7],
                priority,
            }));
        }
        let spans = run(&g).unwrap();
        (spans[x], spans[y], spans[z], spans[w])
    };
    assert_eq!(build(false), ((0, 10), (10, 20), (20, 30), (0, 5)));
    assert_eq!(build(true), ((20, 30), (10, 20), (0, 10), (0, 5)));
}

/// A pool without a limit (capacity 0, the receives' in ASTRA-sim) starts every ready task at
/// once: two 10 us tasks on one stream both run 0-10 (in order: 0-10 and 10-20).
#[test]
fn a_pool_without_limit_runs_every_ready_task() {
    let mut b = GraphBuilder::new(1);
    let d10 = b.delay(us(10));
    b.task(0, Stream::PipelineSend, TaskKind::Delay(d10), LABEL);
    b.task(0, Stream::PipelineSend, TaskKind::Delay(d10), LABEL);
    let mut g = b.finish();
    assert_eq!(run(&g).unwrap(), vec![(0, 10), (10, 20)]);
    g.pools = Some(Box::new(Pools {
        capacity: [1, 1, 0, 1, 1, 1, 1],
        priority: vec![0, 1],
    }));
    assert_eq!(run(&g).unwrap(), vec![(0, 10), (0, 10)]);
}

/// Two ranks with two all-reduces, A and B, each on its data-parallel stream: rank 0 gives A the
/// lower priority, rank 1 gives B the lower one. Each rank issues its first and waits there for
/// the other, which never comes (ASTRA-sim would hang): the run fails and names the pools.
#[test]
fn ranks_that_issue_collectives_in_different_orders_deadlock() {
    let mut b = GraphBuilder::new(2);
    let group = b.group(vec![0, 1]);
    let a = b.collective(CollectiveOp::AllReduce, group, 1 << 20);
    let c = b.collective(CollectiveOp::AllReduce, group, 1 << 20);
    for r in 0..2 {
        b.task(r, Stream::DataParallel, TaskKind::Collective(a), LABEL);
        b.task(r, Stream::DataParallel, TaskKind::Collective(c), LABEL);
    }
    let mut g = b.finish();
    assert!(run(&g).is_ok(), "in order, both ranks run A then B");
    g.pools = Some(Box::new(Pools {
        capacity: [1; 7],
        // rank 0: A 1, B 2; rank 1: A 2, B 1
        priority: vec![1, 2, 2, 1],
    }));
    let e = run(&g).unwrap_err().to_string();
    assert!(e.contains("deadlocked: 4 of 4 tasks never ran"), "{e}");
    assert!(
        e.contains("rank 0 data-parallel comm stream: 0 of 2 tasks finished, 1 running, 1 ready"),
        "{e}"
    );
}
