//! Which package files to keep: pacman's version order and the
//! "newest N versions of each package" rule of `clean` (as paccache and
//! caching proxies keep them).
//!
//! A package file is `<name>-<pkgver>-<pkgrel>-<arch>.pkg.tar[.<ext>]`;
//! the name may itself contain `-`, so the last three fields are split off
//! from the right. Versions compare like `vercmp`: epoch first
//! (numerically), then `pkgver` and `pkgrel` by segments — runs of digits
//! compare numerically, runs of letters as text, a digit run beats a letter
//! run, and a trailing letter run (`1.0rc1` vs `1.0`) is older.

use std::cmp::Ordering;

/// A package file name split into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile<'a> {
    /// The package name.
    pub name: &'a str,
    /// `[epoch:]pkgver-pkgrel`.
    pub version: &'a str,
    /// The architecture field.
    pub arch: &'a str,
}

/// Split `<name>-<pkgver>-<pkgrel>-<arch>.pkg.tar[.<ext>]`; `None` for any
/// other file (signatures, databases, partial downloads).
pub fn parse_package_file(file: &str) -> Option<PackageFile<'_>> {
    let stem = match file.find(".pkg.tar") {
        Some(i) => {
            let ext = &file[i + ".pkg.tar".len()..];
            if !(ext.is_empty()
                || matches!(
                    ext,
                    ".zst" | ".xz" | ".gz" | ".bz2" | ".lz4" | ".lrz" | ".lzo" | ".Z" | ".lz"
                ))
            {
                return None;
            }
            &file[..i]
        }
        None => return None,
    };
    let mut it = stem.rsplitn(4, '-');
    let arch = it.next()?;
    let rel = it.next()?;
    let ver = it.next()?;
    let name = it.next()?;
    if name.is_empty() || ver.is_empty() || rel.is_empty() || arch.is_empty() {
        return None;
    }
    let version = &stem[name.len() + 1..stem.len() - arch.len() - 1];
    Some(PackageFile {
        name,
        version,
        arch,
    })
}

/// Compare two `[epoch:]pkgver[-pkgrel]` versions like pacman's `vercmp`.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (ea, va, ra) = split_evr(a);
    let (eb, vb, rb) = split_evr(b);
    let by_epoch = segment_cmp(ea, eb);
    if by_epoch != Ordering::Equal {
        return by_epoch;
    }
    let by_ver = segment_cmp(va, vb);
    if by_ver != Ordering::Equal {
        return by_ver;
    }
    match (ra, rb) {
        (Some(x), Some(y)) => segment_cmp(x, y),
        _ => Ordering::Equal,
    }
}

/// `epoch:ver-rel` → (epoch or "0", ver, rel).
fn split_evr(s: &str) -> (&str, &str, Option<&str>) {
    let (epoch, rest) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) if s.as_bytes()[i] == b':' => (&s[..i], &s[i + 1..]),
        _ => ("0", s),
    };
    let epoch = if epoch.is_empty() { "0" } else { epoch };
    match rest.rfind('-') {
        Some(i) => (epoch, &rest[..i], Some(&rest[i + 1..])),
        None => (epoch, rest, None),
    }
}

