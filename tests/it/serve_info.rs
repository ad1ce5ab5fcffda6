//! `GET /` (how to point clients here) and `GET /stats`.

use mirror::serve::{spawn, ServeOptions};

#[tokio::test]
async fn index_page_shows_client_settings_for_the_trees_present() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("rustup/dist/x86_64-unknown-linux-gnu")).unwrap();
    std::fs::write(
        root.path()
            .join("rustup/dist/x86_64-unknown-linux-gnu/rustup-init"),
        b"12345",
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("crates/se/rd/serde")).unwrap();
    std::fs::write(
        root.path().join("crates/se/rd/serde/serde-1.0.0.crate"),
        b"abc",
    )
    .unwrap();
    std::fs::write(
        root.path()
            .join("crates/se/rd/serde/serde-1.0.1.crate.partial"),
        b"zz",
    )
    .unwrap();
    let server = spawn(ServeOptions::local(root.path())).unwrap();
    let client = reqwest::Client::new();

    let res = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let html = res.text().await.unwrap();
    let base = format!("http://{}", server.addr);
    assert!(
        html.contains(&format!("RUSTUP_UPDATE_ROOT={base}/rustup")),
        "{html}"
    );
    assert!(
        html.contains(&format!("registry = \"sparse+{base}/index/\"")),
        "{html}"
    );
    assert!(
        !html.contains("pacman"),
        "no Arch tree, no Arch section: {html}"
    );

    // A hostile Host header never reaches the page.
    let res = client
        .get(server.url("/"))
        .header("host", "evil\"><script>")
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");

    let stats = client
        .get(server.url("/stats"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    let trees = stats["trees"].as_array().unwrap();
    let find = |n: &str| trees.iter().find(|t| t["name"] == n).cloned().unwrap();
    assert_eq!(find("rustup")["files"], 1);
    assert_eq!(find("rustup")["bytes"], 5);
    assert_eq!(
        find("crates")["files"],
        1,
        "unfinished downloads are not counted"
    );
    drop(client);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

/// The index page as a person sees it: the real Chromium (headless) loads
/// it from `mirror serve`, and the rendered document (after parsing, as
/// the browser built it) tells how to point every client present here,
/// with this server's address; a screenshot is rendered too.
#[test]
fn index_page_renders_in_headless_chromium() {
    let root = tempfile::tempdir().unwrap();
    for dir in ["dist", "rustup", "crates", "hex", "archlinux"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let server = spawn(ServeOptions::local(root.path())).unwrap();
    let base = format!("http://{}", server.addr);
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("index-page.png");
    let Some(dom) = crate::serve_ops::chromium_dom(&server.url("/"), &shot) else {
        return;
    };
    for want in [
        format!("<title>mirror at {base}</title>"),
        format!("export RUSTUP_DIST_SERVER={base}"),
        format!("export RUSTUP_UPDATE_ROOT={base}/rustup"),
        format!("registry = \"sparse+{base}/index/\""),
        format!("export HEX_MIRROR={base}/hex"),
        "mix local.hex --force".to_string(),
        format!("Server = {base}/archlinux/$repo/os/$arch"),
        "<a href=\"/stats\">/stats</a>".to_string(),
    ] {
        assert!(dom.contains(&want), "rendered page lacks {want:?}:\n{dom}");
    }
}
