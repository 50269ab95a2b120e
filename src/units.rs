//! Physical units as types: simulated time, byte counts, bandwidths and FLOP rates.
//!
//! YAML files use human units (`"200 Gb/s"`, `"80 GiB"`, `"2 us"`, `"312 TFLOP/s"`); the `parse_*`
//! functions here are the only place where those strings become numbers. Simulated time is an
//! integer count of nanoseconds: the clock never holds a float.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time, in integer nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of simulated time, in integer nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every simulation.
    pub const ZERO: SimTime = SimTime(0);
    /// Seconds since the start, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }
    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// Rounds a duration in seconds to the nearest nanosecond (negative and NaN become zero).
    pub fn from_secs_f64(secs: f64) -> SimDuration {
        if secs.is_finite() && secs > 0.0 {
            SimDuration((secs * 1e9).round() as u64)
        } else {
            SimDuration(0)
        }
    }
    /// The duration in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}
impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub for SimDuration {
    type Output = SimDuration;
    fn sub(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(d.0))
    }
}

/// An amount of data in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The count as a float, for rate arithmetic.
    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }
}

/// A data rate in bytes per second (always finite and positive once validated).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Bandwidth(pub f64);

impl Bandwidth {
    /// Bytes per second.
    pub fn bytes_per_s(self) -> f64 {
        self.0
    }
    /// Time to move `bytes` at this rate.
    pub fn time_for(self, bytes: f64) -> f64 {
        bytes / self.0
    }
}

/// A compute rate in floating-point operations per second.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct FlopRate(pub f64);

impl FlopRate {
    /// FLOP per second.
    pub fn flops_per_s(self) -> f64 {
        self.0
    }
}

/// Why a unit string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    /// The text that was given.
    pub value: String,
    /// What was expected instead, e.g. `a bandwidth like "200 Gb/s" or "25 GB/s"`.
    pub expected: &'static str,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {:?}: expected {}", self.value, self.expected)
    }
}

/// Splits `"200 Gb/s"` into (200.0, "Gb/s"); the space is optional.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '.'
                || c == '_'
                || ((c == 'e' || c == 'E') && i > 0)
                || ((c == '-' || c == '+') && (i == 0 || t[..i].ends_with(['e', 'E']))))
        })
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let number: f64 = t[..end].replace('_', "").parse().ok()?;
    Some((number, t[end..].trim()))
}

fn decimal_prefix(p: &str) -> Option<f64> {
    Some(match p {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        _ => return None,
    })
}

fn binary_prefix(p: &str) -> Option<f64> {
    Some(match p {
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        _ => return None,
    })
}

const BANDWIDTH_EXPECTED: &str = "a positive bandwidth like \"200 Gb/s\", \"25 GB/s\" or \"1.5 TB/s\"";
const BYTES_EXPECTED: &str = "a size like \"80 GiB\", \"4 MB\" or \"512 B\"";
const TIME_EXPECTED: &str = "a duration like \"2 us\", \"1.5 ms\", \"30 s\" or \"10 ns\"";
const TIME_TOO_LONG: &str = "a duration of at most 584 years (2^64 ns, what the nanosecond clock holds)";
const FLOPS_EXPECTED: &str = "a positive compute rate like \"312 TFLOP/s\"";

/// Reads a bandwidth: bits (`b/s`) or bytes (`B/s`) per second with a decimal prefix.
pub fn parse_bandwidth(text: &str) -> Result<Bandwidth, UnitError> {
    let err = || UnitError {
        value: text.to_string(),
        expected: BANDWIDTH_EXPECTED,
    };
    let (n, unit) = split_number(text).ok_or_else(err)?;
    let per_s = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("ps"))
        .ok_or_else(err)?;
    let (prefix, scale) = if let Some(p) = per_s.strip_suffix('B') {
        (p, 1.0)
    } else if let Some(p) = per_s.strip_suffix('b') {
        (p, 0.125)
    } else {
        return Err(err());
    };
    let mult = decimal_prefix(prefix)
        .or_else(|| binary_prefix(prefix))
        .ok_or_else(err)?;
    let v = n * mult * scale;
    if v.is_finite() && v > 0.0 {
        Ok(Bandwidth(v))
    } else {
        Err(err())
    }
}

/// Reads a size in bytes with a decimal (`GB`) or binary (`GiB`) prefix; a bare integer is bytes.
pub fn parse_bytes(text: &str) -> Result<Bytes, UnitError> {
    let err = || UnitError {
        value: text.to_string(),
        expected: BYTES_EXPECTED,
    };
    let (n, unit) = split_number(text).ok_or_else(err)?;
    let prefix = if unit.is_empty() {
        ""
    } else {
        unit.strip_suffix('B').ok_or_else(err)?
    };
    let mult = decimal_prefix(prefix)
        .or_else(|| binary_prefix(prefix))
        .ok_or_else(err)?;
    let v = n * mult;
    if (0.0..1.8e19).contains(&v) {
        Ok(Bytes(v.round() as u64))
    } else {
        Err(err())
    }
}

