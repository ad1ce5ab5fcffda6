//! `mirror arch` end to end through the binary: a signed fixture repository
//! on the fake upstream, download, refusals, updates with retention, mirror
//! fallback, pack/unpack, and the real pacman syncing from `mirror serve`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::rustup::{mirror, require_client};
use crate::support::arch::{publish, publish_with, Pkg, Repo, ARCH};
use crate::support::keys::{keys_dir, TestKey};
use crate::support::upstream::{Fault, Upstream};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mirror failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "mirror succeeded unexpectedly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn keyring() -> String {
    TestKey::Signing.public_path().display().to_string()
}

/// `mirror arch OPS --url URL --repo core --keyring test-key ...`
fn arch(root: &Path, ops: &[&str], urls: &[String], extra: &[&str]) -> Output {
    let key = keyring();
    let mut args: Vec<&str> = vec!["arch"];
    args.extend_from_slice(ops);
    for u in urls {
        args.extend(["--url", u.as_str()]);
    }
    args.extend(["--repo", "core", "--keyring", &key, "--retries", "1"]);
    args.extend_from_slice(extra);
    mirror(root, &args)
}

fn repo_dir(root: &Path) -> PathBuf {
    root.join(format!("archlinux/core/os/{ARCH}"))
}

pub(crate) fn two_packages() -> Vec<Pkg> {
    let mut world = Pkg::new("world", "2.0-1");
    world.depends = vec!["hello>=1.0".into()];
    vec![Pkg::new("hello", "1.0-1"), world]
}

#[test]
fn download_writes_the_layout_and_publishes_the_database() {
    let up = Upstream::start();
    let repo = publish(&up, "m", "core", &two_packages());
    let root = tempfile::tempdir().unwrap();
    ok(&arch(
        root.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &[],
    ));
    let dir = repo_dir(root.path());
    for (file, bytes) in &repo.files {
        assert_eq!(&fs::read(dir.join(file)).unwrap(), bytes);
        assert!(dir.join(format!("{file}.sig")).is_file());
    }
    for db in [
        "core.db",
        "core.db.tar.gz",
        "core.files",
        "core.files.tar.gz",
    ] {
        let meta = fs::symlink_metadata(dir.join(db)).unwrap();
        assert!(meta.file_type().is_file(), "{db} is a regular file");
        assert_eq!(fs::read(dir.join(db)).unwrap(), repo.db, "{db}");
    }
    // Official databases are unsigned: the 404 is fine, no .sig written.
    assert!(!dir.join("core.db.sig").exists());
    assert!(root.path().join("archlinux/lastsync").is_file());

    let list = ok(&arch(root.path(), &["list"], &[], &[]));
    assert_eq!(list, "core\thello\t1.0-1\ncore\tworld\t2.0-1\n");
    ok(&arch(root.path(), &["verify"], &[], &[]));

    // A second run downloads nothing.
    up.clear_requests();
    ok(&arch(
        root.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &[],
    ));
    for file in repo.files.keys() {
        assert_eq!(up.gets(&format!("{}/{file}", repo.dir)), 0, "{file}");
    }

    // A tampered file on disk fails verify, naming it.
    let victim = dir.join("hello-1.0-1-x86_64.pkg.tar.zst");
    let mut bytes = fs::read(&victim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&victim, bytes).unwrap();
    let err = failed(&arch(root.path(), &["verify"], &[], &[]));
    assert!(
        err.contains("checksum mismatch") && err.contains("hello-1.0-1-x86_64.pkg.tar.zst"),
        "{err}"
    );
}

