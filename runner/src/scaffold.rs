//! `lethe new job`: a commented job file for a system model that
//! validates as written, so a DPO starts from something that works and
//! reads, next to each setting, what it can be.

use std::fmt::Write as _;

use crate::spec::model::{FieldType, SystemModel};

/// The actions a new job can start from.
pub const ACTIONS: [&str; 5] = ["anonymize", "delete", "deactivate", "keep-login", "rectify"];

/// A job for `model` (named in the job as `system`) on `entity` (default:
/// the first entity with personal fields) doing `action`.
pub fn job_text(
    model: &SystemModel,
    system: &str,
    entity: Option<&str>,
    action: &str,
) -> Result<String, String> {
    if !ACTIONS.contains(&action) {
        return Err(format!(
            "`{action}` is not an action: {}",
            ACTIONS.join(", ")
        ));
    }
    let names: Vec<&String> = model.entities.keys().collect();
    let ename = match entity {
        Some(e) if model.entities.contains_key(e) => e.to_owned(),
        // Rectify selects change requests: the entity that has `rectifies`.
        None if action == "rectify" => model
            .entities
            .iter()
            .find(|(_, e)| e.rectifies.is_some())
            .map(|(n, _)| n.clone())
            .ok_or_else(|| {
                format!(
                    "`{}` has no entity with a `rectifies` definition (change requests), so nothing can `rectify`",
                    model.name
                )
            })?,
        Some(e) => {
            return Err(format!(
                "`{}` has no entity `{e}`; its entities are {}",
                model.name,
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        None => model
            .entities
            .iter()
            .max_by_key(|(_, e)| e.fields.values().filter(|f| f.category.is_some()).count())
            .map(|(n, _)| n.clone())
            .ok_or_else(|| format!("`{}` has no entities", model.name))?,
    };
    let e = &model.entities[&ename];
    if matches!(action, "deactivate" | "keep-login") && e.deactivate.is_none() {
        return Err(format!(
            "`{ename}` has no `deactivate` definition in `{}`, so it cannot `{action}`",
            model.name
        ));
    }
    if action == "rectify" && e.rectifies.is_none() {
        return Err(format!(
            "`{ename}` has no `rectifies` definition in `{}`, so its records are not change requests to `rectify`",
            model.name
        ));
    }
    let env = format!("{}_URL", model.name.to_ascii_uppercase().replace('-', "_"));
    // A condition that validates whatever the model: a time field before
    // three years ago when there is one, else the key not NULL.
    let time_field = e
        .fields
        .iter()
        .find(|(_, f)| f.kind == Some(FieldType::Datetime) && f.category.is_none())
        .or_else(|| {
            e.fields
                .iter()
                .find(|(_, f)| matches!(f.kind, Some(FieldType::Datetime) | Some(FieldType::Date)))
        });
    let mut categories: Vec<String> = e
        .fields
        .values()
        .filter_map(|f| f.category.as_ref().map(|c| c.0.clone()))
        .collect();
    categories.sort();
    categories.dedup();
    let top: Vec<String> = {
        let mut t: Vec<String> = categories
            .iter()
            .map(|c| c.split('.').next().unwrap_or(c).to_owned())
            .collect();
        t.dedup();
        t
    };

    let mut o = String::new();
    let _ = writeln!(
        o,
        "# yaml-language-server: $schema=https://lethe.dev/schemas/job.schema.json"
    );
    let _ = writeln!(o, "#");
    let _ = writeln!(
        o,
        "# A job for `{}`{}. Edit the selection, then: lethe validate, lethe plan.",
        model.name,
        model
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    let _ = writeln!(o, "version: 1");
    let _ = writeln!(
        o,
        "name: {action}-{ename}    # unique per target: plans, approvals and history find the job by it"
    );
    let _ = writeln!(
        o,
        "description: Say here, for the approvers, what this job does and why"
    );
    let _ = writeln!(
        o,
        "owner: dpo@example.com    # who answers for this job (cannot approve its plans when distinct_from_author)"
    );
    let _ = writeln!(o, "target:");
    let _ = writeln!(o, "  system: {system}");
    let _ = writeln!(
        o,
        "  connector: sqlite    # sqlite | postgres | mysql | a plugin (`lethe connectors`)"
    );
    let _ = writeln!(
        o,
        "  url: ${{{env}:-sqlite://{}.db}}    # from the environment: credentials never belong in a job file",
        model.name
    );
    let _ = writeln!(
        o,
        "  # apply_url: ${{{env}_APPLY}}    # a separate user allowed to write; `url` then reads only"
    );
    let _ = writeln!(o, "selection:");
    let _ = writeln!(
        o,
        "  entity: {ename}    # entities: {}",
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(o, "  where:");
    let _ = writeln!(o, "    # Fields of `{ename}`:");
    for (fname, f) in &e.fields {
        let mut about = Vec::new();
        if let Some(k) = &f.kind {
            about.push(k.as_str().to_owned());
        }
        if let Some(c) = &f.category {
            about.push(c.0.clone());
        }
        let _ = writeln!(o, "    #   {fname}: {}", about.join(", "));
    }
    if !e.relations.is_empty() {
        let rels: Vec<&String> = e.relations.keys().collect();
        let _ = writeln!(
            o,
            "    # Relations (has / none / count / sum / max / min): {}",
            rels.iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match time_field {
        Some((fname, _)) => {
            let _ = writeln!(o, "    - field: {fname}");
            let _ = writeln!(
                o,
                "      before: -3y    # a date (2021-12-31) or relative to the plan's clock (-90d, -18mo, -3y)"
            );
        }
        None => {
            let _ = writeln!(o, "    - field: {}", e.key);
            let _ = writeln!(
                o,
                "      is_null: false    # replace with the conditions that select the records"
            );
        }
    }
    let _ = writeln!(
        o,
        "  cap: 500    # at most this many records a run; the rest wait for the next plan"
    );
    let _ = writeln!(o, "action:");
    let _ = writeln!(
        o,
        "  type: {action}    # anonymize | delete | deactivate | keep-login | rectify"
    );
    if matches!(action, "anonymize" | "delete") && !top.is_empty() {
        let _ = writeln!(
            o,
            "  # categories: [{}]    # only these (of: {}); all when left out",
            top.join(", "),
            categories.join(", ")
        );
    }
    let _ = writeln!(o, "approval:");
    let _ = writeln!(
        o,
        "  approvers: {{ min: 1, roles: [dpo] }}    # approvers and roles come from lethe.toml"
    );
    let _ = writeln!(o, "  reason: required");
    let _ = writeln!(
        o,
        "  # confirmations: [stations]    # when the model lists stations that must confirm"
    );
    let _ = writeln!(o, "# guards:");
    let _ = writeln!(o, "#   - ignore_if: {{ has: <relation> }}");
    let _ = writeln!(o, "#     reason: why such records are left alone");
    let _ = writeln!(o, "safety:");
    let _ = writeln!(
        o,
        "  backup: required    # every changed row saved first; `lethe restore` puts it back"
    );
    let _ = writeln!(
        o,
        "  on_drift: skip    # a record changed since the plan: skip it (or abort)"
    );
    let _ = writeln!(o, "  batch_size: 500    # records per transaction");
    let _ = writeln!(
        o,
        "  batch_time: 500ms    # batches shrink when one holds its locks longer than this"
    );
    let _ = writeln!(
        o,
        "  lock_timeout: 5s    # give up on a lock someone else holds, rather than wait"
    );
    Ok(o)
}

/// A guess from a column's name: (category, strategy, identifies, free text).
fn guess(column: &str) -> Option<(&'static str, &'static str, bool, bool)> {
    let c = column.to_ascii_lowercase();
    // Short words must be a whole part of the name (`tel`, not `hotel`);
    // longer ones may sit inside it (`email` in `owner_email`).
    let parts: Vec<&str> = c.split(|ch: char| !ch.is_ascii_alphanumeric()).collect();
    let has = |words: &[&str]| {
        words
            .iter()
            .any(|w| parts.contains(w) || (w.len() > 4 && c.contains(w)))
    };
    Some(if has(&["email", "e_mail", "mail"]) {
        ("contact.email", "hash-email", true, false)
    } else if has(&["phone", "mobile", "telefon", "celular", "tel", "fone"]) {
        ("contact.phone", "fake-phone", true, false)
    } else if has(&["first_name", "firstname", "fornamn", "given_name"]) {
        ("identity.name", "fake-first-name", false, false)
    } else if has(&[
        "last_name",
        "lastname",
        "surname",
        "efternamn",
        "family_name",
    ]) {
        ("identity.name", "fake-last-name", false, false)
    } else if has(&[
        "cpf",
        "cnpj",
        "ssn",
        "personnummer",
        "national_id",
        "passport",
        "inn",
        "snils",
    ]) {
        ("identity.national_id", "hash", true, false)
    } else if has(&["birth", "dob", "nascimento", "fodelse"]) {
        ("identity.birth", "truncate-year", false, false)
    } else if has(&["street", "address", "endereco", "adress", "rua", "gata"]) {
        ("contact.address", "fake-street", false, false)
    } else if has(&["city", "cidade", "stad", "gorod"]) {
        ("contact.address", "fake-city", false, false)
    } else if has(&["full_name", "fio", "nome", "namn"]) || c == "name" {
        ("identity.name", "fake-name", false, false)
    } else if has(&["note", "comment", "obs", "remark", "body", "message"]) {
        ("notes", "redact", false, true)
    } else if has(&["username", "login"]) {
        ("identity.username", "hash", true, false)
    } else {
        return None;
    })
}

fn field_type(kind: lethe_connector::ColumnKind) -> &'static str {
    use lethe_connector::ColumnKind as K;
    match kind {
        K::Integer => "integer",
        K::Decimal | K::Float => "decimal",
        K::Boolean => "boolean",
        K::Date => "date",
        K::Timestamp => "datetime",
        _ => "string",
    }
}

/// An entity name for a table: lower case, naively singular (`customers`
/// → `customer`, `categories` → `category`).
fn entity_name(table: &str) -> String {
    let t = table.to_ascii_lowercase().replace(['-', ' '], "_");
    if let Some(stem) = t.strip_suffix("ies") {
        format!("{stem}y")
    } else if t.ends_with("ss") || t.ends_with("us") {
        t
    } else if let Some(stem) = t.strip_suffix('s') {
        stem.to_owned()
    } else {
        t
    }
}

/// A starting system model from a database's tables: one entity per table
/// with a single-column key, foreign keys as relations (`delete` when the
/// column is required, `nullify` when it may be NULL), and columns whose
/// names suggest personal data given a category and a strategy — every one
/// of them marked for review.
pub fn system_text(name: &str, source: &str, schema: &lethe_connector::Schema) -> String {
    let mut o = String::new();
    let mut names: std::collections::BTreeMap<String, String> = Default::default();
    for t in &schema.tables {
        if t.primary_key.len() == 1 {
            let mut n = entity_name(&t.name);
            while names.values().any(|v| *v == n) {
                n.push('_');
            }
            names.insert(t.name.clone(), n);
        }
    }
    let _ = writeln!(
        o,
        "# yaml-language-server: $schema=https://lethe.dev/schemas/system.schema.json"
    );
    let _ = writeln!(o, "#");
    let _ = writeln!(o, "# Generated by `lethe new system` from {source}.");
    let _ = writeln!(
        o,
        "# REVIEW every category and strategy (guessed from column names), each"
    );
    let _ = writeln!(
        o,
        "# relation's on_delete, and add what the database cannot tell: locale,"
    );
    let _ = writeln!(o, "# time zone, `identifies`, `deactivate`, holds.");
    let _ = writeln!(o, "version: 1");
    let _ = writeln!(o, "name: {name}");
    let _ = writeln!(o, "description: Generated from {source}; review before use");
    let _ = writeln!(
        o,
        "# locale: en    # pt_BR, sv_SE, ru_RU, en: the language of fake values"
    );
    let _ = writeln!(
        o,
        "# timezone: UTC    # what stored times without a zone mean"
    );
    let _ = writeln!(o, "entities:");
    for t in &schema.tables {
        let Some(ename) = names.get(&t.name) else {
            let _ = writeln!(
                o,
                "  # table `{}` has no single-column primary key: not modelled",
                t.name
            );
            continue;
        };
        let key = &t.primary_key[0];
        let fks: Vec<&str> = t
            .foreign_keys
            .iter()
            .filter(|f| f.columns.len() == 1)
            .map(|f| f.columns[0].as_str())
            .collect();
        let _ = writeln!(o, "  {ename}:");
        let _ = writeln!(o, "    table: {}", t.name);
        let _ = writeln!(o, "    key: {key}");
        let fields: Vec<&lethe_connector::Column> = t
            .columns
            .iter()
            .filter(|c| c.name != *key && !fks.contains(&c.name.as_str()))
            .collect();
        if !fields.is_empty() {
            let _ = writeln!(o, "    fields:");
        }
        for c in fields {
            let ty = field_type(c.kind);
            let unique = t.unique.iter().any(|u| u.len() == 1 && u[0] == c.name);
            let mut parts = Vec::new();
            let mut review = "";
            if let Some((cat, strategy, identifies, free)) = guess(&c.name) {
                parts.push(format!("category: {cat}"));
                parts.push(format!("strategy: {strategy}"));
                if identifies {
                    parts.push("identifies: true".into());
                }
                if free {
                    parts.push("free_text: true".into());
                }
                review = "    # review";
            }
            if unique {
                parts.push("unique: true".into());
            }
            parts.push(format!("type: {ty}"));
            let _ = writeln!(o, "      {}: {{ {} }}{review}", c.name, parts.join(", "));
        }
        // Relations: the tables whose foreign keys point here.
        let mut rels = Vec::new();
        for child in &schema.tables {
            let Some(cname) = names.get(&child.name) else {
                continue;
            };
            for fk in child
                .foreign_keys
                .iter()
                .filter(|f| f.references == t.name && f.columns.len() == 1)
            {
                let col = &fk.columns[0];
                let nullable = child.column(col).is_some_and(|c| c.nullable);
                let mut rname = child.name.to_ascii_lowercase();
                if rels.iter().any(|(r, _): &(String, String)| *r == rname) {
                    rname = format!("{rname}_by_{col}");
                }
                rels.push((
                    rname,
                    format!(
                        "{{ entity: {cname}, foreign_key: {col}, on_delete: {} }}    # review",
                        if nullable { "nullify" } else { "delete" }
                    ),
                ));
            }
        }
        if !rels.is_empty() {
            let _ = writeln!(o, "    relations:");
            for (r, v) in rels {
                let _ = writeln!(o, "      {r}: {v}");
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::guess;

    #[test]
    fn column_names_are_guessed_by_whole_parts() {
        let category = |c: &str| guess(c).map(|g| g.0);
        assert_eq!(category("phone"), Some("contact.phone"));
        assert_eq!(category("tel"), Some("contact.phone"));
        assert_eq!(category("owner_email"), Some("contact.email"));
        assert_eq!(category("personnummer"), Some("identity.national_id"));
        assert_eq!(category("cpf"), Some("identity.national_id"));
        assert_eq!(category("birth_date"), Some("identity.birth"));
        // Short words inside other words are not a match.
        assert_eq!(category("hotel_rating"), None);
        assert_eq!(category("dinner_slot"), None);
        assert_eq!(category("jobs"), None);
    }
}
