//! Least-significant-digit radix sort for the task graph's large integer arrays (edges, waiting
//! tasks): a few linear passes instead of a comparison sort's log n, on arrays of tens of millions.

/// Bits per pass: 2048 buckets, whose counts stay in L1.
const DIGIT: u32 = 11;

/// Sorts `v` by `key` (ascending; equal keys keep their order, so the result equals any sort by
/// that key when equal keys mean equal items).
pub fn sort_by_key<T: Copy + Default>(v: &mut Vec<T>, key: impl Fn(T) -> u64) {
    if v.len() < 1 << 12 {
        v.sort_by_key(|&x| key(x));
        return;
    }
    let max = v.iter().map(|&x| key(x)).max().unwrap_or(0);
    let bits = u64::BITS - max.leading_zeros();
    let mut from = std::mem::take(v);
    let mut to = vec![T::default(); from.len()];
    let mut shift = 0;
    while shift < bits {
        let mut count = [0usize; 1 << DIGIT];
        let mask = (1u64 << DIGIT) - 1;
        for &x in &from {
            count[(key(x) >> shift & mask) as usize] += 1;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            let here = *c;
            *c = sum;
            sum += here;
        }
        for &x in &from {
            let d = (key(x) >> shift & mask) as usize;
            to[count[d]] = x;
            count[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        shift += DIGIT;
    }
    *v = from;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_like_the_standard_sort(mut v in prop::collection::vec((0u32..1 << 20, any::<u32>()), 0..20_000)) {
            let mut expected = v.clone();
            expected.sort_unstable();
            let hi = v.iter().map(|p| p.1).max().unwrap_or(0) as u64 + 1;
            sort_by_key(&mut v, |(a, b)| a as u64 * hi + b as u64);
            prop_assert_eq!(v, expected);
        }
    }
}
