# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mirror_global_optspecs
    string join \n root= j/num-jobs= keep-going assume-ok timeout= retries= low-speed-limit= max-file-size= v/verbose q/quiet h/help V/version
end

function __fish_mirror_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mirror_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mirror_using_subcommand
    set -l cmd (__fish_mirror_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mirror -n "__fish_mirror_needs_command" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_needs_command" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_needs_command" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_needs_command" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_needs_command" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_needs_command" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_needs_command" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_needs_command" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_needs_command" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_needs_command" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_needs_command" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_needs_command" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "toolchain" -d 'Mirror Rust toolchains (dist channel manifests and their files)'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "rustup" -d 'Mirror rustup-init for chosen versions and targets'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "crate" -d 'Mirror the crates.io index and crate files'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "hex" -d 'Mirror the Hex repository (Erlang/Elixir packages), verified'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "arch" -d 'Mirror Arch Linux pacman repositories, verified'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "serve" -d 'Serve mirrored trees over HTTP'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "publish" -d 'Publish the tree to S3-compatible object storage'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "generate" -d 'Generate the man page or shell completions'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "export" -d 'Carry every ecosystem configured in mirror.toml in one trip: signed, sequenced volumes'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "import" -d 'Check a trip (signature, volumes, sequence), then import every ecosystem it carries'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "keygen" -d 'Make a site key for signing trips; prints its certificate for the far side'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "status" -d 'Per ecosystem what the tree holds and its marks; the trips exported and imported'
complete -c mirror -n "__fish_mirror_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s s -l select -d 'Toolchains: stable, beta, nightly, X.Y.Z, CHANNEL-YYYY-MM-DD, latest, * (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s t -l target -d 'Host targets: triples, linux, windows, darwin, all, * (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l cross -d 'Extra targets for which only rust-std is fetched (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l components -d 'Components to add or (with !) remove: rust-src,!rust-docs' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l profile -d 'Fetch a profile\'s components only: minimal, default, complete' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l format -d 'Package formats to fetch: gz, xz (comma-separated) [default: xz]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l url -d 'Upstream dist URL [default: https://static.rust-lang.org/dist]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l keyring -d 'OpenPGP keyring for signatures [default: the embedded Rust release key]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l start -d 'pack: take the files written since START instead of since the mark: 0 for every file held, or a mark value a message named' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l keep -d 'clean: dated manifests kept per channel: stable=3,beta=1,nightly=7 (a channel not named keeps all; repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l pin -d 'clean: stable releases kept whatever --keep says (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l archive -d 'Archive for pack and unpack' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l no-signature -d 'Skip signature checks'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l warn-signature -d 'Accept a missing .asc with a warning (a bad one is still an error)'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l json -d 'Print list as JSON'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l dry-run -d 'clean: print what would be removed, remove nothing'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand toolchain" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s s -l select -d 'Versions: stable, X.Y.Z, latest, * (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s t -l target -d 'Targets: triples, linux, windows, darwin, all, * (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l url -d 'Upstream base URL [default: https://static.rust-lang.org/rustup]' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l start -d 'pack: take the files written since START instead of since the mark: 0 for every file held, or a mark value a message named' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l keep -d 'clean: how many of the newest versions to keep' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l pin -d 'clean: versions kept whatever --keep says (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l archive -d 'Archive for pack and unpack' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l dry-run -d 'clean: print what would be removed, remove nothing'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l json -d 'Print list as JSON'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand rustup" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l index -d 'The index repository, relative to the root' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l crates -d 'The crate directory, relative to the root' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l index-url -d 'Upstream index for init: the git repository\'s http(s):// or file:// URL or path; sparse+URL for a sparse index, `sparse` for https://index.crates.io/' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l crates-url -d 'Download template: {crate}, {version}, {prefix}, {lowerprefix}, {sha256-checksum}' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l start -d 'Start of RANGE (a ref or commit; 0 = start of history) [default: mark]' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l end -d 'End of RANGE' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l archive -d 'Archive for pack and unpack' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l bundle-path -d 'The index bundle for pack, unpack and init-import [default: INDEX/origin.bundle]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l server-url -d 'Base URL config writes into config.json (dl, api)' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l filter -d 'Only crates matching NAME[@VERSION] (globs; repeatable; with a git upstream, added to the patterns remembered)' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l filter-file -d 'Read filters from a file (one or more per line, # comments)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l good-crates -d 'Record crates that downloaded or verified (NAME@VERSION per line)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l bad-crates -d 'Record crates that failed (NAME@VERSION per line)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l remove -d 'Drop NAME from the remembered selection; its files are deleted here and, by the next archive, on the far side (repeatable)' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l lockfile -d 'Sparse upstream: mirror exactly the crates.io packages locked in this Cargo.lock (repeatable; added to the selection remembered)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l crate -d 'Sparse upstream: mirror NAME, the versions matching REQ [default: *] (repeatable; added to the selection remembered)' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l crate-file -d 'Sparse upstream: read NAME[@REQ] from a file (one or more per line, # comments)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l versions -d 'Sparse upstream: how many versions each --crate given selects: latest, all or N (newest N); remembered with it' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l with-deps -d 'Sparse upstream: follow dependencies of these kinds (normal, build, dev) from each --crate given, optional and target-specific ones included; remembered with it' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand crate" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l allow-missing-start -d 'A START that names nothing means the start of history'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l allow-rewrite -d 'unpack: take an index whose history does not continue the one imported before (the served history keeps the old as an ancestor)'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l replace-selection -d 'The selection given replaces the remembered one instead of adding to it'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l json -d 'list: print what the mirror holds (every version master lists whose .crate is present) as JSON'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand crate" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l url -d 'Upstream repository URL [default: https://repo.hex.pm]' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l repo-name -d 'Repository name every signed payload must carry' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l public-key -d 'PEM public key of the repository [default: the embedded hexpm key]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l signing-key -d 'PEM RSA private key of the site: a partial mirror\'s names, versions and packages/<name> then list only what it holds, signed with it' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l package -d 'Mirror only these packages (repeatable, comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l package-file -d 'Mirror the packages listed in FILE (one per line, # comments)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l rebar-lock -d 'Mirror the Hex packages pinned in a rebar.lock (exact versions)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l mix-lock -d 'Mirror the Hex packages pinned in a mix.lock (exact versions)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l versions -d 'Versions of each selected package: latest, all or N (the newest N)' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l remove -d 'Drop NAME from the remembered selection; its files are deleted here and, by the next archive, on the far side (repeatable)' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l installs -d 'Hex itself for `mix local.hex` (installs/): none, latest (the archive each Elixir/OTP version installs) or all' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l installs-public-key -d 'PEM public key the install lists are signed with [default: the embedded Elixir key, as Mix has it]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l start -d 'pack: take the files changed since START instead of since the mark: 0 for every file held, or a mark value a message named' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l archive -d 'Archive for pack and unpack' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand hex" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l with-deps -d 'Also mirror the dependencies of the selected releases, transitively'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l replace-selection -d 'The selection given replaces the remembered one instead of adding to it'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l json -d 'list: print every release held (package and version) as JSON'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand hex" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l url -d 'Mirror URL (repeatable: later ones are fallbacks) [default: https://geo.mirror.pkgbuild.com/$repo/os/$arch]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l repo -d 'Repositories from the mirror URLs (repeatable, comma-separated) [default: core,extra]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l custom-repo -d 'A repository from its own URL (repeatable)' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l arch -d 'Architecture' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l keyring -d 'OpenPGP certificates packages must be signed with [default: /usr/share/keyrings/archlinux.gpg]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l package -d 'Mirror only these packages and their dependencies (repeatable, comma-separated); the databases then list only what the mirror holds' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l package-file -d 'Mirror the packages listed in FILE (one per line, # comments)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l remove -d 'Drop NAME from the remembered selection; its files are deleted here and, by the next archive, on the far side (repeatable)' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l signing-key -d 'Sign the databases a partial mirror regenerates with this OpenPGP secret key (unencrypted); without it they are published unsigned' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l num-versions-retain -d 'Versions of each package clean keeps (0: all)' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l start -d 'pack: take the files changed since START instead of since the mark: 0 for every file held, or a mark value a message named' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l archive -d 'Archive for pack and unpack' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand arch" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l replace-selection -d 'The selection given replaces the remembered one instead of adding to it'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l json -d 'list: print every package held as JSON'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand arch" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l bind -d 'Address to listen on' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l port -d 'Port to listen on' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l base-url -d 'Public URL of this server, written into the sparse index\'s config.json (`dl`, `api`) [default: http://HOST from the request, else http://BIND:PORT]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l tls-cert -d 'Serve https with this PEM certificate chain (needs --tls-key)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l tls-key -d 'The PEM private key of --tls-cert' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l access-log -d 'Write a line per request here (`-`: standard output): client, user, time, request, status, bytes, referer, user agent, duration and cache outcome; reopened on SIGHUP. Lines the writer cannot keep up with are dropped and counted, never waited for' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l log-format -d 'Format of --access-log: the combined log format followed by the duration (s) and cache outcome, or one JSON object a line' -r -f -a "combined\t'The combined log format, then duration (s) and cache outcome'
json\t'One JSON object per line'"
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l auth-file -d 'Require credentials: one a line, NAME:HASH with a bcrypt hash as `htpasswd -B` writes it, reread on SIGHUP. Clients send basic auth or the token NAME:PASSWORD (cargo); every path but /health answers 401 without one' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l max-connections -d 'Connections open at once; at the cap, one that has not sent a request yet (the oldest), else the longest idle, else one not taking its response is closed for the new one [default: (open-file limit − 128) / 2, at most 8192; the soft open-file limit is first raised to the hard one]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l max-tls-handshakes -d 'TLS handshakes in progress at once; past it the oldest is closed [default: 256, or the connection cap if lower]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l header-timeout -d 'Seconds a client has to send a request\'s whole header (the first from connecting, a later one from its first byte)' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l body-timeout -d 'Seconds a request body may go without a byte from the client' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l send-timeout -d 'Seconds a client may take none of a response ready for it' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l keepalive-timeout -d 'Seconds a connection is kept open with no request in flight' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l tls-handshake-timeout -d 'Seconds a client has to complete its TLS handshake' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-crates -d 'Fetch crates the tree lacks from this sparse index (e.g. https://index.crates.io/), verify them against its cksum and keep them' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-crates-dl -d 'Download template of --upstream-crates: {crate}, {version}, {prefix}, {lowerprefix}, {sha256-checksum}' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-arch -d 'Fetch Arch Linux databases and packages the tree lacks from this mirror (repeatable: tried in order; a base, or a template with $repo and $arch), packages verified against the database\'s %SHA256SUM%' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-hex -d 'Fetch Hex resources the tree lacks from this repository (e.g. https://repo.hex.pm), signed files checked with --upstream-hex-public-key, tarballs against their outer checksum' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-hex-public-key -d 'PEM public key of --upstream-hex [default: the embedded hexpm key]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-hex-repo-name -d 'Repository name every signed payload of --upstream-hex must carry' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-dist -d 'Fetch toolchain manifests and component files the tree lacks from this dist server (e.g. https://static.rust-lang.org/dist), manifests checked against their .asc, files against the manifest\'s hash' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-dist-keyring -d 'OpenPGP keyring for --upstream-dist manifests [default: the embedded Rust release key]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l upstream-rustup -d 'Fetch rustup-init binaries and release-stable.toml the tree lacks from this server (e.g. https://static.rust-lang.org/rustup), binaries checked against its .sha256 files' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l cache-ttl -d 'How long (seconds) metadata pulled from an upstream (index files, databases, manifests) is served before it is revalidated with a conditional request' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l cache-follow-after -d 'How long (seconds) a client of a file being pulled waits for the verified file before it follows the download as it arrives (cut short if the bytes then fail to verify)' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l git-max-processes -d 'Most `git upload-pack` processes serving the git index at once; further git requests wait up to 10 s (at most half of --git-timeout) for one to end, then get 503 with Retry-After' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l git-timeout -d 'Longest git request (seconds): git is killed when the exchange lasts longer, when its request body takes longer than 30 s (or this, if shorter) to arrive, and when the client goes away' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l cache-miss-rate -d 'Upstream requests (misses, revalidations) each client address may start per second once its burst is spent; more get 429 with Retry-After (IPv6 counted by /64; 0: no limit)' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l cache-miss-burst -d 'Upstream requests each client address may start at once before --cache-miss-rate applies' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l cache-not-found-entries -d 'Paths upstream answered 404 for that are remembered (for --cache-ttl), at most; the least recently asked are forgotten first' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand serve" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l force-root -d 'Serve the root even if it is `/`, a home directory, or a directory holding no mirror tree (none of dist/, rustup/, crates/, git/crates.io-index/, hex/, archlinux/, .mirror/), which are refused otherwise: everything under the root is served'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirror -n "__fish_mirror_using_subcommand serve" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l to -d 'Where to publish: s3://BUCKET[/PREFIX]. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the AWS_PROFILE (default "default") of ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE), never from mirror.toml' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l endpoint -d 'The store\'s endpoint, for S3-compatible stores (MinIO, Ceph RGW, Garage, R2…); http:// is allowed [default: AWS_ENDPOINT_URL, else AWS S3]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l region -d 'The store\'s region [default: AWS_REGION, else us-east-1]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l public-url -d 'Where readers reach the prefix (a CDN, the bucket\'s public URL), written into the crates index\'s config.json [default: the endpoint\'s URL of the prefix]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l multipart-threshold -d 'Files larger than this are uploaded in parts (K, M, G suffixes) [default: 64M]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l part-size -d 'Size of each part of a multipart upload, at least 5M (K, M, G suffixes) [default: 16M]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l retire-after -d 'Seconds a file that left the tree stays in the store, at least (deleted by the first publish after); for tests' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand publish" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l virtual-hosted -d 'Address the bucket as BUCKET.HOST instead of HOST/BUCKET'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand publish" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "man" -d 'The man pages (roff): `mirror(1)` to stdout, or with --dir one page per subcommand (`mirror-crate(1)` and so on) into DIR'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "completions" -d 'Shell completions, to stdout'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l dir -d 'Write every page into this directory instead' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'The man pages (roff): `mirror(1)` to stdout, or with --dir one page per subcommand (`mirror-crate(1)` and so on) into DIR'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Shell completions, to stdout'
complete -c mirror -n "__fish_mirror_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mirror -n "__fish_mirror_using_subcommand export" -l out -d 'Directory the trip is written to' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand export" -l only -d 'Only these ecosystems: crate, toolchain, rustup, hex, arch (comma-separated)' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l volume-size -d 'At most this many bytes per volume: 700M, 4G, or fat32, dvd, bd25 [default: one volume]' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l parity -d 'Parity volumes: any N missing or damaged volumes are rebuilt on import' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l sign-key -d 'Sign the trip with this unencrypted OpenPGP secret key (armored or binary)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand export" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand export" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand export" -l full -d 'Carry everything held, not only what is new since the marks (seeds a new far side)'
complete -c mirror -n "__fish_mirror_using_subcommand export" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand export" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand export" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand export" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand export" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand export" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand import" -l trust -d 'Require a signature by this certificate (armored or binary; repeatable; with `[import] trust` in mirror.toml)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand import" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand import" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand import" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand import" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand import" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand import" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand import" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand import" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand import" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand import" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand import" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand import" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l out -d 'Where the secret key goes (must not exist; readable by its owner only)' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l user-id -d 'The key\'s user ID' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand keygen" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand status" -l root -d 'Mirror root: the directory holding rustup/, dist/, crates/ and the other trees [default: the working directory]' -r -F
complete -c mirror -n "__fish_mirror_using_subcommand status" -s j -l num-jobs -d 'Parallel download jobs [default: 8]' -r
complete -c mirror -n "__fish_mirror_using_subcommand status" -l timeout -d 'Seconds to wait for a connection or for the next bytes [default: 30]' -r
complete -c mirror -n "__fish_mirror_using_subcommand status" -l retries -d 'Retries of a failed request (network errors, 5xx, 429) [default: 4]' -r
complete -c mirror -n "__fish_mirror_using_subcommand status" -l low-speed-limit -d 'Abandon (and retry, or try the next mirror) a transfer slower than this many bytes/s over --timeout seconds; 0 = no limit [default: 1024]' -r
complete -c mirror -n "__fish_mirror_using_subcommand status" -l max-file-size -d 'Raise the ceiling of downloads whose size is not known in advance (crates: 128M, Hex tarballs: 16M, toolchain files: 2G); a body past its ceiling is refused. Accepts K, M, G suffixes' -r
complete -c mirror -n "__fish_mirror_using_subcommand status" -l json -d 'Print JSON'
complete -c mirror -n "__fish_mirror_using_subcommand status" -l keep-going -d 'Keep going after a failed download; the run still exits non-zero and lists every failure'
complete -c mirror -n "__fish_mirror_using_subcommand status" -l assume-ok -d 'Trust files already present (size check only) instead of re-hashing'
complete -c mirror -n "__fish_mirror_using_subcommand status" -s v -l verbose -d 'More output: one line per file'
complete -c mirror -n "__fish_mirror_using_subcommand status" -s q -l quiet -d 'No progress or status output; errors only'
complete -c mirror -n "__fish_mirror_using_subcommand status" -s h -l help -d 'Print help'
complete -c mirror -n "__fish_mirror_using_subcommand status" -s V -l version -d 'Print version'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "toolchain" -d 'Mirror Rust toolchains (dist channel manifests and their files)'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "rustup" -d 'Mirror rustup-init for chosen versions and targets'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "crate" -d 'Mirror the crates.io index and crate files'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "hex" -d 'Mirror the Hex repository (Erlang/Elixir packages), verified'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "arch" -d 'Mirror Arch Linux pacman repositories, verified'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "serve" -d 'Serve mirrored trees over HTTP'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "publish" -d 'Publish the tree to S3-compatible object storage'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "generate" -d 'Generate the man page or shell completions'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "export" -d 'Carry every ecosystem configured in mirror.toml in one trip: signed, sequenced volumes'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "import" -d 'Check a trip (signature, volumes, sequence), then import every ecosystem it carries'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "keygen" -d 'Make a site key for signing trips; prints its certificate for the far side'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "status" -d 'Per ecosystem what the tree holds and its marks; the trips exported and imported'
complete -c mirror -n "__fish_mirror_using_subcommand help; and not __fish_seen_subcommand_from toolchain rustup crate hex arch serve publish generate export import keygen status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mirror -n "__fish_mirror_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'The man pages (roff): `mirror(1)` to stdout, or with --dir one page per subcommand (`mirror-crate(1)` and so on) into DIR'
complete -c mirror -n "__fish_mirror_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Shell completions, to stdout'
