//! ftpwatch's reply and command counts over the public captures in
//! `../shared/pcaps/public` agree with tshark's (`*.truth.json`), except where the two
//! count differently by design. ftpwatch's rules, and what they change:
//!
//! 1. A reply is counted once, however many lines it has. tshark counts every TCP
//!    segment that starts with a reply code, so a multi-line reply split over several
//!    segments counts several times.
//! 2. Lines are reassembled across segments before they are parsed. tshark parses each
//!    segment alone, so in the GridFTP captures a continuation segment of a long ADAT
//!    line counts as a command named by its base64 text; and in
//!    globus-url-copy-bad-encoding, whose corrupted ADAT line has no CRLF, the next ADAT
//!    is part of the same line for ftpwatch (one command, not two).
//! 3. Verbs are counted by name when ftpwatch knows them, as `other` when not (the
//!    crafted 132-letter verbs of fake-long-commands).
//!
//! Every transfer's final reply is in its command's completion set (RFC 959 §5.4).
//!
//! The corpus is found through FTPWATCH_PUBLIC_PCAPS, or at ../shared/pcaps/public
//! beside the repository. `.ci/run` sets the variable, and then a missing corpus fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ftpwatch::ftp::Verb;
use ftpwatch::pipeline::Settings;

type Counts = BTreeMap<String, u64>;

/// (capture, "replies" or "commands", key, tshark's count, ftpwatch's count, rule)
const BY_DESIGN: &[(&str, &str, &str, u64, u64, u8)] = &[
    ("ftp-auth-tls", "replies", "211", 2, 1, 1),
    ("ipv6-multiline-reply", "replies", "220", 12, 1, 1),
    ("ipv6-retr-samba", "replies", "250", 2, 1, 1),
    ("var-services-std-ports", "replies", "230", 2, 1, 1),
    ("globus-url-copy", "commands", "other", 1, 0, 2),
    ("globus-url-copy-bad-encoding", "commands", "other", 1, 0, 2),
    ("globus-url-copy-bad-encoding", "commands", "ADAT", 4, 3, 2),
];

fn corpus() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FTPWATCH_PUBLIC_PCAPS") {
        let p = PathBuf::from(p);
        assert!(
            p.is_dir(),
            "FTPWATCH_PUBLIC_PCAPS={} is not a directory",
            p.display()
        );
        return Some(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps/public");
    p.is_dir().then_some(p)
}

/// Parse `name{...,label="value"} count` lines of the exposition for one label.
fn counts_from_metrics(text: &str, metric: &str, label: &str) -> Counts {
    let mut out = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").expect("exposition line");
        let key = labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{label}=\"")))
            .and_then(|v| v.strip_suffix('"'))
            .expect("label present");
        let n: u64 = value.trim().parse().expect("integer counter");
        if n > 0 {
            out.insert(key.to_string(), n);
        }
    }
    out
}

fn truth_counts(v: &serde_json::Value, field: &str, verbs: bool) -> Counts {
    let mut out = Counts::new();
    for (k, n) in v[field].as_object().expect("truth field") {
        let key = if verbs {
            let known = Verb::ALL
                .iter()
                .find(|x| x.as_str().eq_ignore_ascii_case(k));
            known.map_or("other".to_string(), |x| x.as_str().to_string())
        } else {
            k.clone()
        };
        *out.entry(key).or_default() += n.as_u64().expect("count");
    }
    out
}

#[test]
fn reply_and_command_counts_agree_with_tshark() {
    let Some(dir) = corpus() else {
        eprintln!("public corpus not found (set FTPWATCH_PUBLIC_PCAPS): not checked here");
        return;
    };
    let mut truths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    truths.sort();
    assert!(!truths.is_empty(), "no *.truth.json in {}", dir.display());
    let mut failures = Vec::new();
    for truth_path in &truths {
        let truth: serde_json::Value =
            serde_json::from_slice(&std::fs::read(truth_path).unwrap()).unwrap();
        let name = truth["capture"]
            .as_str()
            .unwrap()
            .trim_end_matches(".pcap")
            .to_string();
        let bytes = std::fs::read(dir.join(format!("{name}.pcap"))).unwrap();
        // GridFTP runs on 2811; the truth files record tshark's decode-as for it.
        let mut settings = Settings::default();
        if truth["decode_as"].to_string().contains("2811") {
            settings.flow.control_ports = vec![2811];
        }
        let (events, pipeline) = common::analyse_with(&bytes, settings);
        let bad = common::finals_outside_sequence(&events);
        if !bad.is_empty() {
            failures.push(format!(
                "{name}: final replies outside the sequence: {bad:?}"
            ));
        }
        let text = pipeline.metrics().render();
        let ours = [
            (
                "replies",
                counts_from_metrics(&text, "ftp_replies_total", "code"),
            ),
            (
                "commands",
                counts_from_metrics(&text, "ftp_commands_total", "command"),
            ),
        ];
        let mut theirs = [
            ("replies", truth_counts(&truth, "ftp_reply_codes", false)),
            (
                "commands",
                truth_counts(&truth, "ftp_request_commands", true),
            ),
        ];
        for (file, kind, key, tshark, ftpwatch, _rule) in BY_DESIGN {
            if *file != name {
                continue;
            }
            let t = theirs.iter_mut().find(|(k, _)| k == kind).unwrap();
            let entry = t.1.entry(key.to_string()).or_default();
            assert_eq!(
                *entry, *tshark,
                "{name}: the truth file changed for {kind} {key}"
            );
            *entry = *ftpwatch;
            if *ftpwatch == 0 {
                t.1.remove(*key);
            }
        }
        for ((kind, ours), (_, theirs)) in ours.iter().zip(theirs.iter()) {
            if ours != theirs {
                failures.push(format!(
                    "{name} {kind}: ftpwatch {ours:?}, tshark (adjusted) {theirs:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
