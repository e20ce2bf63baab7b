//! The HTML plan report in a real browser: headless Chromium, driven over
//! the DevTools protocol (`--remote-debugging-pipe`, so no network port and
//! no client crate), renders the demo plan's report; the test reads the
//! page's rendered text (`document.body.innerText`, which leaves out what
//! is not displayed) and collects every console error, uncaught exception
//! and failed load the page causes.
//!
//! Chromium is `/usr/bin/chromium` (Debian's `chromium` package, which
//! `.ci/run` installs) or `LETHE_CHROMIUM`. Without it the tests print why
//! and pass as skipped, unless `LETHE_REQUIRE_CHROMIUM=1` or
//! `LETHE_REQUIRE_SERVERS=1` (as CI sets) makes that a failure.
//!
//! `LETHE_UPDATE_DOCS=1` also writes the screenshot the README shows,
//! `docs/images/plan-report.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use common::*;

/// How long any one step may take before the test gives up.
const STEP: Duration = Duration::from_secs(60);

fn chromium() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("LETHE_CHROMIUM") {
        Some(p) => vec![p.into()],
        None => ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "no Chromium at {} (apt-get install chromium, or set LETHE_CHROMIUM)",
            tried.join(" or ")
        )
    })
}

/// Chromium, or `None` after printing why the test is skipped.
fn chromium_or_skip() -> Option<PathBuf> {
    match chromium() {
        Ok(p) => Some(p),
        Err(why) => {
            let required = ["LETHE_REQUIRE_CHROMIUM", "LETHE_REQUIRE_SERVERS"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|x| x == "1"));
            if required {
                panic!(
                    "{why}, and LETHE_REQUIRE_CHROMIUM=1 or LETHE_REQUIRE_SERVERS=1 makes that a failure"
                );
            }
            eprintln!("skipping: {why} (set LETHE_REQUIRE_CHROMIUM=1 to fail instead)");
            None
        }
    }
}

/// A headless Chromium spoken to over the DevTools protocol on a pipe:
/// messages are JSON, each ended by a NUL byte, written to the browser's
/// fd 3 and read from its fd 4.
struct Browser {
    child: Child,
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    /// Events received while waiting for something else.
    events: Vec<Value>,
    log: PathBuf,
}

/// What a page did wrong.
#[derive(Debug, Default)]
struct Page {
    text: String,
    problems: Vec<String>,
}

