//! The shape DESIGN.md draws, checked from the code's own paths: data moves one way
//! (capture → decode → flow → ftp → sinks), the engine imports nothing of the crate and
//! does no I/O, the sinks know neither capture nor decode, the command line is the
//! binary's, and no source file outgrows what one person holds.
//!
//! Sources are read as text. Unit-test modules (from a file's first `#[cfg(test)]` on)
//! are left out: a test may build its input with any part of the crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as (path relative to src/, text).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable source dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(src())
                    .expect("under src")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("readable source")));
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its unit tests and comments.
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's top-level modules a file names: `crate::x` (library) or `ftpwatch::x`
/// (the binary's modules use the library by its name), also inside a group
/// (`crate::{x, y::z}`).
fn modules_used(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut used = BTreeSet::new();
    for prefix in ["crate::", "ftpwatch::"] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            let names: Vec<String> = match rest.strip_prefix('{') {
                // Top-level items of a group: split at commas outside inner braces.
                Some(group) => {
                    let (mut depth, mut items, mut start) = (0, Vec::new(), 0);
                    for (k, ch) in group.char_indices() {
                        match ch {
                            '{' => depth += 1,
                            '}' if depth == 0 => {
                                items.push(&group[start..k]);
                                break;
                            }
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                items.push(&group[start..k]);
                                start = k + 1;
                            }
                            _ => {}
                        }
                    }
                    items.into_iter().map(ident).collect()
                }
                None => vec![ident(rest)],
            };
            used.extend(names.into_iter().filter(|n| !n.is_empty() && n != "self"));
        }
    }
    used
}

/// Files under `dir` (relative to src/) that use any of `forbidden`, with what they use.
fn violations(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = src().join(dir);
    let files = if root.is_dir() {
        sources(&root)
    } else {
        let text = std::fs::read_to_string(&root).expect("readable source");
        vec![(dir.to_string(), text)]
    };
    assert!(!files.is_empty(), "no sources under src/{dir}");
    files
        .iter()
        .flat_map(|(path, text)| {
            let used = modules_used(&code(text));
            forbidden
                .iter()
                .filter(move |f| used.contains(**f))
                .map(move |f| format!("src/{path} uses {f}"))
        })
        .collect()
}

#[test]
fn the_engine_imports_nothing_of_the_crate_and_does_no_io() {
    let mut bad = Vec::new();
    for (path, text) in sources(&src().join("ftp")) {
        let code = code(&text);
        for m in modules_used(&code) {
            if m != "ftp" {
                bad.push(format!("src/ftp/{path} uses crate::{m}"));
            }
        }
        for io in [
            "std::fs",
            "std::net::Tcp",
            "std::net::Udp",
            "SystemTime",
            "Instant",
            "tokio",
            "prometheus",
            "pnet",
            "etherparse",
            "libc",
        ] {
            if code.contains(io) {
                bad.push(format!("src/ftp/{path} uses {io}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The engine's modules that `files` (under src/ftp) refer to, by either spelling.
fn engine_modules_used(files: &[(String, String)], names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        let code = code(text);
        for m in names {
            let paths = [format!("super::{m}::"), format!("crate::ftp::{m}::")];
            if paths.iter().any(|p| code.contains(p.as_str())) {
                found.push(format!("{path} uses {m}"));
            }
        }
    }
    found
}

#[test]
fn the_engine_layers_run_engine_then_session_then_shared() {
    let ftp = src().join("ftp");
    let one = |f: &str| vec![(f.to_string(), std::fs::read_to_string(ftp.join(f)).unwrap())];
    let mut bad = engine_modules_used(&one("shared.rs"), &["session", "engine"]);
    bad.extend(engine_modules_used(
        &one("config.rs"),
        &["session", "engine", "shared"],
    ));
    bad.extend(engine_modules_used(
        &sources(&ftp.join("session")),
        &["engine"],
    ));
    assert!(bad.is_empty(), "{bad:#?}");
    // The check can see a use when there is one.
    assert!(!engine_modules_used(&one("engine.rs"), &["session"]).is_empty());
}

#[test]
fn data_moves_one_way() {
    let mut bad = Vec::new();
    bad.extend(violations(
        "capture",
        &["decode", "flow", "ftp", "sink", "pipeline"],
    ));
    bad.extend(violations("decode", &["flow", "ftp", "sink", "pipeline"]));
    bad.extend(violations("flow", &["sink", "pipeline"]));
    bad.extend(violations(
        "sink",
        &["capture", "decode", "pipeline", "proxy"],
    ));
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The proxy feeds the engine stream events from its own sockets: it does not go
/// through capture, decode or the connection table (DESIGN.md, "proxy").
#[test]
fn the_proxy_feeds_the_engine_without_capture_decode_or_flow() {
    let mut bad = violations("proxy", &["capture", "decode", "flow", "pipeline"]);
    bad.extend(violations("ftp", &["proxy"]));
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_runners_do_not_know_the_command_line() {
    let mut bad = violations("live", &["cli"]);
    bad.extend(violations("read.rs", &["cli"]));
    bad.extend(violations("pipeline.rs", &["cli", "read", "live"]));
    bad.extend(violations("proxy", &["cli", "proxy_cli"]));
    bad.extend(violations("proxy_cli.rs", &["cli"]));
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_library_exports_no_command_line() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("pub ");
            l.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    assert!(declared.contains(&"ftp"), "lib.rs declares {declared:?}");
    for m in ["cli", "read", "live", "explain", "proxy_cli", "logfile"] {
        assert!(!declared.contains(&m), "lib.rs declares mod {m}");
    }
}

#[test]
fn no_source_file_outgrows_what_one_person_holds() {
    let long: Vec<String> = sources(&src())
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(path, text)| format!("src/{path}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The path scanner finds both spellings, and skips comments and unit tests.
    let text = "use crate::ftp::Verb;\nuse crate::{decode::{a, b}, flow};\n// crate::sink in a comment\nfn f() { ftpwatch::capture::x(); }\n#[cfg(test)]\nuse crate::synth;";
    let used = modules_used(&code(text));
    let expected = ["capture", "decode", "flow", "ftp"].map(String::from);
    assert_eq!(used, BTreeSet::from(expected));
    // And the layout they check is there.
    assert!(
        violations("sink", &["ftp"])
            .iter()
            .any(|v| v.contains("metrics"))
    );
}