/// Reads a non-negative duration: `ns`, `us` (or `µs`), `ms`, `s`, `min`, `h`.
pub fn parse_duration(text: &str) -> Result<SimDuration, UnitError> {
    let err = || UnitError {
        value: text.to_string(),
        expected: TIME_EXPECTED,
    };
    let (n, unit) = split_number(text).ok_or_else(err)?;
    let secs_per_unit = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    let v = n * secs_per_unit;
    if !(v.is_finite() && v >= 0.0) {
        return Err(err());
    }
    // beyond u64 nanoseconds the value would saturate silently
    if v * 1e9 >= u64::MAX as f64 {
        return Err(UnitError {
            value: text.to_string(),
            expected: TIME_TOO_LONG,
        });
    }
    Ok(SimDuration::from_secs_f64(v))
}

/// Reads a compute rate such as `"312 TFLOP/s"` (also `TFLOPS`).
pub fn parse_flop_rate(text: &str) -> Result<FlopRate, UnitError> {
    let err = || UnitError {
        value: text.to_string(),
        expected: FLOPS_EXPECTED,
    };
    let (n, unit) = split_number(text).ok_or_else(err)?;
    let prefix = unit
        .strip_suffix("FLOP/s")
        .or_else(|| unit.strip_suffix("FLOPS"))
        .ok_or_else(err)?;
    let v = n * decimal_prefix(prefix).ok_or_else(err)?;
    if v.is_finite() && v > 0.0 {
        Ok(FlopRate(v))
    } else {
        Err(err())
    }
}

/// Deserializes a unit value from a YAML string (or a bare number where `allow_number`).
fn deserialize_unit<'de, D, T>(d: D, parse: fn(&str) -> Result<T, UnitError>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Visitor<T>(fn(&str) -> Result<T, UnitError>);
    impl<T> de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number with a unit, as a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(|e| E::custom(e))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
    }
    d.deserialize_any(Visitor(parse))
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_unit(d, parse_bandwidth)
    }
}
impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_unit(d, parse_bytes)
    }
}
impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_unit(d, parse_duration)
    }
}
impl<'de> Deserialize<'de> for FlopRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_unit(d, parse_flop_rate)
    }
}

// Written back in the units the parsers read, exactly (Rust prints the shortest f64 that reads back
// as the same value), so a report's configuration reruns to the same numbers.
impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} B/s", self.0))
    }
}
impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} B", self.0))
    }
}
impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} ns", self.0))
    }
}
impl Serialize for FlopRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} FLOP/s", self.0))
    }
}

/// A size as nccl-tests prints it, in binary units.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_bits_and_bytes() {
        // 200 Gb/s = 200e9 bits/s / 8 = 25e9 bytes/s
        assert_eq!(parse_bandwidth("200 Gb/s").unwrap().bytes_per_s(), 25e9);
        assert_eq!(parse_bandwidth("300GB/s").unwrap().bytes_per_s(), 300e9);
        assert_eq!(parse_bandwidth("1 GiB/s").unwrap().bytes_per_s(), 1073741824.0);
        assert!(parse_bandwidth("200 Gbps/s").is_err());
        assert!(parse_bandwidth("0 GB/s").is_err());
        assert!(parse_bandwidth("-5 GB/s").is_err());
        assert!(parse_bandwidth("fast").is_err());
    }

    #[test]
    fn sizes_times_and_rates() {
        assert_eq!(parse_bytes("80 GiB").unwrap(), Bytes(80 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("13.8 TB").unwrap(), Bytes(13_800_000_000_000));
        assert_eq!(parse_bytes("512").unwrap(), Bytes(512));
        assert_eq!(parse_duration("2 us").unwrap(), SimDuration(2000));
        assert_eq!(parse_duration("1.5 ms").unwrap(), SimDuration(1_500_000));
        assert_eq!(parse_duration("1e-6 s").unwrap(), SimDuration(1000));
        assert!(parse_duration("-1 s").is_err());
        assert!(parse_duration("3 weeks").is_err());
        // 2^64 ns = 1.8e19 ns = 584.5 years: 584 years (5.1e6 h) is held, 585 years (5.13e6 h) is refused
        assert_eq!(
            parse_duration("5.1e6 h").unwrap(),
            SimDuration(18_360_000_000_000_000_000)
        );
        assert!(parse_duration("5.13e6 h").is_err());
        assert!(parse_duration("1e9 h").is_err());
        assert_eq!(parse_flop_rate("312 TFLOP/s").unwrap().flops_per_s(), 312e12);
        assert!(parse_flop_rate("0 TFLOP/s").is_err());
    }
}
