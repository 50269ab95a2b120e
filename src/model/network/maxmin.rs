//! Weighted max-min fair bandwidth sharing by progressive filling (as in SimGrid).
//!
//! Every flow has a weight w (the number of identical connections it stands for) and a path of
//! links. Progressive filling raises the rate per unit weight of all unfrozen flows together;
//! when a link fills (its remaining capacity divided by the weight of its unfrozen flows is the
//! smallest "fair share" s of any link), every flow crossing it is frozen at rate s per unit weight
//! and its consumption w s is taken from every link on its path. Repeat until every flow is frozen.
//! The result is the unique max-min fair allocation: no flow can get more without taking from a
//! flow that has no more than it (per unit weight).
//!
//! [`reference_rates`] is the textbook loop, one link at a time, kept slow and obvious for tests.
//! [`Solver`] does the same on a subset of flows (a connected component), freezing every link
//! at the minimum share at once, with scratch buffers reused across calls.

/// A flow for the solver: weight and path.
#[derive(Clone, Copy, Debug)]
pub struct Demand<'a> {
    /// Connections this flow stands for (> 0).
    pub weight: f64,
    /// Links it crosses.
    pub links: &'a [u32],
}

/// Rate per unit weight of each flow (flows with no link get `f64::INFINITY`).
pub fn reference_rates(capacity: &[f64], flows: &[Demand<'_>]) -> Vec<f64> {
    let mut rate = vec![f64::INFINITY; flows.len()];
    let mut frozen: Vec<bool> = flows.iter().map(|f| f.links.is_empty()).collect();
    let mut remaining = capacity.to_vec();
    loop {
        // the link with the smallest fair share among links carrying unfrozen flows
        let mut best: Option<(usize, f64)> = None;
        for (l, &cap) in remaining.iter().enumerate() {
            let weight: f64 = flows
                .iter()
                .enumerate()
                .filter(|(i, f)| !frozen[*i] && f.links.contains(&(l as u32)))
                .map(|(_, f)| f.weight)
                .sum();
            if weight > 0.0 {
                let share = cap.max(0.0) / weight;
                if best.is_none_or(|(_, s)| share < s) {
                    best = Some((l, share));
                }
            }
        }
        let Some((link, share)) = best else { break };
        for (i, f) in flows.iter().enumerate() {
            if !frozen[i] && f.links.contains(&(link as u32)) {
                frozen[i] = true;
                rate[i] = share;
                for &m in f.links {
                    remaining[m as usize] -= f.weight * share;
                }
            }
        }
    }
    rate
}

/// Progressive filling over a subset of flows, reusing its buffers.
#[derive(Default, Debug)]
pub struct Solver {
    remaining: Vec<f64>,
    weight: Vec<f64>,
    frozen: Vec<bool>,
    active_links: Vec<u32>,
}

/// What the solver needs to know about the flows on each link.
pub trait FlowTable {
    /// Weight of a flow.
    fn weight(&self, flow: u32) -> f64;
    /// Path of a flow.
    fn path(&self, flow: u32) -> &[u32];
    /// Flows crossing a link.
    fn flows_on(&self, link: u32) -> &[u32];
}

impl Solver {
    /// Sets `rate[f]` (per unit weight) for every flow of `flows`, given that `links` are all the
    /// links those flows cross and that every flow on those links is in `flows` (a connected
    /// component). `frozen_scratch` must be indexable by flow id.
    pub fn solve(&mut self, capacity: &[f64], links: &[u32], flows: &[u32], table: &dyn FlowTable, rate: &mut [f64]) {
        if self.remaining.len() < capacity.len() {
            self.remaining.resize(capacity.len(), 0.0);
            self.weight.resize(capacity.len(), 0.0);
        }
        let max_flow = flows.iter().copied().max().map_or(0, |m| m as usize + 1);
        if self.frozen.len() < max_flow {
            self.frozen.resize(max_flow, false);
        }
        for &l in links {
            self.remaining[l as usize] = capacity[l as usize];
            self.weight[l as usize] = 0.0;
        }
        for &f in flows {
            self.frozen[f as usize] = false;
            let w = table.weight(f);
            let path = table.path(f);
            if path.is_empty() {
                self.frozen[f as usize] = true;
                rate[f as usize] = f64::INFINITY;
            }
            for &l in path {
                self.weight[l as usize] += w;
            }
        }
        self.active_links.clear();
        self.active_links
            .extend(links.iter().copied().filter(|&l| self.weight[l as usize] > 0.0));
        while !self.active_links.is_empty() {
            let share = self
                .active_links
                .iter()
                .map(|&l| self.remaining[l as usize].max(0.0) / self.weight[l as usize])
                .fold(f64::INFINITY, f64::min);
            // freeze the flows of every link at the minimum share (ties up to rounding)
            let limit = share * (1.0 + 1e-12) + f64::MIN_POSITIVE;
            let mut i = 0;
            while i < self.active_links.len() {
                let l = self.active_links[i] as usize;
                let w = self.weight[l];
                if w > 0.0 && self.remaining[l].max(0.0) / w <= limit {
                    for &f in table.flows_on(l as u32) {
                        if self.frozen[f as usize] {
                            continue;
                        }
                        self.frozen[f as usize] = true;
                        rate[f as usize] = share;
                        let fw = table.weight(f);
                        for &m in table.path(f) {
                            self.remaining[m as usize] -= fw * share;
                            self.weight[m as usize] -= fw;
                        }
                    }
                }
                i += 1;
            }
            self.active_links.retain(|&l| self.weight[l as usize] > 1e-9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Table {
        weights: Vec<f64>,
        paths: Vec<Vec<u32>>,
        on_link: Vec<Vec<u32>>,
    }
    impl Table {
        fn new(links: usize, flows: &[(f64, Vec<u32>)]) -> Self {
            let mut on_link = vec![Vec::new(); links];
            for (i, (_, p)) in flows.iter().enumerate() {
                for &l in p {
                    on_link[l as usize].push(i as u32);
                }
            }
            Table {
                weights: flows.iter().map(|f| f.0).collect(),
                paths: flows.iter().map(|f| f.1.clone()).collect(),
                on_link,
            }
        }
    }
    impl FlowTable for Table {
        fn weight(&self, f: u32) -> f64 {
            self.weights[f as usize]
        }
        fn path(&self, f: u32) -> &[u32] {
            &self.paths[f as usize]
        }
        fn flows_on(&self, l: u32) -> &[u32] {
            &self.on_link[l as usize]
        }
    }

    fn fast(capacity: &[f64], flows: &[(f64, Vec<u32>)]) -> Vec<f64> {
        let table = Table::new(capacity.len(), flows);
        let links: Vec<u32> = (0..capacity.len() as u32).collect();
        let ids: Vec<u32> = (0..flows.len() as u32).collect();
        let mut rate = vec![0.0; flows.len()];
        Solver::default().solve(capacity, &links, &ids, &table, &mut rate);
        rate
    }

    #[test]
    fn two_flows_on_one_link_get_half_each() {
        // one 100 GB/s link, two flows: 50 each
        let r = fast(&[100.0], &[(1.0, vec![0]), (1.0, vec![0])]);
        assert_eq!(r, vec![50.0, 50.0]);
    }

    #[test]
    fn classic_three_link_example() {
        // links A=10, B=10; flow 0 crosses A and B, flow 1 only A, flow 2 only B:
        // every link has two flows, share 5 each; all get 5.
        // then make B = 20: A is the bottleneck (share 5) for flows 0 and 1; flow 2 gets 20 - 5 = 15.
        let flows = vec![(1.0, vec![0, 1]), (1.0, vec![0]), (1.0, vec![1])];
        assert_eq!(fast(&[10.0, 10.0], &flows), vec![5.0, 5.0, 5.0]);
        assert_eq!(fast(&[10.0, 20.0], &flows), vec![5.0, 5.0, 15.0]);
    }

    #[test]
    fn weight_counts_as_that_many_flows() {
        // a weight-3 flow and a weight-1 flow on a 100-unit link: 25 per unit weight each,
        // i.e. 75 for the weight-3 flow in total, as three separate flows would get
        let r = fast(&[100.0], &[(3.0, vec![0]), (1.0, vec![0])]);
        assert_eq!(r, vec![25.0, 25.0]);
    }

    fn arb_case() -> impl Strategy<Value = (Vec<f64>, Vec<(f64, Vec<u32>)>)> {
        (2usize..8).prop_flat_map(|links| {
            let caps = prop::collection::vec(1.0f64..100.0, links);
            let flow = (1u32..4, prop::collection::btree_set(0..links as u32, 1..=links.min(4)))
                .prop_map(|(w, set)| (w as f64, set.into_iter().collect::<Vec<u32>>()));
            (caps, prop::collection::vec(flow, 1..10))
        })
    }

    proptest! {
        /// The fast solver agrees with the reference, no link is over capacity, and every flow
        /// crosses at least one saturated link on which no flow has a higher rate (max-min optimality).
        #[test]
        fn fast_agrees_with_reference_and_respects_capacity((caps, flows) in arb_case()) {
            let demands: Vec<Demand> = flows.iter().map(|(w, p)| Demand { weight: *w, links: p }).collect();
            let expected = reference_rates(&caps, &demands);
            let got = fast(&caps, &flows);
            for (a, b) in got.iter().zip(&expected) {
                prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{got:?} vs {expected:?}");
            }
            let mut load = vec![0.0; caps.len()];
            for ((w, p), r) in flows.iter().zip(&got) {
                for &l in p { load[l as usize] += w * r; }
            }
            for (l, c) in load.iter().zip(&caps) {
                prop_assert!(*l <= c * (1.0 + 1e-9), "load {l} > capacity {c}");
            }
            for ((_, p), r) in flows.iter().zip(&got) {
                let bottleneck = p.iter().any(|&l| {
                    load[l as usize] >= caps[l as usize] * (1.0 - 1e-9)
                        && flows.iter().zip(&got).all(|((_, q), r2)| !q.contains(&l) || *r2 <= r * (1.0 + 1e-9))
                });
                prop_assert!(bottleneck, "flow at {r} has no bottleneck link");
            }
        }
    }
}
