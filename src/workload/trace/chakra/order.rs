//! The first order a rank's nodes take on its streams.
//!
//! An imported set's streams are pools that run their tasks in ready order (lowest node id first,
//! as ASTRA-sim issues them), but a graph's streams still list their tasks in an order, which its
//! checks (cycles with the stream order) and the trace writer read. A Chakra file lists nodes in
//! any order (STG's files are not even topologically sorted), so the nodes of all ranks are put in
//! one topological order of the whole set: Kahn's algorithm over every rank's dependencies plus
//! what couples ranks (a receive waits for its send; a collective's members wait for every
//! member's dependencies), taking the ready node of lowest id first. Each rank keeps its nodes in
//! that order; a set whose dependencies form a cycle across ranks is refused here, naming a node.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// One rank's nodes as the ordering sees them: per node, its dependencies (indices into the
/// rank's nodes), and what couples it to other ranks.
pub struct RankGraph {
    /// Per node: indices of the nodes it depends on.
    pub deps: Vec<Vec<u32>>,
    /// Per node: the collective instance it is a member of, if any.
    pub instance: Vec<Option<u32>>,
    /// Per node: for a receive, its matching send as (rank, node index).
    pub send_of: Vec<Option<(u32, u32)>>,
    /// Per node: its id.
    pub ids: Vec<u64>,
}

/// Each node's position in the order of the whole set, per rank; or a node (rank, index) on a cycle.
pub fn positions(ranks: &[RankGraph], instances: usize) -> Result<Vec<Vec<u32>>, (u32, u32)> {
    // vertices: every node, then one per collective instance
    let offsets: Vec<usize> = ranks
        .iter()
        .scan(0, |at, r| {
            let o = *at;
            *at += r.deps.len();
            Some(o)
        })
        .collect();
    let nodes = offsets
        .last()
        .map_or(0, |&o| o + ranks.last().map_or(0, |r| r.deps.len()));
    let total = nodes + instances;
    let mut succs: Vec<Vec<u32>> = vec![Vec::new(); total];
    let mut left: Vec<u32> = vec![0; total];
    let mut edge = |from: usize, to: usize, succs: &mut Vec<Vec<u32>>| {
        succs[from].push(to as u32);
        left[to] += 1;
    };
    for (r, g) in ranks.iter().enumerate() {
        for (i, deps) in g.deps.iter().enumerate() {
            let v = offsets[r] + i;
            // a collective member waits for its instance, which waits for every member's dependencies
            let target = match g.instance[i] {
                Some(c) => {
                    edge(nodes + c as usize, v, &mut succs);
                    nodes + c as usize
                }
                None => v,
            };
            for &d in deps {
                edge(offsets[r] + d as usize, target, &mut succs);
            }
            if let Some((sr, si)) = g.send_of[i] {
                edge(offsets[sr as usize] + si as usize, v, &mut succs);
            }
        }
    }
    // Kahn's algorithm over all ranks at once, taking the ready node of lowest id first (ties: the
    // lower rank): the node ASTRA-sim's feeder would issue first. Instance vertices pass at once.
    let key = |v: usize| -> (u64, u32) {
        let r = offsets.partition_point(|&o| o <= v) - 1;
        (ranks[r].ids[v - offsets[r]], r as u32)
    };
    let mut heap: BinaryHeap<Reverse<(u64, u32, usize)>> = BinaryHeap::new();
    let mut instant: Vec<usize> = Vec::new();
    let push = |v: usize, heap: &mut BinaryHeap<Reverse<(u64, u32, usize)>>, instant: &mut Vec<usize>| {
        if v >= nodes {
            instant.push(v);
        } else {
            let (id, r) = key(v);
            heap.push(Reverse((id, r, v)));
        }
    };
    for (v, _) in left.iter().enumerate().filter(|(_, &l)| l == 0) {
        push(v, &mut heap, &mut instant);
    }
    let mut position = vec![0u32; nodes];
    let mut next = 0u32;
    let mut seen = 0;
    loop {
        let v = match instant.pop() {
            Some(v) => v,
            None => match heap.pop() {
                Some(Reverse((_, _, v))) => v,
                None => break,
            },
        };
        seen += 1;
        if v < nodes {
            position[v] = next;
            next += 1;
        }
        for &s in &succs[v] {
            let s = s as usize;
            left[s] -= 1;
            if left[s] == 0 {
                push(s, &mut heap, &mut instant);
            }
        }
    }
    if seen < total {
        let v = (0..nodes).find(|&v| left[v] > 0).unwrap_or(0);
        let r = offsets.partition_point(|&o| o <= v) - 1;
        return Err((r as u32, (v - offsets[r]) as u32));
    }
    Ok(ranks
        .iter()
        .enumerate()
        .map(|(r, g)| position[offsets[r]..offsets[r] + g.deps.len()].to_vec())
        .collect())
}

/// Node indices of one rank by position.
pub fn by_position(positions: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..positions.len()).collect();
    order.sort_by_key(|&i| positions[i]);
    order
}

/// Index of each node id in a rank's file; or the first id used twice.
pub fn index(ids: impl Iterator<Item = u64>) -> Result<HashMap<u64, u32>, u64> {
    let mut map = HashMap::new();
    for (i, id) in ids.enumerate() {
        if map.insert(id, i as u32).is_some() {
            return Err(id);
        }
    }
    Ok(map)
}
