//! The documentation that is generated or copied from lethe stays true:
//! `docs/reference.md` is generated from the JSON Schemas, `docs/demo.md`
//! holds the output of `lethe demo`, and the guides explain every warning
//! and every exit code the code has.
//!
//! `LETHE_UPDATE_DOCS=1 cargo test -p lethe --test docs` rewrites the
//! generated parts instead of failing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::process::Command;

use common::*;
use regex::Regex;

fn update() -> bool {
    std::env::var("LETHE_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_default()
}

#[test]
fn reference_matches_the_schemas() {
    let fresh = lethe::spec::reference::markdown();
    let path = root().join("docs/reference.md");
    if update() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        read("docs/reference.md") == fresh,
        "docs/reference.md is not what the schemas say; regenerate it with \
         `LETHE_UPDATE_DOCS=1 cargo test -p lethe --test docs`"
    );
}

const DEMO_BEGIN: &str = "<!-- demo transcript: begin -->\n";
const DEMO_END: &str = "<!-- demo transcript: end -->\n";
const DEMO_COMMAND: &str = "lethe demo --now 2026-06-01T12:00:00Z";

/// What may differ between two runs of the demo: the temporary folder,
/// wall-clock times, and the ids derived from them.
fn normalise_demo(s: &str) -> String {
    let rules = [
        (r"lethe-demo-[A-Za-z0-9]+", "lethe-demo-DIR"),
        (r"\b[0-9a-f]{64}\b", "PLAN_ID"),
        (r"\b[0-9a-f]{12}\b", "PLAN_ID_SHORT"),
        (r"\b[0-9]{8}T[0-9]{6}-[0-9a-f]{6}\b", "RUN_ID"),
        (
            r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z?",
            "TIME",
        ),
    ];
    let mut out = s.to_owned();
    for (pattern, with) in rules {
        out = Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    // Alignment that depends on the length of the values replaced above.
    Regex::new(r" +\n")
        .unwrap()
        .replace_all(&out, "\n")
        .into_owned()
}

#[test]
fn demo_transcript_is_what_lethe_demo_prints() {
    // `lethe demo` puts its folder under the system's temporary folder;
    // TMPDIR points that at one this test removes afterwards.
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(DEMO_COMMAND.split(' ').skip(1))
        .current_dir(root())
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .env("LETHE_USER", "dpo-assistant@example.com")
        .env_remove("LETHE_STATE_URL")
        // Fakes and hashes are keyed; a demo otherwise makes a new key.
        .env("LETHE_HASH_KEY", "lethe demo transcript")
        .env_remove("LETHE_DEMO_URL")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let output = String::from_utf8(o.stdout).unwrap();
    let shown_tmp = tmp.path().display().to_string();
    let output = output.replace(&format!("{shown_tmp}/"), "/tmp/");
    let transcript = format!("```text\n$ {DEMO_COMMAND}\n{output}```\n");

    let doc = read("docs/demo.md");
    let (Some(begin), Some(end)) = (doc.find(DEMO_BEGIN), doc.find(DEMO_END)) else {
        panic!("docs/demo.md lacks the markers {DEMO_BEGIN:?} and {DEMO_END:?}");
    };
    let committed = &doc[begin + DEMO_BEGIN.len()..end];
    if update() {
        let new = format!(
            "{}{transcript}{}",
            &doc[..begin + DEMO_BEGIN.len()],
            &doc[end..]
        );
        std::fs::write(root().join("docs/demo.md"), new).unwrap();
        return;
    }
    let (want, got) = (normalise_demo(committed), normalise_demo(&transcript));
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("  docs: {a}\n  demo: {b}"))
            .collect();
        panic!(
            "docs/demo.md no longer shows what `{DEMO_COMMAND}` prints (first differences below); \
             regenerate it with `LETHE_UPDATE_DOCS=1 cargo test -p lethe --test docs`\n{}",
            diff.join("\n")
        );
    }
}

#[test]
fn the_dpo_guide_explains_every_warning() {
    let guide = read("docs/dpo-guide.md");
    for id in lethe::spec::job::WarningId::ALL {
        assert!(
            guide.contains(&format!("`{}`", id.as_str())),
            "docs/dpo-guide.md does not explain the warning `{}`",
            id.as_str()
        );
    }
}

#[test]
fn the_ci_guide_lists_every_exit_code() {
    let guide = read("docs/ci-guide.md");
    let o = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    let codes: Vec<&str> = help
        .split("Exit codes:")
        .nth(1)
        .expect("lethe --help lists its exit codes")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()))
        .collect();
    assert!(codes.len() >= 5, "{help}");
    for code in codes {
        assert!(
            guide.contains(&format!("| {code} |")),
            "docs/ci-guide.md has no row for exit code {code}"
        );
    }
}

#[test]
fn the_readme_links_the_guides_and_the_screenshot() {
    let readme = read("README.md");
    for link in [
        "docs/dpo-guide.md",
        "docs/integrator-guide.md",
        "docs/ci-guide.md",
        "docs/reference.md",
        "docs/demo.md",
        "docs/images/plan-report.png",
    ] {
        assert!(readme.contains(link), "README.md does not link {link}");
        assert!(root().join(link).exists(), "{link} is missing");
    }
}