/// Each bad upstream is refused with a message saying what was wrong, and
/// the database is not published.
#[test]
fn bad_packages_are_refused_and_nothing_is_published() {
    type Setup = Box<dyn Fn(&Upstream)>;
    // The signed repository with one field of `hello`'s desc replaced.
    let hello_field = |key: &'static str, value: &'static str| -> Setup {
        Box::new(move |up: &Upstream| {
            publish_with(up, "m", "core", &two_packages(), TestKey::Signing, |d| {
                if d.get("NAME") == Some("hello") {
                    d.fields.insert(key.into(), vec![value.into()]);
                }
            });
        })
    };
    let hello = Pkg::new("hello", "1.0-1").filename();
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "tampered package",
            Box::new(|up: &Upstream| {
                let dir = publish(up, "m", "core", &two_packages()).dir;
                let path = format!("{dir}/{}", Pkg::new("hello", "1.0-1").filename());
                up.fault(&path, Fault::WrongBytes, 100);
            }),
            "checksum mismatch",
        ),
        ("wrong size", hello_field("CSIZE", "5"), "size mismatch"),
        (
            "absurd size",
            hello_field("CSIZE", "1000000000000000"),
            "expected size: 1000000000000000",
        ),
        (
            "bad signature",
            Box::new(|up: &Upstream| {
                let repo = publish(up, "m", "core", &two_packages());
                let file = Pkg::new("hello", "1.0-1").filename();
                up.put(
                    &format!("{}/{file}.sig", repo.dir),
                    crate::support::keys::sign_detached(TestKey::Signing, b"other bytes", false),
                );
            }),
            "bad OpenPGP signature",
        ),
        (
            "missing signature",
            Box::new(|up: &Upstream| {
                let repo = publish(up, "m", "core", &two_packages());
                let file = Pkg::new("hello", "1.0-1").filename();
                up.remove(&format!("{}/{file}.sig", repo.dir));
            }),
            "404",
        ),
        (
            "unknown signer",
            Box::new(|up: &Upstream| {
                publish_with(up, "m", "core", &two_packages(), TestKey::Other, |_| {});
            }),
            "unknown key",
        ),
        (
            "hostile file name",
            hello_field("FILENAME", "../../../evil.pkg.tar.zst"),
            "%FILENAME%",
        ),
    ];
    for (what, setup, expected) in cases {
        let up = Upstream::start();
        setup(&up);
        let root = tempfile::tempdir().unwrap();
        let err = failed(&arch(
            root.path(),
            &["download"],
            &[up.url("m/$repo/os/$arch")],
            &[],
        ));
        assert!(err.contains(expected), "{what}: {err}");
        assert!(err.contains("core"), "{what}: names the repository: {err}");
        let dir = repo_dir(root.path());
        for db in ["core.db", "core.db.tar.gz", "core.files"] {
            assert!(!dir.join(db).exists(), "{what}: {db} published");
        }
        assert!(!dir.join(&hello).exists(), "{what}: bad package published");
        assert!(!root.path().join("evil.pkg.tar.zst").exists());
        assert!(!root.path().join("archlinux/evil.pkg.tar.zst").exists());
    }
}

#[test]
fn update_fetches_only_the_new_version_and_keeps_n() {
    let up = Upstream::start();
    let root = tempfile::tempdir().unwrap();
    let url = [up.url("m/$repo/os/$arch")];
    let retain = ["--num-versions-retain", "2"];
    let world = Pkg::new("world", "2.0-1");
    for (i, v) in ["1.0-1", "1.1-1", "1.10-1"].iter().enumerate() {
        let repo = publish(&up, "m", "core", &[Pkg::new("hello", v), world.clone()]);
        up.clear_requests();
        ok(&arch(root.path(), &["update"], &url, &retain));
        let pkg_gets: usize = up
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(".pkg.tar.zst"))
            .count();
        let expected = if i == 0 { 2 } else { 1 };
        assert_eq!(pkg_gets, expected, "round {i}: package downloads");
        let db = fs::read(repo_dir(root.path()).join("core.db")).unwrap();
        assert_eq!(db, repo.db, "round {i}: database is the upstream one");
    }
    let dir = repo_dir(root.path());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hello-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hello-1.1-1-x86_64.pkg.tar.zst",
            "hello-1.1-1-x86_64.pkg.tar.zst.sig",
            "hello-1.10-1-x86_64.pkg.tar.zst",
            "hello-1.10-1-x86_64.pkg.tar.zst.sig",
        ]
    );
    let list = ok(&arch(root.path(), &["list"], &[], &[]));
    assert!(list.contains("core\thello\t1.10-1\n"), "{list}");
    ok(&arch(root.path(), &["verify"], &[], &[]));
}

