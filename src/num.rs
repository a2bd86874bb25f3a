//! Redis's number parsing and formatting, reproduced byte for byte.
//!
//! Redis leans on C library behaviour that Rust does not share: `strtod` and
//! `strtold` accept hex floats and `infinity`, `%.17g` rounds ties to even, and
//! `INCRBYFLOAT` computes in the x87 80-bit `long double`, which Rust lacks. So
//! this module carries its own small arbitrary-precision integer (`Big`) and a
//! software "extended" float (`Ext`) that rounds exactly like the hardware
//! (64-bit significand, round-half-even), which lets every result be exact
//! rather than approximated through `f64`.
//!
//! Entry points: [`parse_i64`] (`string2ll`), [`parse_f64`] (`string2d`),
//! [`fmt_g17`] (`%.17g`), [`incr_by_float`] (`INCRBYFLOAT`), and [`LongDouble`]
//! for callers such as `HINCRBYFLOAT` that need the steps separately.

use std::cmp::Ordering;

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

/// The indexes `start..=stop` select in a sequence of `len` elements, by the rules
/// LRANGE, LTRIM and ZRANGE share: a negative index counts from the end, a start before
/// the first element is clamped to it, a stop past the last to it. `None` when the
/// range is empty.
///
/// ```
/// # use redlite::num::index_range;
/// assert_eq!(index_range(5, 0, -1), Some((0, 4)));
/// assert_eq!(index_range(5, -100, 1), Some((0, 1)));
/// assert_eq!(index_range(5, 3, 100), Some((3, 4)));
/// assert_eq!(index_range(5, 5, 9), None);
/// assert_eq!(index_range(5, i64::MIN, i64::MIN), None);
/// ```
pub fn index_range(len: i64, start: i64, stop: i64) -> Option<(i64, i64)> {
    // len >= 0, so adding it to a negative index cannot overflow.
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start, stop.min(len - 1)))
}

/// How to read indexes `start..=stop` (from [`index_range`]) of a sequence of `len`
/// elements kept in an index that can be walked from either end, from the end nearer to
/// them: `(from_the_end, limit, offset)`. Walking from the end yields the elements in
/// reverse order.
///
/// ```
/// # use redlite::num::nearer_end;
/// assert_eq!(nearer_end(100, 2, 4), (false, 3, 2));
/// assert_eq!(nearer_end(100, 95, 98), (true, 4, 1));
/// ```
pub fn nearer_end(len: i64, start: i64, stop: i64) -> (bool, i64, i64) {
    let limit = stop - start + 1;
    let from_end = len - 1 - stop;
    if start <= from_end {
        (false, limit, start)
    } else {
        (true, limit, from_end)
    }
}

/// Parses a signed 64-bit integer exactly like Redis's `string2ll()`.
///
/// Strict on purpose, so that a parsed value prints back to the same bytes:
/// no spaces, no `+`, no leading zeros (`"0"` itself is fine, `"-0"` and
/// `"007"` are not), no empty input, nothing longer than 20 bytes, and no
/// overflow outside `i64::MIN..=i64::MAX`.
///
/// ```
/// # use redlite::num::parse_i64;
/// assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
/// assert_eq!(parse_i64(b"42"), Some(42));
/// assert_eq!(parse_i64(b"+42"), None);
/// assert_eq!(parse_i64(b"-0"), None);
/// assert_eq!(parse_i64(b" 1"), None);
/// ```
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21 in Redis: a 21+ byte string is rejected up front.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // The first digit must be 1-9: this rejects "-", "-0", "01", "+1", " 1".
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        // -(2^63) is the one magnitude that only fits as a negative number.
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

// ---------------------------------------------------------------------------
// Doubles
// ---------------------------------------------------------------------------

/// Parses a double exactly like Redis's `string2d()` / `getDoubleFromObject()`
/// (`ZADD` and `ZINCRBY` scores and other double arguments).
///
/// Not for `ZRANGEBYSCORE`-style range bounds: Redis parses those with a bare
/// `strtod`, which also takes leading whitespace and out-of-range values
/// (`" 1"`, `1e400` as infinity, `1e-400` as 0).
///
/// That is glibc `strtod` with Redis's extra checks:
///
/// * the whole input must be consumed (no trailing bytes, no embedded NUL);
/// * a leading space is rejected (`strtod` would skip it, Redis does not);
/// * decimal (`1.5`, `.5`, `5.`, `1e-3`) and hex floats (`0x1.8p1`) are
///   accepted, with an optional `+`/`-` sign, and are rounded correctly;
/// * `inf` and `infinity` (any case, optional sign) are accepted;
/// * `nan` in any form is rejected;
/// * results that overflow to infinity or underflow to zero (`ERANGE`) are
///   rejected (`1e400`, `1e-400`), but results that underflow to a non-zero
///   subnormal (`1e-320`) are accepted.
///
/// ```
/// # use redlite::num::parse_f64;
/// assert_eq!(parse_f64(b"1.5"), Some(1.5));
/// assert_eq!(parse_f64(b"0x1.8p1"), Some(3.0));
/// assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
/// assert_eq!(parse_f64(b"nan"), None);
/// assert_eq!(parse_f64(b"1e400"), None);
/// assert_eq!(parse_f64(b" 1"), None);
/// ```
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let scanned = scan(s)?;
    let neg = scanned.neg;
    let v = match scanned.body {
        Body::Inf => f64::INFINITY,
        Body::Zero => 0.0,
        Body::Decimal { .. } => {
            // `scan` has checked the grammar, which is a subset of what Rust's
            // correctly rounded parser accepts, so hand it the original text.
            let text = std::str::from_utf8(s).ok()?;
            let v = text.parse::<f64>().ok()?.abs();
            // Non-zero digits that came out as 0 or infinity are ERANGE.
            if v == 0.0 || v.is_infinite() {
                return None;
            }
            v
        }
        Body::Hex { mant, exp2, sticky } => match round_to(&F64, false, &mant, exp2, sticky) {
            Ext::Fin { mant, exp, .. } => f64_from_parts(mant, exp),
            // Overflow or underflow to zero: ERANGE.
            Ext::Inf { .. } | Ext::Zero { .. } => return None,
        },
    };
    Some(if neg { -v } else { v })
}

