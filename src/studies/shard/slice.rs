//! Which points a shard runs: `--shard K/N` parsed, and every point dealt to one of N shards so that
//! the shards' estimated costs are close.
//!
//! Dealing is the longest-processing-time rule: points by estimated cost, largest first (equal
//! costs: lowest id first), each to the shard with the least cost so far (ties: lowest index). It
//! depends on nothing but the costs and N, so every shard computes the same split on its own;
//! with N at most the number of points and every cost at least 1, the first N points dealt go to N
//! different shards, so no shard is empty.

use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Shard `index` (counted from 0, as Slurm's `SLURM_ARRAY_TASK_ID` and Kubernetes'
/// `JOB_COMPLETION_INDEX` are) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K: which slice, 0 to N-1.
    pub index: u32,
    /// N: how many slices.
    pub count: u32,
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |why: String| Error::Input(format!("error: --shard {text}: {why}"));
        let (k, n) = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)))
            .ok_or_else(|| bad("expected K/N: shard K (counted from 0) of N shards, e.g. --shard 2/8".to_string()))?;
        if n == 0 {
            return Err(bad(
                "N must be at least 1: K/N is shard K of N shards, K from 0 to N-1".into()
            ));
        }
        if k >= n {
            return Err(bad(format!(
                "shard {k} does not exist: the {n} shards are numbered 0 to {} (K counts from 0, as SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX do)",
                n - 1
            )));
        }
        Ok(Shard { index: k, count: n })
    }

    /// `K/N`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// The shard file's name: `shard-K-of-N.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }

    /// This shard's points (ids, ascending), given every point's estimated cost; an error where
    /// there are fewer points than shards.
    pub fn points(&self, costs: &[u64]) -> Result<Vec<usize>> {
        if (self.count as usize) > costs.len() {
            return Err(Error::Input(format!(
                "error: --shard {}: {} shards for {} points: every shard needs at least one point; use at most {} shards",
                self.label(),
                self.count,
                costs.len(),
                costs.len()
            )));
        }
        let owner = assign(costs, self.count);
        Ok((0..costs.len()).filter(|&i| owner[i] == self.index).collect())
    }
}

/// The shard of every point: `count` shards, largest estimated cost first to the least loaded
/// shard (see the module). Costs below 1 count as 1.
pub fn assign(costs: &[u64], count: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (Reverse(costs[i].max(1)), i));
    let mut loads: BinaryHeap<Reverse<(u128, u32)>> = (0..count.max(1)).map(|s| Reverse((0, s))).collect();
    let mut owner = vec![0; costs.len()];
    for i in order {
        let Reverse((load, s)) = loads.pop().expect("at least one shard");
        owner[i] = s;
        loads.push(Reverse((load + costs[i].max(1) as u128, s)));
    }
    owner
}

/// A point's cost from an estimate (tasks of its simulation): rounded, at least 1.
pub fn cost(estimate: f64) -> u64 {
    if estimate.is_finite() {
        estimate.clamp(1.0, 1e18) as u64
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_first_to_the_least_loaded() {
        // costs 5 4 3 3 1 over 2 shards: 5 -> s0 (loads 5, 0), 4 -> s1 (5, 4), 3 (id 2) -> s1
        // (5, 7), 3 (id 3) -> s0 (8, 7), 1 -> s1 (8, 8)
        assert_eq!(assign(&[5, 4, 3, 3, 1], 2), vec![0, 1, 1, 0, 1]);
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard { index: 2, count: 8 });
        for bad in ["4/4", "0/0", "x/3", "3", "-1/4", "1/2/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
