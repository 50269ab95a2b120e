//! Collectives as sets of concurrent flows on the topology, one set per algorithm.
//!
//! NCCL pipelines its algorithms, so every edge of a ring or tree carries its share of the data for
//! the whole duration of the collective; at flow level each edge is one long-lived flow whose size is
//! what that edge carries in total. Identical edges (same path, same size) merge into one flow of
//! larger weight, which max-min sharing treats exactly like that many separate flows.
//!
//! - ring over one node: edge i → i+1, 2(n-1)/n S each (all-reduce);
//! - ring over N nodes: C channels (one per NIC the group owns on a node); channel c enters every
//!   node at its c-th member and leaves from the member before it, which hands the data over NVLink
//!   to the c-th member's NIC (NCCL's PXN), so inter-node traffic stays on rail c. 2(n-1)/n S / C per edge.
//!   Before PXN (NCCL 2.12), a node whose members each sit on their own PCIe switch (2-4 GPUs of a
//!   DGX A100) sends from the last member through the CPU to that NIC, where the machine names what
//!   that path carries (`node.nic_through_cpu`);
//! - hierarchical: rings inside each node (reduce-scatter + all-gather, 2(k-1)/k S per edge) with,
//!   per rail, a ring across nodes of 2(N-1)/N S/k per edge;
//! - tree: the same rings inside nodes, and per rail two binary trees over the nodes (the second
//!   mirrored), each carrying S/(2k) up and down every edge;
//! - NVLS all-reduce (one node): what each GPU sends to the NVSwitch and receives from it,
//!   (n+1)/n S each way, as a ring of edges i → i+1 of that size (the same load on every NVLink
//!   direction); NVLS reduce-scatter and all-gather as rings;
//! - NVLS tree: that inside each node ((k+1)/k S) and the tree's flows across nodes;
//! - all-to-all: a flow of S/n between every pair; send/recv: one flow.
//!
//! Which NIC each member uses between nodes is NCCL's choice ([`NicChoice`]): the rings and trees
//! take the NICs their communicator's graph holds on each node, point-to-point flows spread over
//! the NICs of the sender's and the receiver's PCIe switch.

use super::algorithms::Algorithm;
use super::nics::NicChoice;
use crate::model::topology::{Path, Topology};
use crate::ops::CollectiveOp;

/// One flow to start: a path, how many identical connections it stands for, and the bytes each moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowSpec {
    /// The route.
    pub path: Path,
    /// Identical connections.
    pub weight: f64,
    /// Bytes per connection.
    pub bytes: f64,
}

/// Accumulates flows, merging identical ones, in first-seen order.
#[derive(Default)]
struct Flows {
    list: Vec<FlowSpec>,
    index: crate::fasthash::FxHashMap<(Path, u64), usize>,
}

impl Flows {
    fn add(&mut self, path: Path, bytes: f64) {
        if path.links().is_empty() || bytes <= 0.0 {
            return;
        }
        let key = (path, bytes.to_bits());
        match self.index.get(&key) {
            Some(&i) => self.list[i].weight += 1.0,
            None => {
                self.index.insert(key, self.list.len());
                self.list.push(FlowSpec {
                    path,
                    weight: 1.0,
                    bytes,
                });
            }
        }
    }
}

/// Members of a group per node: (node, sorted local GPUs as global GPU ids).
fn by_node(topo: &Topology, ranks: &[u32]) -> Vec<Vec<u32>> {
    let mut sorted = ranks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<Vec<u32>> = Vec::new();
    for g in sorted {
        match out.last_mut() {
            Some(last) if topo.node(last[0]) == topo.node(g) => last.push(g),
            _ => out.push(vec![g]),
        }
    }
    out
}

