//! Redis glob-style pattern matching (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`, ...).
//!
//! This is a line-by-line port of Redis 7.0's `stringmatchlen()` from `util.c`,
//! including its quirks, because clients observe them: which keys `KEYS` returns
//! for an odd pattern is part of the protocol contract we reproduce.
//!
//! C details that the port keeps on purpose:
//!
//! * The C code reads `pattern[patternLen]` in a few places (after a `*`, at the
//!   end of an unterminated `[`), where Redis's sds strings hold a NUL
//!   terminator. `at()` returns `0` past the end to reproduce that.
//! * C `char` is signed on x86-64, so inside `[a-z]` ranges the bytes `>= 0x80`
//!   compare as negative numbers (`[\x01-\xff]` is the range `-1..=1`).
//! * `tolower()` runs in the C locale (Redis only sets `LC_COLLATE`), so `nocase`
//!   folds ASCII letters only; in `nocase` ranges glibc's `tolower()` also turns
//!   negative `char` values (except `-1`, which is `EOF`) back into `128..=254`.
//! * The `skipLongerMatches` short-cut and the `nesting > 1000` cap (added for
//!   CVE-2022-36021) bound the work done on hostile patterns such as
//!   `a*a*a*...*b`. The cap makes deeply nested patterns *not match* even when a
//!   match exists; Redis behaves the same way.

/// Returns whether `string` matches the glob `pattern`, exactly as Redis 7.0's
/// `stringmatchlen()` decides.
///
/// Supported syntax: `*` (any run, possibly empty), `?` (any one byte), `[abc]`,
/// `[^abc]`, `[a-z]` (reversed ranges such as `[z-a]` are swapped), and `\x` to
/// escape `x` both inside and outside brackets. Matching is byte-wise; `nocase`
/// folds ASCII letters only.
///
/// Quirks preserved from Redis (callers must not "fix" them):
///
/// * The empty string matches only the empty pattern: the loop that skips
///   trailing `*`s runs only after a byte was consumed, so
///   `glob_match(b"*", b"", false)` is `false`. Redis's `KEYS *` and `SCAN`
///   without `MATCH` never call the matcher for the lone pattern `*` (they list
///   every key, including `""`); callers should special-case it the same way.
/// * An unterminated `[` class ends at the end of the pattern (`[ab` matches
///   `a`).
/// * A trailing `\` matches a literal backslash.
/// * Inside brackets an escaped byte (`[\M]`) compares case-sensitively even
///   with `nocase`.
/// * Patterns that need more than 1000 nested `*` expansions do not match
///   (see the module docs); this also bounds the recursion depth.
///
/// ```
/// # use redlite::glob::glob_match;
/// assert!(glob_match(b"user:*", b"user:42", false));
/// assert!(glob_match(b"h[^e]llo", b"hallo", false));
/// assert!(!glob_match(b"h[^e]llo", b"hello", false));
/// assert!(glob_match(b"HELLO", b"hello", true));
/// ```
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    match_impl(pattern, 0, string, 0, nocase, &mut skip_longer_matches, 0)
}

/// Whether `name` passes an optional MATCH pattern the way KEYS and the SCAN family apply
/// one: no pattern, or the lone `*`, lets everything through (Redis skips the matcher for
/// `*`, so even the empty name passes), any other pattern goes to [`glob_match`].
///
/// ```
/// # use redlite::glob::matches;
/// assert!(matches(None, b""));
/// assert!(matches(Some(b"*"), b""));
/// assert!(matches(Some(b"u*"), b"user"));
/// assert!(!matches(Some(b"u?"), b""));
/// ```
pub fn matches(pattern: Option<&[u8]>, name: &[u8]) -> bool {
    match pattern {
        None | Some(b"*") => true,
        Some(p) => glob_match(p, name, false),
    }
}

/// Byte at `i`, or the NUL terminator that Redis's sds strings carry when `i` is
/// past the end. The C code relies on reading that terminator.
#[inline]
fn at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// glibc's `tolower()` in the "C" locale, applied to a value that came from a
/// signed `char`.
///
/// Besides folding `A`..=`Z`, glibc's table maps the negative values
/// `-128..=-2` to `128..=254` (so that `tolower(c)` works on signed `char`s),
/// while `-1` is `EOF` and stays `-1`. That matters in `nocase` ranges:
/// `[\x80-z]` becomes the empty range `128..=122`, but `[\xff-z]` stays
/// `-1..=122`. Redis's `CONFIG GET` confirms both.
#[inline]
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else if (-128..=-2).contains(&c) {
        c + 256
    } else {
        c
    }
}