#[test]
fn a_failing_mirror_falls_back_to_the_next() {
    let up = Upstream::start();
    let bad = publish(&up, "bad", "core", &two_packages());
    let good = publish(&up, "good", "core", &two_packages());
    // The first mirror answers 500 for its database.
    up.fault(&format!("{}/core.db", bad.dir), Fault::Status(500), 100);
    let urls = [up.url("bad/$repo/os/$arch"), up.url("good/$repo/os/$arch")];
    let root = tempfile::tempdir().unwrap();
    ok(&arch(root.path(), &["download"], &urls, &[]));
    assert_eq!(
        fs::read(repo_dir(root.path()).join("core.db")).unwrap(),
        good.db
    );
    for file in good.files.keys() {
        assert_eq!(up.gets(&format!("{}/{file}", good.dir)), 1, "{file}");
        assert_eq!(up.gets(&format!("{}/{file}", bad.dir)), 0, "{file}");
    }

    // The first mirror serves its database but fails a package: the
    // package comes from the second.
    let root = tempfile::tempdir().unwrap();
    let hello = Pkg::new("hello", "1.0-1").filename();
    up.clear_requests();
    up.fault(&format!("{}/{hello}", good.dir), Fault::Status(500), 100);
    let urls = [up.url("good/$repo/os/$arch"), up.url("bad/$repo/os/$arch")];
    ok(&arch(root.path(), &["download"], &urls, &[]));
    assert_eq!(
        fs::read(repo_dir(root.path()).join(&hello)).unwrap(),
        good.files[&hello]
    );
    assert_eq!(up.gets(&format!("{}/{hello}", bad.dir)), 1);

    // The first mirror serves a database that is not one: the second's
    // is used, and the warning says why.
    let root = tempfile::tempdir().unwrap();
    let junk = publish(&up, "junk", "core", &two_packages());
    up.put(&format!("{}/core.db", junk.dir), "<html>maintenance</html>");
    let urls = [up.url("junk/$repo/os/$arch"), up.url("good/$repo/os/$arch")];
    let out = arch(root.path(), &["download"], &urls, &[]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pacman database"), "{err}");
    assert_eq!(
        fs::read(repo_dir(root.path()).join("core.db")).unwrap(),
        good.db
    );
}

#[test]
fn unpack_refuses_packages_its_keyring_does_not_trust() {
    let up = Upstream::start();
    publish(&up, "m", "core", &two_packages());
    let online = tempfile::tempdir().unwrap();
    let archive = online.path().join("arch.tar.gz");
    let archive_arg = archive.display().to_string();
    ok(&arch(
        online.path(),
        &["export"],
        &[up.url("m/$repo/os/$arch")],
        &["--archive", &archive_arg],
    ));
    let offline = tempfile::tempdir().unwrap();
    let other = TestKey::Other.public_path().display().to_string();
    let err = failed(&mirror(
        offline.path(),
        &[
            "arch",
            "unpack",
            "--archive",
            &archive_arg,
            "--keyring",
            &other,
        ],
    ));
    assert!(err.contains("unknown key"), "{err}");
    assert!(!repo_dir(offline.path()).join("core.db").exists());
    assert!(
        !repo_dir(offline.path()).exists()
            || fs::read_dir(repo_dir(offline.path()))
                .unwrap()
                .next()
                .is_none()
    );
}

/// download → export → import on a second tree → `mirror serve` → the real
/// The real pacman and pacman-key, and `sudo` when not root; `None` (the
/// test is skipped) when they cannot run.
pub(crate) fn pacman_clients() -> Option<(PathBuf, PathBuf, Option<PathBuf>)> {
    let pacman = require_client("pacman")?;
    let pacman_key = require_client("pacman-key")?;
    // pacman -S refuses to run for other users, even with its own root:
    // as another user, the clients run through `sudo -n` when it works.
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    let sudo = if String::from_utf8_lossy(&uid).trim() == "0" {
        None
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        Some(PathBuf::from("sudo"))
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the pacman test must run as root (or with passwordless sudo) in CI"
        );
        eprintln!("\n!!! SKIPPED: pacman -S needs root (or passwordless sudo) !!!\n");
        return None;
    };
    Some((pacman, pacman_key, sudo))
}

