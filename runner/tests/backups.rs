//! Encrypted backups through the binary: apply writes age-encrypted
//! segments and a journal of MACs (verification needs no identity);
//! restore decrypts with `--identity` and refuses a wrong or missing one
//! without touching the database; a job that requires a backup is refused
//! while no recipient is configured; bad recipients are reported where
//! they are; plaintext is an explicit opt-in that `validate` warns about.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
}

impl Setup {
    fn lethe(&self, args: &[&str]) -> (i32, String) {
        let o: Output = lethe_command(&self.dir, &self.dir.join("state.db"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, text) = self.lethe(args);
        assert_eq!(code, 0, "{args:?}: {text}");
        text
    }

    /// The run's backup directory (the only one).
    fn backup(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(self.dir.join(".lethe/backups"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }
}

/// A demo database, a small auto-approved anonymize job, `project` as
/// lethe.toml (when given), the test identity in `backup-key.txt`, and a
/// plan in `plan.json`.
async fn setup(project: Option<&str>) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let db = demo_db(&dir, 300).await;
    let job = example_job_text("anonymize-old-customers", &db)
        .replace("cap: 500", "cap: 20")
        .replace("batch_size: 500", "batch_size: 7")
        .replace(
            "approval:\n  approvers: { min: 2, roles: [dpo, admin], distinct_from_author: true }\n  reason: required\n",
            "approval:\n  mode: auto\n  acknowledge: [cap-reached, recent-cutoff, large-cascade, nothing-to-do]\n",
        );
    std::fs::write(dir.join("job.yaml"), job).unwrap();
    if let Some(p) = project {
        std::fs::write(dir.join("lethe.toml"), p).unwrap();
    }
    std::fs::write(dir.join("backup-key.txt"), &backup_key().0).unwrap();
    let s = Setup { _tmp: tmp, dir, db };
    s.ok(&["plan", "job.yaml", "-o", "plan.json", "--now", NOW]);
    s
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn apply_encrypts_and_restore_needs_the_identity() {
    let s = setup(Some(&backup_toml())).await;
    let before = dump(&s.db).await;
    // Apply and its verification: no identity anywhere.
    let text = s.ok(&["apply", "plan.json", "--yes"]);
    assert!(text.contains("Verification  passed"), "{text}");
    let after = dump(&s.db).await;
    assert_ne!(before, after, "the run changed nothing");

    let backup = s.backup();
    assert_eq!(mode(&backup), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&backup)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"batch-000000.jsonl.age".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"journal.jsonl".to_owned()), "{names:?}");
    assert!(names.contains(&"backup.json".to_owned()), "{names:?}");
    for n in &names {
        assert!(
            n.ends_with(".jsonl.age") || n == "journal.jsonl" || n == "backup.json",
            "{n}"
        );
        assert_eq!(mode(&backup.join(n)), 0o600, "{n}");
    }
    // No value of a changed row is in the backup directory in clear.
    let read = lethe::apply::backup::read_backup(&backup, Some(&backup_identities())).unwrap();
    assert!(read.encrypted && !read.lines.is_empty());
    let mut originals: Vec<String> = Vec::new();
    for l in &read.lines {
        for c in ["first_name", "last_name", "email", "phone"] {
            if let Some(serde_json::Value::String(v)) = l.row.get(c)
                && v.len() >= 5
            {
                originals.push(v.clone());
            }
        }
    }
    assert!(!originals.is_empty());
    for n in &names {
        let bytes = std::fs::read(backup.join(n)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for v in &originals {
            assert!(!text.contains(v.as_str()), "`{v}` in clear in {n}");
        }
    }
    // The backups list says it is encrypted.
    let list = s.ok(&["backups", "list"]);
    assert!(list.contains(", encrypted)"), "{list}");

    let shown = backup.to_str().unwrap();
    // Without an identity, or with another one: refused, nothing restored.
    let (code, text) = s.lethe(&["restore", shown]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--identity"), "{text}");
    assert!(text.contains("nothing was restored"), "{text}");
    std::fs::write(
        s.dir.join("other-key.txt"),
        lethe::apply::backup::generate_identity().0,
    )
    .unwrap();
    let (code, text) = s.lethe(&["restore", shown, "--identity", "other-key.txt"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no identity in other-key.txt"), "{text}");
    assert!(text.contains(&backup_key().1), "{text}");
    assert!(text.contains("nothing was restored"), "{text}");
    let (code, text) = s.lethe(&["restore", shown, "--identity", "missing.txt"]);
    assert_eq!(code, 1, "{text}");
    // The secret key itself where its file belongs: refused, never echoed.
    let secret = backup_key()
        .0
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    let (code, text) = s.lethe(&["restore", shown, "--identity", &secret]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is a secret key"), "{text}");
    assert!(
        !text.contains(&secret),
        "the secret key was printed: {text}"
    );
    assert_eq!(dump(&s.db).await, after, "a refused restore changed rows");

    // The right identity, by the run's id: every row is back.
    let run = backup.file_name().unwrap().to_string_lossy().into_owned();
    let text = s.ok(&["restore", &run, "--identity", "backup-key.txt"]);
    assert!(text.contains("Restored"), "{text}");
    assert_eq!(
        dump(&s.db).await,
        before,
        "restore did not put every row back"
    );
}

#[tokio::test]
async fn the_identity_may_come_from_the_environment() {
    let s = setup(Some(&backup_toml())).await;
    let before = dump(&s.db).await;
    s.ok(&["apply", "plan.json", "--yes"]);
    let backup = s.backup();
    let o = lethe_command(&s.dir, &s.dir.join("state.db"))
        .args(["restore", backup.to_str().unwrap()])
        .env("LETHE_AGE_IDENTITY", s.dir.join("backup-key.txt"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(dump(&s.db).await, before);
}

#[tokio::test]
async fn a_required_backup_without_a_recipient_is_refused_before_the_target() {
    for project in [
        None,
        Some("[[approver]]\nid = \"a@example.com\"\nroles = [\"dpo\"]\n"),
    ] {
        let s = setup(project).await;
        let before = dump(&s.db).await;
        let (code, text) = s.lethe(&["apply", "plan.json", "--yes"]);
        assert_eq!(code, 1, "{text}");
        for want in [
            "no backup recipient is configured",
            "[backup]",
            "recipients = [\"age1…\"]",
            "age-keygen",
            "lethe.toml",
            "nothing was changed",
        ] {
            assert!(text.contains(want), "`{want}` missing:\n{text}");
        }
        assert_eq!(dump(&s.db).await, before);
        assert!(!s.dir.join(".lethe/backups").exists());
        let history = s.ok(&["history", "--format", "json"]);
        assert_eq!(history.trim(), "[]", "a run was recorded: {history}");
    }
    // `backup: none` needs no recipient.
    let s = setup(None).await;
    let job = std::fs::read_to_string(s.dir.join("job.yaml")).unwrap();
    assert!(job.contains("backup: required"));
    std::fs::write(
        s.dir.join("job.yaml"),
        job.replace("backup: required", "backup: none"),
    )
    .unwrap();
    s.ok(&["plan", "job.yaml", "-o", "plan2.json", "--now", NOW]);
    s.ok(&["apply", "plan2.json", "--yes"]);
}

#[tokio::test]
async fn bad_recipients_are_reported_where_they_are() {
    let s = setup(Some(&backup_toml())).await;
    std::fs::write(
        s.dir.join("lethe.toml"),
        "# backups\n[backup]\nrecipients = [\"age1notakey\"]\n",
    )
    .unwrap();
    let (code, text) = s.lethe(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("lethe.toml:3:"), "{text}");
    assert!(
        text.contains("`age1notakey` is not an age recipient"),
        "{text}"
    );
    let (code, text) = s.lethe(&["validate", "job.yaml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("age1notakey"), "{text}");
    // A secret key in place of a recipient: refused, and not echoed.
    let secret = backup_key()
        .0
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    std::fs::write(
        s.dir.join("lethe.toml"),
        format!("[backup]\nrecipients = [\"{secret}\"]\n"),
    )
    .unwrap();
    let (code, text) = s.lethe(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is an identity (a secret key)"), "{text}");
    assert!(!text.contains(&secret), "{text}");
    // A recipients file, with a bad line.
    std::fs::write(
        s.dir.join("lethe.toml"),
        "[backup]\nrecipients_file = \"keys.txt\"\n",
    )
    .unwrap();
    std::fs::write(
        s.dir.join("keys.txt"),
        format!("# the DPO\n{}\nnot-a-key\n", backup_key().1),
    )
    .unwrap();
    let (code, text) = s.lethe(&["apply", "plan.json", "--yes"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("keys.txt:3"), "{text}");
    assert!(text.contains("`not-a-key`"), "{text}");
    // Fixed: the file's recipient is used.
    std::fs::write(
        s.dir.join("keys.txt"),
        format!("# the DPO\n{}\n", backup_key().1),
    )
    .unwrap();
    s.ok(&["apply", "plan.json", "--yes"]);
    let read = lethe::apply::backup::read_backup(&s.backup(), Some(&backup_identities())).unwrap();
    assert!(read.encrypted && !read.lines.is_empty());
}

#[tokio::test]
async fn plaintext_is_an_explicit_opt_in_that_validate_warns_about() {
    let s = setup(Some("[backup]\nplaintext = true\n")).await;
    let (code, text) = s.lethe(&["validate", "job.yaml"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning:"), "{text}");
    assert!(text.contains("plaintext = true"), "{text}");
    s.ok(&["apply", "plan.json", "--yes"]);
    let backup = s.backup();
    assert!(backup.join("batch-000000.jsonl").exists());
    let read = lethe::apply::backup::read_backup(&backup, None).unwrap();
    assert!(!read.encrypted && !read.lines.is_empty());
    let list = s.ok(&["backups", "list"]);
    assert!(list.contains("NOT encrypted"), "{list}");
}
