//! What-if perturbations of a machine: slow GPUs, compute noise, degraded or failed NICs and leaves.
//!
//! ```yaml
//! gpu:
//!   slowdown:                            # stragglers: kernel durations times `factor`
//!     - { ranks: [3], factor: 2 }        # named GPUs (global rank = node x gpus + local index)
//!     - { nodes: [5], factor: 1.25 }     # every GPU of named nodes
//!     - { fraction: 0.01, factor: 1.5 }  # a seeded 1% of all GPUs (drawn from the run's seed)
//!   jitter: 0.05                         # uniform in +-5%, or:
//!   jitter: { distribution: lognormal, sigma: 0.05 }   # uniform (width), normal or lognormal (sigma)
//! network:
//!   degraded:
//!     - { node: 3, nic: 2, factor: 0.5 } # NIC 2 of node 3 at half bandwidth (both directions)
//!     - { node: 5, nic: 1, down: true }  # NIC 1 of node 5 failed: its GPU uses the next NIC up
//!     - { leaf: 4, factor: 0.5 }         # leaf switch 4's spine ports at half bandwidth
//!     - { rail: 3, factor: 0.5 }         # NIC 3 of every node at half bandwidth
//! ```

use crate::config::Document;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// A group of slow GPUs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slowdown {
    /// Named GPUs (global ranks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<u32>,
    /// Every GPU of these nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u32>,
    /// A seeded fraction of all GPUs of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Kernel durations are multiplied by this (> 0; 2 = half speed).
    pub factor: f64,
}

/// Relative noise on every kernel's duration, drawn from the run's seeded RNG.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Default)]
#[serde(untagged, try_from = "serde_yaml::Value")]
pub enum Jitter {
    /// No noise.
    #[default]
    #[serde(skip_deserializing)]
    None,
    /// A number: uniform in [1 - w, 1 + w] (the original `gpu.jitter`).
    Uniform(f64),
    /// A named distribution.
    Distribution(JitterDistribution),
}

/// A named noise distribution.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "distribution", rename_all = "lowercase")]
pub enum JitterDistribution {
    /// Uniform in [1 - width, 1 + width].
    Uniform {
        /// Half width, in [0, 1).
        width: f64,
    },
    /// 1 + N(0, sigma), clamped at 0.01.
    Normal {
        /// Standard deviation, in [0, 1).
        sigma: f64,
    },
    /// exp(N(0, sigma)): never negative, skewed to slow.
    Lognormal {
        /// Standard deviation of the log, in [0, 1).
        sigma: f64,
    },
}

impl TryFrom<serde_yaml::Value> for Jitter {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> std::result::Result<Self, String> {
        const EXPECTED: &str = "expected a number (uniform noise of that half width) or \
             { distribution: uniform, width: W } | { distribution: normal, sigma: S } | { distribution: lognormal, sigma: S }";
        if let Some(w) = v.as_f64() {
            return Ok(Jitter::Uniform(w));
        }
        serde_yaml::from_value::<JitterDistribution>(v)
            .map(Jitter::Distribution)
            .map_err(|e| format!("{e}; {EXPECTED}"))
    }
}

impl Jitter {
    /// No noise configured (the field is then left out of reports).
    pub fn is_none(&self) -> bool {
        *self == Jitter::None
    }

    /// Whether kernels get noise at all.
    pub fn is_active(&self) -> bool {
        match *self {
            Jitter::None => false,
            Jitter::Uniform(w) => w > 0.0,
            Jitter::Distribution(JitterDistribution::Uniform { width }) => width > 0.0,
            Jitter::Distribution(JitterDistribution::Normal { sigma })
            | Jitter::Distribution(JitterDistribution::Lognormal { sigma }) => sigma > 0.0,
        }
    }

    /// The duration factor for two independent uniform draws `u1`, `u2` in [0, 1).
    pub fn factor(&self, u1: f64, u2: f64) -> f64 {
        // Box-Muller: a standard normal from two uniforms
        let normal = || (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        match *self {
            Jitter::None => 1.0,
            Jitter::Uniform(w) | Jitter::Distribution(JitterDistribution::Uniform { width: w }) => {
                1.0 + w * (2.0 * u1 - 1.0)
            }
            Jitter::Distribution(JitterDistribution::Normal { sigma }) => (1.0 + sigma * normal()).max(0.01),
            Jitter::Distribution(JitterDistribution::Lognormal { sigma }) => (sigma * normal()).exp(),
        }
    }

    fn parameter(&self) -> (f64, &'static str) {
        match *self {
            Jitter::None => (0.0, "gpu.jitter"),
            Jitter::Uniform(w) => (w, "gpu.jitter"),
            Jitter::Distribution(JitterDistribution::Uniform { width }) => (width, "gpu.jitter.width"),
            Jitter::Distribution(JitterDistribution::Normal { sigma })
            | Jitter::Distribution(JitterDistribution::Lognormal { sigma }) => (sigma, "gpu.jitter.sigma"),
        }
    }
}

/// A degraded or failed part of the network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Degradation {
    /// The node of a NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
    /// The NIC (rail) of `node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic: Option<u32>,
    /// A leaf switch: its spine ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<u32>,
    /// A whole rail: NIC `rail` of every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail: Option<u32>,
    /// Fraction of bandwidth left, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Failed (a NIC only): its GPUs use the next NIC of the node that is up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub down: bool,
}