/// pacman with its own root, trusting the test key, syncs `core` from the
/// server at `base` (twice: the second is a 304), then downloads `world`
/// and `epochal` (and `hello`, a dependency), which must be `repo`'s bytes.
pub(crate) fn pacman_round(clients: &(PathBuf, PathBuf, Option<PathBuf>), base: &str, repo: &Repo) {
    pacman_fetches(clients, base, &["world", "epochal"], &repo.files);
}

/// pacman with its own root, trusting the test key, syncs `core` from the
/// server at `base` (twice: the second is a 304), then downloads `names`;
/// every file of `files` must land in its cache with those bytes.
pub(crate) fn pacman_fetches(
    (pacman, pacman_key, sudo): &(PathBuf, PathBuf, Option<PathBuf>),
    base: &str,
    names: &[&str],
    files: &std::collections::BTreeMap<String, Vec<u8>>,
) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    for d in ["root", "db", "cache", "gnupg", "hooks"] {
        fs::create_dir_all(p.join(d)).unwrap();
    }
    let conf = p.join("pacman.conf");
    fs::write(
        &conf,
        format!(
            "[options]\nRootDir = {0}/root\nDBPath = {0}/db/\nCacheDir = {0}/cache/\n\
LogFile = {0}/pacman.log\nGPGDir = {0}/gnupg/\nHookDir = {0}/hooks/\n\
Architecture = {ARCH}\nSigLevel = Required DatabaseOptional\n\n\
[core]\nServer = {1}/archlinux/$repo/os/$arch\n",
            p.display(),
            base.trim_end_matches('/')
        ),
    )
    .unwrap();
    let gpgdir = p.join("gnupg").display().to_string();
    let run = |cmd: &Path, args: &[&str]| {
        let out = match &sudo {
            Some(sudo) => Command::new(sudo).arg("-n").arg(cmd).args(args).output(),
            None => Command::new(cmd).args(args).output(),
        }
        .expect("run client");
        eprintln!(
            "{} {args:?}: {}\n{}{}",
            cmd.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{} {args:?} failed", cmd.display());
        out
    };
    let pub_key = keys_dir()
        .join("test-signing.pub.asc")
        .display()
        .to_string();
    run(pacman_key, &["--gpgdir", &gpgdir, "--init"]);
    run(pacman_key, &["--gpgdir", &gpgdir, "--add", &pub_key]);
    run(
        pacman_key,
        &[
            "--gpgdir",
            &gpgdir,
            "--lsign-key",
            &TestKey::Signing.fingerprint(),
        ],
    );
    let conf_arg = conf.display().to_string();
    run(pacman, &["--config", &conf_arg, "--noconfirm", "-Sy"]);
    assert!(p.join("db/sync/core.db").is_file());
    // The second sync asks with If-Modified-Since; the 304 keeps its copy
    // (a download would replace the file).
    let inode = |path: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap());
    let before = inode(&p.join("db/sync/core.db"));
    run(pacman, &["--config", &conf_arg, "--noconfirm", "-Sy"]);
    assert_eq!(
        inode(&p.join("db/sync/core.db")),
        before,
        "core.db downloaded again"
    );
    let mut args = vec!["--config", &conf_arg, "--noconfirm", "-Sw"];
    args.extend_from_slice(names);
    run(pacman, &args);
    for (file, bytes) in files {
        // Dependencies come too: all land in the cache, verified.
        assert_eq!(
            &fs::read(p.join("cache").join(file)).unwrap(),
            bytes,
            "{file}"
        );
    }
}

