//! Representative flows: one replica's flows standing for all their symmetric copies.
//!
//! A representative run simulates one (replica, tensor rank) position per stage; each of its
//! communications stands for its copies at the other positions, which in the full run load the
//! fabric at the same time. Before the run, every copy of every distinct communication (a
//! *template*) is decomposed into flows on the real links, and flows and links are partitioned by
//! colour refinement: a flow starts coloured by (template, weight, bytes), a link by its capacity;
//! then, until the partition stops splitting, a link is recoloured by the multiset of colours of
//! the flows crossing it and a flow by the multiset of colours of its links.
//!
//! Why that is exact: the stable partition is *equitable*: every link of one colour carries the
//! same number of flows of each colour, and every flow of one colour crosses links of the same
//! colours. The max-min allocation then gives all flows of one colour one rate: the allocation that
//! does (the solution of the *quotient* problem, one variable per flow colour, one constraint per
//! link colour `sum over colours F of count(F) * weight(F) * rate(F) <= capacity`) is feasible on
//! every real link, and each flow has a bottleneck in it where its representative has one, so it is
//! the unique max-min allocation. A representative run therefore simulates, per communication, one
//! *leader* flow per colour among its own flows, on *class links* (one per link colour) with those
//! counts as per-link weights; flows of a colour share bytes and rate, so they drain together.
//! Copies stay in lockstep (same program, same times), so the argument holds at every instant.
//!
//! It requires that every copy decomposes into flows of the same colours as its representative,
//! with the same latency. Where one does not (a replica placed across a binding leaf boundary that
//! the representative's is not, an uneven group), its copies would not run alike, and the caller
//! runs every rank instead; the error says which communication.

use super::decompose::FlowSpec;
use super::Communication;
use crate::model::topology::Path;
use std::collections::HashMap;

/// A communication of a representative graph and the members of each of its copies (copy 0 is the
/// communication itself; see [`crate::workload::replication`]).
#[derive(Clone, Debug)]
pub struct CommCopies<'a> {
    /// The communication as the representative runs it.
    pub comm: Communication<'a>,
    /// Members of every copy, in [`Communication::members`] order.
    pub copies: Vec<Vec<u32>>,
}

/// A leader flow on class links: which of the representative's flows it is, its path and, per
/// class link, how many flows of its colour cross one link of that class.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClassFlow {
    /// Index of the leader among the communication's flows (as the model decomposes it).
    pub spec: u32,
    /// Class links crossed (each once).
    pub path: Path,
    /// Flows of the leader's colour on one link of each class of `path` (copies and followers).
    pub multiplicity: [f64; 8],
}

/// The fabric seen by a representative run.
#[derive(Clone, Debug)]
pub(super) struct ClassFabric {
    /// Capacity of each class link, bytes/s.
    pub capacity: Vec<f64>,
    /// Per communication template: its leader flows.
    pub flows: Vec<Vec<ClassFlow>>,
    /// Per template: its number of copies.
    pub copies: Vec<u32>,
}

/// Every flow of every copy of every template, on the real links.
#[derive(Default)]
struct Universe {
    /// Per template: the first flow of each copy, then the end.
    copy_start: Vec<Vec<u32>>,
    colour: Vec<u64>,
    path_start: Vec<u32>,
    hops: Vec<u32>,
}

impl Universe {
    fn path(&self, f: usize) -> &[u32] {
        &self.hops[self.path_start[f] as usize..self.path_start[f + 1] as usize]
    }
}