/// Builds the double `mant × 2^exp` from a value [`round_to`] produced for
/// [`F64`]: normal values carry a 53-bit `mant`, subnormals have `exp == -1074`.
fn f64_from_parts(mant: u64, exp: i32) -> f64 {
    const HIDDEN: u64 = 1 << 52;
    if mant >= HIDDEN {
        let biased = (i64::from(exp) + 52 + 1023) as u64;
        f64::from_bits(biased << 52 | (mant - HIDDEN))
    } else {
        f64::from_bits(mant)
    }
}

/// Formats a double like C's `printf("%.17g", d)` with glibc, which is how
/// Redis 7.0 replies with scores (`ZSCORE`, `ZINCRBY`, `WITHSCORES`).
///
/// The decimal expansion is computed exactly and rounded half-to-even, as
/// glibc does. Special values print as `inf`, `-inf`, `nan`, `-nan`; negative
/// zero prints as `-0`.
///
/// ```
/// # use redlite::num::fmt_g17;
/// assert_eq!(fmt_g17(0.1), "0.10000000000000001");
/// assert_eq!(fmt_g17(1e20), "1e+20");
/// assert_eq!(fmt_g17(3.0), "3");
/// assert_eq!(fmt_g17(f64::NEG_INFINITY), "-inf");
/// assert_eq!(fmt_g17(-0.0), "-0");
/// ```
pub fn fmt_g17(d: f64) -> String {
    const P: i64 = 17;
    let sign = if d.is_sign_negative() { "-" } else { "" };
    if d.is_nan() {
        return format!("{sign}nan");
    }
    if d.is_infinite() {
        return format!("{sign}inf");
    }
    if d == 0.0 {
        return format!("{sign}0");
    }
    // Fast path for the common integral scores: below 10^17 an integer has at
    // most 17 digits, so `%.17g` prints it exactly, without an exponent.
    if d.fract() == 0.0 && d.abs() < 1e17 {
        return format!("{}", d as i64);
    }
    let (mant, exp2) = decompose_f64(d);
    // X = floor(log10(|d|)) after rounding to P digits. Start from a float
    // estimate and correct it with exact arithmetic.
    // The range test must use the truncated value: rounding can carry a
    // 16-digit value up to exactly 10^16 and fake a correct estimate.
    let mut x10 = d.abs().log10().floor() as i64;
    let digits = loop {
        let (n, round_up) = scaled(mant, exp2, P - 1 - x10);
        if n.cmp(&Big::pow10(P as u32)) != Ordering::Less {
            x10 += 1;
        } else if n.cmp(&Big::pow10(P as u32 - 1)) == Ordering::Less {
            x10 -= 1;
        } else {
            let mut n = n;
            if round_up {
                n.add_small(1);
                if n == Big::pow10(P as u32) {
                    // 99999999999999999.5 -> 1.0000000000000000e(X+1)
                    x10 += 1;
                    n = Big::pow10(P as u32 - 1);
                }
            }
            break n.to_decimal();
        }
    };
    let digits = digits.as_bytes();
    let mut out = String::from(sign);
    if !(-4..P).contains(&x10) {
        // %e style: d.ddddde+XX, trailing zeros removed (no '#' flag).
        out.push(char::from(digits[0]));
        let frac = trim_zeros(&digits[1..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&String::from_utf8_lossy(frac));
        }
        out.push_str(&format!(
            "e{}{:02}",
            if x10 < 0 { '-' } else { '+' },
            x10.unsigned_abs()
        ));
    } else if x10 >= 0 {
        let (int, frac) = digits.split_at(x10 as usize + 1);
        out.push_str(&String::from_utf8_lossy(int));
        let frac = trim_zeros(frac);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&String::from_utf8_lossy(frac));
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-x10 - 1) {
            out.push('0');
        }
        out.push_str(&String::from_utf8_lossy(trim_zeros(digits)));
    }
    out
}

/// Formats a score as Redis 7.0's `d2string()` does, which is the text a score has inside
/// a small (listpack-encoded) sorted set and so what ZSCAN sends for one: an integral
/// value within ±2^62 (`double2ll`'s range) as an integer, so `-0` as `0`, anything else
/// as [`fmt_g17`]. Checked against redis-server 7.0.15.
///
/// ```
/// # use redlite::num::fmt_d2string;
/// assert_eq!(fmt_d2string(123456789012345678.0), "123456789012345680");
/// assert_eq!(fmt_d2string(4611686018427387904.0), "4611686018427387904");
/// assert_eq!(fmt_d2string(4611686018427388928.0), "4.6116860184273889e+18");
/// assert_eq!(fmt_d2string(-0.0), "0");
/// assert_eq!(fmt_d2string(0.5), "0.5");
/// assert_eq!(fmt_d2string(f64::INFINITY), "inf");
/// ```
pub fn fmt_d2string(d: f64) -> String {
    // (double)(LLONG_MAX / 2), which rounds up to 2^62.
    const LIMIT: f64 = 4_611_686_018_427_387_904.0;
    if (-LIMIT..=LIMIT).contains(&d) && d.fract() == 0.0 {
        return (d as i64).to_string();
    }
    fmt_g17(d)
}

/// `digits` without its trailing ASCII zeros.
fn trim_zeros(digits: &[u8]) -> &[u8] {
    let end = digits.iter().rposition(|&c| c != b'0').map_or(0, |i| i + 1);
    &digits[..end]
}

/// Splits a finite non-zero double into `mant × 2^exp2`.
fn decompose_f64(d: f64) -> (u64, i64) {
    let bits = d.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1 << 52) - 1);
    if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), biased - 1075)
    }
}

/// `round_half_even(mant × 2^exp2 × 10^k)` computed exactly.
fn scaled_round(mant: u64, exp2: i64, k: i64) -> Big {
    let (mut q, round_up) = scaled(mant, exp2, k);
    if round_up {
        q.add_small(1);
    }
    q
}

/// `floor(mant × 2^exp2 × 10^k)` computed exactly, and whether rounding it
/// half-to-even (glibc printf's default) means adding one.
fn scaled(mant: u64, exp2: i64, k: i64) -> (Big, bool) {
    let mut num = Big::from_u64(mant);
    let mut den = Big::from_u64(1);
    if k >= 0 {
        num.mul_pow10(k as u32);
    } else {
        den.mul_pow10(k.unsigned_abs() as u32);
    }
    if exp2 >= 0 {
        num = num.shl(exp2 as u64);
    } else {
        den = den.shl(exp2.unsigned_abs());
    }
    if den == Big::from_u64(1) {
        return (num, false);
    }
    let (q, r) = num.divrem(&den);
    // Ties go to even, like glibc's printf in the default rounding mode.
    let round_up = match r.shl(1).cmp(&den) {
        Ordering::Greater => true,
        Ordering::Equal => q.bit(0),
        Ordering::Less => false,
    };
    (q, round_up)
}

