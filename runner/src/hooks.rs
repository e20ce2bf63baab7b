//! Event hooks: the project file's commands, run with the event as JSON on
//! standard input.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::project::{HookEvent, Project};

/// Runs the hooks of `event`. A required hook that fails is an error (the
/// caller decides what it stops); any other failure is logged.
pub fn fire(project: &Project, event: HookEvent, detail: serde_json::Value) -> Result<(), String> {
    // With their place in the project file (`[[hook]]` #1, #2, …).
    let hooks: Vec<_> = project
        .hooks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.on.contains(&event))
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let mut payload = serde_json::json!({
        "event": event.as_str(),
        "at": jiff::Timestamp::now().to_string(),
    });
    if let (Some(p), serde_json::Value::Object(d)) = (payload.as_object_mut(), detail) {
        p.extend(d);
    }
    let input = serde_json::to_vec(&payload).unwrap_or_default();
    let mut first_error = None;
    for (n, h) in hooks {
        let limit = Duration::from_secs(h.timeout_seconds.unwrap_or(30));
        let outcome = run(&h.command, &input, limit);
        if let Err(why) = outcome {
            // Named by its place and program, never by the whole command:
            // its arguments often hold a webhook's token.
            let program = h.command.split_whitespace().next().unwrap_or("");
            let message = format!(
                "the {} hook #{} (`{program}`) failed: {why}",
                event.as_str(),
                n + 1
            );
            if h.required {
                tracing::error!("{message}");
                first_error.get_or_insert(message);
            } else {
                tracing::warn!("{message} (not required: going on)");
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn run(command: &str, input: &[u8], limit: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exit {}", status.code().unwrap_or(-1))),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}
