//! A partial Hex mirror re-signed with the site's key (`--signing-key`):
//! `names`, `versions` and `packages/<name>` list only what the mirror
//! holds, signed with the site's key, across pack/unpack, and the real
//! rebar3 trusting that key resolves only held releases.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use mirror::eco::hex::registry::{self, PublicKey};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::{CryptoRng, Error as RandError, RngCore};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha512};

use crate::hex::{failed, hex, rebar3, rebar3_home_trusting, rebar_project};
use crate::rustup::{mirror, require_client};
use crate::support::hex::{key_path, HexRepo};
use crate::support::upstream::Upstream;

/// A deterministic generator for the test's key (SHA-512 of a counter):
/// hermetic, and the same key every run.
struct CounterRng {
    counter: u64,
    buf: Vec<u8>,
}

impl RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.buf.is_empty() {
                self.counter += 1;
                let block = Sha512::digest(format!("mirror hex site key {}", self.counter));
                self.buf = block.to_vec();
            }
            *d = self.buf.pop().unwrap();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RandError> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for CounterRng {}

/// The site's key pair, made once per run: (private PKCS#8 PEM, public PEM).
fn site_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = CounterRng {
            counter: 0,
            buf: Vec::new(),
        };
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (private, public)
    })
}

/// The site's keys written under `dir`: (private key file, public key file).
fn site_key_files(dir: &Path) -> (PathBuf, PathBuf) {
    let (private, public) = site_key();
    let (k, p) = (dir.join("site.key.pem"), dir.join("site.pub.pem"));
    std::fs::write(&k, private).unwrap();
    std::fs::write(&p, public).unwrap();
    (k, p)
}

/// The sample repository on a fake upstream, the site's keys, and a
/// tree that ran `ops` on the partial selection signed with them.
struct Site {
    up: Upstream,
    repo: HexRepo,
    root: tempfile::TempDir,
    _keys: tempfile::TempDir,
    /// The private key file.
    key: String,
    /// The public key file.
    public: String,
    /// The tree's archive for pack.
    archive: String,
}

fn site(ops: &[&str]) -> Site {
    let up = Upstream::start();
    let repo = HexRepo::sample();
    repo.publish(&up);
    let root = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = site_key_files(keys.path());
    let (key, public) = (key.display().to_string(), public.display().to_string());
    let archive = root.path().join("hex.tar.gz").display().to_string();
    ok(&hex(root.path(), &up, ops, &partial(&key, &archive)));
    Site {
        up,
        repo,
        root,
        _keys: keys,
        key,
        public,
        archive,
    }
}

fn site_public() -> PublicKey {
    PublicKey::from_pem(&site_key().1, "site key").unwrap()
}

