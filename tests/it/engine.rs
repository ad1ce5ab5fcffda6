//! The download engine against the fake upstream: retries, resume, digest
//! failures, `--keep-going`, skipping what is present.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mirror::fetch::{
    item_queue, partial_path, Engine, FetchError, FetchItem, FetchOptions, SignatureCheck,
    SignatureSource, SignatureSpec,
};
use mirror::http::HttpOptions;
use mirror::report::NullReporter;
use mirror::verify::Sha256Digest;

use crate::support::upstream::{Fault, Upstream};

fn engine(jobs: usize, keep_going: bool) -> Engine {
    Engine::new(FetchOptions {
        jobs,
        keep_going,
        assume_ok: false,
        http: HttpOptions {
            timeout: Duration::from_secs(10),
            retries: 3,
            retry_delay: Duration::ZERO,
            low_speed_limit: 0,
            max_file_size: None,
        },
    })
    .unwrap()
}

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn item(up: &Upstream, path: &str, data: &[u8], dir: &Path) -> FetchItem {
    FetchItem::new(up.url(path), dir.join(path)).sha256(Sha256Digest::of(data))
}

/// `n` items `{prefix}/0`, `{prefix}/1`, … of 200 bytes each, served by
/// `up`.
fn served(up: &Upstream, dir: &Path, prefix: &str, n: u8, seed: u8) -> Vec<FetchItem> {
    (0..n)
        .map(|i| {
            let data = body(200, seed.wrapping_add(i));
            let path = format!("{prefix}/{i}");
            up.put(&path, data.clone());
            item(up, &path, &data, dir)
        })
        .collect()
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let up = Upstream::start();
    let data = body(5000, 1);
    up.put("a.bin", data.clone());
    up.fault("a.bin", Fault::Status(500), 1);
    up.fault("a.bin", Fault::Status(429), 1);
    up.fault("a.bin", Fault::Reset, 1);
    let dir = tempfile::tempdir().unwrap();
    let summary = engine(2, false)
        .fetch_all(vec![item(&up, "a.bin", &data, dir.path())], &NullReporter)
        .unwrap();
    assert_eq!(summary.fetched, 1);
    assert_eq!(up.gets("a.bin"), 4);
    assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), data);
}

#[test]
fn not_found_is_not_retried() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let err = engine(2, false)
        .fetch_all(
            vec![FetchItem::new(
                up.url("missing"),
                dir.path().join("missing"),
            )],
            &NullReporter,
        )
        .unwrap_err();
    assert_eq!(up.gets("missing"), 1);
    let msg = err.to_string();
    assert!(
        msg.contains(&up.url("missing")) && msg.contains("404"),
        "{msg}"
    );
}

#[test]
fn a_cut_body_resumes_with_range() {
    let up = Upstream::start();
    let data = body(100_000, 2);
    up.put("big.bin", data.clone());
    up.fault("big.bin", Fault::CutBody { after: 40_000 }, 1);
    let dir = tempfile::tempdir().unwrap();
    engine(1, false)
        .fetch_all(vec![item(&up, "big.bin", &data, dir.path())], &NullReporter)
        .unwrap();
    let reqs = up.requests_for("big.bin");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("range"), None);
    assert_eq!(reqs[1].header("range"), Some("bytes=40000-"));
    assert_eq!(std::fs::read(dir.path().join("big.bin")).unwrap(), data);
    assert!(!partial_path(&dir.path().join("big.bin")).exists());
}

