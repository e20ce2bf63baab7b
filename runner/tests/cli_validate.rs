//! `lethe validate` and `lethe schema` through the binary, from the
//! repository root, as a user or a CI pipeline runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lethe(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RETAIL_DB_URL")
        .output()
        .expect("the lethe binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn shipped_jobs_and_models_are_valid() {
    let o = lethe(&["validate", "jobs/", "connectors/systems/"], &root());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).ends_with("18 files, 0 errors\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_misspelt_key_fails_with_a_suggestion_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let job = std::fs::read_to_string(root().join("jobs/anonymize-old-customers.yaml")).unwrap();
    let bad = job.replacen("    - field: kind", "    - feild: kind", 1);
    assert_ne!(job, bad);
    // Keep the model reachable by name: copy the job next to the repository's models.
    let path = dir.path().join("job.yaml");
    std::fs::write(&path, bad).unwrap();
    let line = job.lines().position(|l| l == "    - field: kind").unwrap() + 1;

    let o = lethe(&["validate", path.to_str().unwrap()], &root());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("unknown key `feild`"), "{out}");
    assert!(out.contains("did you mean `field`?"), "{out}");
    assert!(out.contains(&format!("job.yaml:{line}:7]")), "{out}");
    assert!(out.ends_with("1 file, 1 error\n"), "{out}");

    let o = lethe(
        &["validate", "--format", "github", path.to_str().unwrap()],
        &root(),
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("::error file="), "{first}");
    assert!(first.contains(&format!(",line={line},col=7,title=lethe unknown-key::unknown key `feild`%0Ahelp: did you mean `field`?")), "{first}");

    let o = lethe(
        &["validate", "--format", "json", path.to_str().unwrap()],
        &root(),
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "unknown-key");
    assert_eq!(d["line"], line);
    assert_eq!(d["column"], 7);
    assert_eq!(d["help"], "did you mean `field`?");
}

