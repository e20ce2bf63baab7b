//! `lethe validate --online`: the checks that need the target itself.
//!
//! A plan that cannot be applied wastes its approvers' time, so before
//! anyone approves, the job's users are checked against what the job will
//! do: the planning user (`target.url`) must read every table of the model;
//! the applying user (`target.apply_url`, else `url`) must also update,
//! delete and insert where the action does. A planning user that could
//! write, when a separate applying user exists, is reported too: planning
//! should run with a read-only user.

use std::collections::{BTreeMap, BTreeSet};

use lethe_connector::{Connector, Privilege};

use super::JobFile;
use crate::diag::Diagnostic;

/// Diagnostics for one valid job (none when everything is in place).
pub async fn check(job: &JobFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some((read, writes)) = crate::plan::privileges_needed(job) else {
        return out;
    };
    let t = &job.job.target;
    let file = &job.doc.file;
    let spans = &job.doc.spans;
    let separate = t.apply_url.is_some();
    let tz = job.model.model.timezone.clone();

    // The planning user.
    match crate::target::open(&job.job, tz.clone(), true, job.dir()).await {
        Err(e) => {
            out.push(
                Diagnostic::error(
                    "target-unreachable",
                    format!("cannot reach the target: {e}"),
                )
                .at(file, spans.value("/target/url")),
            );
            return out;
        }
        Ok((mut conn, _)) => {
            let want: BTreeMap<String, BTreeSet<Privilege>> = read
                .iter()
                .map(|t| (t.clone(), BTreeSet::from([Privilege::Select])))
                .collect();
            // Reading is all planning does; with no separate applying user
            // this user applies too.
            let want = if separate { want } else { merge(want, &writes) };
            match compare(conn.as_mut(), &want).await {
                Ok(Some(found)) => {
                    let role = if separate { "planning" } else { "target" };
                    report_missing(&mut out, job, "/target/url", role, &found.missing);
                    if separate && !found.excess.is_empty() {
                        let list = listing(&found.excess);
                        out.push(
                            Diagnostic::warning(
                                "excess-privilege",
                                format!("the planning user can also change data: {list}"),
                            )
                            .at(file, spans.value("/target/url"))
                            .with_help(
                                "planning only reads; give `target.url` a user with SELECT only (docs/connectors.md has the GRANT statements)",
                            ),
                        );
                    }
                }
                Ok(None) => out.push(not_checked(job, &conn.info().name)),
                Err(e) => out.push(
                    Diagnostic::error("target-unreachable", format!("cannot read privileges: {e}"))
                        .at(file, spans.value("/target/url")),
                ),
            }
        }
    }

    // The applying user, when it is another one.
    if separate {
        match crate::target::open(&job.job, tz, false, job.dir()).await {
            Err(e) => out.push(
                Diagnostic::error(
                    "target-unreachable",
                    format!("cannot reach the target with `apply_url`: {e}"),
                )
                .at(file, spans.value("/target/apply_url")),
            ),
            Ok((mut conn, _)) => {
                let want: BTreeMap<String, BTreeSet<Privilege>> = read
                    .iter()
                    .map(|t| (t.clone(), BTreeSet::from([Privilege::Select])))
                    .collect();
                let want = merge(want, &writes);
                match compare(conn.as_mut(), &want).await {
                    Ok(Some(found)) => report_missing(
                        &mut out,
                        job,
                        "/target/apply_url",
                        "applying",
                        &found.missing,
                    ),
                    Ok(None) => {}
                    Err(e) => out.push(
                        Diagnostic::error(
                            "target-unreachable",
                            format!("cannot read privileges with `apply_url`: {e}"),
                        )
                        .at(file, spans.value("/target/apply_url")),
                    ),
                }
            }
        }
    }
    out
}

use crate::plan::Grants;

fn merge(mut a: Grants, b: &Grants) -> Grants {
    for (t, ps) in b {
        a.entry(t.clone()).or_default().extend(ps.iter().copied());
    }
    a
}

struct Found {
    missing: Grants,
    excess: Grants,
}

/// What `want` lacks on this connection, and the write privileges it has
/// beyond `want`. `None` when the connector cannot tell.
async fn compare(
    conn: &mut dyn Connector,
    want: &Grants,
) -> Result<Option<Found>, lethe_connector::ConnectorError> {
    let tables: Vec<String> = want.keys().cloned().collect();
    let Some(granted) = conn.privileges(&tables).await? else {
        return Ok(None);
    };
    // Where a batch's locking read needs UPDATE (PostgreSQL's `SELECT …
    // FOR UPDATE` before a delete), ask for it beside DELETE.
    let mut want = want.clone();
    if conn.locking_reads_need_update() {
        for ps in want.values_mut() {
            if ps.contains(&Privilege::Delete) {
                ps.insert(Privilege::Update);
            }
        }
    }
    let want = &want;
    let schema = conn.introspect().await?;
    let mut missing = Grants::new();
    let mut excess = Grants::new();
    for (t, ps) in want {
        // A table the database lacks is a schema problem `lethe plan`
        // reports with its columns; not a privilege.
        if schema.table(t).is_none() {
            continue;
        }
        let has: BTreeSet<Privilege> = granted
            .get(t)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let lacks: BTreeSet<Privilege> = ps.difference(&has).copied().collect();
        if !lacks.is_empty() {
            missing.insert(t.clone(), lacks);
        }
        let more: BTreeSet<Privilege> = has
            .difference(ps)
            .copied()
            .filter(|p| *p != Privilege::Select)
            .collect();
        if !more.is_empty() {
            excess.insert(t.clone(), more);
        }
    }
    Ok(Some(Found { missing, excess }))
}

fn listing(g: &Grants) -> String {
    g.iter()
        .map(|(t, ps)| {
            let ps: Vec<&str> = ps.iter().map(|p| p.sql()).collect();
            format!("{} on `{t}`", ps.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn report_missing(out: &mut Vec<Diagnostic>, job: &JobFile, pointer: &str, role: &str, g: &Grants) {
    if g.is_empty() {
        return;
    }
    let grants: Vec<String> = g
        .iter()
        .map(|(t, ps)| {
            let ps: Vec<&str> = ps.iter().map(|p| p.sql()).collect();
            format!("GRANT {} ON {t} TO …;", ps.join(", "))
        })
        .collect();
    out.push(
        Diagnostic::error(
            "missing-privilege",
            format!(
                "the {role} user lacks {}: `lethe {}` would fail",
                listing(g),
                if role == "planning" { "plan" } else { "apply" }
            ),
        )
        .at(&job.doc.file, job.doc.spans.value(pointer))
        .with_help(format!("a DBA can grant them: {}", grants.join(" "))),
    );
}

fn not_checked(job: &JobFile, connector: &str) -> Diagnostic {
    Diagnostic::warning(
        "privileges-not-checked",
        format!("the `{connector}` connector cannot tell which privileges its user has; they are not checked"),
    )
    .at(&job.doc.file, job.doc.spans.value("/target/connector"))
}
