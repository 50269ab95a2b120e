//! The physical network as directed links with capacities, and the routes between GPUs.
//!
//! Per node: an NVSwitch with one NVLink port per GPU (an up link GPU→switch and a down link
//! switch→GPU), and NICs, one per rail (GPU i uses NIC i x NICs / GPUs). NICs attach to leaf
//! switches: in node order (`fat-tree`) or by rail within scalable units (`rail-optimized`). Each leaf's
//! ports toward the spines are modelled as one up and one down link whose capacity is the leaf's NIC
//! bandwidth divided by the oversubscription ratio. Above the leaves the fabric is non-blocking: ECMP
//! spreads flows over the spine ports, which at flow level is one bundled link per leaf and
//! direction (deterministic, no hash collisions).
//!
//! A leaf whose uplink carries at least what all its NICs can send (no oversubscription) can never
//! be a bottleneck: every flow through it also crosses one of those NICs, so its max-min constraint
//! is implied by theirs. Routes leave such links out; the allocation is the same, the flow model's
//! connected components are smaller, and symmetric copies of a replica placed across a leaf
//! boundary load the fabric alike (see [`crate::model::network::copies`]).
//!
//! Capacities are effective bandwidths (nominal x efficiency), in bytes per second.

use crate::config::{HardwareSpec, TopologyKind};

/// Index of a directed link.
pub type LinkId = u32;

/// Where a node's NICs sit: GPUs per node, NICs per node, and GPUs per PCIe switch (each switch
/// holding `nics / gpus` NICs per GPU behind it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NicLayout {
    /// GPUs per node.
    pub gpus: u32,
    /// NICs per node.
    pub nics: u32,
    /// GPUs behind one PCIe switch.
    pub gpus_per_switch: u32,
}

impl NicLayout {
    /// The layout of a hardware description's nodes.
    pub fn new(hw: &HardwareSpec) -> Self {
        NicLayout {
            gpus: hw.node.gpus,
            nics: hw.node.nics,
            gpus_per_switch: hw.node.gpus_per_pcie_switch.max(1),
        }
    }

    /// The rail (local NIC index) of local GPU `local`.
    pub fn rail(&self, local: u32) -> u32 {
        local * self.nics / self.gpus
    }

    /// The NICs (local indices) of the PCIe switch local GPU `local` sits behind: its rail's NIC
    /// when each GPU has its own switch, or the `nics / gpus x gpus_per_switch` NICs it shares with
    /// the switch's other GPUs. A node with fewer NICs than switches gives the rail's NIC.
    pub fn switch_nics(&self, local: u32) -> std::ops::Range<u32> {
        let per_switch = self.nics * self.gpus_per_switch / self.gpus;
        if per_switch <= 1 {
            let rail = self.rail(local);
            return rail..rail + 1;
        }
        let first = local / self.gpus_per_switch * per_switch;
        first..first + per_switch
    }
}

/// The kind of a link, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkClass {
    /// GPU ↔ NVSwitch.
    NvLink,
    /// NIC ↔ leaf switch.
    Nic,
    /// Leaf ↔ spines (bundled).
    LeafUplink,
    /// A node's storage NICs (bundled, capped by the node's I/O rate).
    StorageNic,
    /// The path from a GPU's memory through the CPU to a NIC (one per NIC, send direction), where
    /// data cannot go by GPUDirect RDMA (`node.nic_through_cpu`).
    ThroughCpu,
    /// The filesystem's aggregate read or write bandwidth.
    Filesystem,
}

impl LinkClass {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            LinkClass::NvLink => "NVLink",
            LinkClass::Nic => "NIC",
            LinkClass::LeafUplink => "leaf uplink",
            LinkClass::StorageNic => "storage NIC",
            LinkClass::ThroughCpu => "NIC through the CPU",
            LinkClass::Filesystem => "filesystem",
        }
    }
}

/// A route: at most 8 links (NVLink up/down to a proxy GPU, NIC up, leaf up, leaf down, NIC down,
/// NVLink up/down from the proxy GPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path {
    links: [LinkId; 8],
    len: u8,
}

