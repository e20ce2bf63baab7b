//! The plugin boundary when a plugin misbehaves: a wrong ABI version, a
//! file that is not a plugin, a panic, malformed JSON, a hang. Each is a
//! lethe error naming the plugin (and the call), never an abort; and
//! `lethe connectors` lists what it finds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lethe::plugin::{self, PluginConnector, PluginError};
use lethe_conformance::{lethe_binary, plugin_library};
use lethe_connector::{Cond, Connector, ErrorKind, OpenOptions, Select, Tally, Value};

fn options(url: &str) -> OpenOptions {
    OpenOptions {
        url: url.to_owned(),
        timezone: None,
        read_only: false,
        ..Default::default()
    }
}

async fn open(library: &str, url: &str, timeout: Duration) -> PluginConnector {
    let p = plugin::load(&plugin_library(library)).unwrap();
    PluginConnector::open(p, &options(url), timeout)
        .await
        .unwrap()
}

fn everything() -> Select {
    Select {
        table: "t".into(),
        columns: vec!["id".into()],
        flags: Vec::new(),
        filter: Cond::True,
        order_by: Vec::new(),
        limit: None,
    }
}

#[test]
fn a_plugin_of_another_abi_version_is_refused() {
    let e = plugin::load(&plugin_library("lethe_test_plugin_old_abi")).unwrap_err();
    assert!(matches!(e, PluginError::Abi { found: 9999, .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("ABI version 9999"), "{text}");
    assert!(text.contains("rebuild the plugin"), "{text}");
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, "not a library at all").unwrap();
    let e = plugin::load(&fake).unwrap_err();
    assert!(matches!(e, PluginError::NotAPlugin { .. }), "{e:?}");
    assert!(e.to_string().contains("not a shared library"), "{e}");

    // A real shared library without the entry point.
    let Some(libm) = system_library("libm.so.6") else {
        eprintln!("skipped the libm case: no libm.so.6 found");
        return;
    };
    let e = plugin::load(&libm).unwrap_err();
    assert!(matches!(e, PluginError::NotAPlugin { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("does not export `lethe_connector_entry`"),
        "{e}"
    );
}

fn system_library(name: &str) -> Option<PathBuf> {
    [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_is_an_error_naming_the_call() {
    let mut c = open(
        "lethe_test_plugin_misbehaving",
        "misbehave:panic",
        Duration::from_secs(30),
    )
    .await;
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let e = c
        .select(&everything(), &mut |r: Vec<Value>| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("plugin `misbehaving` panicked during `select`"),
        "{text}"
    );
    assert!(
        text.contains("misbehaving on purpose during select"),
        "{text}"
    );
    // The connection is not used again.
    let again = c.rollback().await.unwrap_err();
    assert!(again.to_string().contains("closed"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_plugin_ends_at_the_time_limit() {
    let mut c = open(
        "lethe_test_plugin_misbehaving",
        "misbehave:hang",
        Duration::from_millis(300),
    )
    .await;
    let started = Instant::now();
    let e = c
        .tally(&Tally {
            table: "t".into(),
            filter: Cond::True,
            counts: vec![None],
        })
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        e.to_string()
            .contains("plugin `misbehaving` did not answer `tally` within 300 ms"),
        "{e}"
    );
}

/// A value a plugin quotes in its error message is masked by lethe, as the
/// built-in connectors mask theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_in_a_plugin_error_are_masked() {
    let mut c = open(
        "lethe_test_plugin_misbehaving",
        "misbehave:leaky",
        Duration::from_secs(30),
    )
    .await;
    let e = c.introspect().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Constraint, "{e}");
    let text = e.to_string();
    assert!(!text.contains("anna.svensson"), "{text}");
    assert!(
        text.contains("Duplicate entry '…' for key 'email' (plugin `misbehaving`, `introspect`)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_from_a_plugin_is_an_error() {
    let mut c = open("lethe_test_plugin_raw", "raw:", Duration::from_secs(30)).await;
    let e = c.introspect().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("plugin `raw` answered `introspect` with malformed JSON"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_error_keeps_its_kind_and_names_the_plugin() {
    let p = plugin::load(&plugin_library("lethe_test_plugin_misbehaving")).unwrap();
    let e = PluginConnector::open(p, &options("postgres://x"), Duration::from_secs(30))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("want misbehave:HOW"), "{e}");
    assert!(
        e.to_string().contains("plugin `misbehaving`, `open`"),
        "{e}"
    );
}

#[test]
fn lethe_connectors_lists_builtins_and_plugins() {
    let dir = tempfile::tempdir().unwrap();
    for lib in ["lethe_sqlite_plugin", "lethe_test_plugin_old_abi"] {
        let src = plugin_library(lib);
        std::fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
    }
    let out = Command::new(lethe_binary())
        .arg("connectors")
        .env("LETHE_PLUGIN_PATH", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "postgres",
        "built-in",
        "liblethe_sqlite_plugin",
        "ABI 1",
        "sql criteria, sql checks, transactions",
        "unusable:",
        "ABI version 9999",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
    let out = Command::new(lethe_binary())
        .args(["connectors", "--format", "json"])
        .env("LETHE_PLUGIN_PATH", dir.path())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["connectors"].as_array().unwrap().len(), 4);
    assert_eq!(json["unusable"].as_array().unwrap().len(), 1);
}

/// The plugin's own tracing events reach lethe's log (`LETHE_LOG`).
#[test]
fn plugin_logs_reach_lethe_log() {
    let dir = tempfile::tempdir().unwrap();
    let model = lethe_conformance::fixture::isp_model();
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        format!(
            "version: 1\nname: logs\nowner: dpo@example.com\ntarget:\n  system: {}\n  connector: {}\n  url: misbehave:error\nselection:\n  entity: customer\n  where: [{{ field: status, eq: inactive }}]\n  cap: 10\naction:\n  type: anonymize\n",
            model.display(),
            plugin_library("lethe_test_plugin_misbehaving").display()
        ),
    )
    .unwrap();
    let out = Command::new(lethe_binary())
        .current_dir(dir.path())
        .args(["plan", "job.yaml"])
        .env("LETHE_LOG", "lethe::plugin=info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("misbehaving plugin called"), "{err}");
    assert!(err.contains("nothing here"), "{err}");
}

/// `examples/plugin-csv` as an integrator would use it: the library copied
/// next to the job, named by a path relative to the job file, and the whole
/// cycle through the `lethe` binary — validate, plan, apply (with its
/// verification), restore.
#[test]
fn the_csv_plugin_runs_a_job_end_to_end() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugin-csv/demo");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["data", "jobs", "plugins"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for f in [
        "pos-csv.yaml",
        "jobs/anonymize-lapsed.yaml",
        "data/tables.toml",
        "data/customers.csv",
        "data/sales.csv",
    ] {
        std::fs::copy(demo.join(f), root.join(f)).unwrap();
    }
    std::fs::copy(
        plugin_library("lethe_plugin_csv"),
        root.join("plugins/liblethe_plugin_csv.so"),
    )
    .unwrap();
    // Backups are encrypted to a key of the integrator's.
    std::fs::write(root.join("lethe.toml"), lethe_conformance::backup_toml()).unwrap();
    std::fs::write(
        root.join("backup-key.txt"),
        &lethe_conformance::backup_key().0,
    )
    .unwrap();
    let original = std::fs::read_to_string(root.join("data/customers.csv")).unwrap();
    let sales = std::fs::read_to_string(root.join("data/sales.csv")).unwrap();
    let lethe = |args: &[&str]| {
        let out = Command::new(lethe_binary())
            .current_dir(root)
            .args(args)
            .env_remove("LETHE_PLUGIN_PATH")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };

    let (code, text) = lethe(&["validate", "jobs", "pos-csv.yaml"]);
    assert_eq!(code, Some(0), "{text}");
    // The CSV plugin cannot tell privileges: --online says so and goes on.
    let (code, text) = lethe(&["validate", "--online", "jobs"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("the `csv` connector cannot tell which privileges"),
        "{text}"
    );
    let (code, text) = lethe(&["plan", "jobs/anonymize-lapsed.yaml", "-o", "plan.json"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("selected  3"), "{text}");
    assert!(
        text.contains(&format!(
            "csv:{}",
            root.join("data").canonicalize().unwrap().display()
        )),
        "{text}"
    );
    // Planning changed nothing.
    assert_eq!(
        std::fs::read_to_string(root.join("data/customers.csv")).unwrap(),
        original
    );

    let (code, text) = lethe(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Verification  passed"), "{text}");
    let after = std::fs::read_to_string(root.join("data/customers.csv")).unwrap();
    for gone in [
        "João da Silva",
        "123.456.789-09",
        "joao.silva@example.com.br",
        "3456-7890",
        "Ana Lima",
        "Pedro Alves",
    ] {
        assert!(!after.contains(gone), "`{gone}` is still in:\n{after}");
    }
    for kept in ["Maria Souza", "lucia@example.com.br", "2015-03-02 10:15:00"] {
        assert!(after.contains(kept), "`{kept}` is gone from:\n{after}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("data/sales.csv")).unwrap(),
        sales
    );
    // No temporary file or journal left behind.
    let mut left: Vec<String> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["customers.csv", "sales.csv", "tables.toml"]);

    let backup = std::fs::read_dir(root.join(".lethe/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let (code, text) = lethe(&[
        "restore",
        backup.to_str().unwrap(),
        "--identity",
        "backup-key.txt",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        std::fs::read_to_string(root.join("data/customers.csv")).unwrap(),
        original
    );
}
