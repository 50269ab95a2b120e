//! A deterministic future-event list built on `priority_queue::PriorityQueue`.
//!
//! Ordering guarantee: events pop in increasing time; events at the same time pop in the order
//! they were scheduled (or last rescheduled). Each scheduled event gets a key so that a model can
//! move it later with [`EventQueue::reschedule`] (a flow whose rate changed) instead of cancelling
//! and re-inserting. Payload slots are recycled, so a long run allocates only for the peak number
//! of pending events, not per event.

use crate::units::SimTime;
use priority_queue::PriorityQueue;
use std::cmp::Reverse;
use std::hash::{BuildHasherDefault, Hasher};

/// Handle to a pending event, valid until the event pops or is cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventKey(u32);

/// Hashes a `u32` slot index as itself: keys are dense and unique, no mixing needed.
#[derive(Default)]
struct SlotHasher(u64);
impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        // Spread the bits a little so that the index map's buckets fill evenly.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = n as u64;
    }
}

type Priority = Reverse<(SimTime, u64)>;

/// The pending events of one simulation, each with a payload of type `E`.
pub struct EventQueue<E> {
    heap: PriorityQueue<u32, Priority, BuildHasherDefault<SlotHasher>>,
    payloads: Vec<Option<E>>,
    free_slots: Vec<u32>,
    next_seq: u64,
    now: SimTime,
    popped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        EventQueue {
            heap: PriorityQueue::with_default_hasher(),
            payloads: Vec::new(),
            free_slots: Vec::new(),
            next_seq: 0,
            now: SimTime::ZERO,
            popped: 0,
        }
    }

    /// The time of the last popped event.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// How many events have popped so far.
    pub fn events_processed(&self) -> u64 {
        self.popped
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn next_priority(&mut self, at: SimTime) -> Priority {
        let seq = self.next_seq;
        self.next_seq += 1;
        Reverse((at, seq))
    }

    /// Schedules `event` at `at` (never earlier than now: an earlier time is clamped to now).
    pub fn schedule(&mut self, at: SimTime, event: E) -> EventKey {
        let at = at.max(self.now);
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.payloads[s as usize] = Some(event);
                s
            }
            None => {
                self.payloads.push(Some(event));
                (self.payloads.len() - 1) as u32
            }
        };
        let priority = self.next_priority(at);
        self.heap.push(slot, priority);
        EventKey(slot)
    }

    /// Moves a pending event to a new time; it then orders after events already at that time.
    /// Returns false if the key no longer names a pending event.
    pub fn reschedule(&mut self, key: EventKey, at: SimTime) -> bool {
        let at = at.max(self.now);
        let priority = self.next_priority(at);
        self.heap.change_priority(&key.0, priority).is_some()
    }

    /// Removes a pending event, returning its payload.
    pub fn cancel(&mut self, key: EventKey) -> Option<E> {
        self.heap.remove(&key.0)?;
        self.free_slots.push(key.0);
        self.payloads[key.0 as usize].take()
    }

    /// Pops the earliest event and advances the clock to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let (slot, Reverse((at, _))) = self.heap.pop()?;
        self.now = at;
        self.popped += 1;
        self.free_slots.push(slot);
        let event = self.payloads[slot as usize]
            .take()
            .expect("a queued slot holds its payload");
        Some((at, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..5 {
            q.schedule(SimTime(10), i);
        }
        q.schedule(SimTime(5), 99);
        let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec![99, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn reschedule_moves_and_cancel_removes() {
        let mut q = EventQueue::new();
        let a = q.schedule(SimTime(10), 'a');
        let b = q.schedule(SimTime(20), 'b');
        let _c = q.schedule(SimTime(30), 'c');
        assert!(q.reschedule(b, SimTime(5)));
        assert_eq!(q.cancel(a), Some('a'));
        assert_eq!(q.pop(), Some((SimTime(5), 'b')));
        assert_eq!(q.pop(), Some((SimTime(30), 'c')));
        assert!(!q.reschedule(b, SimTime(40)), "a popped key is gone");
        assert_eq!(q.pop(), None);
    }

    proptest! {
        /// Whatever the schedule/reschedule/cancel sequence, pops come out sorted by (time, order of
        /// last (re)scheduling), and every live event pops exactly once.
        #[test]
        fn pops_are_sorted_and_complete(ops in prop::collection::vec((0u64..50, 0u8..4, 0usize..64), 1..200)) {
            let mut q = EventQueue::new();
            let mut live: Vec<(EventKey, u64, u64, usize)> = Vec::new(); // key, time, seq, id
            let mut seq = 0u64;
            for (i, &(t, op, pick)) in ops.iter().enumerate() {
                match op {
                    0 | 1 => { let k = q.schedule(SimTime(t), i); live.push((k, t, seq, i)); seq += 1; }
                    2 if !live.is_empty() => {
                        let j = pick % live.len();
                        assert!(q.reschedule(live[j].0, SimTime(t)));
                        live[j].1 = t; live[j].2 = seq; seq += 1;
                    }
                    3 if !live.is_empty() => {
                        let j = pick % live.len();
                        let (k, _, _, id) = live.swap_remove(j);
                        prop_assert_eq!(q.cancel(k), Some(id));
                    }
                    _ => {}
                }
            }
            live.sort_by_key(|&(_, t, s, _)| (t, s));
            let expected: Vec<(u64, usize)> = live.iter().map(|&(_, t, _, id)| (t, id)).collect();
            let got: Vec<(u64, usize)> = std::iter::from_fn(|| q.pop().map(|(t, e)| (t.0, e))).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