/// Checks the what-if sections against the machine; errors name the field.
pub fn validate(hw: &super::HardwareSpec, doc: &Document) -> Result<()> {
    let gpus = hw.nodes as u64 * hw.node.gpus as u64;
    for (i, s) in hw.gpu.slowdown.iter().enumerate() {
        let at = |f: &str| format!("gpu.slowdown[{i}].{f}");
        if !(s.factor > 0.0 && s.factor.is_finite() && s.factor <= 1e3) {
            return Err(doc.field_error(
                &at("factor"),
                "must be a positive factor (2 = half speed), at most 1000",
            ));
        }
        let given = !s.ranks.is_empty() as u8 + !s.nodes.is_empty() as u8 + s.fraction.is_some() as u8;
        if given != 1 {
            return Err(doc.field_error(
                &format!("gpu.slowdown[{i}]"),
                "give exactly one of `ranks`, `nodes` or `fraction`",
            ));
        }
        if let Some((j, r)) = s.ranks.iter().enumerate().find(|(_, &r)| r as u64 >= gpus) {
            return Err(doc.field_error(
                &format!("gpu.slowdown[{i}].ranks[{j}]"),
                format!("no such GPU: the machine has {gpus} (ranks 0 to {}), not {r}", gpus - 1),
            ));
        }
        if let Some((j, _)) = s.nodes.iter().enumerate().find(|(_, &n)| n >= hw.nodes) {
            return Err(doc.field_error(
                &format!("gpu.slowdown[{i}].nodes[{j}]"),
                format!("no such node: the machine has {} (0 to {})", hw.nodes, hw.nodes - 1),
            ));
        }
        if let Some(f) = s.fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err(doc.field_error(&at("fraction"), "must be a fraction in (0, 1]"));
            }
        }
    }
    let (value, path) = hw.gpu.jitter.parameter();
    if !(0.0..1.0).contains(&value) {
        return Err(doc.field_error(path, "must be in [0, 1)"));
    }
    if !hw.network.degraded.is_empty() && hw.network.model != super::NetworkModelKind::Flow {
        return Err(doc.field_error(
            "network.degraded",
            "degraded links need the flow model (network.model: flow): the other models have no links",
        ));
    }
    for (i, d) in hw.network.degraded.iter().enumerate() {
        let at = |f: &str| format!("network.degraded[{i}].{f}");
        match (d.node, d.nic, d.leaf.or(d.rail)) {
            (Some(node), Some(nic), None) => {
                if node >= hw.nodes {
                    return Err(doc.field_error(&at("node"), format!("no such node: the machine has {}", hw.nodes)));
                }
                if nic >= hw.node.nics {
                    return Err(doc.field_error(&at("nic"), format!("no such NIC: a node has {}", hw.node.nics)));
                }
            }
            (None, None, Some(_)) if d.leaf.is_none() || d.rail.is_none() => {
                if let Some(leaf) = d.leaf {
                    let leaves = hw.network.topology.as_ref().map_or(0, |t| hw.leaves_needed(t));
                    if leaf as u64 >= leaves {
                        return Err(doc.field_error(
                            &at("leaf"),
                            format!("no such leaf switch: the fabric has {leaves}"),
                        ));
                    }
                }
                if d.down {
                    return Err(doc.field_error(&at("down"), "only a NIC can be down; give a leaf or rail a `factor`"));
                }
                if d.rail.is_some_and(|r| r >= hw.node.nics) {
                    return Err(doc.field_error(&at("rail"), format!("no such rail: a node has {} NICs", hw.node.nics)));
                }
            }
            _ => {
                return Err(doc.field_error(
                    &format!("network.degraded[{i}]"),
                    "give `node` and `nic` (a NIC), `rail` (that NIC of every node) or `leaf` (a leaf switch's spine ports)",
                ))
            }
        }
        if let (Some(node), true) = (d.node, d.down) {
            let failed = hw
                .network
                .degraded
                .iter()
                .filter(|e| e.node == Some(node) && e.down)
                .count();
            if failed as u32 >= hw.node.nics && hw.nodes > 1 {
                return Err(doc.field_error(
                    &format!("network.degraded[{i}]"),
                    format!("every NIC of node {node} is down: no path leaves it"),
                ));
            }
        }
        match (d.factor, d.down) {
            // at least a millionth: below, a link's bandwidth leaves the 1 MB/s floor of every rate
            (Some(f), false) if (1e-6..=1.0).contains(&f) => {}
            (None, true) => {}
            (Some(_), false) => {
                return Err(doc.field_error(
                    &at("factor"),
                    "must be a fraction in (0, 1], at least 1e-6 (or `down: true`)",
                ))
            }
            _ => {
                return Err(doc.field_error(
                    &format!("network.degraded[{i}]"),
                    "give exactly one of `factor` (a fraction in (0, 1]) or `down: true`",
                ))
            }
        }
    }
    Ok(())
}

