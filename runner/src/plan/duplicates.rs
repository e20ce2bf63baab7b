//! Possible duplicates (SPEC §6.16): records outside the selection that
//! share an identifying value with a selected one — the same person
//! registered twice, who would keep their data after this job.
//!
//! Values compare trimmed and case-folded with Unicode rules (`Åsa` matches
//! `åsa`), phones by their digits alone. The database finds the candidates
//! (`Cond::Normalized`, one query per chunk of selected values); each is
//! checked again here with the same normalisation.

use std::collections::{BTreeSet, HashMap, HashSet};

use lethe_connector::{Cond, Connector, Expr, Normalization, Select, Value};

use super::{Duplicate, KEY_CHUNK, PlanError, at, key_id};
use crate::validate::JobFile;

/// At most this many pairs are listed.
const MAX_PAIRS: usize = 10_000;

/// The normalised form of an identifying value; `None` never matches.
pub fn normalise(v: &Value, form: Normalization) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Text(s) => form.apply(s),
        other => form.apply(&other.render()),
    }
}

pub async fn find(
    conn: &mut dyn Connector,
    job: &JobFile,
    columns: &[String],
    rows: &HashMap<Vec<u8>, Vec<Value>>,
    selected: &[Value],
) -> Result<Vec<Duplicate>, PlanError> {
    let model = &job.model.model;
    let Some(entity) = model.entities.get(&job.job.selection.entity) else {
        return Ok(Vec::new());
    };
    let idents: Vec<(String, String, Normalization, usize)> = entity
        .fields
        .iter()
        .filter(|(_, f)| f.identifies)
        .filter_map(|(name, f)| {
            let col = f.column(name).to_owned();
            let idx = columns.iter().position(|c| *c == col)?;
            let phone = f
                .category
                .as_ref()
                .is_some_and(|c| c.0.starts_with("contact.phone"));
            let form = if phone {
                Normalization::Digits
            } else {
                Normalization::Folded
            };
            Some((name.clone(), col, form, idx))
        })
        .collect();
    if idents.is_empty() || selected.is_empty() {
        return Ok(Vec::new());
    }
    // Normalised value → selected keys, per identifying field.
    let mut maps: Vec<HashMap<String, Vec<Value>>> = vec![HashMap::new(); idents.len()];
    for k in selected {
        let Some(row) = rows.get(&key_id(k)) else {
            continue;
        };
        for (i, (_, _, form, idx)) in idents.iter().enumerate() {
            if let Some(n) = normalise(&row[*idx], *form) {
                maps[i].entry(n).or_default().push(k.clone());
            }
        }
    }
    let chosen: HashSet<Vec<u8>> = selected.iter().map(key_id).collect();
    let mut pairs: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    // Field by field: each scan tests one normalised column against the
    // selected values (cheaper than one scan testing every column).
    for (i, (field, col, form, _)) in idents.iter().enumerate() {
        let values: Vec<String> = maps[i].keys().cloned().collect();
        for chunk in values.chunks(KEY_CHUNK) {
            let q = Select {
                table: entity.table.clone(),
                columns: vec![entity.key.clone(), col.clone()],
                flags: vec![],
                filter: Cond::Normalized {
                    expr: Expr::Column(col.clone()),
                    form: *form,
                    values: chunk.to_vec(),
                },
                order_by: vec![],
                limit: None,
            };
            let mut sink = |row: Vec<Value>| -> lethe_connector::Result<()> {
                if out.len() >= MAX_PAIRS || chosen.contains(&key_id(&row[0])) {
                    return Ok(());
                }
                let Some(n) = normalise(&row[1], *form) else {
                    return Ok(());
                };
                for k in maps[i].get(&n).into_iter().flatten() {
                    if pairs.insert((k.render(), row[0].render(), field.clone())) {
                        out.push(Duplicate {
                            selected_key: k.clone(),
                            other_key: row[0].clone(),
                            field: field.clone(),
                        });
                    }
                }
                Ok(())
            };
            conn.select(&q, &mut sink)
                .await
                .map_err(at("looking for possible duplicates"))?;
        }
    }
    out.sort_by(|a, b| {
        (a.selected_key.render(), a.other_key.render(), &a.field).cmp(&(
            b.selected_key.render(),
            b.other_key.render(),
            &b.field,
        ))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let t = |s: &str| Value::Text(s.to_owned());
        let (f, d) = (Normalization::Folded, Normalization::Digits);
        assert_eq!(normalise(&t("  Åsa@X.se "), f), Some("åsa@x.se".into()));
        assert_eq!(
            normalise(&t("+46 (70) 123-45-67"), d),
            Some("46701234567".into())
        );
        assert_eq!(normalise(&t("   "), f), None);
        assert_eq!(normalise(&t("n/a"), d), None);
        assert_eq!(normalise(&Value::Null, f), None);
    }
}
