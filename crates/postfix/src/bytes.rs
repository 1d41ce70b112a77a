//! Byte scans and comparisons sized for the fields of a log line: most are a few bytes long, where a call into
//! memchr or memcmp costs more than the work.

/// Where `b` first occurs in `s`. Most fields of a Postfix line are short (a host name, a pid, a `key=`, an
/// address), and for them memchr's dispatch and setup cost more than the scan: the first 32 bytes are looked at
/// eight at a time in a register, and only longer fields go to memchr.
#[inline]
pub(crate) fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = s[at..].first_chunk::<8>() {
        if at == SHORT_FIELD {
            return memchr::memchr(b, &s[at..]).map(|i| i + at);
        }
        let hits = zero_bytes(u64::from_le_bytes(*word) ^ splat(b));
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    s[at..].iter().position(|&c| c == b).map(|i| i + at)
}

/// Where `b` last occurs in `s`, the same way as [`memchr`] from the end.
#[inline]
pub(crate) fn memrchr(b: u8, s: &[u8]) -> Option<usize> {
    let mut end = s.len();
    while let Some(word) = s[..end].last_chunk::<8>() {
        if s.len() - end == SHORT_FIELD {
            return memchr::memrchr(b, &s[..end]);
        }
        let hits = zero_bytes(u64::from_le_bytes(*word) ^ splat(b));
        if hits != 0 {
            return Some(end - 1 - (hits.leading_zeros() / 8) as usize);
        }
        end -= 8;
    }
    s[..end].iter().rposition(|&c| c == b)
}

/// Where a syslog tag's program name ends (at the first `[`, `:` or space) and its first and last `/` before that;
/// `None` when nothing ends it. Eight bytes at a time: this runs on every line.
#[inline]
pub(crate) fn program_name_end(s: &[u8]) -> Option<(usize, Option<(usize, usize)>)> {
    let mut slashes = None;
    let mut at = 0;
    while let Some(word) = s[at..].first_chunk::<8>() {
        let w = u64::from_le_bytes(*word);
        let ends =
            zero_bytes(w ^ splat(b'[')) | zero_bytes(w ^ splat(b':')) | zero_bytes(w ^ splat(b' '));
        let found = zero_bytes(w ^ splat(b'/'));
        if ends != 0 {
            let end = (ends.trailing_zeros() / 8) as usize;
            // Only the slashes before the end count.
            let before = if end == 0 {
                0
            } else {
                found & (u64::MAX >> (64 - 8 * end))
            };
            return Some((at + end, add_slashes(slashes, before, at)));
        }
        slashes = add_slashes(slashes, found, at);
        at += 8;
    }
    for (i, &b) in s[at..].iter().enumerate() {
        match b {
            b'[' | b':' | b' ' => return Some((at + i, slashes)),
            b'/' => slashes = Some((slashes.map_or(at + i, |(first, _)| first), at + i)),
            _ => {}
        }
    }
    None
}

/// `slashes` extended by the slashes flagged in `found`, a word read at `at`.
#[inline]
fn add_slashes(slashes: Option<(usize, usize)>, found: u64, at: usize) -> Option<(usize, usize)> {
    if found == 0 {
        return slashes;
    }
    let first = at + (found.trailing_zeros() / 8) as usize;
    let last = at + 7 - (found.leading_zeros() / 8) as usize;
    Some((slashes.map_or(first, |(f, _)| f), last))
}

/// Bytes scanned in a register before handing a field to memchr.
const SHORT_FIELD: usize = 32;

/// `b` in every byte of a word.
#[inline]
fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * u64::from(b)
}

/// The high bit of each zero byte of `x`, exactly (no borrow from one byte into the next, so scanning from either
/// end is right).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// `a == b`, inline: the names compared per line (hosts, Postfix instances) are shorter than a call to memcmp.
/// Compares whole words; a length that is not a multiple of the word is finished by one word that overlaps the
/// previous one.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => word32(a) == word32(b) && word32(&a[n - 4..]) == word32(&b[n - 4..]),
        _ => {
            a.chunks_exact(8)
                .zip(b.chunks_exact(8))
                .all(|(x, y)| word64(x) == word64(y))
                && word64(&a[n - 8..]) == word64(&b[n - 8..])
        }
    }
}

#[inline]
fn word32(s: &[u8]) -> u32 {
    s.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w))
}

#[inline]
fn word64(s: &[u8]) -> u64 {
    s.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w))
}

/// `hay.starts_with(prefix)` with [`same_bytes`].
#[inline]
pub(crate) fn starts_with(hay: &[u8], prefix: &[u8]) -> bool {
    hay.get(..prefix.len())
        .is_some_and(|h| same_bytes(h, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_scans_find_what_a_plain_search_finds_at_every_length_and_position() {
        // Neighbours of the byte sought (one bit apart, high bit set) must not be taken for it.
        let target = b'=';
        for filler in [b'a', target ^ 1, target ^ 0x80, target - 1, 0xff, 0] {
            for len in 0..80 {
                let base = vec![filler; len];
                let check = |hay: &[u8]| {
                    let first = hay.iter().position(|&c| c == target);
                    let last = hay.iter().rposition(|&c| c == target);
                    assert_eq!(memchr(target, hay), first, "memchr in {hay:?}");
                    assert_eq!(memrchr(target, hay), last, "memrchr in {hay:?}");
                };
                check(&base);
                for at in 0..len {
                    let mut one = base.clone();
                    one[at] = target;
                    check(&one);
                    for second in at + 1..len {
                        let mut two = one.clone();
                        two[second] = target;
                        check(&two);
                    }
                }
            }
        }
    }

    #[test]
    fn program_names_end_where_a_plain_scan_says() {
        let plain = |s: &[u8]| {
            let end = s.iter().position(|&b| matches!(b, b'[' | b':' | b' '))?;
            let first = s[..end].iter().position(|&b| b == b'/');
            let last = s[..end].iter().rposition(|&b| b == b'/');
            Some((end, first.zip(last)))
        };
        // Every string of up to seven bytes over these, then longer ones from a fixed pseudo-random sequence.
        let alphabet = [b'a', b'/', b'[', b':', b' '];
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = cases.clone();
        for _ in 0..7 {
            frontier = frontier
                .iter()
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut n = s.clone();
                        n.push(c);
                        n
                    })
                })
                .collect();
            cases.extend(frontier.iter().cloned());
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 58) as usize; // 0..63
            let case = (0..len)
                .map(|i| {
                    let r = seed.rotate_left(i as u32 * 7);
                    // Mostly name bytes, so ends fall at every distance.
                    if r.is_multiple_of(23) {
                        alphabet[(r >> 8) as usize % 5]
                    } else if r.is_multiple_of(5) {
                        b'/'
                    } else {
                        b'p'
                    }
                })
                .collect();
            cases.push(case);
        }
        for case in cases {
            assert_eq!(program_name_end(&case), plain(&case), "{case:?}");
        }
    }

    #[test]
    fn inline_comparisons_agree_with_the_standard_ones() {
        let words: [&[u8]; 16] = [
            b"",
            b"p",
            b"postfix",
            b"postfix-out",
            b"postfix-ou",
            b"mail.example.net",
            b"mail.example.neu",
            b"mail.example.net.",
            b"\xffpostfix",
            b"mail.example.net.internal",
            b"mail.example.net.internaL",
            b"Mail.example.net.internal",
            b"abc",
            b"abd",
            b"abcd",
            b"abce",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
                assert_eq!(starts_with(a, b), a.starts_with(b), "{a:?} {b:?}");
            }
        }
    }
}