fn upstream_public() -> PublicKey {
    PublicKey::from_pem(
        &std::fs::read_to_string(key_path("hex-test.pub.pem")).unwrap(),
        "test key",
    )
    .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The selection of these tests: alpha's newest release and what it
/// needs, signed with the site key at `key`.
fn partial<'a>(key: &'a str, archive: &'a str) -> Vec<&'a str> {
    vec![
        "--package",
        "alpha",
        "--versions",
        "latest",
        "--with-deps",
        "--signing-key",
        key,
        "--archive",
        archive,
    ]
}

fn read(root: &Path, file: &str) -> Vec<u8> {
    std::fs::read(root.join("hex").join(file)).unwrap()
}

fn package_of(root: &Path, name: &str, key: &PublicKey) -> registry::Package {
    let what = format!("packages/{name}");
    registry::parse_package(&read(root, &what), key, "hexpm", name, &what).unwrap()
}

fn versions_of(root: &Path, name: &str, key: &PublicKey) -> Vec<String> {
    (package_of(root, name, key).releases.into_iter())
        .map(|r| r.version)
        .collect()
}

/// `packages/<name>`, `names` and `versions` of a re-signed partial
/// mirror list only what it holds, verify with the site key (not
/// upstream's), keep upstream's dependencies, checksums, retirements and
/// `updated_at`; the tree serves the site's public key.
#[test]
fn a_resigned_partial_mirror_lists_only_what_it_holds() {
    let Site {
        up,
        repo,
        root,
        key: key_s,
        archive,
        _keys,
        ..
    } = site(&["download", "verify"]);

    let site = site_public();
    assert_eq!(versions_of(root.path(), "alpha", &site), ["1.1.0"]);
    assert_eq!(versions_of(root.path(), "beta", &site), ["2.1.0"]);
    assert!(!root.path().join("hex/packages/gamma").exists());
    let alpha = package_of(root.path(), "alpha", &site);
    let upstream = registry::parse_package(
        &up.get("hex/packages/alpha").unwrap(),
        &upstream_public(),
        "hexpm",
        "alpha",
        "u",
    )
    .unwrap();
    assert_eq!(
        alpha.releases[0], upstream.releases[1],
        "release as upstream signed it"
    );
    assert_eq!(alpha.releases[0].dependencies[0].package, "beta");
    // Not upstream's signature any more.
    let err = registry::parse_package(
        &read(root.path(), "packages/alpha"),
        &upstream_public(),
        "hexpm",
        "alpha",
        "packages/alpha",
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad signature"), "{err}");

    let names =
        registry::parse_names(&read(root.path(), "names"), &site, "hexpm", "names").unwrap();
    let listed: Vec<(&str, i64)> = names
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.updated_at.as_ref().unwrap().seconds))
        .collect();
    assert_eq!(
        listed,
        [
            ("alpha", repo.updated["alpha"]),
            ("beta", repo.updated["beta"])
        ]
    );
    let versions =
        registry::parse_versions(&read(root.path(), "versions"), &site, "hexpm", "versions")
            .unwrap();
    let v: Vec<(&str, Vec<String>)> = versions
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.versions.clone()))
        .collect();
    assert_eq!(
        v,
        [
            ("alpha", vec!["1.1.0".to_string()]),
            ("beta", vec!["2.1.0".to_string()])
        ]
    );
    assert_eq!(
        String::from_utf8(read(root.path(), "public_key")).unwrap(),
        site_key().1
    );

    // The selection grows to every alpha: the retired 1.0.0 comes, still
    // retired, in packages/alpha and in versions.
    let mut grown = partial(&key_s, &archive);
    grown[3] = "all";
    let err = ok(&hex(root.path(), &up, &["download", "verify"], &grown));
    assert!(!err.contains("may resolve"), "{err}");
    assert_eq!(versions_of(root.path(), "alpha", &site), ["1.0.0", "1.1.0"]);
    let alpha = package_of(root.path(), "alpha", &site);
    assert!(alpha.releases[0].retired.is_some() && alpha.releases[1].retired.is_none());
    let versions =
        registry::parse_versions(&read(root.path(), "versions"), &site, "hexpm", "versions")
            .unwrap();
    assert_eq!(versions.packages[0].versions, ["1.0.0", "1.1.0"]);
    assert_eq!(versions.packages[0].retired, [0]);
    assert_eq!(versions_of(root.path(), "beta", &site), ["2.0.0", "2.1.0"]);
    // A run with nothing new leaves the re-signed files as they are.
    let before = read(root.path(), "packages/alpha");
    let mtime = |f: &str| {
        std::fs::metadata(root.path().join("hex").join(f))
            .unwrap()
            .modified()
            .unwrap()
    };
    let t = mtime("packages/alpha");
    ok(&hex(root.path(), &up, &["download"], &grown));
    assert_eq!(read(root.path(), "packages/alpha"), before);
    assert_eq!(mtime("packages/alpha"), t);
}

/// Without a key a partial mirror behaves as before, saying once that
/// clients may resolve releases it does not hold; a full mirror refuses a
/// key (it keeps upstream's files unchanged).
#[test]
fn without_a_key_a_partial_mirror_warns_once_and_a_full_one_refuses_a_key() {
    let up = Upstream::start();
    HexRepo::sample().publish(&up);
    let root = tempfile::tempdir().unwrap();
    let err = ok(&hex(
        root.path(),
        &up,
        &["download", "download"],
        &["--package", "alpha", "--versions", "latest", "--with-deps"],
    ));
    assert_eq!(err.matches("may resolve").count(), 1, "{err}");
    assert!(err.contains("--signing-key"), "{err}");
    // Upstream's bytes, unchanged.
    assert_eq!(
        read(root.path(), "packages/alpha"),
        up.get("hex/packages/alpha").unwrap()
    );

    let keys = tempfile::tempdir().unwrap();
    let (key, _) = site_key_files(keys.path());
    let full = tempfile::tempdir().unwrap();
    let err = failed(&hex(
        full.path(),
        &up,
        &["download"],
        &["--signing-key", &key.display().to_string()],
    ));
    assert!(
        err.contains("--signing-key re-signs a partial mirror"),
        "{err}"
    );
    assert!(!full.path().join("hex/names").exists());
}