/// The flows of a collective with the given algorithm and ring channel count.
pub fn collective(
    topo: &Topology,
    nics: NicChoice,
    op: CollectiveOp,
    algo: Algorithm,
    ranks: &[u32],
    bytes: f64,
    channels: u32,
) -> Vec<FlowSpec> {
    let nodes = by_node(topo, ranks);
    // each member's NIC, as the communicator's graph holds them on its node
    let node_nics: Vec<Vec<u32>> = nodes.iter().map(|m| nics.collective(topo, m)).collect();
    let n = ranks.len() as f64;
    let mut flows = Flows::default();
    if ranks.len() <= 1 {
        return flows.list;
    }
    match (op, algo) {
        (CollectiveOp::AllToAll, _) => {
            for &a in ranks {
                for &b in ranks {
                    if a != b {
                        point_to_point(&mut flows, topo, nics, a, b, bytes / n);
                    }
                }
            }
        }
        (CollectiveOp::AllReduce, Algorithm::Nvls) if nodes.len() == 1 => {
            ring_edges(&nodes[0], |a, b| flows.add(topo.direct(a, b), (n + 1.0) / n * bytes));
        }
        (CollectiveOp::AllReduce, Algorithm::Hierarchical | Algorithm::Tree | Algorithm::NvlsTree)
            if nodes.len() > 1 =>
        {
            let k = nodes.iter().map(Vec::len).min().unwrap_or(1);
            for members in &nodes {
                let kk = members.len() as f64;
                let share = if algo == Algorithm::NvlsTree {
                    (kk + 1.0) / kk
                } else {
                    2.0 * (kk - 1.0) / kk
                };
                for i in 0..members.len() {
                    let (a, b) = (members[i], members[(i + 1) % members.len()]);
                    flows.add(topo.direct(a, b), share * bytes);
                }
            }
            let per_rail = bytes / k as f64;
            for rail in 0..k {
                let column: Vec<u32> = nodes.iter().map(|m| m[rail]).collect();
                if algo == Algorithm::Hierarchical {
                    let nn = column.len() as f64;
                    ring_edges(&column, |a, b| {
                        flows.add(topo.direct(a, b), 2.0 * (nn - 1.0) / nn * per_rail)
                    });
                } else {
                    // (GPU, its NIC in the tree's graph), per node
                    let column: Vec<(u32, u32)> = node_nics.iter().zip(&column).map(|(x, &g)| (g, x[rail])).collect();
                    let mirrored: Vec<(u32, u32)> = column.iter().rev().copied().collect();
                    for order in [&column, &mirrored] {
                        for pos in 1..order.len() {
                            let (child, parent) = (order[pos], order[(pos - 1) / 2]);
                            let up = topo.route_via(child.0, parent.0, child.0, parent.0, (child.1, parent.1));
                            let down = topo.route_via(parent.0, child.0, parent.0, child.0, (parent.1, child.1));
                            flows.add(up, per_rail / 2.0);
                            flows.add(down, per_rail / 2.0);
                        }
                    }
                }
            }
        }
        _ => {
            let factor = match op {
                CollectiveOp::AllReduce => 2.0 * (n - 1.0) / n,
                CollectiveOp::ReduceScatter | CollectiveOp::AllGather => (n - 1.0) / n,
                CollectiveOp::Broadcast => 1.0,
                CollectiveOp::AllToAll => unreachable!("handled above"),
            };
            if nodes.len() == 1 {
                ring_edges(&nodes[0], |a, b| flows.add(topo.direct(a, b), factor * bytes));
            } else {
                let per_channel = factor * bytes / channels as f64;
                for c in 0..channels as usize {
                    for (j, members) in nodes.iter().enumerate() {
                        let k = members.len();
                        let order: Vec<u32> = (0..k).map(|i| members[(c + i) % k]).collect();
                        for w in order.windows(2) {
                            flows.add(topo.direct(w[0], w[1]), per_channel);
                        }
                        // leave from the last member through the NIC of this node's c-th member,
                        // enter the next node at its c-th member (same rail)
                        let next = (j + 1) % nodes.len();
                        let entry = nodes[next][c % nodes[next].len()];
                        let exit = order[k - 1];
                        let proxy = members[c % k];
                        let via = (node_nics[j][c % k], node_nics[next][c % nodes[next].len()]);
                        // before PXN, NCCL ends the ring at a member behind the NIC's PCIe switch
                        // where it has one; where it has none (2-4 GPUs, each on its own switch) the
                        // last member sends to the NIC through the CPU
                        let alone = k >= 2 && !members.iter().any(|&m| m != proxy && topo.behind_switch_of(m, via.0));
                        let path = alone
                            .then(|| topo.route_through_cpu(exit, entry, via))
                            .flatten()
                            .unwrap_or_else(|| topo.route_via(exit, entry, proxy, entry, via));
                        flows.add(path, per_channel);
                    }
                }
            }
        }
    }
    flows.list
}

/// Calls `edge(a, b)` for each edge of the ring over `members` (both directions when there are two).
fn ring_edges(members: &[u32], mut edge: impl FnMut(u32, u32)) {
    if members.len() < 2 {
        return;
    }
    for i in 0..members.len() {
        edge(members[i], members[(i + 1) % members.len()]);
    }
}

/// The flows of a point-to-point transfer.
pub fn transfer(topo: &Topology, nics: NicChoice, src: u32, dst: u32, bytes: f64) -> Vec<FlowSpec> {
    let mut flows = Flows::default();
    point_to_point(&mut flows, topo, nics, src, dst, bytes);
    flows.list
}

/// A transfer between two GPUs: over NVLink inside a node; across nodes, NCCL's channels take the
/// sender's and the receiver's NICs round robin, so the bytes split evenly over as many lanes as
/// the larger of the two NIC sets (one lane where each GPU has its own NIC).
fn point_to_point(flows: &mut Flows, topo: &Topology, nics: NicChoice, src: u32, dst: u32, bytes: f64) {
    if topo.node(src) == topo.node(dst) {
        flows.add(topo.direct(src, dst), bytes);
        return;
    }
    let (from, to) = (nics.point_to_point(topo, src), nics.point_to_point(topo, dst));
    let lanes = from.len().max(to.len());
    for lane in 0..lanes {
        let via = (from[lane % from.len()], to[lane % to.len()]);
        flows.add(topo.route_via(src, dst, src, dst, via), bytes / lanes as f64);
    }
}