#[test]
fn a_partial_file_from_an_interrupted_run_is_resumed() {
    let up = Upstream::start();
    let data = body(50_000, 3);
    up.put("f.bin", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    std::fs::write(partial_path(&dest), &data[..12_345]).unwrap();
    engine(1, false)
        .fetch_all(vec![item(&up, "f.bin", &data, dir.path())], &NullReporter)
        .unwrap();
    let reqs = up.requests_for("f.bin");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("range"), Some("bytes=12345-"));
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[test]
fn a_stale_partial_that_does_not_verify_restarts_from_zero() {
    let up = Upstream::start();
    let data = body(50_000, 4);
    up.put("f.bin", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    std::fs::write(partial_path(&dest), vec![0xAA; 1000]).unwrap();
    engine(1, false)
        .fetch_all(vec![item(&up, "f.bin", &data, dir.path())], &NullReporter)
        .unwrap();
    let reqs = up.requests_for("f.bin");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("range"), Some("bytes=1000-"));
    assert_eq!(reqs[1].header("range"), None);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[test]
fn wrong_bytes_name_the_url_and_both_digests_and_publish_nothing() {
    let up = Upstream::start();
    let data = body(3000, 5);
    up.put("w.bin", data.clone());
    up.fault("w.bin", Fault::WrongBytes, 10);
    let dir = tempfile::tempdir().unwrap();
    let err = engine(1, false)
        .fetch_all(vec![item(&up, "w.bin", &data, dir.path())], &NullReporter)
        .unwrap_err();
    assert_eq!(up.gets("w.bin"), 1, "a digest mismatch is not retried");
    let (url, e) = &err.failures[0];
    assert_eq!(url, &up.url("w.bin"));
    let FetchError::Digest(m) = e else {
        panic!("expected a digest error, got {e:?}")
    };
    assert_eq!(m.expected, Sha256Digest::of(&data));
    let msg = err.to_string();
    assert!(msg.contains(&up.url("w.bin")), "{msg}");
    assert!(
        msg.contains(&m.expected.to_hex()) && msg.contains(&m.actual.to_hex()),
        "{msg}"
    );
    let dest = dir.path().join("w.bin");
    assert!(!dest.exists() && !partial_path(&dest).exists());
}

#[test]
fn without_keep_going_no_new_item_starts_after_a_failure() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (body(100, 6), body(100, 7));
    up.put("a", a.clone());
    up.put("c", c.clone());
    let items = vec![
        item(&up, "a", &a, dir.path()),
        FetchItem::new(up.url("b"), dir.path().join("b")),
        item(&up, "c", &c, dir.path()),
    ];
    let err = engine(1, false)
        .fetch_all(items, &NullReporter)
        .unwrap_err();
    assert_eq!(err.failures.len(), 1);
    // The report names the whole plan, not only what started.
    assert_eq!(err.total, 3);
    assert!(dir.path().join("a").exists());
    assert_eq!(up.gets("c"), 0);
    assert!(!dir.path().join("c").exists());
}

#[test]
fn keep_going_finishes_the_rest_and_lists_failures() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (body(100, 6), body(100, 7));
    up.put("a", a.clone());
    up.put("c", c.clone());
    up.put("d", body(100, 8));
    let items = vec![
        item(&up, "a", &a, dir.path()),
        FetchItem::new(up.url("b"), dir.path().join("b")),
        item(&up, "c", &c, dir.path()),
        item(&up, "d", &body(100, 9), dir.path()),
    ];
    let err = engine(1, true).fetch_all(items, &NullReporter).unwrap_err();
    assert_eq!(err.summary.fetched, 2);
    let urls: Vec<_> = err.failures.iter().map(|(u, _)| u.clone()).collect();
    assert_eq!(urls, [up.url("b"), up.url("d")]);
    let msg = err.to_string();
    assert!(msg.starts_with("2 of 4 downloads failed"), "{msg}");
    assert!(dir.path().join("a").exists() && dir.path().join("c").exists());
}

#[test]
fn items_download_while_the_plan_is_still_growing() {
    // The producer plans `a`, and plans `b` only once `a` is on disk: an
    // engine that waited for the whole plan before its first request
    // would never get there.
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, held) = (body(300, 1), body(300, 2), body(300, 3));
    up.put("a", a.clone());
    up.put("b", b.clone());
    std::fs::write(dir.path().join("held"), &held).unwrap();
    let e = engine(4, false);
    let (sink, source) = item_queue(false);
    let (seen_a, summary) = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            sink.push(item(&up, "a", &a, dir.path()));
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !dir.path().join("a").exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let seen_a = dir.path().join("a").exists();
            // Already present and correct: counted, not requested.
            sink.push(item(&up, "held", &held, dir.path()));
            sink.push(item(&up, "b", &b, dir.path()));
            drop(sink);
            seen_a
        });
        let summary = e.fetch_from(source, &NullReporter).unwrap();
        (producer.join().unwrap(), summary)
    });
    assert!(
        seen_a,
        "`a` was not downloaded before the plan was complete"
    );
    assert_eq!((summary.fetched, summary.skipped), (2, 1));
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b);
    assert_eq!(up.gets("held"), 0);
}