// ---------------------------------------------------------------------------
// long double: INCRBYFLOAT / HINCRBYFLOAT
// ---------------------------------------------------------------------------

/// Why [`incr_by_float`] failed; maps to Redis's two error replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrFloatError {
    /// The current value or the increment is not a valid `long double`
    /// (`ERR value is not a valid float`).
    NotFloat,
    /// The sum is NaN or infinite (`ERR increment would produce NaN or Infinity`).
    NanOrInfinity,
}

/// Computes `INCRBYFLOAT`: the new value's bytes, exactly as Redis 7.0 stores
/// and returns them.
///
/// Redis parses both operands with `strtold` (x87 80-bit `long double`, see
/// [`LongDouble::parse`] for the accepted syntax), adds them in `long double`,
/// rejects a NaN or infinite sum, and formats the result with
/// `ld2string(LD_STR_HUMAN)`: `%.17Lf`, then trailing zeros and a trailing `.`
/// removed, and `-0` turned into `0`. Pass `b"0"` as `current` for a missing
/// key, as Redis does.
///
/// Everything is exact, with no `f64` fallback: parsing rounds correctly to a
/// 64-bit significand (including subnormals and the 15-bit exponent range),
/// the addition rounds half-to-even like the FPU, and the formatting prints the
/// exact binary value rounded half-to-even to 17 decimals, like glibc. Two
/// consequences that surprise people but match Redis:
///
/// * a sum beyond `f64` range is fine (`1e308 + 1e308` is a 309-digit
///   integer), only the `long double` range (about `1.19e4932`) overflows;
/// * Redis 7.0 never switches to exponent notation here: magnitudes up to
///   `5e-18` print as `0` (and are stored as `"0"`), and huge values print all
///   the digits of their exact binary value (`1.5e300` gives
///   `150000000000000000004980...`, 301 digits).
///
/// ```
/// # use redlite::num::{incr_by_float, IncrFloatError};
/// assert_eq!(incr_by_float(b"10.50", b"0.1").unwrap(), b"10.6");
/// assert_eq!(incr_by_float(b"5.0e3", b"2.0e2").unwrap(), b"5200");
/// assert_eq!(incr_by_float(b"abc", b"1"), Err(IncrFloatError::NotFloat));
/// assert_eq!(incr_by_float(b"0", b"inf"), Err(IncrFloatError::NanOrInfinity));
/// ```
pub fn incr_by_float(current: &[u8], incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let value = LongDouble::parse(current).ok_or(IncrFloatError::NotFloat)?;
    let incr = LongDouble::parse(incr).ok_or(IncrFloatError::NotFloat)?;
    let sum = value
        .checked_add(incr)
        .ok_or(IncrFloatError::NanOrInfinity)?;
    Ok(sum.to_human_bytes())
}

/// An x87 80-bit `long double`, emulated exactly in software.
///
/// This is what Redis's `INCRBYFLOAT` and `HINCRBYFLOAT` compute in. The steps
/// are exposed separately because `HINCRBYFLOAT` interleaves them with its own
/// checks and error texts (Redis 7.0 order: increment not a float → `ERR value
/// is not a valid float`; increment infinite → `ERR value is NaN or Infinity`;
/// `WRONGTYPE`; stored field not a float → `ERR hash value is not a float`; sum
/// not finite → `ERR increment would produce NaN or Infinity`).
///
/// ```
/// # use redlite::num::LongDouble;
/// let incr = LongDouble::parse(b"2.5").unwrap();
/// assert!(incr.is_finite());
/// let old = LongDouble::parse(b"-0.5").unwrap();
/// assert_eq!(old.checked_add(incr).unwrap().to_human_bytes(), b"2");
/// assert!(!LongDouble::parse(b"inf").unwrap().is_finite());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDouble(Ext);