impl Path {
    /// The links in order.
    pub fn links(&self) -> &[LinkId] {
        &self.links[..self.len as usize]
    }
    /// A route over the given links (at most 8).
    pub fn from_links(links: &[LinkId]) -> Path {
        let mut p = Path::default();
        for &l in links {
            p.push(l);
        }
        p
    }
    fn push(&mut self, l: LinkId) {
        self.links[self.len as usize] = l;
        self.len += 1;
    }
}

/// The links of a cluster and how GPUs reach each other.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Capacity of each link, bytes/s.
    pub capacity: Vec<f64>,
    /// Class of each link.
    pub class: Vec<LinkClass>,
    gpus_per_node: u32,
    nics_per_node: u32,
    layout: NicLayout,
    nic_base: u32,
    leaf_base: u32,
    leaf_of_nic: Vec<u32>,
    /// Whether each leaf's uplinks can bind (their capacity is below what the leaf's NICs carry).
    leaf_binds: Vec<bool>,
    /// The NIC each NIC's traffic leaves through: itself, or for a failed NIC the nearest of its
    /// node that is up (`network.degraded`).
    nic_redirect: Vec<u32>,
    /// First storage link (per node up and down) and the filesystem's write link (read is next), if any.
    storage_base: Option<(u32, u32)>,
    /// First of the links through the CPU to each NIC (one per NIC), where the node has them.
    through_cpu_base: Option<u32>,
}

impl Topology {
    /// Builds the links of `nodes` nodes of `hw` (only as many as the run uses).
    pub fn new(hw: &HardwareSpec, nodes: u32) -> Self {
        let (gpn, nics) = (hw.node.gpus, hw.node.nics);
        let gpus = nodes * gpn;
        let total_nics = nodes * nics;
        let nic_bw = hw.node.nic.effective_bandwidth().bytes_per_s();
        let mut capacity = vec![hw.node.nvlink.effective_bandwidth().bytes_per_s(); 2 * gpus as usize];
        let mut class = vec![LinkClass::NvLink; 2 * gpus as usize];
        let nic_base = capacity.len() as u32;
        capacity.extend(std::iter::repeat_n(nic_bw, 2 * total_nics as usize));
        class.extend(std::iter::repeat_n(LinkClass::Nic, 2 * total_nics as usize));
        let nic_redirect = degrade_nics(hw, nodes, &mut capacity[nic_base as usize..]);
        let leaf_base = capacity.len() as u32;
        let (leaf_of_nic, leaves, uplink) = match &hw.network.topology {
            Some(t) => {
                let down = t.leaf_down_ports();
                let leaf_of_nic: Vec<u32> = (0..total_nics)
                    .map(|n| match t.kind {
                        TopologyKind::FatTree => n / down,
                        TopologyKind::RailOptimized => (n / nics / down) * nics + n % nics,
                    })
                    .collect();
                let leaves = leaf_of_nic.iter().max().map_or(0, |m| m + 1);
                // the leaf's NIC-facing bandwidth over the oversubscription ratio
                let port = t.link.effective_bandwidth().bytes_per_s();
                (leaf_of_nic, leaves, down as f64 * port / t.oversubscription)
            }
            None => ((0..total_nics).map(|_| 0).collect(), 0, f64::INFINITY),
        };
        let mut uplinks = vec![uplink; leaves as usize];
        for d in &hw.network.degraded {
            if let (Some(leaf), Some(f)) = (d.leaf, d.factor) {
                if let Some(u) = uplinks.get_mut(leaf as usize) {
                    *u *= f;
                }
            }
        }
        // what a leaf's NICs can send (failed NICs send nothing; their traffic leaves elsewhere)
        let mut nic_sum = vec![0.0; leaves as usize];
        for (n, &l) in leaf_of_nic.iter().enumerate() {
            // (without a topology there are no leaves: nothing to sum)
            if let Some(sum) = nic_sum.get_mut(l as usize).filter(|_| nic_redirect[n] == n as u32) {
                *sum += capacity[(nic_base + 2 * n as u32) as usize];
            }
        }
        let leaf_binds = nic_sum
            .iter()
            .zip(&uplinks)
            .map(|(&sent, &up)| sent > up * (1.0 + 1e-12))
            .collect();
        for &u in &uplinks {
            capacity.extend([u, u]);
        }
        class.extend(std::iter::repeat_n(LinkClass::LeafUplink, 2 * leaves as usize));
        // storage: each node's storage NICs as one up and one down link at the node's I/O rate
        // (IOPS x I/O size, capped by the NICs), then the filesystem's write and read limits
        let storage_base = hw.storage.as_ref().map(|st| {
            use crate::model::storage::{throughput, Direction};
            let base = capacity.len() as u32;
            let per_node = throughput(st, 1, Direction::Read).max(throughput(st, 1, Direction::Write));
            capacity.extend(std::iter::repeat_n(per_node, 2 * nodes as usize));
            class.extend(std::iter::repeat_n(LinkClass::StorageNic, 2 * nodes as usize));
            let ops = st.iops * st.io_size.as_f64();
            capacity.push(st.write_bandwidth.bytes_per_s().min(ops));
            capacity.push(st.read_bandwidth.bytes_per_s().min(ops));
            class.extend([LinkClass::Filesystem, LinkClass::Filesystem]);
            (base, base + 2 * nodes)
        });
        // the path from a GPU through the CPU to each NIC, where the machine's NCCL takes it
        let through_cpu_base = hw.nic_through_cpu_path().map(|b| {
            let base = capacity.len() as u32;
            capacity.extend(std::iter::repeat_n(b.bytes_per_s(), total_nics as usize));
            class.extend(std::iter::repeat_n(LinkClass::ThroughCpu, total_nics as usize));
            base
        });
        Topology {
            capacity,
            class,
            gpus_per_node: gpn,
            nics_per_node: nics,
            layout: NicLayout::new(hw),
            nic_base,
            leaf_base,
            leaf_of_nic,
            leaf_binds,
            nic_redirect,
            storage_base,
            through_cpu_base,
        }
    }