#[test]
fn a_missing_path_is_an_error() {
    let o = lethe(&["validate", "no/such/file.yaml"], &root());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("cannot read no/such/file.yaml"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn committed_schemas_match_the_code() {
    for (kind, file) in [
        ("job", "job.schema.json"),
        ("system", "system.schema.json"),
        ("plan", "plan.schema.json"),
        ("project", "project.schema.json"),
        ("report", "report.schema.json"),
    ] {
        let o = lethe(&["schema", kind], &root());
        assert_eq!(o.status.code(), Some(0));
        let committed = std::fs::read_to_string(root().join("schemas").join(file)).unwrap();
        assert!(
            stdout(&o) == committed,
            "schemas/{file} differs from `lethe schema {kind}`; regenerate it with `cargo run -- schema {kind} > schemas/{file}`"
        );
    }
}

#[test]
fn help_teaches() {
    let o = lethe(&["--help"], &root());
    let out = stdout(&o);
    assert!(out.contains("Exit codes:"), "{out}");
    let o = lethe(&["validate", "--help"], &root());
    let out = stdout(&o);
    assert!(out.contains("--format"), "{out}");
    assert!(out.contains("github"), "{out}");
}

/// The CI example (`examples/ci/`) uses commands and flags that exist, and
/// the plan workflow never applies while the apply workflow checks the
/// gates before applying.
#[test]
fn the_ci_example_matches_the_cli() {
    let ci = root().join("examples/ci");
    let plan = std::fs::read_to_string(ci.join("lethe-plan.yml")).unwrap();
    let apply = std::fs::read_to_string(ci.join("lethe-apply.yml")).unwrap();
    assert!(!plan.contains("lethe apply"), "the plan workflow applies");
    let gates = apply
        .find("lethe gates")
        .expect("the apply workflow checks the gates");
    let applies = apply
        .find("lethe apply \"")
        .expect("the apply workflow applies");
    assert!(gates < applies, "gates are checked after applying");
    for (command, flags) in [
        ("validate", vec!["--format", "github", "--online"]),
        (
            "plan",
            vec!["--format", "--detailed-exitcode", "-o,", "--report"],
        ),
        ("gates", vec![]),
        ("apply", vec!["--yes", "--format", "markdown"]),
    ] {
        let o = lethe(&[command, "--help"], &root());
        assert_eq!(o.status.code(), Some(0), "lethe {command} --help");
        let help = stdout(&o);
        for f in flags {
            assert!(help.contains(f), "`lethe {command}` has no `{f}`:\n{help}");
        }
    }
}

/// Shell completions and the manual page come from the same command
/// definition as `--help`, so they cannot drift from it.
#[test]
fn completions_and_the_manual_page() {
    for (shell, marker) in [
        ("bash", "_lethe()"),
        ("zsh", "#compdef lethe"),
        ("fish", "complete -c lethe"),
    ] {
        let o = lethe(&["completions", shell], &root());
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = stdout(&o);
        assert!(text.contains(marker), "{shell}: no `{marker}`");
        for sub in ["plan", "approve", "apply", "restore", "connectors"] {
            assert!(text.contains(sub), "{shell}: no `{sub}`");
        }
    }
    let o = lethe(&["man"], &root());
    assert_eq!(o.status.code(), Some(0));
    let man = stdout(&o);
    assert!(man.contains(".TH lethe 1"), "{man}");
    assert!(
        man.contains("Exit codes"),
        "the exit codes are not in the manual page"
    );
}

/// `-vv` logs every statement, `--log-format json` as one JSON object a
/// line, on stderr; stdout keeps only the report.
#[test]
fn verbose_json_logs_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let o = lethe(
        &[
            "-vv",
            "--log-format",
            "json",
            "demo",
            "--customers",
            "30",
            "--dir",
            dir.path().join("demo").to_str().unwrap(),
        ],
        &root(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "the demo failed:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{err}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v.get("level").is_some(), "{l}");
    }
    assert!(!stdout(&o).contains("\"level\""), "logs on stdout");
}

/// `lethe new job` writes, for every shipped system model and action it
/// allows, a job that validates as written.
#[test]
fn new_jobs_validate_as_written() {
    let cases = [
        ("retail-crm", None, "anonymize"),
        ("retail-crm", None, "delete"),
        ("retail-crm", None, "deactivate"),
        ("salon-crm", None, "anonymize"),
        ("salon-crm", Some("client"), "delete"),
        ("isp-billing", Some("contract"), "keep-login"),
        ("isp-billing", Some("contract"), "deactivate"),
        ("retail-pos", Some("account"), "delete"),
        ("customer-portal", None, "rectify"),
        ("customer-portal", Some("alteracao"), "deactivate"),
        ("customer-portal", Some("cliente"), "anonymize"),
    ];
    for (system, entity, action) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.yaml");
        let mut args = vec![
            "new",
            "job",
            "--system",
            system,
            "--action",
            action,
            "-o",
            file.to_str().unwrap(),
        ];
        if let Some(e) = entity {
            args.extend(["--entity", e]);
        }
        let o = lethe(&args, dir.path());
        assert_eq!(
            o.status.code(),
            Some(0),
            "{system} {action}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&format!("type: {action}")), "{text}");
        let o = lethe(&["validate", file.to_str().unwrap()], dir.path());
        assert_eq!(
            o.status.code(),
            Some(0),
            "{system} {action}:\n{}\n{text}",
            stdout(&o)
        );
        // It never overwrites.
        let o = lethe(&args, dir.path());
        assert_eq!(o.status.code(), Some(1));
    }
    // A model without `deactivate` on the entity cannot scaffold it.
    let o = lethe(
        &[
            "new",
            "job",
            "--system",
            "salon-crm",
            "--action",
            "deactivate",
        ],
        &root(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no `deactivate` definition"));
}