/// pack → unpack on a tree that holds only the site's public key: the
/// re-signed files arrive byte for byte and verify; a re-signed file
/// swapped on the way (upstream's own, validly signed by upstream, or one
/// signed by another key) is refused and nothing is published.
#[test]
fn a_resigned_mirror_crosses_by_pack_and_tampering_is_refused() {
    let Site {
        up,
        repo,
        root: online,
        key: key_s,
        public: public_s,
        archive,
        _keys,
        ..
    } = site(&["download", "pack"]);

    // The far side trusts the site's public key (it holds no private key).
    let site_args = |root: &Path, ops: &[&str]| {
        mirror(
            root,
            &[
                &["hex"],
                ops,
                &["--public-key", &public_s, "--archive", &archive],
            ]
            .concat(),
        )
    };
    let offline = tempfile::tempdir().unwrap();
    ok(&site_args(offline.path(), &["unpack", "verify"]));
    for f in [
        "names",
        "versions",
        "packages/alpha",
        "packages/beta",
        "tarballs/beta-2.1.0.tar",
    ] {
        assert_eq!(read(offline.path(), f), read(online.path(), f), "{f}");
    }
    assert_eq!(
        String::from_utf8(read(offline.path(), "public_key")).unwrap(),
        site_key().1
    );
    assert!(!offline.path().join("hex/tarballs/beta-2.0.0.tar").exists());

    // The landing page shows the client side with the site's key.
    let page = landing_page(offline.path());
    let first_line = site_key().1.lines().nth(1).unwrap();
    for want in [
        "repo_public_key",
        first_line,
        "mix hex.repo set hexpm --url http://m.example/hex --public-key",
        "http://m.example/hex/public_key",
    ] {
        assert!(page.contains(want), "{want} not in {page}");
    }
    // Not for a tree signed with hexpm's own key.
    let plain = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(plain.path().join("hex")).unwrap();
    std::fs::write(
        plain.path().join("hex/public_key"),
        PublicKey::hexpm().pem(),
    )
    .unwrap();
    let page = landing_page(plain.path());
    assert!(
        page.contains("HEX_CDN") && !page.contains("repo_public_key"),
        "{page}"
    );

    // Swapped on the way: upstream's own file (all releases, validly
    // signed by upstream), then one signed by another key.
    let mut other = repo.clone();
    other.key = "hex-test-other.key.pem".into();
    for (file, bytes) in [
        ("packages/beta", up.get("hex/packages/beta").unwrap()),
        ("packages/beta", other.package_resource("beta")),
        ("names", up.get("hex/names").unwrap()),
    ] {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let archive_a = a.path().join("hex.tar.gz").display().to_string();
        ok(&hex(
            a.path(),
            &up,
            &["download"],
            &partial(&key_s, &archive_a),
        ));
        std::fs::write(a.path().join("hex").join(file), bytes).unwrap();
        ok(&hex(a.path(), &up, &["pack"], &partial(&key_s, &archive_a)));
        let err = failed(&mirror(
            b.path(),
            &[
                "hex",
                "unpack",
                "--public-key",
                &public_s,
                "--archive",
                &archive_a,
            ],
        ));
        assert!(err.contains(&format!("hex/{file}")), "{err}");
        assert!(err.contains("bad signature"), "{err}");
        assert!(err.contains("nothing was published"), "{err}");
        assert!(!b.path().join("hex/names").exists());
        assert!(!b.path().join("hex/packages").exists());
    }
}