#[test]
fn the_last_items_of_a_closing_run_close_their_connections() {
    // For a run's last downloads: once the plan is complete and fewer
    // items wait than there are jobs, each request asks for its connection
    // to be closed after the response, so none idles in the pool until
    // the run ends.
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let items = served(&up, dir.path(), "c", 10, 0);
    // The whole plan is queued and complete before the first request, so
    // which items see fewer than 2 waiting does not depend on timing.
    let (sink, source) = item_queue(false);
    for i in items {
        sink.push(i);
    }
    drop(sink);
    let e = engine(2, false);
    let summary = e
        .fetch_from(source.closing_connections(), &NullReporter)
        .unwrap();
    assert_eq!(summary.fetched, 10);
    let closing: Vec<bool> = (0..10)
        .map(|i| {
            let r = up.requests_for(&format!("c/{i}"));
            assert_eq!(r.len(), 1, "{r:?}");
            r[0].header("connection") == Some("close")
        })
        .collect();
    assert_eq!(closing.iter().filter(|c| **c).count(), 2, "{closing:?}");
    assert!(closing[8] && closing[9], "{closing:?}");

    // Unless asked, connections stay pooled for the engine's next
    // downloads: no request asks to close.
    let more = served(&up, dir.path(), "d", 4, 100);
    assert_eq!(e.fetch_all(more, &NullReporter).unwrap().fetched, 4);
    for i in 0..4 {
        let r = up.requests_for(&format!("d/{i}"));
        assert_eq!(r[0].header("connection"), None, "{r:?}");
    }
}

#[test]
fn an_abandoned_plan_starts_nothing_more() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (body(300, 1), body(300, 2));
    up.put("a", a.clone());
    up.put("b", b.clone());
    let e = engine(1, false);
    let (sink, source) = item_queue(false);
    let summary = std::thread::scope(|scope| {
        scope.spawn(|| {
            sink.push(item(&up, "a", &a, dir.path()));
            sink.abandon();
            sink.push(item(&up, "b", &b, dir.path()));
        });
        e.fetch_from(source, &NullReporter).unwrap()
    });
    assert!(summary.fetched <= 1, "{summary:?}");
    assert_eq!(up.gets("b"), 0);
    assert!(!dir.path().join("b").exists());
}

#[test]
fn a_second_run_makes_no_requests() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let mut items = Vec::new();
    for i in 0..20u8 {
        let data = body(1000 + usize::from(i), i);
        let path = format!("d/{i}.bin");
        up.put(&path, data.clone());
        items.push(
            item(&up, &path, &data, dir.path())
                .sidecar(dir.path().join(format!("d/{i}.bin.sha256")), "x"),
        );
    }
    let e = engine(4, false);
    let first = e.fetch_all(items.clone(), &NullReporter).unwrap();
    assert_eq!((first.fetched, first.skipped), (20, 0));
    up.clear_requests();
    let second = e.fetch_all(items.clone(), &NullReporter).unwrap();
    assert_eq!((second.fetched, second.skipped), (0, 20));
    assert!(up.requests().is_empty(), "{:?}", up.requests());

    // A corrupted file is noticed (re-hashed) and fetched again...
    std::fs::write(dir.path().join("d/3.bin"), b"corrupt").unwrap();
    let third = e.fetch_all(items.clone(), &NullReporter).unwrap();
    assert_eq!((third.fetched, third.skipped), (1, 19));
    // ...but with --assume-ok only the size is checked.
    let same_size = vec![0u8; 1003];
    std::fs::write(dir.path().join("d/3.bin"), &same_size).unwrap();
    let trusting = Engine::new(FetchOptions {
        assume_ok: true,
        ..FetchOptions::default()
    })
    .unwrap();
    up.clear_requests();
    let items: Vec<_> = items
        .into_iter()
        .map(|i| i.size(1003))
        .take(4)
        .skip(3)
        .collect();
    assert_eq!(trusting.fetch_all(items, &NullReporter).unwrap().skipped, 1);
    assert!(up.requests().is_empty());
}