impl Browser {
    fn launch(bin: &Path, dir: &Path) -> Browser {
        let log = dir.join("chromium.log");
        let profile = dir.join("profile");
        // The shell maps our pipes onto the browser's fds 3 and 4 (std has
        // no safe way to pass other fds), then gives it back /dev/null and
        // stderr as stdin and stdout.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 </dev/null >&2")
            .arg(bin)
            .args([
                "--headless",
                "--no-sandbox", // CI runs as root, where the sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("chromium starts");
        let to = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                match out.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&message[..end])
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Browser {
            child,
            to,
            from,
            next_id: 0,
            events: Vec::new(),
            log,
        }
    }

    fn next(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!(
                "chromium sent no {waiting_for} within {STEP:?}; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chromium closed the DevTools pipe while we waited for {waiting_for}; its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    /// Sends a command (to a page's session, or to the browser) and waits
    /// for its answer.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        self.to.flush().unwrap();
        let deadline = Instant::now() + STEP;
        loop {
            let v = self.next(deadline, &format!("answer to {method}"));
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("chromium refused {method}: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn wait_for(&mut self, event: &str) {
        if self.events.iter().any(|e| e["method"] == event) {
            return;
        }
        let deadline = Instant::now() + STEP;
        loop {
            let v = self.next(deadline, event);
            let found = v["method"] == event;
            self.events.push(v);
            if found {
                return;
            }
        }
    }

    /// Opens `file` in a new tab, waits until it has loaded, and returns
    /// its rendered text and the errors it logged. With `screenshot`, also
    /// a PNG of the first screen at that width and height.
    fn open(&mut self, file: &Path, screenshot: Option<(u32, u32)>) -> (Page, Option<Vec<u8>>) {
        self.events.clear();
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        let s = Some(session.as_str());
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(s, domain, json!({}));
        }
        if let Some((width, height)) = screenshot {
            self.call(
                s,
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
            );
        }
        let url = format!("file://{}", std::fs::canonicalize(file).unwrap().display());
        let nav = self.call(s, "Page.navigate", json!({ "url": url }));
        assert!(
            nav.get("errorText").is_none(),
            "chromium could not open {url}: {nav}"
        );
        self.wait_for("Page.loadEventFired");
        let text = self.call(
            s,
            "Runtime.evaluate",
            json!({ "expression": "document.body.innerText", "returnByValue": true }),
        )["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let png = screenshot.map(|_| {
            let shot = self.call(s, "Page.captureScreenshot", json!({ "format": "png" }));
            base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().unwrap())
                .unwrap()
        });
        // Everything the page logged arrived before the answers above.
        let problems = self
            .events
            .iter()
            .filter(|e| e.get("sessionId").and_then(Value::as_str) == s)
            .filter_map(problem)
            .collect();
        self.call(None, "Target.closeTarget", json!({ "targetId": target_id }));
        (Page { text, problems }, png)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.next_id += 1;
        let close = json!({ "id": self.next_id, "method": "Browser.close", "params": {} });
        let mut bytes = serde_json::to_vec(&close).unwrap_or_default();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A console error, an uncaught exception, or an error the browser logged
/// for the page (a resource that failed to load, a blocked request).
fn problem(event: &Value) -> Option<String> {
    let p = &event["params"];
    match event["method"].as_str()? {
        "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    a.get("value")
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .or_else(|| a["description"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect();
            Some(format!(
                "console.{}: {}",
                p["type"].as_str()?,
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            Some(format!(
                "uncaught: {}",
                d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?")
            ))
        }
        "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
            "{}: {} {}",
            p["entry"]["source"].as_str().unwrap_or("log"),
            p["entry"]["text"].as_str().unwrap_or(""),
            p["entry"]["url"].as_str().unwrap_or("")
        )),
        _ => None,
    }
}

fn lethe(args: &[&str], dir: &Path) -> std::process::Output {
    lethe_command(&root(), &dir.join("state.db"))
        .args(args)
        .output()
        .expect("the lethe binary runs")
}

/// `lethe plan JOB -o PLAN --format html --report REPORT`, which must succeed.
fn html_plan(dir: &Path, job: &Path, plan: &Path, report: &Path) {
    let o = lethe(
        &[
            "plan",
            job.to_str().unwrap(),
            "--now",
            NOW,
            "-o",
            plan.to_str().unwrap(),
            "--format",
            "html",
            "--report",
            report.to_str().unwrap(),
        ],
        dir,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The demo system (as `lethe demo` builds it) and its plan's HTML report.
fn demo_report(dir: &Path, customers: u64) -> (PathBuf, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = lethe::demo::DemoSpec::new(customers, now());
    let (files, _) = rt.block_on(lethe::demo::prepare(dir, &spec)).unwrap();
    let report = dir.join("report.html");
    let plan = dir.join("plan.json");
    html_plan(dir, &files.job, &plan, &report);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    (report, plan["plan_id"].as_str().unwrap().to_owned())
}

#[test]
fn the_demo_plan_report_renders_in_chromium_without_errors() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    // Named as `lethe demo` names its folder: the screenshot shows it.
    let dir = tempfile::Builder::new()
        .prefix("lethe-demo-")
        .tempdir()
        .unwrap();
    let (report, plan_id) = demo_report(dir.path(), 3000);
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for needle in ["<script", "src=", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "the report contains `{needle}`");
    }

    let update = std::env::var("LETHE_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut browser = Browser::launch(&bin, dir.path());
    let (page, png) = browser.open(&report, update.then_some((1000, 1500)));
    assert!(
        page.problems.is_empty(),
        "the report logged errors in chromium:\n{}",
        page.problems.join("\n")
    );
    let text = page.text;
    let expected = [
        // The summary, first.
        "Plan: demo-anonymize-lapsed",
        "matched",
        "ignored",
        "selected to anonymize",
        "deferred by the cap",
        // The effects, as a table.
        "What changes",
        "customers\tupdated",
        // Before and after samples.
        "before (masked)",
        "fake-first-name",
        // Warnings, and what to do about them.
        "Warnings",
        "cap-reached",
        "an approver must acknowledge it",
        // Gates.
        "Before apply",
        "approvals",
        // The footer: the plan id and how to check it.
        &format!("Plan {plan_id}"),
        "lethe gates",
    ];
    for needle in expected {
        assert!(
            text.contains(needle),
            "the rendered report lacks {needle:?}; it reads:\n{text}"
        );
    }
    let summary = text.find("matched").unwrap();
    for later in ["What changes", "Warnings", &format!("Plan {plan_id}")] {
        assert!(
            text.find(later).unwrap() > summary,
            "{later:?} comes before the summary"
        );
    }
    if let Some(png) = png {
        let out = root().join("docs/images/plan-report.png");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, png).unwrap();
        eprintln!("wrote {}", out.display());
    }
}

/// The customer-portal scenario's database in a SQLite file, and its
/// `rectify` plan's HTML report.
fn portal_report(dir: &Path) -> PathBuf {
    use sqlx::Connection as _;
    let db = dir.join("portal.db");
    let spec = lethe::demo::portal::PortalSpec {
        customers: 40,
        seed: 5,
        now: NOW.parse().unwrap(),
    };
    let sql = lethe::demo::portal::statements(lethe::demo::Engine::Sqlite, &spec);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for stmt in &sql {
            // The generator's own statements, literals quoted by it.
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.clone()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
    let job =
        std::fs::read_to_string(root().join("jobs/customer-portal/approve-pending-changes.yaml"))
            .unwrap()
            .replace(
                "${PORTAL_DB_URL:-sqlite://portal.db}",
                &format!("sqlite://{}", db.display()),
            );
    let job_path = dir.join("approve-pending-changes.yaml");
    std::fs::write(&job_path, job).unwrap();
    let report = dir.join("rectify.html");
    html_plan(dir, &job_path, &dir.join("rectify.json"), &report);
    report
}

/// A `rectify` plan shows each change request beside the record it
/// changes, the changed values marked, as the customer-portal scenario
/// needs (its administrators compare "original" and "changed" data).
#[test]
fn the_rectify_report_shows_requests_side_by_side() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = portal_report(dir.path());
    let html = std::fs::read_to_string(&report).unwrap();
    let update = std::env::var("LETHE_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut browser = Browser::launch(&bin, dir.path());
    let (page, png) = browser.open(&report, update.then_some((1000, 1800)));
    assert!(
        page.problems.is_empty(),
        "the report logged errors in chromium:\n{}",
        page.problems.join("\n")
    );
    let text = page.text;
    for needle in [
        "Requested changes",
        "alteracao\tcliente\tfield\tnow\trequested",
        "(unchanged)",
        "the requested `email` is already another cliente's",
    ] {
        assert!(
            text.contains(needle),
            "the rendered report lacks {needle:?}; it reads:\n{text}"
        );
    }
    // Every changed field, and only those, is marked: the plan has 15
    // changed fields and one unchanged (the 16th mark is the legend's).
    assert_eq!(
        html.matches("<span class=\"changed\">").count(),
        16,
        "{html}"
    );
    assert_eq!(html.matches("class=\"is-changed\"").count(), 15);
    if let Some(png) = png {
        let out = root().join("docs/images/rectify-report.png");
        std::fs::write(&out, png).unwrap();
        eprintln!("wrote {}", out.display());
    }
}

/// The probe above would see an error if there were one: a page with a
/// script error, a console error and a missing image reports all three.
#[test]
fn chromium_probe_catches_console_errors() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>visible</p><p style=\"display:none\">hidden</p>\
         <img src=\"missing.png\" alt=\"\">\
         <script>console.error('deliberate console error'); notDefined();</script></body></html>",
    )
    .unwrap();
    let mut browser = Browser::launch(&bin, dir.path());
    let (page, _) = browser.open(&page, None);
    assert!(page.text.contains("visible"), "{}", page.text);
    assert!(!page.text.contains("hidden"), "innerText shows hidden text");
    let all = page.problems.join("\n");
    assert!(
        all.contains("console.error: deliberate console error"),
        "{all}"
    );
    assert!(
        all.contains("uncaught: ReferenceError: notDefined"),
        "{all}"
    );
    assert!(all.contains("missing.png"), "{all}");
}
