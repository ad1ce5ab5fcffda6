//! Test support: fake upstreams, fixture builders, test keys.
#![allow(dead_code)]
pub mod arch;
pub mod archive;
pub mod crates;
pub mod dist;
pub mod hex;
pub mod keys;
pub mod rustup;
pub mod s3;
pub mod serve_process;
pub mod sparse;
pub mod tree;
pub mod upstream;

/// Run `cmd`, print what it said (shown when a test fails), return its
/// output. `what` names the command in the log.
pub fn run_logged(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    eprintln!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