/// Decomposes every copy of every template with `specs` (flows and latency), refines colours and
/// builds the class fabric, or says which communication's copies would not run alike.
/// `capacity` is the real links' capacity.
pub(super) fn build(
    capacity: &[f64],
    templates: &[CommCopies<'_>],
    specs: impl Fn(Communication<'_>) -> (Vec<FlowSpec>, f64),
) -> Result<ClassFabric, String> {
    let mut u = Universe {
        path_start: vec![0],
        ..Universe::default()
    };
    for (t, tpl) in templates.iter().enumerate() {
        let mut starts = vec![u.colour.len() as u32];
        let mut rep_latency = 0.0;
        for (c, members) in tpl.copies.iter().enumerate() {
            let (flows, latency) = specs(tpl.comm.among(members));
            if c == 0 {
                rep_latency = latency;
            } else if latency != rep_latency {
                return Err(unlike(tpl, members, "has another latency"));
            }
            for f in &flows {
                u.colour.push(mix(&[t as u64, f.weight.to_bits(), f.bytes.to_bits()]));
                u.hops.extend_from_slice(f.path.links());
                u.path_start.push(u.hops.len() as u32);
            }
            starts.push(u.colour.len() as u32);
        }
        u.copy_start.push(starts);
    }
    let on_link = incidence(capacity.len(), &u);
    let link_colour = refine(capacity, &on_link, &mut u);

    // every copy must decompose into flows of its representative's colours
    for (tpl, starts) in templates.iter().zip(&u.copy_start) {
        let colours = |c: usize| {
            let mut v = u.colour[starts[c] as usize..starts[c + 1] as usize].to_vec();
            v.sort_unstable();
            v
        };
        let rep = colours(0);
        for c in 1..tpl.copies.len() {
            if colours(c) != rep {
                return Err(unlike(
                    tpl,
                    &tpl.copies[c],
                    "loads the fabric unlike the representative",
                ));
            }
        }
    }

    // leaders: the first of each colour among a representative's flows, on class links
    let mut class_of: HashMap<u64, u32> = HashMap::new();
    let mut class_capacity = Vec::new();
    let mut flows = Vec::with_capacity(templates.len());
    for starts in &u.copy_start {
        let rep = starts[0] as usize..starts[1] as usize;
        let mut leaders: Vec<ClassFlow> = Vec::new();
        let mut seen: Vec<u64> = Vec::new();
        for f in rep.clone() {
            if seen.contains(&u.colour[f]) {
                continue;
            }
            seen.push(u.colour[f]);
            let mut path: Vec<u32> = Vec::with_capacity(8);
            let mut multiplicity = [0.0; 8];
            for &l in u.path(f) {
                let next = class_capacity.len() as u32;
                let class = *class_of.entry(link_colour[l as usize]).or_insert(next);
                if class == next {
                    class_capacity.push(capacity[l as usize]);
                }
                if !path.contains(&class) {
                    let same = on_link[l as usize]
                        .iter()
                        .filter(|&&g| u.colour[g as usize] == u.colour[f]);
                    multiplicity[path.len()] = same.count() as f64;
                    path.push(class);
                }
            }
            leaders.push(ClassFlow {
                spec: (f - rep.start) as u32,
                path: Path::from_links(&path),
                multiplicity,
            });
        }
        flows.push(leaders);
    }
    Ok(ClassFabric {
        capacity: class_capacity,
        flows,
        copies: templates.iter().map(|t| t.copies.len() as u32).collect(),
    })
}

/// Colour refinement to the stable partition; returns each link's colour (flows' in `u.colour`).
fn refine(capacity: &[f64], on_link: &[Vec<u32>], u: &mut Universe) -> Vec<u64> {
    let mut link_colour: Vec<u64> = capacity.iter().map(|c| mix(&[c.to_bits()])).collect();
    let distinct = |v: &[u64]| {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let mut classes = (distinct(&u.colour), distinct(&link_colour));
    let mut scratch: Vec<u64> = Vec::new();
    loop {
        for (l, flows) in on_link.iter().enumerate() {
            scratch.clear();
            scratch.extend(flows.iter().map(|&f| u.colour[f as usize]));
            scratch.sort_unstable();
            scratch.push(link_colour[l]);
            link_colour[l] = mix(&scratch);
        }
        for f in 0..u.colour.len() {
            scratch.clear();
            scratch.extend(u.path(f).iter().map(|&l| link_colour[l as usize]));
            scratch.sort_unstable();
            scratch.push(u.colour[f]);
            u.colour[f] = mix(&scratch);
        }
        let now = (distinct(&u.colour), distinct(&link_colour));
        if now == classes {
            return link_colour;
        }
        classes = now;
    }
}

/// The flows crossing each link.
fn incidence(links: usize, u: &Universe) -> Vec<Vec<u32>> {
    let mut on_link = vec![Vec::new(); links];
    for f in 0..u.colour.len() {
        for &l in u.path(f) {
            on_link[l as usize].push(f as u32);
        }
    }
    on_link
}

/// A deterministic 64-bit hash of a sequence (SplitMix64 steps).
fn mix(values: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ values.len() as u64;
    for &v in values {
        h = (h ^ v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

fn unlike(tpl: &CommCopies<'_>, members: &[u32], what: &str) -> String {
    format!(
        "the copy of {} among ranks {} {what}",
        describe(&tpl.comm),
        list(members)
    )
}

/// A communication in a few words.
fn describe(comm: &Communication<'_>) -> String {
    match *comm {
        Communication::Collective { op, ranks, bytes } => {
            format!("the {} of {bytes} B over ranks {}", op.name(), list(ranks))
        }
        Communication::Transfer { src, dst, bytes } => format!("the transfer of {bytes} B from rank {src} to {dst}"),
        Communication::Storage { rank, bytes, write } => {
            format!(
                "the {} of {bytes} B by rank {rank}",
                if write { "write" } else { "read" }
            )
        }
    }
}

fn list(members: &[u32]) -> String {
    let shown: Vec<String> = members.iter().take(8).map(|r| r.to_string()).collect();
    let more = if members.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn universe(colours: &[u64], paths: &[&[u32]]) -> Universe {
        let mut u = Universe {
            path_start: vec![0],
            colour: colours.to_vec(),
            ..Universe::default()
        };
        for p in paths {
            u.hops.extend_from_slice(p);
            u.path_start.push(u.hops.len() as u32);
        }
        u
    }

    #[test]
    fn refinement_separates_flows_by_what_they_share() {
        // links 0, 1, 2 of equal capacity; flows 0 and 1 (one colour) cross links 0 and 1, each
        // alone; flow 2 (same colour) crosses link 2 beside flow 3 (another colour): flows 0 and 1
        // stay alike, flow 2 splits off, and links 0, 1 differ from link 2
        let mut u = universe(&[7, 7, 7, 9], &[&[0], &[1], &[2], &[2]]);
        let links = refine(&[5.0, 5.0, 5.0], &incidence(3, &u), &mut u);
        assert_eq!(u.colour[0], u.colour[1]);
        assert_ne!(u.colour[0], u.colour[2]);
        assert_eq!(links[0], links[1]);
        assert_ne!(links[0], links[2]);
    }

    #[test]
    fn capacity_separates_links() {
        let mut u = universe(&[7, 7], &[&[0], &[1]]);
        let links = refine(&[5.0, 6.0], &incidence(2, &u), &mut u);
        assert_ne!(links[0], links[1]);
        assert_ne!(u.colour[0], u.colour[1]);
    }
}