/// A byte converted the way C converts a (signed) `char` to `int` on x86-64.
#[inline]
fn signed(b: u8) -> i32 {
    i32::from(b as i8)
}

/// Byte equality with optional ASCII case folding (C's `tolower(a) == tolower(b)`).
#[inline]
fn same(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// The recursive worker: `stringmatchlen_impl()`.
///
/// The C code moves `pattern`/`patternLen` (and `string`/`stringLen`) in lock
/// step, so a single index per slice carries both: the remaining length is
/// always `len - index`.
fn match_impl(
    pat: &[u8],
    mut p: usize,
    s: &[u8],
    mut si: usize,
    nocase: bool,
    skip_longer_matches: &mut bool,
    nesting: u32,
) -> bool {
    // Protection against abusive patterns (Redis: `if (nesting > 1000) return 0;`).
    if nesting > 1000 {
        return false;
    }
    let plen = |p: usize| pat.len().saturating_sub(p);

    while p < pat.len() && si < s.len() {
        match pat[p] {
            b'*' => {
                while plen(p) > 0 && at(pat, p + 1) == b'*' {
                    p += 1;
                }
                if plen(p) == 1 {
                    return true;
                }
                while si < s.len() {
                    if match_impl(pat, p + 1, s, si, nocase, skip_longer_matches, nesting + 1) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    si += 1;
                }
                // The rest of the pattern matched nowhere in the rest of the
                // string, so no earlier `*` can help by swallowing more: tell
                // every caller up the stack to stop trying longer matches.
                *skip_longer_matches = true;
                return false;
            }
            b'?' => {
                si += 1;
            }
            b'[' => {
                p += 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                }
                let c = s[si];
                let mut matched = false;
                loop {
                    if at(pat, p) == b'\\' && plen(p) >= 2 {
                        p += 1;
                        // Escapes inside brackets compare case-sensitively in
                        // Redis, even with `nocase`.
                        if at(pat, p) == c {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if plen(p) == 0 {
                        // Unterminated class: step back so the `p += 1` below
                        // leaves `p` exactly at the end of the pattern.
                        p -= 1;
                        break;
                    } else if plen(p) >= 3 && at(pat, p + 1) == b'-' {
                        let mut start = signed(at(pat, p));
                        let mut end = signed(at(pat, p + 2));
                        let mut ch = signed(c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = c_tolower(start);
                            end = c_tolower(end);
                            ch = c_tolower(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if same(at(pat, p), c, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            other => {
                let mut lit = other;
                if other == b'\\' && plen(p) >= 2 {
                    p += 1;
                    lit = at(pat, p);
                }
                if !same(lit, s[si], nocase) {
                    return false;
                }
                si += 1;
            }
        }
        p += 1;
        if si == s.len() {
            while at(pat, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pat.len() && si == s.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;
    use std::time::{Duration, Instant};

    /// (pattern, string, matches) — every expectation was produced by Redis
    /// 7.0.15: `FLUSHALL`, `SET <string> 1`, then `KEYS <pattern>` returned
    /// the key (true) or nothing (false).
    #[rustfmt::skip]
    const CASES: &[(&[u8], &[u8], bool)] = &[
        (b"", b"", true),
        (b"", b"a", false),
        (b"a", b"", false),
        (b"a", b"a", true),
        (b"a", b"b", false),
        (b"abc", b"abc", true),
        (b"abc", b"ab", false),
        (b"ab", b"abc", false),
        (b"*", b"abc", true),
        (b"**", b"", false),
        (b"**", b"x", true),
        (b"*?", b"", false),
        (b"?", b"", false),
        (b"?", b"a", true),
        (b"??", b"a", false),
        (b"?*", b"a", true),
        (b"*?", b"a", true),
        (b"a*", b"", false),
        (b"a*", b"a", true),
        (b"a*", b"abc", true),
        (b"*a", b"ba", true),
        (b"*a", b"ab", false),
        (b"*b", b"b", true),
        (b"a**", b"a", true),
        (b"a**b", b"ab", true),
        (b"*a*", b"xxaxx", true),
        (b"a*b*c", b"aXbYc", true),
        (b"a*b*c", b"abcb", false),
        (b"a?c", b"abc", true),
        (b"a?c", b"ac", false),
        (b"abc*", b"abc", true),
        (b"abc***", b"abc", true),
        (b"abc*?", b"abc", false),
        (b"*[", b"", false),
        (b"*[", b"[", false),
        (b"*[", b"x", false),
        (b"A", b"a", false),
        (b"a", b"A", false),
        (b"h[ae]llo", b"hello", true),
        (b"h[ae]llo", b"hillo", false),
        (b"h[^e]llo", b"hallo", true),
        (b"h[^e]llo", b"hello", false),
        (b"h[a-b]llo", b"hbllo", true),
        (b"h[b-a]llo", b"hallo", true),
        (b"[z-a]", b"m", true),
        (b"[z-a]", b"A", false),
        (b"[a-]", b"-", false),
        (b"[a-]", b"a", true),
        (b"[a-]", b"b", false),
        (b"[-a]", b"-", true),
        (b"[]]", b"]", false),
        (b"[]", b"", false),
        (b"[]", b"a", false),
        (b"[]a", b"a", false),
        (b"[^]", b"a", true),
        (b"[^]", b"", false),
        (b"[^]a", b"xa", true),
        (b"[^]a", b"a", false),
        (b"[", b"[", false),
        (b"[", b"a", false),
        (b"[", b"", false),
        (b"[a", b"a", true),
        (b"[a", b"b", false),
        (b"[a", b"a[", false),
        (b"[ab", b"b", true),
        (b"[^a", b"b", true),
        (b"[^a", b"a", false),
        (b"[^", b"x", true),
        (b"[^", b"^", true),
        (b"[a-", b"a", true),
        (b"[a-", b"-", true),
        (b"[a-", b"b", false),
        (b"a[", b"a", false),
        (b"a[", b"a[", false),
        (b"a[", b"ab", false),
        (b"[a-c", b"b", true),
        (b"[a-c", b"c", true),
        (b"[[]", b"[", true),
        (b"[*]", b"*", true),
        (b"[*]", b"a", false),
        (b"[?]", b"a", false),
        (b"[?]", b"?", true),
        (b"[ab]*", b"bzz", true),
        (b"x[^a-c]y", b"xdy", true),
        (b"x[^a-c]y", b"xby", false),
        (b"[a-cx-z]", b"y", true),
        (b"[a-cx-z]", b"m", false),
        (b"[-]", b"-", true),
        (b"[--]", b"-", true),
        (b"[---]", b"-", true),
        (b"[a--]", b"-", true),
        (b"[a--]", b"b", false),
        (b"[^-]", b"-", false),
        (b"\\*", b"*", true),
        (b"\\*", b"a", false),
        (b"\\?", b"?", true),
        (b"\\?", b"a", false),
        (b"\\[a]", b"[a]", true),
        (b"\\[a]", b"a", false),
        (b"a\\", b"a\\", true),
        (b"a\\", b"a", false),
        (b"\\", b"\\", true),
        (b"\\", b"", false),
        (b"\\\\", b"\\", true),
        (b"\\\\", b"\\\\", false),
        (b"\\a", b"a", true),
        (b"\\a", b"\\a", false),
        (b"[\\]]", b"]", true),
        (b"[\\]]", b"\\", false),
        (b"[\\]", b"\\", false),
        (b"[\\]", b"]", true),
        (b"[\\", b"\\", true),
        (b"[\\", b"[", false),
        (b"[a\\-z]", b"-", true),
        (b"[a\\-z]", b"m", false),
        (b"[a\\-z]", b"z", true),
        (b"[\\^a]", b"^", true),
        (b"[^\\]]", b"]", false),
        (b"[^\\]]", b"a", true),
        (b"[\\a-c]", b"b", false),
        (b"[a-\\]", b"b", false),
        (b"[a-\\]", b"\\", true),
        (b"[a-\\]]", b"]", false),
        (b"*\\", b"abc\\", true),
        (b"*\\*", b"ab*", true),
        (b"*\\*", b"ab", false),
        (b"\xff", b"\xff", true),
        (b"\xff", b"\xfe", false),
        (b"?", b"\xe9", true),
        (b"??", b"\xc3\xa9", true),
        (b"*\x00*", b"a\x00b", true),
        (b"a\x00", b"a", false),
        (b"a\x00", b"a\x00", true),
        (b"\x00", b"\x00", true),
        (b"[\x00]", b"\x00", true),
        (b"[\x01-\xff]", b"a", false),
        (b"[\x01-\xff]", b"\x00", true),
        (b"[\x01-\xff]", b"\xff", true),
        (b"[\x01-\xff]", b"\x01", true),
        (b"[\x80-\xff]", b"\x90", true),
        (b"[\x80-\xff]", b"a", false),
        (b"[\xff-\x80]", b"\x90", true),
        (b"[a-\xff]", b"b", false),
        (b"[a-\xff]", b"a", true),
        (b"[a-\xff]", b"\x00", true),
        (b"[a-\xff]", b"\xfe", false),
        (b"[a-\xff]", b"\xff", true),
        (b"[\x00-z]", b"\xe9", false),
        (b"[\x00-z]", b"m", true),
        (b"[^\x80-\xff]", b"a", true),
        (b"[^\x80-\xff]", b"\xc3", false),
        (b"[\xe9]", b"\xe9", true),
        (b"[^\xe9]", b"\xe9", false),
        (b"\\\xff", b"\xff", true),
        (b"[\\\xff]", b"\xff", true),
        (b"*\xff", b"abc\xff", true),
        (b"user:*:name", b"user:42:name", true),
        (b"user:*:name", b"user:42:age", false),
        (b"*:*:*", b"a:b:c", true),
        (b"*:*:*", b"a:b", false),
    ];

    /// (pattern, config name, matches) with `nocase`. Redis 7.0.15 only matches
    /// case-insensitively in `CONFIG GET <pattern>` (for patterns containing
    /// `*`, `?` or `[`); each row records whether the reply listed the name.
    #[rustfmt::skip]
    const NOCASE_CASES: &[(&[u8], &[u8], bool)] = &[
        (b"MAX*", b"maxmemory", true),
        (b"[L-N]axmemory", b"maxmemory", true),
        (b"[l-n]AXMEMORY", b"maxmemory", true),
        (b"[\\M]axmemory", b"maxmemory", false),
        (b"[\\m]axmemory", b"maxmemory", true),
        (b"[N-L]axmemor?", b"maxmemory", true),
        (b"\\MAXMEMORY*", b"maxmemory", true),
        (b"[^M]axmemory", b"maxmemory", false),
        (b"[^\\M]axmemory", b"maxmemory", true),
        (b"[M]AXMEMORY", b"maxmemory", true),
        (b"?AXMEMORY", b"maxmemory", true),
        (b"[A-Z]axmemory", b"maxmemory", true),
        (b"[[-a]axmemory", b"maxmemory", false),
        (b"[[-a]*", b"appendonly", true),
        (b"[_-a]*", b"appendonly", true),
        (b"[Z-_]*", b"appendonly", false),
        (b"[^Z-_]*", b"appendonly", true),
        (b"[\x80-z]axmemory", b"maxmemory", false),
        (b"[z-\x80]axmemory", b"maxmemory", false),
        (b"[\xff-z]axmemory", b"maxmemory", true),
        (b"[\xfe-z]axmemory", b"maxmemory", false),
        (b"[^\x80-z]axmemory", b"maxmemory", true),
    ];

    #[test]
    fn matches_redis_keys() {
        for &(pattern, string, expected) in CASES {
            assert_eq!(
                glob_match(pattern, string, false),
                expected,
                "pattern {:?} string {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(string)
            );
        }
    }

    #[test]
    fn matches_redis_config_get_nocase() {
        for &(pattern, name, expected) in NOCASE_CASES {
            assert_eq!(
                glob_match(pattern, name, true),
                expected,
                "pattern {:?} name {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn nesting_cap_matches_redis() {
        // Redis 7.0.15 KEYS: "*a" x 1000 matches "a" x 1000, but one more level
        // of `*` recursion trips the `nesting > 1000` guard and reports no
        // match even though one exists.
        let a = |n: usize| vec![b'a'; n];
        assert!(glob_match(&b"*a".repeat(999), &a(999), false));
        assert!(glob_match(&b"*a".repeat(1000), &a(1000), false));
        assert!(glob_match(
            &[b"*a".repeat(1000), b"*".to_vec()].concat(),
            &a(1000),
            false
        ));
        assert!(!glob_match(&b"*a".repeat(1001), &a(1001), false));
        assert!(!glob_match(&b"*a".repeat(1001), &a(1500), false));
        assert!(!glob_match(&b"a*".repeat(1002), &a(1002), false));
        assert!(!glob_match(&b"*?".repeat(1001), &a(1001), false));
    }

    #[test]
    fn hostile_patterns_finish_fast() {
        // Without `skipLongerMatches` these take exponential time. Redis 7.0.15
        // answers both with an empty KEYS reply. The bound is deliberately
        // generous: it only guards against the exponential blow-up.
        let start = Instant::now();
        assert!(!glob_match(
            &[b"a*".repeat(30), b"b".to_vec()].concat(),
            &[b'a'; 66],
            false
        ));
        assert!(!glob_match(
            &[b"a*".repeat(100), b"b".to_vec()].concat(),
            &[b'a'; 5000],
            false
        ));
        assert!(!glob_match(
            &[b"*a".repeat(1000), b"b".to_vec()].concat(),
            &[b'a'; 5000],
            false
        ));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
    }
}