/// The segment comparison of `rpmvercmp`.
fn segment_cmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (si, sj) = (i, j);
        while i < a.len() && !a[i].is_ascii_alphanumeric() {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        // Different separator runs: the one with the longer run is newer.
        if i - si != j - sj {
            return (i - si).cmp(&(j - sj));
        }
        let numeric = a[i].is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (a0, a1) = take(a, i);
        let (b0, b1) = take(b, j);
        if b0 == b1 {
            // Segments of different kinds: digits are newer.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut x, mut y) = (&a[a0..a1], &b[b0..b1]);
        let ord = if numeric {
            while x.len() > 1 && x[0] == b'0' {
                x = &x[1..];
            }
            while y.len() > 1 && y[0] == b'0' {
                y = &y[1..];
            }
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        i = a1;
        j = b1;
    }
    let (ra, rb) = (&a[i.min(a.len())..], &b[j.min(b.len())..]);
    if ra.is_empty() && rb.is_empty() {
        return Ordering::Equal;
    }
    // A remaining letter run never beats the end of the other string.
    if (ra.is_empty() && !rb[0].is_ascii_alphabetic())
        || (!ra.is_empty() && ra[0].is_ascii_alphabetic())
    {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

/// Of `files` (package file names of one directory), those to remove so
/// that each package keeps its newest `keep` versions; `keep == 0` keeps
/// everything. Files named in `protect` (what the current database lists)
/// are never removed and count towards the versions kept.
pub fn to_remove<'a>(
    files: &'a [String],
    keep: usize,
    protect: &std::collections::HashSet<String>,
) -> Vec<&'a str> {
    if keep == 0 {
        return Vec::new();
    }
    let mut by_name: std::collections::BTreeMap<(&str, &str), Vec<(&str, &str)>> =
        std::collections::BTreeMap::new();
    for f in files {
        if let Some(p) = parse_package_file(f) {
            by_name
                .entry((p.name, p.arch))
                .or_default()
                .push((p.version, f.as_str()));
        }
    }
    let mut out = Vec::new();
    for (_, mut versions) in by_name {
        versions.sort_by(|x, y| vercmp(y.0, x.0).then_with(|| x.1.cmp(y.1)));
        // Newest first; protected files are kept and fill slots.
        let mut kept = versions
            .iter()
            .filter(|(_, f)| protect.contains(*f))
            .count();
        for (_, f) in versions {
            if protect.contains(f) {
                continue;
            }
            if kept < keep {
                kept += 1;
            } else {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn vercmp_like_pacman() {
        for (a, b, o) in [
            ("1.0-1", "1.0-1", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0", Less),
            ("1.0rc1", "1.0", Less),
            ("1.0", "1.0.a", Less),
            ("1.0", "1.0.1", Less),
            ("1.0.a", "1.0.1", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("1.001", "1.1", Equal),
            ("1.0", "1_0", Equal),
            ("1..0", "1.0", Greater),
            ("2.0-1", "2.0", Equal),
            ("20240101-1", "3.0-1", Greater),
        ] {
            assert_eq!(vercmp(a, b), o, "{a} vs {b}");
            assert_eq!(vercmp(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn package_file_names_split_from_the_right() {
        let p = parse_package_file("lib32-gcc-libs-1:14.1.1-2-x86_64.pkg.tar.zst").unwrap();
        assert_eq!(
            (p.name, p.version, p.arch),
            ("lib32-gcc-libs", "1:14.1.1-2", "x86_64")
        );
        assert!(parse_package_file("core.db.tar.gz").is_none());
        assert!(parse_package_file("a-1-1-any.pkg.tar.zst.sig").is_none());
        assert!(parse_package_file("a-1-any.pkg.tar.zst").is_none());
    }

    #[test]
    fn keep_newest_n_per_package() {
        let files: Vec<String> = [
            "a-1.0-1-any.pkg.tar.zst",
            "a-1.1-1-any.pkg.tar.zst",
            "a-1.10-1-any.pkg.tar.zst",
            "a-1.2-1-any.pkg.tar.zst",
            "b-2-1-x86_64.pkg.tar.zst",
        ]
        .map(String::from)
        .to_vec();
        let none = Default::default();
        assert_eq!(
            to_remove(&files, 2, &none),
            ["a-1.0-1-any.pkg.tar.zst", "a-1.1-1-any.pkg.tar.zst"]
        );
        assert!(to_remove(&files, 0, &none).is_empty());
        let protect = ["a-1.0-1-any.pkg.tar.zst".to_string()].into();
        assert_eq!(
            to_remove(&files, 2, &protect),
            ["a-1.1-1-any.pkg.tar.zst", "a-1.2-1-any.pkg.tar.zst"]
        );
    }
}
