//! Weighted max-min fair bandwidth sharing by progressive filling (as in SimGrid).
//!
//! Every flow has a path of links and, on each link of it, a weight w (the number of identical
//! connections it stands for there: the same on every link for merged identical edges; more on the
//! links its symmetric copies share, in representative runs). Progressive filling raises the rate
//! per connection of all unfrozen flows together; when a link fills (its remaining capacity divided
//! by the weight of its unfrozen flows is the smallest "fair share" s of any link), every flow
//! crossing it is frozen at rate s per connection and its consumption w s is taken from every link
//! on its path, with that link's w. Repeat until every flow is frozen.
//! The result is the unique max-min fair allocation: no flow can get more without taking from a
//! flow that has no more than it (per unit weight).
//!
//! [`reference_rates`] is the textbook loop, one link at a time, kept slow and obvious for tests.
//! [`Solver`] does the same on a subset of flows (a connected component), freezing every link
//! at the minimum share at once, with scratch buffers reused across calls.

/// A flow for the solver: path and weight on each of its links.
#[derive(Clone, Copy, Debug)]
pub struct Demand<'a> {
    /// Connections this flow stands for on each of its links (> 0), aligned with `links`.
    pub weights: &'a [f64],
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
                .filter(|(i, _)| !frozen[*i])
                .flat_map(|(_, f)| f.links.iter().zip(f.weights).filter(|(&m, _)| m == l as u32))
                .map(|(_, &w)| w)
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
                for (&m, &w) in f.links.iter().zip(f.weights) {
                    remaining[m as usize] -= w * share;
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
    /// Weight of a flow on each link of its path (aligned with [`FlowTable::path`]).
    fn weights(&self, flow: u32) -> &[f64];
    /// Path of a flow.
    fn path(&self, flow: u32) -> &[u32];
    /// Flows crossing a link.
    fn flows_on(&self, link: u32) -> &[u32];
}