/// Each GPU's slowdown factor for a run of `gpus` GPUs (1 for most); `fraction` groups are drawn
/// from `seed`, independently of the kernel noise.
pub fn slowdown_factors(slowdown: &[Slowdown], gpus_per_node: u32, gpus: u32, seed: u64) -> Vec<f64> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut factors = vec![1.0; gpus as usize];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5107_D0E5);
    for s in slowdown {
        let mut chosen: Vec<u32> = s.ranks.clone();
        chosen.extend(s.nodes.iter().flat_map(|&n| n * gpus_per_node..(n + 1) * gpus_per_node));
        if let Some(f) = s.fraction {
            let mut all: Vec<u32> = (0..gpus).collect();
            all.shuffle(&mut rng);
            let k = ((f * gpus as f64).round() as usize).clamp(1, gpus as usize);
            chosen.extend_from_slice(&all[..k]);
        }
        for r in chosen.into_iter().filter(|&r| r < gpus) {
            factors[r as usize] *= s.factor;
        }
    }
    factors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdowns_multiply_named_gpus_nodes_and_a_seeded_fraction() {
        let s = vec![
            Slowdown {
                ranks: vec![3],
                nodes: vec![],
                fraction: None,
                factor: 2.0,
            },
            Slowdown {
                ranks: vec![],
                nodes: vec![1],
                fraction: None,
                factor: 1.5,
            },
        ];
        let f = slowdown_factors(&s, 4, 8, 1);
        assert_eq!(f, vec![1.0, 1.0, 1.0, 2.0, 1.5, 1.5, 1.5, 1.5]);
        let quarter = vec![Slowdown {
            ranks: vec![],
            nodes: vec![],
            fraction: Some(0.25),
            factor: 3.0,
        }];
        let a = slowdown_factors(&quarter, 4, 8, 1);
        assert_eq!(a.iter().filter(|&&x| x == 3.0).count(), 2);
        assert_eq!(a, slowdown_factors(&quarter, 4, 8, 1), "seeded");
        let others: Vec<Vec<f64>> = (2..10).map(|seed| slowdown_factors(&quarter, 4, 8, seed)).collect();
        assert!(others.iter().any(|o| o != &a), "other seeds pick other GPUs");
    }

    #[test]
    fn noise_distributions_have_their_moments() {
        // a deterministic grid of uniforms stands for random draws
        let n = 200;
        let draws = |j: Jitter| -> Vec<f64> {
            (0..n * n)
                .map(|i| j.factor(((i / n) as f64 + 0.5) / n as f64, ((i % n) as f64 + 0.5) / n as f64))
                .collect()
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
        };
        // uniform +-w: mean 1, sd w / sqrt(3)
        let u = draws(Jitter::Uniform(0.1));
        assert!((mean(&u) - 1.0).abs() < 1e-9 && (sd(&u) - 0.1 / 3f64.sqrt()).abs() < 1e-3);
        // normal: mean 1, sd sigma
        let g = draws(Jitter::Distribution(JitterDistribution::Normal { sigma: 0.05 }));
        assert!(
            (mean(&g) - 1.0).abs() < 1e-3 && (sd(&g) - 0.05).abs() < 2e-3,
            "{} {}",
            mean(&g),
            sd(&g)
        );
        // lognormal: mean exp(sigma^2 / 2) > 1, never below 0
        let l = draws(Jitter::Distribution(JitterDistribution::Lognormal { sigma: 0.1 }));
        assert!((mean(&l) - (0.005f64).exp()).abs() < 2e-3 && l.iter().all(|&x| x > 0.0));
        assert!(!Jitter::None.is_active() && !Jitter::Uniform(0.0).is_active());
    }
}