#[test]
fn a_slow_server_times_out_with_an_error_naming_the_url() {
    let up = Upstream::start();
    up.put("slow", body(10, 1));
    up.set_delay(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::new(FetchOptions {
        http: HttpOptions {
            timeout: Duration::from_millis(500),
            retries: 0,
            retry_delay: Duration::ZERO,
            low_speed_limit: 0,
            max_file_size: None,
        },
        ..FetchOptions::default()
    })
    .unwrap();
    let err = e
        .fetch_all(
            vec![FetchItem::new(up.url("slow"), dir.path().join("slow"))],
            &NullReporter,
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&up.url("slow")) && msg.contains("timed out"),
        "{msg}"
    );
}

struct RejectAll;
impl SignatureCheck for RejectAll {
    fn check(&self, _file: &Path, sig: &[u8], what: &str) -> anyhow::Result<()> {
        anyhow::bail!("bad signature over {what} ({} bytes)", sig.len())
    }
}

#[test]
fn a_bad_signature_publishes_nothing() {
    let up = Upstream::start();
    let data = body(100, 1);
    up.put("s.bin", data.clone());
    up.put("s.bin.asc", "sig");
    let dir = tempfile::tempdir().unwrap();
    let spec = SignatureSpec {
        source: SignatureSource::Url(up.url("s.bin.asc")),
        dest: dir.path().join("s.bin.asc"),
        check: Arc::new(RejectAll),
    };
    let err = engine(1, false)
        .fetch_all(
            vec![item(&up, "s.bin", &data, dir.path()).signature(spec)],
            &NullReporter,
        )
        .unwrap_err();
    assert!(err.to_string().contains("bad signature over"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing published"
    );
}

#[test]
fn openpgp_signatures_are_checked_before_publishing() {
    use crate::support::keys::{sign_detached, test_keyring, TestKey};
    let up = Upstream::start();
    let good = body(2000, 1);
    let other = body(2000, 2);
    up.put("good.tar.xz", good.clone());
    up.put(
        "good.tar.xz.asc",
        sign_detached(TestKey::Signing, &good, true),
    );
    up.put("other.tar.xz", other.clone());
    up.put(
        "other.tar.xz.sig",
        sign_detached(TestKey::Other, &other, false),
    );
    let keyring: Arc<dyn SignatureCheck> = Arc::new(test_keyring());
    let dir = tempfile::tempdir().unwrap();
    let signed = |name: &str, sig: &str, data: &[u8]| {
        item(&up, name, data, dir.path()).signature(SignatureSpec {
            source: SignatureSource::Url(up.url(sig)),
            dest: dir.path().join(sig),
            check: keyring.clone(),
        })
    };
    let items = vec![
        signed("good.tar.xz", "good.tar.xz.asc", &good),
        signed("other.tar.xz", "other.tar.xz.sig", &other),
    ];
    let err = engine(2, true).fetch_all(items, &NullReporter).unwrap_err();
    assert_eq!(err.summary.fetched, 1);
    assert!(dir.path().join("good.tar.xz").exists() && dir.path().join("good.tar.xz.asc").exists());
    assert!(
        !dir.path().join("other.tar.xz").exists() && !dir.path().join("other.tar.xz.sig").exists()
    );
    let msg = err.to_string();
    assert!(msg.contains(&up.url("other.tar.xz")), "{msg}");
}

#[test]
fn conditional_fetches_send_validators_and_take_304s() {
    use mirror::fetch::{Conditional, Validators};
    const INDEX: mirror::limit::Limit = mirror::limit::CRATE_INDEX_FILE;
    let up = Upstream::start();
    up.put("idx/se/rd/serde", b"line 1\n".to_vec());
    up.fault("idx/flaky", Fault::Status(503), 1);
    up.put("idx/flaky", b"x".to_vec());
    let e = engine(4, false);
    let first = e.fetch_bytes_conditional_reporting(
        &[
            (up.url("idx/se/rd/serde"), Validators::default()),
            (up.url("idx/flaky"), Validators::default()),
            (up.url("idx/missing"), Validators::default()),
        ],
        INDEX,
        &NullReporter,
    );
    let Ok(Conditional::Fetched { bytes, validators }) = &first[0] else {
        panic!("{:?}", first[0])
    };
    assert_eq!(bytes, b"line 1\n");
    assert!(validators.etag.is_some());
    assert!(
        matches!(first[1], Ok(Conditional::Fetched { .. })),
        "a 503 is retried"
    );
    assert!(first[2].is_err(), "a 404 is an error");

    up.clear_requests();
    let again = e.fetch_bytes_conditional_reporting(
        &[(up.url("idx/se/rd/serde"), validators.clone())],
        INDEX,
        &NullReporter,
    );
    assert_eq!(again[0].as_ref().unwrap(), &Conditional::NotModified);
    let reqs = up.requests_for("idx/se/rd/serde");
    assert_eq!(reqs[0].header("if-none-match"), validators.etag.as_deref());

    // A changed resource comes back whole, with new validators.
    up.put("idx/se/rd/serde", b"line 1\nline 2\n".to_vec());
    let changed = e.fetch_bytes_conditional_reporting(
        &[(up.url("idx/se/rd/serde"), validators.clone())],
        INDEX,
        &NullReporter,
    );
    let Ok(Conditional::Fetched {
        bytes,
        validators: newer,
    }) = &changed[0]
    else {
        panic!("{:?}", changed[0])
    };
    assert_eq!(bytes, b"line 1\nline 2\n");
    assert_ne!(newer.etag, validators.etag);
}

#[test]
fn a_trickling_transfer_is_abandoned_and_resumed() {
    let up = Upstream::start();
    let data = body(20_000, 9);
    up.put("slow.bin", data.clone());
    up.fault(
        "slow.bin",
        Fault::Trickle {
            bytes: 100,
            every_ms: 100,
        },
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::new(FetchOptions {
        http: HttpOptions {
            timeout: Duration::from_secs(1),
            retries: 1,
            retry_delay: Duration::ZERO,
            low_speed_limit: 1024,
            max_file_size: None,
        },
        ..FetchOptions::default()
    })
    .unwrap();
    e.fetch_all(
        vec![item(&up, "slow.bin", &data, dir.path())],
        &NullReporter,
    )
    .unwrap();
    let reqs = up.requests_for("slow.bin");
    assert_eq!(reqs.len(), 2, "abandoned once, then resumed");
    assert!(reqs[1]
        .header("range")
        .is_some_and(|r| r.starts_with("bytes=")));
    assert_eq!(std::fs::read(dir.path().join("slow.bin")).unwrap(), data);

    // Without retries the error says why.
    let up2 = Upstream::start();
    up2.put("slow.bin", data.clone());
    up2.fault(
        "slow.bin",
        Fault::Trickle {
            bytes: 100,
            every_ms: 100,
        },
        1,
    );
    let e = Engine::new(FetchOptions {
        http: HttpOptions {
            timeout: Duration::from_secs(1),
            retries: 0,
            retry_delay: Duration::ZERO,
            low_speed_limit: 1024,
            max_file_size: None,
        },
        ..FetchOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = e
        .fetch_all(
            vec![item(&up2, "slow.bin", &data, dir.path())],
            &NullReporter,
        )
        .unwrap_err();
    assert!(err.to_string().contains("too slow"), "{err}");
}

/// Items that only have a SHA-512 (Hex's `installs/`): checked while
/// streaming, also across a resumed transfer; a mismatch names both
/// digests as SHA-512 and publishes nothing; a present file is re-hashed
/// and skipped.
#[test]
fn sha512_items_are_verified_resumed_and_skipped_when_present() {
    use mirror::verify::digest::Sha512Digest;
    let up = Upstream::start();
    let data = body(200_000, 9);
    up.put("good.ez", data.clone());
    up.fault("good.ez", Fault::CutBody { after: 70_000 }, 1);
    up.put("bad.ez", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let good = FetchItem::new(up.url("good.ez"), dir.path().join("good.ez"))
        .sha512(Sha512Digest::of(&data));
    let e = engine(2, true);
    e.fetch_all(vec![good.clone()], &NullReporter).unwrap();
    assert_eq!(std::fs::read(dir.path().join("good.ez")).unwrap(), data);
    assert!(
        up.requests()
            .iter()
            .any(|r| r.path == "/good.ez" && r.header("range") == Some("bytes=70000-")),
        "the cut transfer was resumed"
    );

    let bad = FetchItem::new(up.url("bad.ez"), dir.path().join("bad.ez"))
        .sha512(Sha512Digest::of(b"something else"));
    let err = e.fetch_all(vec![bad], &NullReporter).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&up.url("bad.ez"))
            && msg.contains(&format!(
                "expected sha512: {}",
                Sha512Digest::of(b"something else")
            ))
            && msg.contains(&format!("actual sha512:   {}", Sha512Digest::of(&data))),
        "{msg}"
    );
    assert!(!dir.path().join("bad.ez").exists());

    let before = up.gets("good.ez");
    let s = e.fetch_all(vec![good], &NullReporter).unwrap();
    assert_eq!((s.fetched, s.skipped), (0, 1));
    assert_eq!(up.gets("good.ez"), before);
}

/// Every event a reporter receives, in order.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<String>>);

impl mirror::report::Reporter for Events {
    fn begin(&self, phase: &str, total_items: u64, _: Option<u64>) {
        self.push(format!("begin {phase} {total_items}"));
    }
    fn grow(&self, items: u64) {
        self.push(format!("grow {items}"));
    }
    fn planned(&self) {
        self.push("planned".into());
    }
    fn item(&self, _: &str, outcome: mirror::report::Outcome) {
        self.push(format!("item {outcome:?}"));
    }
    fn end(&self) {
        self.push("end".into());
    }
}

impl Events {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[test]
fn progress_says_when_a_growing_plan_is_complete_and_its_total_is_then_true() {
    // A plan made while downloads run: the bar's total grows, and the
    // reporter learns when it stops growing, so a bar never shows a total
    // that is not final as if it were.
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let items = served(&up, dir.path(), "p", 12, 3);
    // Two are already held: skipped, never part of the download total.
    for it in &items[..2] {
        let path = it.dest.clone();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let i: u8 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        std::fs::write(&path, body(200, 3u8.wrapping_add(i))).unwrap();
    }
    let e = engine(3, false);
    let (sink, source) = item_queue(false);
    let events = Events::default();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for it in items {
                sink.push(it);
                std::thread::sleep(Duration::from_millis(15));
            }
            drop(sink);
        });
        e.fetch_from(source, &events).unwrap();
    });
    let ev = events.take();
    assert_eq!(ev.first().map(String::as_str), Some("begin download 0"));
    assert_eq!(ev.last().map(String::as_str), Some("end"));
    let planned = ev
        .iter()
        .position(|e| e == "planned")
        .expect("planned is reported");
    assert_eq!(ev.iter().filter(|e| *e == "planned").count(), 1);
    let grown: u64 = ev[..planned]
        .iter()
        .filter_map(|e| e.strip_prefix("grow "))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        grown, 10,
        "the total once planned is what is downloaded: {ev:?}"
    );
    assert!(
        !ev[planned..].iter().any(|e| e.starts_with("grow")),
        "no growth after the plan is complete: {ev:?}"
    );
    let count = |o: &str| ev.iter().filter(|e| *e == &format!("item {o}")).count();
    assert_eq!((count("Done"), count("Skipped")), (10, 2));
}

#[test]
fn fetching_index_files_is_a_phase_with_its_total_known() {
    let up = Upstream::start();
    up.put("idx/a", b"a".to_vec());
    up.put("idx/b", b"b".to_vec());
    let e = engine(2, false);
    let events = Events::default();
    let requests: Vec<_> = ["idx/a", "idx/b", "idx/none"]
        .iter()
        .map(|p| (up.url(p), mirror::fetch::Validators::default()))
        .collect();
    let r =
        e.fetch_bytes_conditional_reporting(&requests, mirror::limit::CRATE_INDEX_FILE, &events);
    assert_eq!(r.len(), 3);
    assert_eq!(
        events.take(),
        [
            "begin index 3",
            "item Done",
            "item Done",
            "item Failed",
            "end"
        ]
    );
}