/// pacman syncs the database and downloads a package (signatures required).
#[test]
fn real_pacman_syncs_and_downloads_from_the_served_mirror() {
    let Some(clients) = pacman_clients() else {
        return;
    };
    let up = Upstream::start();
    // An epoch puts a ':' in the file name, which pacman sends encoded.
    let mut pkgs = two_packages();
    pkgs.push(Pkg::new("epochal", "2:0.5-1"));
    let repo = publish(&up, "m", "core", &pkgs);
    let online = tempfile::tempdir().unwrap();
    let archive = online.path().join("arch.tar.gz");
    let archive_arg = archive.display().to_string();
    ok(&arch(
        online.path(),
        &["export"],
        &[up.url("m/$repo/os/$arch")],
        &["--archive", &archive_arg],
    ));
    let offline = tempfile::tempdir().unwrap();
    ok(&mirror(
        offline.path(),
        &[
            "arch",
            "import",
            "--archive",
            &archive_arg,
            "--keyring",
            &keyring(),
        ],
    ));
    assert_eq!(
        fs::read(repo_dir(offline.path()).join("core.db")).unwrap(),
        repo.db
    );
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(offline.path())).unwrap();

    pacman_round(&clients, &server.url(""), &repo);
}

/// `--package` mirrors a package and what it depends on, across
/// repositories, and publishes databases listing only those.
#[test]
fn partial_mirror_holds_the_dependency_closure_and_lists_only_it() {
    let up = Upstream::start();
    let mut world = Pkg::new("world", "2.0-1");
    world.depends = vec!["hello>=1.0".into(), "libgreet.so=1-64".into()];
    let mut hello = Pkg::new("hello", "1.0-1");
    hello.depends = vec!["missing-dep".into()];
    let core = publish_with(
        &up,
        "m",
        "core",
        &[
            hello,
            world,
            Pkg::new("lonely", "1-1"),
            Pkg::new("greet", "3-1"),
        ],
        TestKey::Signing,
        |d| {
            if d.get("NAME") == Some("greet") {
                d.fields
                    .insert("PROVIDES".into(), vec!["libgreet.so=1-64".into()]);
            }
        },
    );
    let mut app = Pkg::new("app", "0.1-1");
    app.depends = vec!["world".into()];
    publish(&up, "m", "extra", &[app, Pkg::new("other", "1-1")]);
    let root = tempfile::tempdir().unwrap();
    let key = keyring();
    let url = up.url("m/$repo/os/$arch");
    let out = mirror(
        root.path(),
        &[
            "arch",
            "download",
            "--url",
            &url,
            "--repo",
            "core,extra",
            "--keyring",
            &key,
            "--package",
            "app",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(&out);
    assert!(
        err.contains("missing-dep"),
        "the unresolved dependency is named: {err}"
    );
    let list = ok(&mirror(root.path(), &["arch", "list"]));
    assert_eq!(
        list,
        "core\tgreet\t3-1\ncore\thello\t1.0-1\ncore\tworld\t2.0-1\nextra\tapp\t0.1-1\n"
    );
    let dir = repo_dir(root.path());
    assert!(!dir.join(Pkg::new("lonely", "1-1").filename()).exists());
    assert_eq!(
        up.gets(&format!(
            "{}/{}",
            core.dir,
            Pkg::new("lonely", "1-1").filename()
        )),
        0
    );
    assert_ne!(fs::read(dir.join("core.db")).unwrap(), core.db);
    assert_eq!(
        fs::read(dir.join("core.db")).unwrap(),
        fs::read(dir.join("core.db.tar.gz")).unwrap()
    );
    assert!(!dir.join("core.files").exists() && !dir.join("core.db.sig").exists());
    ok(&mirror(root.path(), &["arch", "verify", "--keyring", &key]));

    let err = failed(&mirror(
        root.path(),
        &[
            "arch",
            "download",
            "--url",
            &url,
            "--repo",
            "core",
            "--keyring",
            &key,
            "--package",
            "nosuch",
        ],
    ));
    assert!(
        err.contains("unknown package \"nosuch\"")
            && err.contains("it is in none of the repositories core"),
        "{err}"
    );
}

/// A third-party repository signs its database: the signature is checked
/// and kept beside it; a database signed by an unknown key is refused.
#[test]
fn custom_repo_with_a_signed_database() {
    let up = Upstream::start();
    let repo = publish(&up, "third", "tools", &two_packages());
    up.put(
        &format!("{}/tools.db.sig", repo.dir),
        crate::support::keys::sign_detached(TestKey::Signing, &repo.db, false),
    );
    let root = tempfile::tempdir().unwrap();
    let key = keyring();
    let custom = format!("tools={}", up.url("third/$repo/os/$arch"));
    let args = [
        "arch",
        "download",
        "--custom-repo",
        &custom,
        "--keyring",
        &key,
    ];
    ok(&mirror(root.path(), &args));
    let dir = root.path().join(format!("archlinux/tools/os/{ARCH}"));
    assert_eq!(fs::read(dir.join("tools.db")).unwrap(), repo.db);
    for sig in ["tools.db.sig", "tools.db.tar.gz.sig"] {
        assert!(dir.join(sig).is_file(), "{sig}");
    }
    ok(&mirror(root.path(), &["arch", "verify", "--keyring", &key]));

    up.put(
        &format!("{}/tools.db.sig", repo.dir),
        crate::support::keys::sign_detached(TestKey::Other, &repo.db, false),
    );
    let root = tempfile::tempdir().unwrap();
    let err = failed(&mirror(root.path(), &args));
    assert!(
        err.contains("tools.db") && err.contains("unknown key"),
        "{err}"
    );
    let dir = root.path().join(format!("archlinux/tools/os/{ARCH}"));
    assert!(!dir.join("tools.db").exists());
}

/// An archive whose database lists a package neither it nor the tree
/// holds is refused: pacman would be promised a file it cannot get.
#[test]
fn unpack_refuses_a_database_listing_missing_packages() {
    let up = Upstream::start();
    publish(&up, "m", "core", &two_packages());
    let online = tempfile::tempdir().unwrap();
    ok(&arch(
        online.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &[],
    ));
    let world = Pkg::new("world", "2.0-1").filename();
    fs::remove_file(repo_dir(online.path()).join(&world)).unwrap();
    fs::remove_file(repo_dir(online.path()).join(format!("{world}.sig"))).unwrap();
    let archive = online.path().join("arch.tar.gz").display().to_string();
    ok(&mirror(
        online.path(),
        &["arch", "pack", "--archive", &archive],
    ));
    let offline = tempfile::tempdir().unwrap();
    let err = failed(&mirror(
        offline.path(),
        &[
            "arch",
            "unpack",
            "--archive",
            &archive,
            "--keyring",
            &keyring(),
        ],
    ));
    assert!(
        err.contains(&world) && err.contains("neither in the archive nor in the tree"),
        "{err}"
    );
    assert!(!repo_dir(offline.path()).join("core.db").exists());
}

/// After a mark, export carries only the new package (and its signature)
/// plus the current databases.
#[test]
fn export_after_a_mark_carries_only_new_packages() {
    let up = Upstream::start();
    let url = [up.url("m/$repo/os/$arch")];
    publish(&up, "m", "core", &two_packages());
    let online = tempfile::tempdir().unwrap();
    let offline = tempfile::tempdir().unwrap();
    let a1 = online.path().join("a1.tar.gz").display().to_string();
    let a2 = online.path().join("a2.tar.gz").display().to_string();
    ok(&arch(online.path(), &["export"], &url, &["--archive", &a1]));
    let world = two_packages().remove(1);
    publish(&up, "m", "core", &[Pkg::new("hello", "1.1-1"), world]);
    ok(&arch(online.path(), &["export"], &url, &["--archive", &a2]));
    let members = bundle_members(Path::new(&a2));
    let packages: Vec<&String> = members.iter().filter(|m| m.contains(".pkg.tar")).collect();
    assert_eq!(
        packages,
        [
            "archlinux/core/os/x86_64/hello-1.1-1-x86_64.pkg.tar.zst",
            "archlinux/core/os/x86_64/hello-1.1-1-x86_64.pkg.tar.zst.sig"
        ]
    );
    assert!(members.iter().any(|m| m.ends_with("/core.db")));
    for a in [&a1, &a2] {
        ok(&arch(offline.path(), &["import"], &[], &["--archive", a]));
    }
    let list = ok(&arch(offline.path(), &["list"], &[], &[]));
    assert_eq!(list, "core\thello\t1.1-1\ncore\tworld\t2.0-1\n");
}

fn bundle_members(archive: &Path) -> Vec<String> {
    let file = fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// `<repo>.db.tar.gz` is served too: an archive where it differs from
/// `<repo>.db` is refused.
#[test]
fn unpack_refuses_database_copies_that_differ() {
    let up = Upstream::start();
    publish(&up, "m", "core", &two_packages());
    let online = tempfile::tempdir().unwrap();
    ok(&arch(
        online.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &[],
    ));
    let other = publish(&up, "n", "core", &[Pkg::new("hello", "9-1")]).db;
    fs::write(repo_dir(online.path()).join("core.db.tar.gz"), other).unwrap();
    let archive = online.path().join("arch.tar.gz").display().to_string();
    ok(&mirror(
        online.path(),
        &["arch", "pack", "--archive", &archive],
    ));
    let offline = tempfile::tempdir().unwrap();
    let err = failed(&mirror(
        offline.path(),
        &[
            "arch",
            "unpack",
            "--archive",
            &archive,
            "--keyring",
            &keyring(),
        ],
    ));
    assert!(
        err.contains("core.db.tar.gz: expected the same bytes as archlinux/core/os/x86_64/core.db"),
        "{err}"
    );
    assert!(!repo_dir(offline.path()).exists());
}

/// Official databases embed each package's signature as `%PGPSIG%`: it is
/// used instead of fetching `<package>.sig` (one request per package
/// saved), stored as `<package>.sig` for pacman, and still checked.
#[test]
fn embedded_pgpsig_is_used_checked_and_stored_as_sig() {
    use base64::Engine as _;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pkgs = two_packages();
    let bytes: BTreeMap<String, Vec<u8>> = pkgs.iter().map(|p| (p.filename(), p.bytes())).collect();
    for (key, expect_ok) in [(TestKey::Signing, true), (TestKey::Other, false)] {
        let up = Upstream::start();
        let sigs = Mutex::new(BTreeMap::new());
        let repo = publish_with(&up, "m", "core", &pkgs, TestKey::Signing, |desc| {
            let file = desc.fields["FILENAME"][0].clone();
            let sig = crate::support::keys::sign_detached(key, &bytes[&file], false);
            desc.fields.insert("PGPSIG".into(), vec![b64.encode(&sig)]);
            sigs.lock().unwrap().insert(file, sig);
        });
        for file in repo.files.keys() {
            up.remove(&format!("{}/{file}.sig", repo.dir));
        }
        let root = tempfile::tempdir().unwrap();
        let out = arch(
            root.path(),
            &["download"],
            &[up.url("m/$repo/os/$arch")],
            &[],
        );
        let dir = repo_dir(root.path());
        if expect_ok {
            ok(&out);
            for (file, sig) in sigs.lock().unwrap().iter() {
                assert_eq!(&fs::read(dir.join(format!("{file}.sig"))).unwrap(), sig);
                assert_eq!(
                    up.gets(&format!("{}/{file}.sig", repo.dir)),
                    0,
                    "no .sig request"
                );
            }
            ok(&arch(root.path(), &["verify"], &[], &[]));
        } else {
            let err = failed(&out);
            assert!(err.contains("signature"), "{err}");
            assert!(!dir.join("core.db").exists(), "nothing published");
        }
    }
}

/// `--signing-key`: the database a partial mirror regenerates is signed, and
/// the signature verifies with the key's certificate.
#[test]
fn signing_key_signs_a_regenerated_database() {
    let up = Upstream::start();
    publish(&up, "m", "core", &two_packages());
    let root = tempfile::tempdir().unwrap();
    let secret = TestKey::Signing.secret_path().display().to_string();
    let out = arch(
        root.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &["--package", "hello", "--signing-key", &secret],
    );
    ok(&out);
    let dir = repo_dir(root.path());
    let db = fs::read(dir.join("core.db")).unwrap();
    let sig = fs::read(dir.join("core.db.sig")).expect("a signed regenerated database");
    assert_eq!(fs::read(dir.join("core.db.tar.gz.sig")).unwrap(), sig);
    let keyring =
        mirror::verify::openpgp::Keyring::from_file(&TestKey::Signing.public_path()).unwrap();
    mirror::verify::openpgp::verify_detached(&keyring, &db[..], &sig, "core.db").unwrap();
    let list = ok(&arch(root.path(), &["list"], &[], &[]));
    assert_eq!(list, "core\thello\t1.0-1\n");

    // A public key is not a signing key: a clear error, nothing published.
    let other = tempfile::tempdir().unwrap();
    let public = TestKey::Signing.public_path().display().to_string();
    let err = failed(&arch(
        other.path(),
        &["download"],
        &[up.url("m/$repo/os/$arch")],
        &["--package", "hello", "--signing-key", &public],
    ));
    assert!(err.contains("secret"), "{err}");
    assert!(!repo_dir(other.path()).join("core.db").exists());
}

/// A mirror that stalls (no bytes within `--timeout`) counts as failing:
/// the next one serves.
#[test]
fn a_stalling_mirror_falls_back_to_the_next() {
    let slow = Upstream::start();
    publish(&slow, "m", "core", &two_packages());
    slow.set_delay(std::time::Duration::from_secs(5));
    let fast = Upstream::start();
    let good = publish(&fast, "m", "core", &two_packages());
    let urls = [slow.url("m/$repo/os/$arch"), fast.url("m/$repo/os/$arch")];
    let root = tempfile::tempdir().unwrap();
    ok(&arch(
        root.path(),
        &["download"],
        &urls,
        &["--timeout", "1"],
    ));
    assert_eq!(
        fs::read(repo_dir(root.path()).join("core.db")).unwrap(),
        good.db
    );
    for (file, bytes) in &good.files {
        assert_eq!(&fs::read(repo_dir(root.path()).join(file)).unwrap(), bytes);
    }

    // A mirror that serves its database but trickles a package (below
    // --low-speed-limit over --timeout): the package comes from the next.
    let trickle = Upstream::start();
    let t = publish(&trickle, "m", "core", &two_packages());
    let hello = Pkg::new("hello", "1.0-1").filename();
    let trickling = Fault::Trickle {
        bytes: 16,
        every_ms: 300,
    };
    trickle.fault(&format!("{}/{hello}", t.dir), trickling, 100);
    let urls = [
        trickle.url("m/$repo/os/$arch"),
        fast.url("m/$repo/os/$arch"),
    ];
    let root = tempfile::tempdir().unwrap();
    fast.clear_requests();
    let extra = ["--timeout", "1", "--low-speed-limit", "4096"];
    ok(&arch(root.path(), &["download"], &urls, &extra));
    let got = fs::read(repo_dir(root.path()).join(&hello)).unwrap();
    assert_eq!(got, good.files[&hello]);
    assert_eq!(fast.gets(&format!("{}/{hello}", good.dir)), 1);
    assert!(trickle.gets(&format!("{}/{hello}", t.dir)) >= 1);
}
