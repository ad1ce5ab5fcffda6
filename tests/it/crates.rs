//! `mirror crate` end to end through the binary, and the crates fixture
//! builder's own checks.

use crate::support::crates::{self, CratesFixture};
use crate::support::upstream::Upstream;

#[test]
fn fixture_builds_history_with_real_crates() {
    let up = Upstream::start();
    let mut fx = CratesFixture::new(&up);
    let heads = crates::standard_history(&mut fx);
    assert_eq!(heads.len(), 5);
    assert_eq!(fx.head(), heads[4]);
    // After the squash, one parentless commit.
    assert_eq!(fx.git(&["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        fx.git(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/master"
    );
    let leaf = fx.read("le/af/leaf").unwrap();
    assert_eq!(leaf.lines().count(), 3, "{leaf}");
    assert!(leaf.lines().next().unwrap().contains("\"yanked\":true"));
    assert!(fx.read("2/ab").is_none(), "removed version's file is gone");
    assert!(fx.read("config.json").unwrap().contains("auth-required"));
    for p in fx.published() {
        let served = up.url(&CratesFixture::crate_upstream_path(&p.name, &p.version));
        assert!(served.ends_with(".crate"));
        // A gzip'd tar with the package directory inside.
        let tar = flate2::read::GzDecoder::new(&p.bytes[..]);
        let names: Vec<String> = tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let root = format!("{}-{}", p.name, p.version);
        assert_eq!(
            names,
            [format!("{root}/Cargo.toml"), format!("{root}/src/lib.rs")]
        );
    }
    let app = fx.read("3/a/app").unwrap();
    assert!(
        app.contains("\"deps\":[{\"name\":\"leaf\",\"req\":\"^1\""),
        "{app}"
    );
    assert!(app.contains(&fx.get("app", "0.1.0").cksum));
}
