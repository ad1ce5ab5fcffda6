//! Hex version requirements, enough to close a selection over its
//! dependencies: `1.0.0`, `== 1.0.0`, `!= 1.0.0`, `> 1.0.0`, `>= 1.0`,
//! `< 2.0.0`, `<= 2.0.0`, `~> 1.2` (>= 1.2.0, < 2.0.0), `~> 1.2.3`
//! (>= 1.2.3, < 1.3.0), joined with `and` / `or`. Versions are semantic
//! versions; build metadata is ignored, pre-releases sort before their
//! release.

use std::cmp::Ordering;

/// A parsed semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    /// Major, minor, patch.
    pub nums: [u64; 3],
    /// Pre-release identifiers (empty for a release).
    pub pre: Vec<String>,
}

impl SemVer {
    /// Parse `X.Y.Z[-pre][+build]`.
    pub fn parse(s: &str) -> Option<SemVer> {
        let s = s.split('+').next()?;
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_string).collect()),
            None => (s, Vec::new()),
        };
        let mut nums = [0u64; 3];
        let mut parts = core.split('.');
        for n in &mut nums {
            *n = parts.next()?.parse().ok()?;
        }
        parts.next().is_none().then_some(SemVer { nums, pre })
    }

    /// Whether this is a pre-release.
    pub fn is_pre(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nums
            .cmp(&other.nums)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed requirement: alternatives (`or`) of conjunctions (`and`).
#[derive(Debug, Clone)]
pub struct Requirement {
    any: Vec<Vec<(Op, SemVer)>>,
}

impl Requirement {
    /// Parse a requirement; `None` when it is not understood.
    pub fn parse(s: &str) -> Option<Requirement> {
        let mut any = Vec::new();
        for alt in s.split(" or ") {
            let mut all = Vec::new();
            for clause in alt.split(" and ") {
                let clause = clause.trim();
                let (op, v) = ["~>", "==", "!=", ">=", "<=", ">", "<"]
                    .iter()
                    .find_map(|op| clause.strip_prefix(op).map(|v| (*op, v.trim())))
                    .unwrap_or(("==", clause));
                if op == "~>" {
                    let parts: Vec<&str> = v.split(['-', '+']).next()?.split('.').collect();
                    let lower = match parts.len() {
                        2 => SemVer::parse(&format!("{v}.0"))?,
                        3 => SemVer::parse(v)?,
                        _ => return None,
                    };
                    let [ma, mi, _] = lower.nums;
                    let upper = if parts.len() == 2 {
                        [ma + 1, 0, 0]
                    } else {
                        [ma, mi + 1, 0]
                    };
                    all.push((Op::Ge, lower));
                    all.push((
                        Op::Lt,
                        SemVer {
                            nums: upper,
                            pre: vec!["0".into()],
                        },
                    ));
                    continue;
                }
                let op = match op {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    ">=" => Op::Ge,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Lt,
                };
                all.push((op, SemVer::parse(v)?));
            }
            any.push(all);
        }
        Some(Requirement { any })
    }

    /// Whether `v` satisfies the requirement.
    pub fn matches(&self, v: &SemVer) -> bool {
        self.any.iter().any(|all| {
            all.iter().all(|(op, r)| match op {
                Op::Eq => v == r,
                Op::Ne => v != r,
                Op::Gt => v > r,
                Op::Ge => v >= r,
                Op::Lt => v < r,
                Op::Le => v <= r,
            })
        })
    }
}

/// The newest of `versions` satisfying `req`, preferring releases over
/// pre-releases.
pub fn newest_match<'a>(req: &Requirement, versions: &'a [String]) -> Option<&'a str> {
    let mut matching: Vec<(SemVer, &str)> = versions
        .iter()
        .filter_map(|s| SemVer::parse(s).map(|v| (v, s.as_str())))
        .filter(|(v, _)| req.matches(v))
        .collect();
    matching.sort_by(|a, b| (!a.0.is_pre(), &a.0).cmp(&(!b.0.is_pre(), &b.0)));
    matching.last().map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(req: &str, v: &str) -> bool {
        Requirement::parse(req)
            .unwrap()
            .matches(&SemVer::parse(v).unwrap())
    }

    #[test]
    fn requirements() {
        assert!(m("~> 1.2", "1.9.0"));
        assert!(!m("~> 1.2", "2.0.0"));
        assert!(!m("~> 1.2", "2.0.0-rc.1"));
        assert!(m("~> 1.2.3", "1.2.9"));
        assert!(!m("~> 1.2.3", "1.3.0"));
        assert!(m(">= 1.0.0 and < 2.0.0", "1.5.0"));
        assert!(m("1.0.0 or 2.0.0", "2.0.0"));
        assert!(m("1.0.0", "1.0.0+build"));
        assert!(SemVer::parse("1.0.0-rc.1").unwrap() < SemVer::parse("1.0.0").unwrap());
        assert!(SemVer::parse("1.0.0-rc.2").unwrap() < SemVer::parse("1.0.0-rc.10").unwrap());
        assert!(Requirement::parse("~> x").is_none());
        let vs = ["1.0.0", "1.1.0", "2.0.0", "1.2.0-rc.0"].map(String::from);
        assert_eq!(
            newest_match(&Requirement::parse("~> 1.0").unwrap(), &vs),
            Some("1.1.0")
        );
    }
}