/// What `mirror serve` shows on its landing page for the tree at `root`.
fn landing_page(root: &Path) -> String {
    use mirror::serve::info::{page, PageContext};
    let cx = PageContext {
        base: "http://m.example".into(),
        ..PageContext::default()
    };
    page(root, &mirror::serve::held::read(root), &cx)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The real rebar3 trusting the site's key: a held package and its
/// dependencies are fetched from `mirror serve`; a project pinning a
/// release the mirror does not hold fails at resolution, with no request
/// for its tarball.
#[test]
fn real_rebar3_resolves_only_held_releases() {
    let Some(rebar3_bin) = require_client("rebar3") else {
        return;
    };
    // Held to the end: the tree holds the archive, `_keys` the key.
    let Site {
        public,
        archive,
        root: _online,
        _keys,
        ..
    } = site(&["download", "pack"]);
    let offline = tempfile::tempdir().unwrap();
    ok(&mirror(
        offline.path(),
        &[
            "hex",
            "unpack",
            "verify",
            "--public-key",
            &public,
            "--archive",
            &archive,
        ],
    ));

    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(offline.path())).unwrap();
    let cdn = server.url("/hex");
    let home = tempfile::tempdir().unwrap();
    rebar3_home_trusting(home.path(), &site_key().1);
    let project = home.path().join("proj");
    rebar_project(&project, "alpha", "~> 1.0");
    let out = rebar3(&rebar3_bin, home.path(), &project, &cdn, &["compile"]);
    assert!(
        out.status.success(),
        "rebar3 compile failed: {}",
        text(&out)
    );
    let lib = project.join("_build/default/lib");
    for dep in ["alpha", "beta"] {
        assert!(lib.join(dep).join("src").is_dir(), "{dep} not fetched");
    }
    let lock = std::fs::read_to_string(project.join("rebar.lock")).unwrap();
    assert!(lock.contains("<<\"beta\">>,<<\"2.1.0\">>"), "{lock}");
    server.stop().unwrap();

    // The same tree on a server that counts requests; a fresh HOME (no
    // cached registry), a project pinning beta 2.0.0, which the mirror
    // does not hold.
    let counting = Upstream::start();
    let files = crate::support::tree::files(offline.path(), |p| {
        p.starts_with("hex/") && !p.contains("/.")
    });
    for (rel, bytes) in files {
        counting.put(&rel, bytes);
    }
    let home = tempfile::tempdir().unwrap();
    rebar3_home_trusting(home.path(), &site_key().1);
    let pinned = home.path().join("pinned");
    rebar_project(&pinned, "beta", "2.0.0");
    let out = rebar3(
        &rebar3_bin,
        home.path(),
        &pinned,
        &counting.url("hex"),
        &["compile"],
    );
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    // At resolution: rebar3's registry (the re-signed packages/beta) has
    // no 2.0.0.
    assert!(
        said.contains("Package not found in any repo: beta 2.0.0"),
        "{said}"
    );
    let paths: Vec<String> = counting.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/hex/packages/beta"),
        "rebar3 resolved through the mirror: {paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("/hex/tarballs/")),
        "a tarball was requested: {paths:?}"
    );
}

/// `mirror serve --upstream-hex` over a re-signed tree keeps its
/// `packages/<name>` (upstream's would list what it does not hold and
/// fail the site's key): served as held, never fetched.
#[test]
fn the_pull_through_cache_keeps_a_resigned_tree_as_it_is() {
    use mirror::serve::cache::{HexUpstream, UpstreamOptions};
    let Site {
        up, root, _keys, ..
    } = site(&["download"]);
    let held = read(root.path(), "packages/beta");
    up.clear_requests();
    let server = crate::serve_cache::pulling_server(
        root.path(),
        UpstreamOptions {
            hex: Some(HexUpstream {
                url: up.url("hex"),
                key: upstream_public(),
                repo: "hexpm".into(),
            }),
            ttl: crate::serve_cache::LONG,
            ..UpstreamOptions::default()
        },
    );
    for (path, want) in [
        ("/hex/packages/beta", held.clone()),
        ("/hex/names", read(root.path(), "names")),
        ("/hex/public_key", site_key().1.clone().into_bytes()),
    ] {
        let r = crate::serve_cache::get(&server, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.body, want, "{path}");
    }
    assert_eq!(read(root.path(), "packages/beta"), held);
    assert_eq!(up.gets("hex/packages/beta"), 0);
    server.stop().unwrap();
}

/// A package dropped from the selection (`--remove`) leaves a re-signed
/// tree's `names` and `versions` at once, and the next archive's: they
/// list what is held, each package with the `updated_at` it had.
#[test]
fn a_dropped_package_leaves_the_resigned_names() {
    let Site {
        up,
        repo,
        root,
        key,
        _keys,
        ..
    } = site(&["download"]);
    let names = |root: &Path| -> Vec<(String, i64)> {
        registry::parse_names(&read(root, "names"), &site_public(), "hexpm", "names")
            .unwrap()
            .packages
            .into_iter()
            .map(|p| (p.name, p.updated_at.unwrap().seconds))
            .collect()
    };
    let listed =
        |names: &[(String, i64)]| -> Vec<String> { names.iter().map(|(n, _)| n.clone()).collect() };
    let signing = ["--signing-key", key.as_str()];
    ok(&hex(
        root.path(),
        &up,
        &["download"],
        &[&["--package", "gamma"][..], &signing].concat(),
    ));
    assert_eq!(listed(&names(root.path())), ["alpha", "beta", "gamma"]);
    ok(&hex(
        root.path(),
        &up,
        &["download", "verify"],
        &[&["--remove", "gamma"][..], &signing].concat(),
    ));
    assert!(!root.path().join("hex/packages/gamma").exists());
    assert_eq!(
        names(root.path()),
        [
            ("alpha".to_string(), repo.updated["alpha"]),
            ("beta".to_string(), repo.updated["beta"])
        ]
    );
    let versions =
        registry::parse_versions(&read(root.path(), "versions"), &site_public(), "hexpm", "v")
            .unwrap();
    let v: Vec<&str> = versions.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(v, ["alpha", "beta"]);
}
