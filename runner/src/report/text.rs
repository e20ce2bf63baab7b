//! The plan report for a terminal.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::{PlanView, action_phrase, thousands};
use crate::plan::{Change, GateState};

struct Paint {
    on: bool,
}

impl Paint {
    fn with(&self, style: Style, s: &str) -> String {
        if self.on {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_owned()
        }
    }

    fn bold(&self, s: &str) -> String {
        self.with(Style::new().bold(), s)
    }

    fn dim(&self, s: &str) -> String {
        self.with(Style::new().dimmed(), s)
    }

    fn red(&self, s: &str) -> String {
        self.with(Style::new().fg_color(Some(AnsiColor::Red.into())).bold(), s)
    }

    fn yellow(&self, s: &str) -> String {
        self.with(Style::new().fg_color(Some(AnsiColor::Yellow.into())), s)
    }

    fn green(&self, s: &str) -> String {
        self.with(Style::new().fg_color(Some(AnsiColor::Green.into())), s)
    }
}

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

pub fn plan(v: &PlanView, color: bool) -> String {
    let p = Paint { on: color };
    let mut o = String::new();
    let _ = writeln!(o, "{} {}", p.bold("Plan for"), p.bold(&v.job.name));
    if let Some(d) = &v.job.description {
        let _ = writeln!(o, "  {d}");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "  system   {} — {}", v.system, v.target.location);
    let _ = writeln!(
        o,
        "  action   {} {} ({})",
        v.action, v.entity.name, v.entity.table
    );
    let _ = writeln!(o, "  clock    {} ({})", v.clock, v.timezone);
    let _ = writeln!(o, "  author   {}", v.author);
    let _ = writeln!(o, "  plan     {}", v.plan_id);
    if let Some(prev) = &v.previous_wipe {
        let _ = writeln!(
            o,
            "  {}",
            p.yellow(&format!(
                "previous wipe: {} (job {}, {}, run {})",
                prev.finished_at,
                prev.job,
                super::count(prev.records, "record", "records"),
                prev.run_id
            ))
        );
    }

    if !v.blocked_by.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{}",
            p.red("BLOCKED — this plan can be neither approved nor applied:")
        );
        for b in &v.blocked_by {
            let _ = writeln!(o, "  {} {b}", p.red("✗"));
        }
    }

    let s = &v.summary;
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Records"));
    let w = [s.matched, s.ignored, s.selected, s.deferred]
        .iter()
        .map(|n| thousands(*n).len())
        .max()
        .unwrap_or(1);
    let _ = writeln!(
        o,
        "  matched   {:>w$}   met the selection",
        thousands(s.matched)
    );
    let _ = writeln!(o, "  ignored   {:>w$}   left alone", thousands(s.ignored));
    for r in &v.ignored_by_reason {
        let _ = writeln!(
            o,
            "            {:>w$}   {}",
            thousands(r.count),
            p.dim(&r.reason)
        );
    }
    let _ = writeln!(
        o,
        "  selected  {:>w$}   will be {}",
        thousands(s.selected),
        action_phrase(v.action)
    );
    if s.deferred > 0 {
        let _ = writeln!(
            o,
            "  deferred  {:>w$}   over the cap; run the job again for them",
            thousands(s.deferred)
        );
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("What changes"));
    if v.effects.is_empty() {
        let _ = writeln!(o, "  nothing");
    } else {
        let tw = v
            .effects
            .iter()
            .map(|e| e.table.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            o,
            "  {:<tw$}  {:>9}  {:>9}  {:>9}",
            "table", "updated", "deleted", "inserted"
        );
        let mut tables: Vec<&str> = v.effects.iter().map(|e| e.table.as_str()).collect();
        tables.dedup();
        for t in tables {
            let n = |c: Change| {
                v.effects
                    .iter()
                    .find(|e| e.table == t && e.action == c)
                    .map(|e| thousands(e.rows))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                o,
                "  {t:<tw$}  {:>9}  {:>9}  {:>9}",
                n(Change::Updated),
                n(Change::Deleted),
                n(Change::Inserted)
            );
        }
    }

    if !v.fields.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{}{}",
            p.bold("Fields"),
            if v.revealed {
                p.yellow("  (originals shown: --reveal)")
            } else {
                p.dim("  (originals masked)")
            }
        );
        let fw = v
            .fields
            .iter()
            .map(|f| f.table.len() + f.field.len() + 1)
            .max()
            .unwrap_or(10);
        let sw = v.fields.iter().map(|f| f.strategy.len()).max().unwrap_or(8);
        for f in &v.fields {
            let name = format!("{}.{}", f.table, f.field);
            let samples: Vec<String> = f
                .samples
                .iter()
                .map(|s| format!("{} → {}", s.before, ellipsis(&s.after, 24)))
                .collect();
            let _ = writeln!(
                o,
                "  {name:<fw$}  {:<sw$}  {:>7} rows  {}",
                f.strategy,
                thousands(f.rows),
                p.dim(&samples.join(", "))
            );
        }
    }

    rectifications(&mut o, v, &p);

    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Warnings"));
    if v.warnings.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for wn in &v.warnings {
        let tag = if wn.acknowledged {
            p.dim("[acknowledged by the job]")
        } else {
            p.yellow("[an approver must acknowledge]")
        };
        let _ = writeln!(
            o,
            "  {} {}: {} {tag}",
            p.yellow("!"),
            wn.id.as_str(),
            wn.message
        );
    }

    if !v.duplicates.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", p.bold("Possible duplicates"));
        let others: std::collections::BTreeSet<String> =
            v.duplicates.iter().map(|d| d.other_key.render()).collect();
        let n = others.len() as u64;
        let _ = writeln!(
            o,
            "  {} outside the selection {} an identifying value with a selected one;",
            super::count(n, "record", "records"),
            if n == 1 { "shares" } else { "share" }
        );
        let _ = writeln!(o, "  they keep their data. Review them before approving:");
        let mut pairs: Vec<(String, String, Vec<&str>)> = Vec::new();
        for d in &v.duplicates {
            let (a, b) = (d.selected_key.render(), d.other_key.render());
            match pairs.iter_mut().find(|(x, y, _)| *x == a && *y == b) {
                Some((_, _, fields)) => fields.push(&d.field),
                None => pairs.push((a, b, vec![&d.field])),
            }
        }
        for (a, b, fields) in pairs.iter().take(10) {
            let _ = writeln!(
                o,
                "    {} {a} ↔ {} {b} (same {})",
                v.entity.name,
                v.entity.name,
                fields.join(", ")
            );
        }
        if pairs.len() > 10 {
            let _ = writeln!(o, "    … {} more (see --format json)", pairs.len() - 10);
        }
    }

    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Gates"));
    let gw = v.gates.iter().map(|g| g.gate.len()).max().unwrap_or(8);
    for g in &v.gates {
        let mark = match g.state {
            GateState::Met => p.green("✓"),
            GateState::Missing => p.yellow("○"),
            GateState::Blocked => p.red("✗"),
        };
        let _ = writeln!(o, "  {mark} {:<gw$}  {}", g.gate, g.detail);
    }
    o
}