    /// Number of links.
    pub fn links(&self) -> usize {
        self.capacity.len()
    }
    /// Node of a GPU.
    pub fn node(&self, gpu: u32) -> u32 {
        gpu / self.gpus_per_node
    }
    /// A GPU's index within its node.
    pub fn local(&self, gpu: u32) -> u32 {
        gpu % self.gpus_per_node
    }
    /// The NIC (global index) a GPU uses: its rail.
    pub fn nic_of(&self, gpu: u32) -> u32 {
        self.node_nic(gpu, self.layout.rail(self.local(gpu)))
    }
    /// GPU → NVSwitch.
    pub fn nvlink_up(&self, gpu: u32) -> LinkId {
        2 * gpu
    }
    /// NVSwitch → GPU.
    pub fn nvlink_down(&self, gpu: u32) -> LinkId {
        2 * gpu + 1
    }
    fn nic_up(&self, nic: u32) -> LinkId {
        self.nic_base + 2 * nic
    }
    fn nic_down(&self, nic: u32) -> LinkId {
        self.nic_base + 2 * nic + 1
    }

    /// The route from GPU `src` to GPU `dst`. Across nodes the data leaves through the NIC of
    /// `src_nic_gpu` and enters through the NIC of `dst_nic_gpu` (NCCL's PXN: a GPU forwards over
    /// NVLink to the GPU on the destination's rail); pass `src` and `dst` for the direct route.
    pub fn route(&self, src: u32, dst: u32, src_nic_gpu: u32, dst_nic_gpu: u32) -> Path {
        let nics = (self.nic_of(src_nic_gpu), self.nic_of(dst_nic_gpu));
        self.route_via(src, dst, src_nic_gpu, dst_nic_gpu, nics)
    }

    /// Where each node's NICs sit.
    pub fn layout(&self) -> &NicLayout {
        &self.layout
    }

