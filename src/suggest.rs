//! "Did you mean": the known names nearest to a name that is not one
//! (Levenshtein distance, from `strsim`), for refusals of typo'd targets,
//! components, repositories, architectures and packages.

/// The names of `known` nearest to `wanted`: those at the smallest edit
/// distance, if it is at most a third of the longer name (plus one), at
/// most `MAX` of them, sorted.
pub fn nearest<'a, I>(wanted: &str, known: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a str>,
{
    const MAX: usize = 3;
    let mut best: Option<usize> = None;
    let mut out: Vec<String> = Vec::new();
    for k in known {
        let d = strsim::levenshtein(wanted, k);
        let limit = wanted.chars().count().max(k.chars().count()) / 3 + 1;
        if d > limit {
            continue;
        }
        match best {
            Some(b) if d > b => {}
            Some(b) if d == b => out.push(k.to_string()),
            _ => {
                best = Some(d);
                out = vec![k.to_string()];
            }
        }
    }
    out.sort();
    out.dedup();
    out.truncate(MAX);
    out
}

/// `unknown WHAT "NAME" (did you mean A or B?)`, or, with no near name,
/// `unknown WHAT "NAME" (known: …)` listing up to a few of `known`.
pub fn unknown<'a, I>(what: &str, wanted: &str, known: I) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    let near = nearest(wanted, known.clone());
    if !near.is_empty() {
        return format!(
            "unknown {what} {wanted:?} (did you mean {}?)",
            near.join(" or ")
        );
    }
    const SHOWN: usize = 10;
    let mut all: Vec<&str> = known.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return format!("unknown {what} {wanted:?}");
    }
    let more = all.len().saturating_sub(SHOWN);
    let mut list = all[..all.len().min(SHOWN)].join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    format!("unknown {what} {wanted:?} (known: {list})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_the_closest() {
        let known = [
            "x86_64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-gnu",
        ];
        assert_eq!(
            nearest("x86_64-unknown-linux-gnux", known),
            ["x86_64-unknown-linux-gnu"]
        );
        assert!(nearest("zzz", known).is_empty());
        let m = unknown("target", "x86_64-unknown-linux-gnux", known);
        assert!(m.contains("did you mean x86_64-unknown-linux-gnu?"), "{m}");
        let m = unknown("repository", "zzz", ["core", "extra"]);
        assert_eq!(m, "unknown repository \"zzz\" (known: core, extra)");
    }
}