impl Solver {
    /// Sets `rate[f]` (per unit weight) for every flow of `flows`, given that `links` are all the
    /// links those flows cross and that every flow on those links is in `flows` (a connected
    /// component). `frozen_scratch` must be indexable by flow id.
    pub fn solve<T: FlowTable + ?Sized>(
        &mut self,
        capacity: &[f64],
        links: &[u32],
        flows: &[u32],
        table: &T,
        rate: &mut [f64],
    ) {
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
            let path = table.path(f);
            if path.is_empty() {
                self.frozen[f as usize] = true;
                rate[f as usize] = f64::INFINITY;
            }
            for (&l, &w) in path.iter().zip(table.weights(f)) {
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
                        for (&m, &fw) in table.path(f).iter().zip(table.weights(f)) {
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
        weights: Vec<Vec<f64>>,
        paths: Vec<Vec<u32>>,
        on_link: Vec<Vec<u32>>,
    }
    impl Table {
        fn new(links: usize, flows: &[(Vec<f64>, Vec<u32>)]) -> Self {
            let mut on_link = vec![Vec::new(); links];
            for (i, (_, p)) in flows.iter().enumerate() {
                for &l in p {
                    on_link[l as usize].push(i as u32);
                }
            }
            Table {
                weights: flows.iter().map(|f| f.0.clone()).collect(),
                paths: flows.iter().map(|f| f.1.clone()).collect(),
                on_link,
            }
        }
    }
    impl FlowTable for Table {
        fn weights(&self, f: u32) -> &[f64] {
            &self.weights[f as usize]
        }
        fn path(&self, f: u32) -> &[u32] {
            &self.paths[f as usize]
        }
        fn flows_on(&self, l: u32) -> &[u32] {
            &self.on_link[l as usize]
        }
    }

    /// Rates of flows with one weight on every link.
    fn fast(capacity: &[f64], flows: &[(f64, Vec<u32>)]) -> Vec<f64> {
        let per_hop: Vec<(Vec<f64>, Vec<u32>)> = flows.iter().map(|(w, p)| (vec![*w; p.len()], p.clone())).collect();
        fast_per_hop(capacity, &per_hop)
    }

    fn fast_per_hop(capacity: &[f64], flows: &[(Vec<f64>, Vec<u32>)]) -> Vec<f64> {
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

    #[test]
    fn copies_on_private_and_shared_links_reduce_to_one_flow_with_per_link_weights() {
        // Four symmetric copies of a flow, each on its own link (capacity 40) and all on one
        // shared link (capacity 100), beside a lone flow on the shared link: the shared link has
        // five connections, share 20, below the private links' 40, so every flow gets 20.
        // One representative flow of weight 1 on its private link and 4 on the shared one gives
        // the same: shared share = 100 / (4 + 1) = 20.
        let expanded = fast(
            &[40.0, 40.0, 40.0, 40.0, 100.0],
            &[
                (1.0, vec![0, 4]),
                (1.0, vec![1, 4]),
                (1.0, vec![2, 4]),
                (1.0, vec![3, 4]),
                (1.0, vec![4]),
            ],
        );
        assert_eq!(expanded, vec![20.0; 5]);
        let represented = fast_per_hop(&[40.0, 100.0], &[(vec![1.0, 4.0], vec![0, 1]), (vec![1.0], vec![1])]);
        assert_eq!(represented, vec![20.0, 20.0]);
        // with private links of 10, those bind first (10 each); the lone flow gets 100 - 40 = 60
        let represented = fast_per_hop(&[10.0, 100.0], &[(vec![1.0, 4.0], vec![0, 1]), (vec![1.0], vec![1])]);
        assert_eq!(represented, vec![10.0, 60.0]);
    }

    /// Per-link weights and path of a flow.
    type TestFlow = (Vec<f64>, Vec<u32>);

    fn arb_case() -> impl Strategy<Value = (Vec<f64>, Vec<TestFlow>)> {
        (2usize..8).prop_flat_map(|links| {
            let caps = prop::collection::vec(1.0f64..100.0, links);
            let flow = prop::collection::btree_map(0..links as u32, 1u32..4, 1..=links.min(4)).prop_map(|map| {
                let (path, weights): (Vec<u32>, Vec<f64>) = map.into_iter().map(|(l, w)| (l, w as f64)).unzip();
                (weights, path)
            });
            (caps, prop::collection::vec(flow, 1..10))
        })
    }

    proptest! {
        /// The fast solver agrees with the reference, no link is over capacity, and every flow
        /// crosses at least one saturated link on which no flow has a higher rate (max-min optimality).
        #[test]
        fn fast_agrees_with_reference_and_respects_capacity((caps, flows) in arb_case()) {
            let demands: Vec<Demand> = flows.iter().map(|(w, p)| Demand { weights: w, links: p }).collect();
            let expected = reference_rates(&caps, &demands);
            let got = fast_per_hop(&caps, &flows);
            for (a, b) in got.iter().zip(&expected) {
                prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{got:?} vs {expected:?}");
            }
            let mut load = vec![0.0; caps.len()];
            for ((w, p), r) in flows.iter().zip(&got) {
                for (&l, w) in p.iter().zip(w) { load[l as usize] += w * r; }
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

        /// k symmetric copies of a set of flows, each copy on its own private links and all on
        /// shared links, get the rates of the set alone with weight k on the shared links.
        #[test]
        fn symmetric_copies_equal_one_copy_with_multiplicities(
            k in 1usize..5,
            private in prop::collection::vec(1.0f64..100.0, 1..4),
            shared in prop::collection::vec(1.0f64..100.0, 1..3),
            flows in prop::collection::vec((prop::collection::btree_set(0u32..6, 1..4), 1u32..3), 1..6),
        ) {
            let (p, sh) = (private.len() as u32, shared.len() as u32);
            // link j < p is private link j, otherwise shared link (j - p) mod sh
            let hop = |l: u32| if l < p { (true, l) } else { (false, (l - p) % sh) };
            let mut caps: Vec<f64> = (0..k).flat_map(|_| private.iter().copied()).collect();
            caps.extend(&shared);
            let mut expanded = Vec::new();
            for c in 0..k as u32 {
                for (set, w) in &flows {
                    let mut path: Vec<u32> = set.iter().map(|&l| match hop(l) {
                        (true, i) => c * p + i,
                        (false, i) => k as u32 * p + i,
                    }).collect();
                    path.sort_unstable();
                    path.dedup();
                    expanded.push((vec![*w as f64; path.len()], path));
                }
            }
            let mut rep_caps = private.clone();
            rep_caps.extend(&shared);
            let represented: Vec<(Vec<f64>, Vec<u32>)> = flows.iter().map(|(set, w)| {
                let mut hops: Vec<(u32, f64)> = set.iter().map(|&l| match hop(l) {
                    (true, i) => (i, *w as f64),
                    (false, i) => (p + i, *w as f64 * k as f64),
                }).collect();
                hops.sort_by_key(|h| h.0);
                hops.dedup_by_key(|h| h.0);
                let (path, weights) = hops.into_iter().unzip();
                (weights, path)
            }).collect();
            let all = fast_per_hop(&caps, &expanded);
            let rep = fast_per_hop(&rep_caps, &represented);
            for c in 0..k {
                for (i, r) in rep.iter().enumerate() {
                    let e = all[c * flows.len() + i];
                    prop_assert!((e - r).abs() <= 1e-9 * r.abs().max(1.0), "copy {c} flow {i}: {e} vs {r}");
                }
            }
        }
    }
}