    /// The NICs (local indices on the node) of the PCIe switch a GPU sits behind.
    pub fn switch_nics(&self, gpu: u32) -> std::ops::Range<u32> {
        self.layout.switch_nics(self.local(gpu))
    }

    /// The global index of local NIC `local` of `gpu`'s node, after `network.degraded` redirects.
    pub fn node_nic(&self, gpu: u32, local: u32) -> u32 {
        self.nic_redirect[(self.node(gpu) * self.nics_per_node + local) as usize]
    }

    /// [`Topology::route`] with the NICs given (global indices): `nics.0` on the source's node,
    /// `nics.1` on the destination's.
    pub fn route_via(&self, src: u32, dst: u32, src_nic_gpu: u32, dst_nic_gpu: u32, nics: (u32, u32)) -> Path {
        let mut p = Path::default();
        if src == dst {
            return p;
        }
        if self.node(src) == self.node(dst) {
            p.push(self.nvlink_up(src));
            p.push(self.nvlink_down(dst));
            return p;
        }
        if src != src_nic_gpu {
            p.push(self.nvlink_up(src));
            p.push(self.nvlink_down(src_nic_gpu));
        }
        let (a, b) = nics;
        p.push(self.nic_up(a));
        let (la, lb) = (self.leaf_of_nic[a as usize], self.leaf_of_nic[b as usize]);
        if la != lb {
            if self.leaf_binds[la as usize] {
                p.push(self.leaf_base + 2 * la);
            }
            if self.leaf_binds[lb as usize] {
                p.push(self.leaf_base + 2 * lb + 1);
            }
        }
        p.push(self.nic_down(b));
        if dst != dst_nic_gpu {
            p.push(self.nvlink_up(dst_nic_gpu));
            p.push(self.nvlink_down(dst));
        }
        p
    }

    /// Whether GPU `gpu` sits behind the PCIe switch of NIC `nic` (global index).
    pub fn behind_switch_of(&self, gpu: u32, nic: u32) -> bool {
        nic / self.nics_per_node == self.node(gpu) && self.switch_nics(gpu).contains(&(nic % self.nics_per_node))
    }

    /// The route from GPU `src` on one node, through its CPU and out of NIC `nics.0` (global
    /// index), to GPU `dst` on another, in through NIC `nics.1`: None where the node has no such
    /// path (`node.nic_through_cpu`).
    pub fn route_through_cpu(&self, src: u32, dst: u32, nics: (u32, u32)) -> Option<Path> {
        let base = self.through_cpu_base?;
        let mut p = Path::default();
        p.push(base + nics.0);
        // from the NIC on: the route of a GPU that sends and receives through these NICs itself
        for &l in self.route_via(src, dst, src, dst, nics).links() {
            p.push(l);
        }
        Some(p)
    }

    /// The route of a storage I/O by `gpu`: its node's storage NICs and the filesystem (None without storage).
    pub fn storage_route(&self, gpu: u32, write: bool) -> Option<Path> {
        let (base, fs_write) = self.storage_base?;
        let node = self.node(gpu);
        let mut p = Path::default();
        if write {
            p.push(base + 2 * node);
            p.push(fs_write);
        } else {
            p.push(fs_write + 1);
            p.push(base + 2 * node + 1);
        }
        Some(p)
    }

    /// The direct route from `src` to `dst`.
    pub fn direct(&self, src: u32, dst: u32) -> Path {
        self.route(src, dst, src, dst)
    }
}