impl LongDouble {
    /// Parses like Redis's `string2ld()`: glibc `strtold` plus Redis's checks.
    ///
    /// Accepts what [`parse_f64`] accepts (decimal and hex floats, optional
    /// sign, `inf`/`infinity`), with the `long double` range instead of the
    /// `double` one (`1e400` is fine, `1e5000` overflows and is rejected), and
    /// additionally rejects inputs of 5120 bytes or more (Redis copies them into
    /// a `MAX_LONG_DOUBLE_CHARS` buffer).
    ///
    /// ```
    /// # use redlite::num::LongDouble;
    /// assert!(LongDouble::parse(b"1e400").is_some());
    /// assert!(LongDouble::parse(b"1e5000").is_none());
    /// assert!(LongDouble::parse(b"nan").is_none());
    /// ```
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let scanned = scan(s)?;
        let neg = scanned.neg;
        let v = match scanned.body {
            Body::Inf => return Some(LongDouble(Ext::Inf { neg })),
            Body::Zero => return Some(LongDouble(Ext::Zero { neg })),
            Body::Decimal { int, frac, exp } => decimal_to_ext(&F80, neg, int, frac, exp),
            Body::Hex { mant, exp2, sticky } => round_to(&F80, neg, &mant, exp2, sticky),
        };
        match v {
            // A non-zero input that came out as zero or infinity is ERANGE.
            Ext::Zero { .. } | Ext::Inf { .. } => None,
            v => Some(LongDouble(v)),
        }
    }

    /// Whether the value is neither infinite nor NaN (a parsed value is never
    /// NaN).
    ///
    /// ```
    /// # use redlite::num::LongDouble;
    /// assert!(LongDouble::parse(b"1").unwrap().is_finite());
    /// assert!(!LongDouble::parse(b"-infinity").unwrap().is_finite());
    /// ```
    pub fn is_finite(self) -> bool {
        !matches!(self.0, Ext::Inf { .. })
    }

    /// `self + other` rounded like the x87 FPU, or `None` when the sum is NaN
    /// or infinite (Redis: `increment would produce NaN or Infinity`).
    ///
    /// ```
    /// # use redlite::num::LongDouble;
    /// let a = LongDouble::parse(b"0.1").unwrap();
    /// let b = LongDouble::parse(b"0.2").unwrap();
    /// assert_eq!(a.checked_add(b).unwrap().to_human_bytes(), b"0.3");
    /// ```
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        match (self.0, other.0) {
            (Ext::Inf { .. }, _) | (_, Ext::Inf { .. }) => None,
            (Ext::Zero { neg: a }, Ext::Zero { neg: b }) => {
                Some(LongDouble(Ext::Zero { neg: a && b }))
            }
            (Ext::Zero { .. }, x) | (x, Ext::Zero { .. }) => Some(LongDouble(x)),
            (
                Ext::Fin {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Ext::Fin {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // Exact sum on the finer of the two binary grids, then one
                // rounding step: that is what IEEE addition means.
                let e = ea.min(eb);
                let a = Big::from_u64(ma).shl((ea - e) as u64);
                let b = Big::from_u64(mb).shl((eb - e) as u64);
                let (neg, n) = if na == nb {
                    (na, a.add(&b))
                } else {
                    match a.cmp(&b) {
                        Ordering::Equal => return Some(LongDouble(Ext::Zero { neg: false })),
                        Ordering::Greater => (na, a.sub(&b)),
                        Ordering::Less => (nb, b.sub(&a)),
                    }
                };
                match round_to(&F80, neg, &n, i64::from(e), false) {
                    Ext::Inf { .. } => None,
                    v => Some(LongDouble(v)),
                }
            }
        }
    }

    /// Formats like Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf`, then
    /// trailing zeros and a trailing `.` removed, and `-0` printed as `0`.
    /// Infinities print as `inf` / `-inf`.
    ///
    /// ```
    /// # use redlite::num::LongDouble;
    /// let v = LongDouble::parse(b"1.50").unwrap();
    /// assert_eq!(v.to_human_bytes(), b"1.5");
    /// let tiny = LongDouble::parse(b"-1e-30").unwrap();
    /// assert_eq!(tiny.to_human_bytes(), b"0");
    /// ```
    pub fn to_human_bytes(self) -> Vec<u8> {
        let (neg, mant, exp) = match self.0 {
            Ext::Inf { neg } => {
                return if neg {
                    b"-inf".to_vec()
                } else {
                    b"inf".to_vec()
                }
            }
            Ext::Zero { .. } => return b"0".to_vec(),
            Ext::Fin { neg, mant, exp } => (neg, mant, exp),
        };
        // N = round_half_even(|value| × 10^17); the text is N with a decimal
        // point before its last 17 digits.
        let n = scaled_round(mant, i64::from(exp), 17);
        let mut digits = n.to_decimal().into_bytes();
        if digits.len() < 18 {
            let mut padded = vec![b'0'; 18 - digits.len()];
            padded.extend_from_slice(&digits);
            digits = padded;
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = trim_zeros(frac);
        let mut out = Vec::with_capacity(digits.len() + 2);
        if neg {
            out.push(b'-');
        }
        out.extend_from_slice(int);
        if !frac.is_empty() {
            out.push(b'.');
            out.extend_from_slice(frac);
        }
        if out == b"-0" {
            out = b"0".to_vec();
        }
        out
    }
}

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` rejects inputs this long.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

// ---------------------------------------------------------------------------
// strtod / strtold syntax
// ---------------------------------------------------------------------------

/// The shape of a number accepted by [`scan`].
enum Body<'a> {
    /// `inf` or `infinity`.
    Inf,
    /// A decimal or hex literal whose digits are all zero.
    Zero,
    /// `int.frac × 10^exp` as ASCII digit runs, not all zero.
    Decimal {
        int: &'a [u8],
        frac: &'a [u8],
        exp: i64,
    },
    /// `mant × 2^exp2`, plus whether non-zero hex digits were dropped after the
    /// first [`HEX_KEEP`] significant ones.
    Hex { mant: Big, exp2: i64, sticky: bool },
}

/// A signed [`Body`].
struct Scanned<'a> {
    neg: bool,
    body: Body<'a>,
}

/// Significant hex digits kept exactly; the rest only feed a sticky bit. 40
/// digits are at least 157 bits, far more than the 66 the rounding needs.
const HEX_KEEP: usize = 40;

/// Exponents are clamped here while scanning: anything this large is far out of
/// range of every format, and the clamp keeps the arithmetic from overflowing.
const EXP_CLAMP: i64 = 1 << 40;

/// Checks that all of `s` is one number in glibc `strtod`/`strtold` syntax (C
/// locale), as Redis requires, and extracts its parts. Returns `None` for
/// anything Redis rejects on syntax: empty input, leading whitespace, trailing
/// bytes, NaN, a dangling exponent (`1e`, `0x1p`), a bare `0x`.
fn scan(s: &[u8]) -> Option<Scanned<'_>> {
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(Scanned {
            neg,
            body: Body::Inf,
        });
    }
    let body = if rest.len() > 2 && rest[..2].eq_ignore_ascii_case(b"0x") {
        scan_hex(&rest[2..])?
    } else {
        scan_decimal(rest)?
    };
    Some(Scanned { neg, body })
}

/// Splits `s` into `(mantissa digits before '.', after '.', exponent text)`
/// for the given digit class and exponent marker; `None` unless the mantissa
/// has at least one digit and everything is consumed.
fn split_number(s: &[u8], is_digit: fn(&u8) -> bool, marker: u8) -> Option<(&[u8], &[u8], i64)> {
    let int_len = s.iter().take_while(|c| is_digit(c)).count();
    let (int, mut rest) = s.split_at(int_len);
    let mut frac: &[u8] = &[];
    if let Some((b'.', after)) = rest.split_first() {
        let frac_len = after.iter().take_while(|c| is_digit(c)).count();
        frac = &after[..frac_len];
        rest = &after[frac_len..];
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if let Some((&m, after)) = rest.split_first() {
        if m.to_ascii_lowercase() != marker {
            return None;
        }
        let (exp_neg, digits) = match after.split_first() {
            Some((b'-', d)) => (true, d),
            Some((b'+', d)) => (false, d),
            _ => (false, after),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for &d in digits {
            exp = (exp * 10 + i64::from(d - b'0')).min(EXP_CLAMP);
        }
        if exp_neg {
            exp = -exp;
        }
    }
    Some((int, frac, exp))
}

/// Decimal literal after the sign: `digits [. digits] [e [sign] digits]`.
fn scan_decimal(s: &[u8]) -> Option<Body<'_>> {
    let (int, frac, exp) = split_number(s, u8::is_ascii_digit, b'e')?;
    if int.iter().chain(frac).all(|&c| c == b'0') {
        return Some(Body::Zero);
    }
    Some(Body::Decimal { int, frac, exp })
}

/// Hex literal after `0x`: `hexdigits [. hexdigits] [p [sign] digits]`.
fn scan_hex(s: &[u8]) -> Option<Body<'_>> {
    let (int, frac, exp) = split_number(s, u8::is_ascii_hexdigit, b'p')?;
    let hex = |c: &u8| {
        u32::from(if c.is_ascii_digit() {
            c - b'0'
        } else {
            c.to_ascii_lowercase() - b'a' + 10
        })
    };
    let mut mant = Big::from_u64(0);
    let mut kept = 0usize;
    let mut sticky = false;
    // Value = all hex digits as an integer × 2^(exp - 4·frac.len()). Digits
    // beyond HEX_KEEP significant ones are dropped (tracked by `sticky`), which
    // moves the binary exponent up by 4 per dropped digit.
    let mut exp2 = exp - 4 * frac.len() as i64;
    for c in int.iter().chain(frac) {
        let d = hex(c);
        if kept == 0 && d == 0 {
            continue;
        }
        if kept < HEX_KEEP {
            mant.mul_small(16);
            mant.add_small(d);
            kept += 1;
        } else {
            sticky |= d != 0;
            exp2 += 4;
        }
    }
    if mant.is_zero() {
        return Some(Body::Zero);
    }
    Some(Body::Hex { mant, exp2, sticky })
}

// ---------------------------------------------------------------------------
// Software binary floating point
// ---------------------------------------------------------------------------

/// A binary floating-point format: significand bits and normal exponent range
/// (exponents of the leading bit).
struct Format {
    prec: u32,
    emin: i64,
    emax: i64,
}

/// x87 80-bit extended precision, the x86-64 `long double`.
const F80: Format = Format {
    prec: 64,
    emin: -16382,
    emax: 16383,
};
/// IEEE binary64, the `double`.
const F64: Format = Format {
    prec: 53,
    emin: -1022,
    emax: 1023,
};

/// A value of some [`Format`]: finite values are `mant × 2^exp` (not
/// necessarily normalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    Zero { neg: bool },
    Inf { neg: bool },
    Fin { neg: bool, mant: u64, exp: i32 },
}

/// Rounds `n × 2^e2` to `fmt`, ties to even, with gradual underflow.
///
/// `sticky` says that the true value is a little more than `n × 2^e2` (some
/// non-zero bits were cut off below); callers that pass it make sure `n` has at
/// least `prec + 2` bits so the cut is below the rounding position. Returns
/// `Zero` when a non-zero value underflows and `Inf` when it overflows.
fn round_to(fmt: &Format, neg: bool, n: &Big, e2: i64, sticky: bool) -> Ext {
    if n.is_zero() {
        return Ext::Zero { neg };
    }
    let msb = n.bit_len() as i64 - 1 + e2;
    if msb > fmt.emax {
        return Ext::Inf { neg };
    }
    let prec = i64::from(fmt.prec);
    // Position of the last significand bit: `prec` bits below the leading one,
    // but never below the smallest subnormal.
    let mut lsb = (msb - (prec - 1)).max(fmt.emin - (prec - 1));
    let shift = lsb - e2;
    let mut mant: u128;
    if shift <= 0 {
        debug_assert!(!sticky, "sticky bits need a wider n");
        mant = n.low_u128() << shift.unsigned_abs();
    } else {
        let shift = shift as u64;
        mant = n.shr_low_u128(shift);
        let half = n.bit(shift - 1);
        let rest = sticky || n.any_below(shift - 1);
        if half && (rest || mant & 1 == 1) {
            mant += 1;
            if mant >> prec != 0 {
                mant >>= 1;
                lsb += 1;
            }
        }
    }
    if mant == 0 {
        return Ext::Zero { neg };
    }
    if 127 - i64::from(mant.leading_zeros()) + lsb > fmt.emax {
        return Ext::Inf { neg };
    }
    // `mant` has at most `prec` <= 64 bits and `lsb` is within the exponent
    // range checked above, so both conversions are lossless.
    Ext::Fin {
        neg,
        mant: mant as u64,
        exp: lsb as i32,
    }
}

/// Correctly rounded `int.frac × 10^exp` in `fmt` (what glibc's `strtold` and
/// `strtod` compute). The digit runs are ASCII and not all zero.
fn decimal_to_ext(fmt: &Format, neg: bool, int: &[u8], frac: &[u8], exp: i64) -> Ext {
    // Significant digits without leading/trailing zeros: value = digits × 10^exp10.
    let all: Vec<u8> = int.iter().chain(frac).map(|c| c - b'0').collect();
    let (Some(first), Some(last)) = (
        all.iter().position(|&d| d != 0),
        all.iter().rposition(|&d| d != 0),
    ) else {
        return Ext::Zero { neg };
    };
    let digits = &all[first..=last];
    let exp10 = exp - frac.len() as i64 + (all.len() - 1 - last) as i64;
    // The value lies in [10^(mag-1), 10^mag). Decide far-out values without
    // building huge numbers; the margins leave the borderline to exact math.
    let mag = exp10 + digits.len() as i64;
    if (mag - 1) as f64 > (fmt.emax + 1) as f64 * std::f64::consts::LOG10_2 + 1.0 {
        return Ext::Inf { neg };
    }
    if (mag as f64) < (fmt.emin - i64::from(fmt.prec)) as f64 * std::f64::consts::LOG10_2 - 2.0 {
        return Ext::Zero { neg };
    }
    let mut d = Big::from_u64(0);
    for chunk in digits.chunks(9) {
        let mut v = 0u32;
        for &c in chunk {
            v = v * 10 + u32::from(c);
        }
        d.mul_small(10u32.pow(chunk.len() as u32));
        d.add_small(v);
    }
    // 10^e = 5^e × 2^e: keep the power of two in the binary exponent.
    if exp10 >= 0 {
        d.mul_pow5(exp10 as u32);
        return round_to(fmt, neg, &d, exp10, false);
    }
    let mut b = Big::from_u64(1);
    b.mul_pow5(exp10.unsigned_abs() as u32);
    // Scale so that the quotient has exactly prec+3 or prec+4 bits: enough for
    // the rounding bit plus a sticky bit from the remainder.
    let t = d.bit_len() as i64 - b.bit_len() as i64 - (i64::from(fmt.prec) + 3);
    let (a, b) = if t < 0 {
        (d.shl(t.unsigned_abs()), b)
    } else {
        (d, b.shl(t as u64))
    };
    let (q, r) = a.divrem(&b);
    round_to(fmt, neg, &q, exp10 + t, !r.is_zero())
}

// ---------------------------------------------------------------------------
// Minimal unsigned big integer
// ---------------------------------------------------------------------------

/// An unsigned arbitrary-precision integer: little-endian 32-bit limbs with no
/// high zero limbs. Only the handful of operations the conversions need, sized
/// for `long double` work (at most a few thousand limbs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    /// 10^e.
    fn pow10(e: u32) -> Big {
        let mut b = Big::from_u64(1);
        b.mul_pow10(e);
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() as u64 * 32 - u64::from(top.leading_zeros()),
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        self.0.get(limb).is_some_and(|&l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any bit below position `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let full = ((i / 32) as usize).min(self.0.len());
        if self.0[..full].iter().any(|&l| l != 0) {
            return true;
        }
        let part = i % 32;
        part != 0
            && self
                .0
                .get(full)
                .is_some_and(|&l| l & ((1u32 << part) - 1) != 0)
    }

    /// The low 128 bits.
    fn low_u128(&self) -> u128 {
        self.0
            .iter()
            .take(4)
            .rev()
            .fold(0u128, |acc, &l| acc << 32 | u128::from(l))
    }

    /// The low 128 bits of `self >> shift`.
    fn shr_low_u128(&self, shift: u64) -> u128 {
        let mut acc = 0u128;
        for k in (0..128u64).rev() {
            acc = acc << 1 | u128::from(self.bit(shift + k));
        }
        acc
    }

    fn shl(&self, bits: u64) -> Big {
        if self.is_zero() {
            return Big(Vec::new());
        }
        let limbs = (bits / 32) as usize;
        let r = (bits % 32) as u32;
        let mut out = vec![0u32; limbs];
        out.reserve(self.0.len() + 1);
        if r == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push(l << r | carry);
                carry = l >> (32 - r);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for l in self.0.iter_mut().rev() {
            let next = *l & 1;
            *l = *l >> 1 | carry << 31;
            carry = next;
        }
        self.trim();
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = u64::from(a);
        for l in self.0.iter_mut() {
            if carry == 0 {
                return;
            }
            let v = u64::from(*l) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut e: u32) {
        // 5^13 is the largest power of five that fits in a u32.
        while e >= 13 {
            self.mul_small(1_220_703_125);
            e -= 13;
        }
        self.mul_small(5u32.pow(e));
    }

    fn mul_pow10(&mut self, mut e: u32) {
        while e >= 9 {
            self.mul_small(1_000_000_000);
            e -= 9;
        }
        self.mul_small(10u32.pow(e));
    }

    fn add(&self, other: &Big) -> Big {
        let (long, short) = if self.0.len() >= other.0.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut out = Vec::with_capacity(long.0.len() + 1);
        let mut carry = 0u64;
        for (i, &l) in long.0.iter().enumerate() {
            let v = u64::from(l) + u64::from(short.0.get(i).copied().unwrap_or(0)) + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self - other`; requires `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = self.clone();
        out.sub_assign(other);
        out
    }

    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, l) in self.0.iter_mut().enumerate() {
            let v = i64::from(*l) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            *l = v.rem_euclid(1 << 32) as u32;
        }
        debug_assert_eq!(borrow, 0, "Big::sub underflow");
        self.trim();
    }

    /// `(self / d, self % d)` by binary long division. The work is linear in
    /// the number of quotient bits, which the callers keep small (< 70).
    fn divrem(&self, d: &Big) -> (Big, Big) {
        debug_assert!(!d.is_zero(), "division by zero");
        let mut r = self.clone();
        let mut q = Big(Vec::new());
        if self.bit_len() < d.bit_len() || d.is_zero() {
            return (q, r);
        }
        let top = self.bit_len() - d.bit_len();
        let mut shifted = d.shl(top);
        q.0 = vec![0; (top / 32 + 1) as usize];
        for k in (0..=top).rev() {
            if r.cmp(&shifted) != Ordering::Less {
                r.sub_assign(&shifted);
                q.0[(k / 32) as usize] |= 1 << (k % 32);
            }
            shifted.shr1();
        }
        q.trim();
        (q, r)
    }

    fn div_small_assign(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = rem << 32 | u64::from(*l);
            *l = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut chunks = Vec::new();
        let mut n = self.clone();
        while !n.is_zero() {
            chunks.push(n.div_small_assign(1_000_000_000));
        }
        let mut out = String::with_capacity(chunks.len() * 9);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&c.to_string());
            } else {
                out.push_str(&format!("{c:09}"));
            }
        }
        out
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, reply): `SET k 0` then `INCRBY k <input>` on Redis 7.0.15; the
    /// reply is the parsed value, or `ERR value is not an integer or out of
    /// range` (None). INCRBY parses its argument with `string2ll`.
    #[rustfmt::skip]
    const I64_CASES: &[(&[u8], Option<i64>)] = &[
        (b"0", Some(0)),
        (b"1", Some(1)),
        (b"-1", Some(-1)),
        (b"42", Some(42)),
        (b"-42", Some(-42)),
        (b"9223372036854775807", Some(9223372036854775807)),
        (b"-9223372036854775808", Some(-9223372036854775808)),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"18446744073709551615", None),
        (b"18446744073709551616", None),
        (b"99999999999999999999", None),
        (b"-0", None),
        (b"+1", None),
        (b"+0", None),
        (b"01", None),
        (b"00", None),
        (b"-01", None),
        (b" 1", None),
        (b"1 ", None),
        (b"", None),
        (b"-", None),
        (b"1a", None),
        (b"a1", None),
        (b"1.0", None),
        (b"1e3", None),
        (b"0x10", None),
        (b"123456789012345678901", None),
        (b"-00000000000000000001", None),
        (b"\x001", None),
        (b"1\x00", None),
        (b"\xd9\xa1", None),
    ];

    #[test]
    fn parse_i64_matches_redis_incrby() {
        for &(input, expected) in I64_CASES {
            assert_eq!(
                parse_i64(input),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// (input, ZSCORE reply): `ZADD z <input> m` then `ZSCORE z m` on Redis
    /// 7.0.15 with `zset-max-listpack-entries 0` (skiplist encoding keeps -0).
    /// None means ZADD answered `ERR value is not a valid float`. ZADD parses
    /// with `string2d`, ZSCORE prints with `%.17g`, so each row checks
    /// [`parse_f64`] and [`fmt_g17`] together (17 digits pin the double down).
    #[rustfmt::skip]
    const F64_CASES: &[(&[u8], Option<&str>)] = &[
        (b"0", Some("0")),
        (b"-0", Some("-0")),
        (b"0.0", Some("0")),
        (b"-0.0", Some("-0")),
        (b"1", Some("1")),
        (b"-1", Some("-1")),
        (b"1.5", Some("1.5")),
        (b"0.1", Some("0.10000000000000001")),
        (b"-0.1", Some("-0.10000000000000001")),
        (b"0.2", Some("0.20000000000000001")),
        (b"0.3", Some("0.29999999999999999")),
        (b"1e20", Some("1e+20")),
        (b"1e16", Some("10000000000000000")),
        (b"1e17", Some("1e+17")),
        (b"1e-5", Some("1.0000000000000001e-05")),
        (b"0.0001", Some("0.0001")),
        (b"0.00001", Some("1.0000000000000001e-05")),
        (b"123456789012345678", Some("1.2345678901234568e+17")),
        (b"12345678901234567890123", Some("1.2345678901234568e+22")),
        (b"3.14159265358979323846", Some("3.1415926535897931")),
        (b"2251799813685246.25", Some("2251799813685246.2")),
        (b"2251799813685247.75", Some("2251799813685247.8")),
        (b"1.7976931348623157e308", Some("1.7976931348623157e+308")),
        (b"1.7976931348623158e308", Some("1.7976931348623157e+308")),
        (b"1.7976931348623159e308", None),
        (b"1e308", Some("1e+308")),
        (b"1e309", None),
        (b"1e400", None),
        (b"-1e400", None),
        (b"2.2250738585072014e-308", Some("2.2250738585072014e-308")),
        (b"1e-320", Some("9.9998886718268301e-321")),
        (b"4.9406564584124654e-324", Some("4.9406564584124654e-324")),
        (b"2.4703282292062328e-324", Some("4.9406564584124654e-324")),
        (b"2.4703282292062327e-324", None),
        (b"1e-400", None),
        (b"0e999999", Some("0")),
        (b"inf", Some("inf")),
        (b"-inf", Some("-inf")),
        (b"+inf", Some("inf")),
        (b"infinity", Some("inf")),
        (b"-Infinity", Some("-inf")),
        (b"INF", Some("inf")),
        (b"infinit", None),
        (b"infx", None),
        (b"nan", None),
        (b"-nan", None),
        (b"NaN", None),
        (b"nan(1)", None),
        (b" 1", None),
        (b"1 ", None),
        (b"", None),
        (b"+", None),
        (b"-", None),
        (b".", None),
        (b"-.", None),
        (b".5", Some("0.5")),
        (b"-.5", Some("-0.5")),
        (b"5.", Some("5")),
        (b"+5", Some("5")),
        (b"+.5e1", Some("5")),
        (b"1e", None),
        (b"1e+", None),
        (b"1e-", None),
        (b"1E3", Some("1000")),
        (b"1e+3", Some("1000")),
        (b"1e-3", Some("0.001")),
        (b"1.e2", Some("100")),
        (b"1e1.5", None),
        (b"--1", None),
        (b"+-1", None),
        (b"e5", None),
        (b"1,5", None),
        (b"1_000", None),
        (b"0x10", Some("16")),
        (b"0X1P-3", Some("0.125")),
        (b"0x1.8p1", Some("3")),
        (b"-0x1.8p1", Some("-3")),
        (b"0x.8", Some("0.5")),
        (b"0x1.", Some("1")),
        (b"0x", None),
        (b"0x.", None),
        (b"0xp1", None),
        (b"0x1p", None),
        (b"0x1p+", None),
        (b"0x1e5", Some("485")),
        (b"0xg", None),
        (b"0x1p-1074", Some("4.9406564584124654e-324")),
        (b"0x1p-1075", None),
        (b"0x1.0000000000001p-1075", Some("4.9406564584124654e-324")),
        (b"0x1.fffffffffffff8p1023", None),
        (b"0x1.fffffffffffff7ffp1023", Some("1.7976931348623157e+308")),
        (b"0x1p1024", None),
        (b"00012.50", Some("12.5")),
        (b"007", Some("7")),
        (b"1\x00", None),
        (b"\x091", None),
        (b"\x0a1", None),
        (b"1\x0a", None),
        (b"9007199254740993", Some("9007199254740992")),
        (b"0.1e-0", Some("0.10000000000000001")),
        (b"4.35", Some("4.3499999999999996")),
        (b"1e22", Some("1e+22")),
        (b"1e23", Some("9.9999999999999992e+22")),
        (b"5e-324", Some("4.9406564584124654e-324")),
        (b"123.456", Some("123.456")),
        (b"-987654.321e-3", Some("-987.65432099999998")),
    ];

    #[test]
    fn parse_f64_and_fmt_g17_match_redis_zadd_zscore() {
        for &(input, expected) in F64_CASES {
            assert_eq!(
                parse_f64(input).map(fmt_g17).as_deref(),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    type Expected = Result<&'static [u8], IncrFloatError>;

    /// (stored value, increment, reply): `SET f <value>` then `INCRBYFLOAT f
    /// <increment>` on Redis 7.0.15.
    #[rustfmt::skip]
    const INCR_CASES: &[(&[u8], &[u8], Expected)] = &[
        (b"10.50", b"0.1", Ok(b"10.6")),
        (b"0.1", b"0.2", Ok(b"0.3")),
        (b"5.0e3", b"2.0e2", Ok(b"5200")),
        (b"3.0e3", b"1e-15", Ok(b"3000.00000000000000111")),
        (b"3.0e3", b"-1e-15", Ok(b"2999.99999999999999889")),
        (b"3.0e3", b"1e-20", Ok(b"3000")),
        (b"-5", b"2.5", Ok(b"-2.5")),
        (b"2.5", b"-5", Ok(b"-2.5")),
        (b"-0.1", b"-0.2", Ok(b"-0.3")),
        (b"1", b"-1", Ok(b"0")),
        (b"-0.0", b"-0.0", Ok(b"0")),
        (b"0", b"-1e-30", Ok(b"0")),
        (b"1e-30", b"0", Ok(b"0")),
        (b"0", b"0.000003814697265625", Ok(b"0.00000381469726562")),
        (b"0", b"0.000011444091796875", Ok(b"0.00001144409179688")),
        (b"0", b"5e-18", Ok(b"0")),
        (b"0", b"5.000000000000001e-18", Ok(b"0.00000000000000001")),
        (b"0", b"-5.000000000000001e-18", Ok(b"-0.00000000000000001")),
        (b"12345678901234567890", b"1", Ok(b"12345678901234567891")),
        (b"9223372036854775807", b"1", Ok(b"9223372036854775808")),
        (b"-9223372036854775808", b"-1", Ok(b"-9223372036854775809")),
        (b"18446744073709551615", b"1", Ok(b"18446744073709551616")),
        (b"1e20", b"0", Ok(b"100000000000000000000")),
        (b"1.5e300", b"0", Ok(b"1500000000000000000049800109861472166362379239118673928551219718248973529929812708792854310575830930686530644566050229406926646739311017606984258288377434143937602778196710661234655944195770838513268846826150205418632995547271874827072936230594920013241190363994471886080567336615911694509046614720512")),
        (b"1e308", b"1e308", Ok(b"199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096")),
        (b"1e4932", b"1e4932", Err(IncrFloatError::NanOrInfinity)),
        (b"-1e4932", b"-1e4932", Err(IncrFloatError::NanOrInfinity)),
        (b"1e4932", b"-1e4932", Ok(b"0")),
        (b"0", b"1e-4940", Ok(b"0")),
        (b"abc", b"1", Err(IncrFloatError::NotFloat)),
        (b"1", b"abc", Err(IncrFloatError::NotFloat)),
        (b"", b"1", Err(IncrFloatError::NotFloat)),
        (b"1", b"", Err(IncrFloatError::NotFloat)),
        (b" 1", b"1", Err(IncrFloatError::NotFloat)),
        (b"1 ", b"1", Err(IncrFloatError::NotFloat)),
        (b"1", b"nan", Err(IncrFloatError::NotFloat)),
        (b"inf", b"1", Err(IncrFloatError::NanOrInfinity)),
        (b"0", b"inf", Err(IncrFloatError::NanOrInfinity)),
        (b"0", b"-infinity", Err(IncrFloatError::NanOrInfinity)),
        (b"1e5000", b"0", Err(IncrFloatError::NotFloat)),
        (b"0", b"1e-5000", Err(IncrFloatError::NotFloat)),
        (b"0x1p3", b"0x1p-2", Ok(b"8.25")),
        (b"0x1.8p1", b"0.25", Ok(b"3.25")),
        (b"3.14159265358979323846264338327950288", b"0", Ok(b"3.14159265358979324")),
        (b"0.1", b"0", Ok(b"0.1")),
        (b"1.1", b"2.2", Ok(b"3.3")),
        (b"100", b"-99.9", Ok(b"0.1")),
        (b"0.1", b"-0.1", Ok(b"0")),
        (b"123456789.123456789", b"987654321.987654321", Ok(b"1111111111.11111110995989293")),
        (b"1e-17", b"0", Ok(b"0.00000000000000001")),
        (b"-1e-17", b"0", Ok(b"-0.00000000000000001")),
        (b"0", b"0", Ok(b"0")),
        (b"-0", b"0", Ok(b"0")),
        (b"+5", b".5", Ok(b"5.5")),
        (b"5.", b"1e1", Ok(b"15")),
        (b"17.9", b"-0.9", Ok(b"17")),
        (b"1e16", b"1", Ok(b"10000000000000001")),
        (b"1e17", b"1", Ok(b"100000000000000001")),
        (b"1e19", b"1", Ok(b"10000000000000000001")),
        (b"0.3", b"-0.1", Ok(b"0.2")),
        (b"10", b"-10.1", Ok(b"-0.1")),
    ];

    #[test]
    fn incr_by_float_matches_redis() {
        for &(value, incr, expected) in INCR_CASES {
            assert_eq!(
                incr_by_float(value, incr).as_deref().map_err(|e| *e),
                expected,
                "{:?} + {:?}",
                String::from_utf8_lossy(value),
                String::from_utf8_lossy(incr)
            );
        }
    }

    /// (value, increment, reply length, reply head, reply tail).
    type LongCase = (
        &'static [u8],
        &'static [u8],
        usize,
        &'static [u8],
        &'static [u8],
    );

    /// Replies too long to inline: (value, increment, reply length, first 40
    /// and last 40 bytes), from Redis 7.0.15 as above. `%.17Lf` prints the
    /// exact binary value, so the tail digits catch any rounding error.
    #[rustfmt::skip]
    const INCR_LONG_CASES: &[LongCase] = &[
        (b"1.18973149535723176502e+4932", b"0", 4933, b"1189731495357231765021263853030970205169", b"8849149662444156604419552086811989770240"),
    ];

    #[test]
    fn incr_by_float_long_replies_match_redis() {
        for &(value, incr, len, head, tail) in INCR_LONG_CASES {
            let got = incr_by_float(value, incr).expect("valid operands");
            assert_eq!(got.len(), len);
            assert_eq!(&got[..40], head);
            assert_eq!(&got[got.len() - 40..], tail);
        }
    }

    #[test]
    fn long_double_input_length_limit_matches_redis() {
        // Redis 7.0.15: a 5119-byte "1.000...0" works as value or increment
        // (reply "2"); at 5120 bytes both answer `ERR value is not a valid float`.
        let ok = [b"1.".to_vec(), vec![b'0'; 5117]].concat();
        let too_long = [b"1.".to_vec(), vec![b'0'; 5118]].concat();
        assert_eq!(incr_by_float(&ok, b"1").as_deref(), Ok(&b"2"[..]));
        assert_eq!(incr_by_float(b"1", &ok).as_deref(), Ok(&b"2"[..]));
        assert_eq!(
            incr_by_float(&too_long, b"1"),
            Err(IncrFloatError::NotFloat)
        );
        assert_eq!(
            incr_by_float(b"1", &too_long),
            Err(IncrFloatError::NotFloat)
        );
    }

    #[test]
    fn long_double_steps_support_hincrbyfloat() {
        // Redis 7.0.15 HINCRBYFLOAT with h = {a: "1"}: increments "inf" and
        // "-inf" answer `ERR value is NaN or Infinity` (parsed, not finite),
        // "nan" and "abc" answer `ERR value is not a valid float` (no parse),
        // and a missing field starts from 0: `HINCRBYFLOAT h new 2.5` -> "2.5".
        for inc in [&b"inf"[..], b"-inf"] {
            assert!(!LongDouble::parse(inc).expect("parses").is_finite());
        }
        for inc in [&b"nan"[..], b"abc"] {
            assert!(LongDouble::parse(inc).is_none());
        }
        let zero = LongDouble::parse(b"0").expect("parses");
        let inc = LongDouble::parse(b"2.5").expect("parses");
        assert_eq!(
            zero.checked_add(inc).expect("finite").to_human_bytes(),
            b"2.5"
        );
    }
}
