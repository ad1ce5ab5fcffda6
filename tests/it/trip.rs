//! `mirror export` / `mirror import`: crates (from the fake git upstream)
//! and rustup carried in one signed trip of volumes with parity. Lost and
//! damaged volumes within the parity are rebuilt; beyond it they are named.
//! An untrusted or missing signature, an edited manifest and a trip out of
//! sequence are refused before anything is unpacked; the same trip twice
//! is a no-op; the real cargo builds from `mirror serve` of the far side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mirror::trip::volumes;

use crate::cargo_client::{round, walk};
use crate::rustup::{fake_upstream, mirror, require_client};
use crate::support::crates::CratesFixture;
use crate::support::rustup::init_bytes;
use crate::support::tree;

const LINUX: &str = "x86_64-unknown-linux-gnu";

fn run_ok(root: &Path, args: &[&str]) -> String {
    let out = mirror(root, args);
    assert!(
        out.status.success(),
        "mirror {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_fails(root: &Path, args: &[&str]) -> String {
    let out = mirror(root, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "mirror {args:?} succeeded: {err}");
    err
}

/// Every file a tree serves (not `.mirror/`).
fn served(root: &Path) -> BTreeMap<String, Vec<u8>> {
    tree::files(root, |name| name != ".mirror")
}

/// The trip's files in `dir`, by kind: (manifests, data volumes, parity).
fn trip_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let with = |f: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|p| f(p.file_name().unwrap().to_str().unwrap()))
            .cloned()
            .collect()
    };
    (
        with(&|n| n.ends_with(".json")),
        with(&|n| n.contains(".v")),
        with(&|n| n.contains(".p")),
    )
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// A refused import leaves the far side as it was.
fn refused(far: &Path, dir: &Path, trust: &[&Path], wants: &[&str]) {
    let before = served(far);
    let mut args = vec!["import".to_string()];
    for t in trust {
        args.extend(["--trust".to_string(), t.display().to_string()]);
    }
    args.push(dir.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = run_fails(far, &args);
    for w in wants {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(served(far), before, "a refused trip changed the far side");
}

#[test]
fn a_signed_trip_with_lost_volumes_imports_in_sequence_and_cargo_builds_from_it() {
    let up = fake_upstream();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.publish("leaf", "1.1.0", &[]);
    fx.publish("app", "0.1.0", &[("leaf", "^1")]);
    fx.commit("Add leaf and app");
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    let far = work.path().join("far");
    std::fs::create_dir_all(&near).unwrap();
    std::fs::create_dir_all(&far).unwrap();
    near_config(&near, &fx, &up.url("rustup"), "stable");

    // Keys: the site's, and one the far side does not trust.
    let key = work.path().join("site.key");
    let cert = work.path().join("site.asc");
    let printed = run_ok(&near, &["keygen", "--out", key.to_str().unwrap()]);
    assert!(
        printed.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{printed}"
    );
    assert!(!printed.contains("PRIVATE"), "{printed}");
    std::fs::write(&cert, &printed).unwrap();
    let other_key = work.path().join("other.key");
    let other = work.path().join("other.asc");
    std::fs::write(
        &other,
        run_ok(&near, &["keygen", "--out", other_key.to_str().unwrap()]),
    )
    .unwrap();

    // Trip 1: small volumes, two parity volumes, signed.
    let t1 = work.path().join("trip1");
    run_ok(
        &near,
        &[
            "export",
            "--out",
            t1.to_str().unwrap(),
            "--volume-size",
            "6K",
            "--parity",
            "2",
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    let (manifests, data, parity) = trip_files(&t1);
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    assert!(data.len() >= 3, "{data:?}");
    assert_eq!(parity.len(), 2, "{parity:?}");
    for v in data.iter().chain(&parity) {
        assert!(
            std::fs::metadata(v).unwrap().len() <= 6 * 1024,
            "{}",
            v.display()
        );
        let h = volumes::read_header(v).unwrap().unwrap();
        assert_eq!(h.manifest, std::fs::read(&manifests[0]).unwrap());
        assert!(h.signature.is_some());
    }
    assert!(t1.join(format!("{}.asc", name(&manifests[0]))).is_file());

    // Trip 2: a new crate upstream.
    fx.publish("extra", "0.1.0", &[]);
    fx.commit("Add extra");
    let t2 = work.path().join("trip2");
    run_ok(
        &near,
        &[
            "export",
            "--out",
            t2.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    let cert_s = cert.as_path();

    // Trip 2 before trip 1.
    refused(
        &far,
        &t2,
        &[cert_s],
        &["trip 2 of site", "needs trip 1 first"],
    );

    // Beyond the parity: three volumes gone, each named.
    let lost = work.path().join("lost");
    tree::copy_dir(&t1, &lost);
    for v in [&data[0], &data[1], &parity[0]] {
        std::fs::remove_file(lost.join(name(v))).unwrap();
    }
    refused(
        &far,
        &lost,
        &[cert_s],
        &[
            &name(&data[0]),
            &name(&data[1]),
            &name(&parity[0]),
            "missing",
        ],
    );

    // An edited manifest: its signature no longer holds.
    let edited = work.path().join("edited");
    tree::copy_dir(&t1, &edited);
    let m = edited.join(name(&manifests[0]));
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replacen("\"full\": false", "\"full\": true", 1)).unwrap();
    refused(&far, &edited, &[cert_s], &["signature not accepted"]);

    // Signed by a key the far side does not trust.
    refused(&far, &t1, &[other.as_path()], &["signature not accepted"]);

    // Unsigned, under a trust: no .asc and volumes without signatures.
    let unsigned = work.path().join("unsigned");
    tree::copy_dir(&t1, &unsigned);
    std::fs::remove_file(unsigned.join(format!("{}.asc", name(&manifests[0])))).unwrap();
    for v in data.iter().chain(&parity) {
        let p = unsigned.join(name(v));
        let bytes = std::fs::read(&p).unwrap();
        let h = volumes::read_header(&p).unwrap().unwrap();
        let mut out = volumes::header(&h.manifest, None);
        out.extend_from_slice(&bytes[h.data_offset as usize..]);
        std::fs::write(&p, out).unwrap();
    }
    refused(&far, &unsigned, &[cert_s], &["unsigned"]);
    // The same with the trust in the far side's mirror.toml.
    std::fs::write(
        far.join("mirror.toml"),
        format!("[import]\ntrust = [{:?}]\n", cert.to_str().unwrap()),
    )
    .unwrap();
    refused(&far, &unsigned, &[], &["unsigned"]);

    // Trip 1 with one volume deleted and another corrupted: rebuilt.
    std::fs::remove_file(&data[0]).unwrap();
    let mut bytes = std::fs::read(&data[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data[1], bytes).unwrap();
    let out = mirror(
        &far,
        &[
            "import",
            "--trust",
            cert.to_str().unwrap(),
            t1.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rebuilt"), "{err}");
    assert_eq!(
        std::fs::read(far.join(format!("rustup/dist/{LINUX}/rustup-init"))).unwrap(),
        init_bytes("1.28.2", LINUX)
    );

    // The same trip again: a no-op that says so.
    let before = served(&far);
    let out = mirror(
        &far,
        &[
            "import",
            "--trust",
            cert.to_str().unwrap(),
            t1.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("imported already"), "{err}");
    assert_eq!(served(&far), before);

    // Trip 2 follows.
    run_ok(
        &far,
        &[
            "import",
            "--trust",
            cert.to_str().unwrap(),
            t2.to_str().unwrap(),
        ],
    );
    assert!(
        walk(&far).iter().any(|p| name(p) == "extra-0.1.0.crate"),
        "trip 2's crate is not on the far side"
    );

    // The real cargo against `mirror serve` of the far side.
    let Some(bin) = require_client("cargo") else {
        return;
    };
    let server = mirror::serve::spawn(mirror::serve::ServeOptions::local(&far)).unwrap();
    run_ok(&far, &["crate", "config", "--server-url", &server.url("")]);
    round(
        &bin,
        work.path(),
        "sparse",
        "sparse",
        &format!("sparse+{}", server.url("/index/")),
    );
}

/// `mirror.toml` of a near side: crates from `fx`, rustup `select`.
fn near_config(near: &Path, fx: &CratesFixture, rustup_url: &str, select: &str) {
    std::fs::write(
        near.join("mirror.toml"),
        format!(
            "[crate]\nindex-url = \"{}\"\ncrates-url = \"{}\"\n\n\
             [rustup]\nurl = \"{rustup_url}\"\nselect = \"{select}\"\ntarget = [\"linux\"]\n",
            fx.index_url(),
            fx.crates_url_template(),
        ),
    )
    .unwrap();
}

#[test]
fn a_failing_ecosystem_fails_the_trip_and_moves_no_mark_and_full_seeds_a_far_side() {
    let up = fake_upstream();
    let mut fx = CratesFixture::new(&up);
    fx.publish("leaf", "1.0.0", &[]);
    fx.commit("Add leaf");
    let work = tempfile::tempdir().unwrap();
    let near = work.path().join("near");
    std::fs::create_dir_all(&near).unwrap();
    let out = work.path().join("out");

    // rustup fails (no such version upstream) after crates packed.
    near_config(&near, &fx, &up.url("rustup"), "9.9.9");
    let err = run_fails(&near, &["export", "--out", out.to_str().unwrap()]);
    assert!(err.contains("rustup"), "{err}");
    assert!(
        trip_files(&out).0.is_empty(),
        "a failed trip wrote a manifest"
    );
    // The crates mark did not move: what is new since it is still listed.
    let listed = run_ok(&near, &["crate", "list"]);
    assert!(listed.contains("leaf"), "{listed}");

    near_config(&near, &fx, &up.url("rustup"), "stable");
    run_ok(&near, &["export", "--out", out.to_str().unwrap()]);
    let (manifests, _, _) = trip_files(&out);
    assert_eq!(manifests.len(), 1);
    assert!(name(&manifests[0]).ends_with("-1.json"), "{manifests:?}");
    assert_eq!(run_ok(&near, &["crate", "list"]).trim(), "");

    // Trip 2 with --full carries everything held: it seeds a new far side.
    fx.publish("extra", "0.1.0", &[]);
    fx.commit("Add extra");
    let full = work.path().join("full");
    run_ok(
        &near,
        &[
            "export",
            "--full",
            "--parity",
            "1",
            "--out",
            full.to_str().unwrap(),
        ],
    );
    // One volume and its parity, no larger than the stream; the volume
    // lost, the parity rebuilds it.
    let (_, data, parity) = trip_files(&full);
    assert_eq!((data.len(), parity.len()), (1, 1));
    assert!(
        std::fs::metadata(&parity[0]).unwrap().len()
            <= std::fs::metadata(&data[0]).unwrap().len() + 1
    );
    std::fs::remove_file(&data[0]).unwrap();
    let far = work.path().join("far");
    std::fs::create_dir_all(&far).unwrap();
    run_ok(&far, &["import", full.to_str().unwrap()]);
    let names: Vec<String> = walk(&far).iter().map(|p| name(p)).collect();
    for want in ["leaf-1.0.0.crate", "extra-0.1.0.crate", "rustup-init"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // What is held is the same on both sides; the trips are recorded.
    let status = |root: &Path| -> serde_json::Value {
        serde_json::from_str(&run_ok(root, &["status", "--json"])).unwrap()
    };
    let (sn, sf) = (status(&near), status(&far));
    for eco in ["crate", "rustup"] {
        for what in ["files", "bytes"] {
            assert_eq!(
                sn["ecosystems"][eco][what], sf["ecosystems"][eco][what],
                "{eco} {what}: near {sn}, far {sf}"
            );
        }
    }
    let site = sn["site"].as_str().unwrap();
    assert!(sn["exported"]["2"].is_string(), "{sn}");
    assert!(sf["imported"][site]["2"].is_string(), "{sf}");
    // …and trip 1 after it is older: nothing to do.
    let out1 = mirror(&far, &["import", out.to_str().unwrap()]);
    assert!(out1.status.success());
    assert!(String::from_utf8_lossy(&out1.stderr).contains("older"));
}
