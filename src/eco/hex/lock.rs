//! Package pins from lock files, for `--rebar-lock` and `--mix-lock`.
//!
//! - `rebar.lock` (Erlang terms): every `{pkg,<<"NAME">>,<<"VERSION">>` is a
//!   Hex package (git dependencies look different and are skipped).
//! - `mix.lock` (an Elixir map): every `{:hex, :NAME, "VERSION", …,
//!   "REPO", …}`; entries of another repository than the one mirrored
//!   (`hexpm:org`, …) are skipped.
//!
//! Only the shapes above are read; nothing is evaluated.

/// `(name, version)` pins of a `rebar.lock`.
pub fn parse_rebar_lock(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split("{pkg,").skip(1) {
        let mut bins = binaries(part);
        if let (Some(name), Some(version)) = (bins.next(), bins.next()) {
            out.push((name, version));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The contents of the leading `<<"…">>` terms of `s`, in order, until
/// the first `}`.
fn binaries(s: &str) -> impl Iterator<Item = String> + '_ {
    let end = s.find('}').unwrap_or(s.len());
    s[..end]
        .split("<<\"")
        .skip(1)
        .filter_map(|b| b.split_once("\">>").map(|(v, _)| v.to_string()))
}

/// The comma-separated fields of a tuple body, up to its closing brace,
/// honouring nested brackets and strings.
fn top_level_fields(s: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let (mut depth, mut in_str, mut start) = (0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '{' | '[' => depth += 1,
            '}' | ']' if depth == 0 => {
                fields.push(&s[start..i]);
                return fields;
            }
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields
}

/// `(name, version)` pins of a `mix.lock` for repository `repo`.
pub fn parse_mix_lock(text: &str, repo: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split("{:hex,").skip(1) {
        // `:name, "version", "inner", [:mix], [deps…], "repo", "outer"}`
        let fields = top_level_fields(part);
        let unquote = |f: &str| f.trim().trim_matches('"').to_string();
        let (Some(name), Some(version)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let name = name.trim().trim_start_matches(':').to_string();
        let entry_repo = fields
            .get(5)
            .map(|r| unquote(r))
            .unwrap_or_else(|| super::DEFAULT_REPO_NAME.to_string());
        if entry_repo == repo {
            out.push((name, unquote(version)));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebar_lock() {
        let text = r#"{"1.2.0",
[{<<"alpha">>,{pkg,<<"alpha">>,<<"1.1.0">>},0},
 {<<"beta">>,{pkg,<<"beta">>,<<"2.1.0">>},1},
 {<<"gitdep">>,{git,"https://example.invalid/x.git",{ref,"abc"}},0}]}.
[
{pkg_hash,[
 {<<"alpha">>, <<"4AF7">>},
 {<<"beta">>, <<"FE90">>}]}
].
"#;
        assert_eq!(
            parse_rebar_lock(text),
            [
                ("alpha".into(), "1.1.0".into()),
                ("beta".into(), "2.1.0".into())
            ]
        );
    }

    #[test]
    fn mix_lock() {
        let text = r#"%{
  "alpha": {:hex, :alpha, "1.1.0", "4af7", [:mix], [{:beta, "~> 2.0", [hex: :beta, repo: "hexpm", optional: false]}], "hexpm", "fe90"},
  "beta": {:hex, :beta, "2.1.0", "aa", [:rebar3], [], "hexpm", "bb"},
  "private": {:hex, :private, "0.1.0", "cc", [:mix], [], "hexpm:acme", "dd"},
  "gitdep": {:git, "https://example.invalid/x.git", "abc", []},
}
"#;
        assert_eq!(
            parse_mix_lock(text, "hexpm"),
            [
                ("alpha".into(), "1.1.0".into()),
                ("beta".into(), "2.1.0".into())
            ]
        );
    }
}
