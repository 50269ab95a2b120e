//! A memo of what a network model derives from a communication alone (its flows, its time).
//!
//! A training iteration repeats the same few communications (a tensor-parallel all-reduce of one
//! size over one group, a pipeline send between two ranks) thousands of times; deriving their flows
//! or their closed-form time again each time was a quarter of a flow run. The memo keys on the whole
//! communication (operation, every member, bytes), so a hit returns exactly what deriving it again
//! would. It is bounded: past a total cost (the caller's measure, e.g. flows) it stops storing.

use super::{ClosedForm, CommId, Communication, NetEvent, NetScheduler, NetworkModel};
use crate::fasthash::{FxHashMap, FxHasher};
use crate::ops::CollectiveOp;
use crate::units::{SimDuration, SimTime};
use std::hash::{Hash, Hasher};

/// A communication, owned: the key the memo checks a hit against.
#[derive(Debug, PartialEq)]
enum Key {
    Collective {
        op: CollectiveOp,
        ranks: Box<[u32]>,
        bytes: u64,
    },
    Storage {
        rank: u32,
        bytes: u64,
        write: bool,
    },
    Transfer {
        src: u32,
        dst: u32,
        bytes: u64,
    },
}

impl Key {
    fn of(comm: &Communication<'_>) -> Key {
        match *comm {
            Communication::Collective { op, ranks, bytes } => Key::Collective {
                op,
                ranks: ranks.into(),
                bytes,
            },
            Communication::Storage { rank, bytes, write } => Key::Storage { rank, bytes, write },
            Communication::Transfer { src, dst, bytes } => Key::Transfer { src, dst, bytes },
        }
    }

    fn matches(&self, comm: &Communication<'_>) -> bool {
        match (self, *comm) {
            (
                Key::Collective { op, ranks, bytes },
                Communication::Collective {
                    op: o,
                    ranks: r,
                    bytes: b,
                },
            ) => *op == o && *bytes == b && **ranks == *r,
            (
                Key::Storage { rank, bytes, write },
                Communication::Storage {
                    rank: r,
                    bytes: b,
                    write: w,
                },
            ) => *rank == r && *bytes == b && *write == w,
            (
                Key::Transfer { src, dst, bytes },
                Communication::Transfer {
                    src: s,
                    dst: d,
                    bytes: b,
                },
            ) => *src == s && *dst == d && *bytes == b,
            _ => false,
        }
    }
}

/// The hash a communication is filed under.
fn hash(comm: &Communication<'_>) -> u64 {
    let mut h = FxHasher::default();
    match *comm {
        Communication::Collective { op, ranks, bytes } => {
            0u8.hash(&mut h);
            op.hash(&mut h);
            bytes.hash(&mut h);
            ranks.hash(&mut h);
        }
        Communication::Storage { rank, bytes, write } => (1u8, rank, bytes, write).hash(&mut h),
        Communication::Transfer { src, dst, bytes } => (2u8, src, dst, bytes).hash(&mut h),
    }
    h.finish()
}

/// Values of type `V` per communication, up to a total cost.
#[derive(Debug)]
pub(super) struct Memo<V> {
    index: FxHashMap<u64, u32>,
    entries: Vec<(Key, V)>,
    cost: usize,
    max_cost: usize,
}

impl<V> Memo<V> {
    /// An empty memo that stores values until their costs add up to `max_cost`.
    pub(super) fn new(max_cost: usize) -> Self {
        Memo {
            index: FxHashMap::default(),
            entries: Vec::new(),
            cost: 0,
            max_cost,
        }
    }

    /// The entry of `comm`, if stored.
    pub(super) fn find(&self, comm: &Communication<'_>) -> Option<usize> {
        let &i = self.index.get(&hash(comm))?;
        self.entries[i as usize].0.matches(comm).then_some(i as usize)
    }

    /// The value of entry `i` (from [`Memo::find`]).
    pub(super) fn value(&self, i: usize) -> &V {
        &self.entries[i].1
    }

    /// The value of entry `i` (from [`Memo::find`]), to change.
    pub(super) fn value_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries[i].1
    }

    /// Stores `value` for `comm` unless the memo is full or another communication holds its hash.
    pub(super) fn insert(&mut self, comm: &Communication<'_>, value: V, cost: usize) {
        if self.cost + cost > self.max_cost {
            return;
        }
        let h = hash(comm);
        if self.index.contains_key(&h) {
            return;
        }
        self.cost += cost;
        self.index.insert(h, self.entries.len() as u32);
        self.entries.push((Key::of(comm), value));
    }
}

/// A closed-form network model that prices each distinct communication once.
#[derive(Debug)]
pub struct Memoized<T> {
    model: T,
    memo: Memo<SimDuration>,
}

impl<T: ClosedForm> Memoized<T> {
    /// `model`, remembering the time of up to a million distinct communications.
    pub fn new(model: T) -> Self {
        Memoized {
            model,
            memo: Memo::new(1 << 20),
        }
    }
}

impl<T: ClosedForm> NetworkModel for Memoized<T> {
    fn name(&self) -> &'static str {
        self.model.model_name()
    }
    fn start(&mut self, now: SimTime, id: CommId, comm: Communication<'_>, sched: &mut dyn NetScheduler) {
        let d = match self.memo.find(&comm) {
            Some(i) => *self.memo.value_mut(i),
            None => {
                let d = SimDuration::from_secs_f64(self.model.comm_seconds(&comm));
                self.memo.insert(&comm, d, 1);
                d
            }
        };
        sched.schedule_fixed(now + d, NetEvent::Done(id));
    }
    fn handle(&mut self, _now: SimTime, event: NetEvent, _sched: &mut dyn NetScheduler) -> Option<CommId> {
        match event {
            NetEvent::Done(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_communication_and_stops_when_full() {
        let mut m: Memo<f64> = Memo::new(3);
        let ranks = [0u32, 1, 2, 3];
        let a = Communication::Collective {
            op: CollectiveOp::AllReduce,
            ranks: &ranks,
            bytes: 64,
        };
        let b = Communication::Collective {
            op: CollectiveOp::AllReduce,
            ranks: &ranks[..3],
            bytes: 64,
        };
        let t = Communication::Transfer {
            src: 0,
            dst: 1,
            bytes: 64,
        };
        assert_eq!(m.find(&a), None);
        m.insert(&a, 1.5, 2);
        assert_eq!(m.find(&a).map(|i| *m.value_mut(i)), Some(1.5));
        assert_eq!(m.find(&b), None);
        m.insert(&t, 2.5, 2); // over the cost bound: not stored
        assert_eq!(m.find(&t), None);
        m.insert(&b, 3.5, 1);
        assert_eq!(m.find(&b).map(|i| *m.value_mut(i)), Some(3.5));
    }
}