/// Applies `network.degraded` to the NIC links (`nic_links`: up and down per NIC) of the first
/// `nodes` nodes and returns where each NIC's traffic leaves: a failed NIC's goes through the
/// nearest NIC of its node that is up, its PCIe sibling (rail r xor 1, which shares a PCIe switch
/// with it on DGX A100/H100) first. NCCL builds its rings over the NICs it finds at start-up, so
/// a GPU whose NIC is missing uses the closest remaining one; with PXN (as in `decompose`) the data
/// then crosses the spines to the destination's rail.
fn degrade_nics(hw: &HardwareSpec, nodes: u32, nic_links: &mut [f64]) -> Vec<u32> {
    let nics = hw.node.nics;
    let mut down = vec![false; (nodes * nics) as usize];
    for d in &hw.network.degraded {
        let targets: Vec<u32> = match (d.node, d.nic, d.rail) {
            (Some(node), Some(nic), _) if node < nodes => vec![node * nics + nic],
            (_, _, Some(rail)) => (0..nodes).map(|node| node * nics + rail).collect(),
            _ => continue,
        };
        for n in targets.into_iter().map(|n| n as usize) {
            if d.down {
                down[n] = true;
            } else if let Some(f) = d.factor {
                nic_links[2 * n] *= f;
                nic_links[2 * n + 1] *= f;
            }
        }
    }
    (0..nodes * nics)
        .map(|n| {
            if !down[n as usize] {
                return n;
            }
            let (node, rail) = (n / nics, n % nics);
            let sibling = rail ^ 1;
            let candidates = std::iter::once(sibling)
                .filter(|&r| r < nics)
                .chain((1..nics).map(|k| (rail + k) % nics));
            candidates
                .map(|r| node * nics + r)
                .find(|&m| !down[m as usize])
                .unwrap_or(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{builtin_hardware, Document};

    fn hw(set: &[&str]) -> HardwareSpec {
        let mut doc = Document::parse("dgx-a100", builtin_hardware("dgx-a100").unwrap()).unwrap();
        for s in set {
            doc.apply(&crate::config::Override::parse(s).unwrap()).unwrap();
        }
        HardwareSpec::from_document(&doc).unwrap()
    }

    #[test]
    fn routes_inside_and_across_nodes() {
        let t = Topology::new(&hw(&[]), 64);
        // inside a node: NVLink up, NVLink down
        assert_eq!(t.direct(0, 5).links(), &[t.nvlink_up(0), t.nvlink_down(5)]);
        // GPU 3 of node 0 to GPU 3 of node 1: same rail, same rail-optimized leaf: NIC up, NIC down
        let p = t.direct(3, 8 + 3);
        assert_eq!(p.links().len(), 2);
        assert_eq!(t.class[p.links()[0] as usize], LinkClass::Nic);
        // node 0 to node 20 (another scalable unit of 20 nodes): through the spines, but at 1:1 the
        // leaf uplinks (20 x 24 GB/s) carry all their 20 NICs send, so they cannot bind and the
        // route leaves them out
        assert_eq!(t.direct(3, 20 * 8 + 3).links().len(), 2);
        // at 2:1 (26 NIC ports per leaf: scalable units of 26 nodes) the uplinks bind: node 0 to 30
        let t2 = Topology::new(&hw(&["hardware.network.topology.oversubscription=2"]), 64);
        assert_eq!(t2.direct(3, 30 * 8 + 3).links().len(), 4);
        // GPU 3 to GPU 4 of the next node: a different rail, so it crosses the spines
        assert_eq!(t2.direct(3, 8 + 4).links().len(), 4);
        // PXN: hop to GPU 4 over NVLink first, then stay on rail 4
        let pxn = t2.route(3, 8 + 4, 4, 8 + 4);
        assert_eq!(pxn.links().len(), 4);
        assert_eq!(pxn.links()[0], t.nvlink_up(3));
        assert_eq!(pxn.links()[1], t.nvlink_down(4));
    }

    #[test]
    fn oversubscription_divides_the_leaf_uplink() {
        let full = Topology::new(&hw(&[]), 64);
        let half = Topology::new(&hw(&["hardware.network.topology.oversubscription=2"]), 64);
        let up = |t: &Topology| t.capacity[t.class.iter().position(|c| *c == LinkClass::LeafUplink).unwrap()];
        // radix 40: 20 NIC ports x 24 GB/s = 480 GB/s up at 1:1; 2:1 has 26 NIC ports -> 26 x 24 / 2 = 312 GB/s
        assert!((up(&full) - 20.0 * 24e9).abs() < 1.0);
        assert!((up(&half) - 26.0 * 24e9 / 2.0).abs() < 1.0);
    }
}
