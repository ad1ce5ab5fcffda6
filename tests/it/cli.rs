//! The command line itself: clap's own consistency checks, global options
//! after subcommands, and the checked-in man page and completions.

use std::path::Path;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use mirror::cli::{generate, Cli, Command};

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn global_options_are_accepted_after_the_subcommand() {
    let cli = Cli::try_parse_from([
        "mirror",
        "rustup",
        "-q",
        "download",
        "-j",
        "3",
        "--keep-going",
        "--assume-ok",
        "-s",
        "stable",
        "-t",
        "linux",
    ])
    .unwrap();
    assert!(cli.global.quiet && cli.global.keep_going && cli.global.assume_ok);
    assert_eq!(cli.global.jobs, Some(3));
    assert!(matches!(cli.command, Command::Rustup(_)));
}

/// Compare a generated file with its checked-in copy; with
/// `MIRROR_UPDATE_GENERATED=1` rewrite the copy instead.
fn check_generated(rel: &str, generated: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("MIRROR_UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let on_disk = std::fs::read(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{rel} is stale; regenerate with: MIRROR_UPDATE_GENERATED=1 cargo test --test it generated_files"
    );
}

#[test]
fn generated_files_are_up_to_date() {
    let pages = generate::man_pages().unwrap();
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"mirror.1") && names.contains(&"mirror-crate.1"),
        "{names:?}"
    );
    let page = |name: &str| &pages.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(page("mirror.1"), &generate::man_page().unwrap());
    for (name, page) in &pages {
        check_generated(&format!("man/{name}"), page);
        assert!(
            page.is_ascii(),
            "{name}: groff warns of characters outside ASCII"
        );
    }
    // No page is left behind by a subcommand that went away.
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for entry in std::fs::read_dir(&man).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if std::env::var_os("MIRROR_UPDATE_GENERATED").is_some() && !names.contains(&name.as_str())
        {
            std::fs::remove_file(man.join(&name)).unwrap();
            continue;
        }
        assert!(
            names.contains(&name.as_str()),
            "man/{name} is stale: no such page is generated"
        );
    }
    check_generated(
        "completions/mirror.bash",
        &generate::completions(Shell::Bash),
    );
    check_generated("completions/_mirror", &generate::completions(Shell::Zsh));
    check_generated(
        "completions/mirror.fish",
        &generate::completions(Shell::Fish),
    );
}