/// How many requests the terminal report lists (the other formats list all).
const REQUESTS_SHOWN: usize = 20;

/// Requested changes side by side: the record's value now, the requested
/// one, and whether it changes.
fn rectifications(o: &mut String, v: &PlanView, p: &Paint) {
    if v.rectifications.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{}{}",
        p.bold("Requested changes"),
        if v.revealed {
            p.yellow("  (values shown: --reveal)")
        } else {
            p.dim("  (values masked; changed fields marked *)")
        }
    );
    let shown = &v.rectifications[..v.rectifications.len().min(REQUESTS_SHOWN)];
    let fw = shown
        .iter()
        .flat_map(|r| r.fields.iter().map(|f| f.field.chars().count()))
        .max()
        .unwrap_or(5)
        .max(5);
    let cw = shown
        .iter()
        .flat_map(|r| r.fields.iter().map(|f| f.current.chars().count()))
        .max()
        .unwrap_or(3)
        .clamp(3, 32);
    let target = v.rectified.as_ref().map_or("record", |e| e.name.as_str());
    for r in shown {
        let _ = writeln!(
            o,
            "  {} {} → {target} {}",
            v.entity.name,
            r.request.render(),
            r.record.render()
        );
        if r.fields.is_empty() {
            let _ = writeln!(o, "    {}", p.dim("(asks for no change)"));
        }
        if let Some(why) = &r.waits {
            let _ = writeln!(o, "  {} {why}", p.yellow("!"));
        }
        for f in &r.fields {
            let current = ellipsis(&f.current, 32);
            let requested = ellipsis(&f.requested, 32);
            let pad = cw.saturating_sub(current.chars().count());
            if f.changed {
                let _ = writeln!(
                    o,
                    "  {} {:<fw$}  {current}{}  →  {}",
                    p.red("*"),
                    f.field,
                    " ".repeat(pad),
                    p.red(&requested)
                );
            } else {
                let _ = writeln!(
                    o,
                    "    {:<fw$}  {current}{}  =  {}",
                    f.field,
                    " ".repeat(pad),
                    p.dim(&format!("{requested} (unchanged)"))
                );
            }
        }
    }
    if v.rectifications.len() > shown.len() {
        let _ = writeln!(
            o,
            "  … {} more (see --format html or json)",
            v.rectifications.len() - shown.len()
        );
    }
}
