//! What an action does, table by table, as row sets reached from the
//! selected keys. The planner counts these sets; apply changes them; one
//! description serves both so the plan and the run cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use lethe_connector::{Cond, Expr, Join, Privilege, Value};

use super::resolve::{Resolver, Unknown};
use crate::spec::job::{Action, Scope};
use crate::spec::model::{Category, Entity, OnDelete, RelationRole, Strategy, SystemModel};

/// One hop from a parent table to the rows of a child table that point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub relation: String,
    pub table: String,
    /// The child table's key column.
    pub key: String,
    /// The child's column that holds the parent's key.
    pub foreign_key: String,
    pub parent_table: String,
    pub parent_key: String,
}

/// The rows of one table reached from the selected records by a path of relations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePath {
    pub entity: String,
    pub table: String,
    pub key: String,
    /// Empty for the selected entity's own table.
    pub path: Vec<Step>,
}

impl TablePath {
    /// The condition, on this table, for the rows reached from `keys`.
    pub fn rows(&self, root_key: &str, keys: &[Value]) -> Cond {
        rowset(root_key, &self.path, keys)
    }

    /// `relations` from the selected entity, joined by dots (for reports).
    pub fn describe(&self) -> String {
        self.path
            .iter()
            .map(|s| s.relation.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

fn rowset(root_key: &str, path: &[Step], keys: &[Value]) -> Cond {
    match path.split_last() {
        None => Cond::keys(root_key, keys.to_vec()),
        Some((last, [])) if last.parent_key == root_key => {
            Cond::keys(&last.foreign_key, keys.to_vec())
        }
        Some((last, before)) => Cond::InSet {
            column: last.foreign_key.clone(),
            table: last.parent_table.clone(),
            key: last.parent_key.clone(),
            filter: Box::new(rowset(root_key, before, keys)),
        },
    }
}

/// A field anonymize writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonField {
    pub field: String,
    pub column: String,
    pub strategy: Strategy,
    /// Free text (notes): shown in reports by its length only.
    pub free_text: bool,
}

/// A table anonymize writes.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonTable {
    pub rows: TablePath,
    pub fields: Vec<AnonField>,
    /// Columns set on every row (the record's `anonymized` marker; the
    /// root table only).
    pub mark: Vec<(String, Value)>,
}

impl AnonTable {
    /// The rows anonymize changes: with a marker every reached row, else
    /// those with a value to replace (NULL stays NULL).
    pub fn changes(&self) -> Cond {
        if !self.mark.is_empty() {
            return Cond::True;
        }
        Cond::Or(
            self.fields
                .iter()
                .map(|f| Cond::IsNull {
                    expr: Expr::Column(f.column.clone()),
                    negated: true,
                })
                .collect(),
        )
    }
}

/// A row deactivate inserts, one per record.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertSpec {
    pub entity: String,
    pub table: String,
    /// Column → value; text values may use `{{ key }}` and `{{ now }}`.
    pub values: Vec<(String, serde_json::Value)>,
}

/// What `rectify` writes: each request's values onto the record it names.
#[derive(Debug, Clone, PartialEq)]
pub struct RectifySpec {
    /// The changed records' entity, table and key column.
    pub entity: String,
    pub table: String,
    pub key: String,
    /// The request's column that holds the changed record's key.
    pub link: String,
    pub fields: Vec<RectifiedField>,
    /// Set on each applied request; text may be `{{ now }}`.
    pub set: Vec<(String, serde_json::Value)>,
    /// Rows inserted per applied request (`{{ record }}` is the changed
    /// record's key).
    pub insert: Vec<InsertSpec>,
}

/// One field a request can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectifiedField {
    /// The changed record's field and column.
    pub field: String,
    pub column: String,
    /// The request's column holding the new value (NULL: unchanged).
    pub from: String,
}

/// A parent deactivated after the batch when its condition holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeSpec {
    pub entity: String,
    pub table: String,
    pub key: String,
    /// The column of the selected table that holds the parent's key.
    pub link: String,
    pub when: Cond,
    /// The relation from the parent to the selected entity (to leave the
    /// batch's own records out when estimating).
    pub back: Join,
    pub set: Vec<(String, Value)>,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Anonymize {
        tables: Vec<AnonTable>,
    },
    Delete {
        /// Whether the selected records themselves are deleted.
        root: bool,
        /// Tables whose reached rows are deleted, deepest first.
        delete: Vec<TablePath>,
        /// Tables whose reached rows get a foreign key set to NULL.
        nullify: Vec<TablePath>,
    },
    Deactivate {
        set: Vec<(String, Value)>,
        insert: Vec<InsertSpec>,
        /// Login rows unlinked (`nullify`) by deactivate; empty for keep-login.
        unlink: Vec<TablePath>,
        /// Login rows deleted by deactivate; empty for keep-login.
        delete: Vec<TablePath>,
        cascade: Vec<CascadeSpec>,
    },
    Rectify(RectifySpec),
}

fn step(model: &SystemModel, parent: &Entity, rel_name: &str) -> Option<(String, Step)> {
    let r = parent.relations.get(rel_name)?;
    let child = model.entities.get(&r.entity)?;
    Some((
        r.entity.clone(),
        Step {
            relation: rel_name.to_owned(),
            table: child.table.clone(),
            key: child.key.clone(),
            foreign_key: r.foreign_key.clone(),
            parent_table: parent.table.clone(),
            parent_key: parent.key.clone(),
        },
    ))
}

fn covers(categories: Option<&[Category]>, c: &Option<Category>) -> bool {
    match (categories, c) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(cs), Some(c)) => cs.iter().any(|x| x.covers(c)),
    }
}

const MAX_DEPTH: usize = 16;

/// The work of the job's action on the selected entity.
pub fn work(r: &Resolver<'_>, entity: &str, action: &Action) -> Result<Work, Unknown> {
    let model = r.model;
    let root = r.entity(entity)?;
    let root_path = TablePath {
        entity: entity.to_owned(),
        table: root.table.clone(),
        key: root.key.clone(),
        path: Vec::new(),
    };
    match action {
        Action::Anonymize { categories, fields } => {
            let mut tables = Vec::new();
            let mut stack = vec![(entity.to_owned(), root_path)];
            while let Some((ename, at)) = stack.pop() {
                let e = r.entity(&ename)?;
                let mut fs = Vec::new();
                for (fname, f) in &e.fields {
                    if !covers(categories.as_deref(), &f.category) {
                        continue;
                    }
                    let overridden = if at.path.is_empty() {
                        fields.get(fname).copied()
                    } else {
                        None
                    };
                    let Some(strategy) = overridden.or(f.strategy) else {
                        continue;
                    };
                    if strategy == Strategy::Keep {
                        continue;
                    }
                    fs.push(AnonField {
                        field: fname.clone(),
                        column: f.column(fname).to_owned(),
                        strategy,
                        free_text: f.free_text,
                    });
                }
                if at.path.len() < MAX_DEPTH {
                    for (rname, rel) in &e.relations {
                        if rel.on_delete != OnDelete::Delete
                            || at.path.iter().any(|s| s.relation == *rname)
                        {
                            continue;
                        }
                        if let Some((child, s)) = step(model, e, rname) {
                            let ce = r.entity(&child)?;
                            let mut path = at.path.clone();
                            path.push(s);
                            stack.push((
                                child.clone(),
                                TablePath {
                                    entity: child,
                                    table: ce.table.clone(),
                                    key: ce.key.clone(),
                                    path,
                                },
                            ));
                        }
                    }
                }
                let mark: Vec<(String, Value)> = match (&e.anonymized, at.path.is_empty()) {
                    (Some(m), true) => m
                        .set
                        .iter()
                        .map(|(k, v)| (column_or_self(e, k), json_value(v)))
                        .collect(),
                    _ => Vec::new(),
                };
                if !fs.is_empty() || !mark.is_empty() {
                    tables.push(AnonTable {
                        rows: at,
                        fields: fs,
                        mark,
                    });
                }
            }
            tables.sort_by_key(|t| (t.rows.path.len(), t.rows.table.clone()));
            Ok(Work::Anonymize { tables })
        }
        Action::Delete { categories, scope } => {
            let all = *scope == Some(Scope::All);
            let mut delete = Vec::new();
            let mut nullify = Vec::new();
            match categories {
                None => cascade_delete(r, entity, &root_path, all, &mut delete, &mut nullify)?,
                Some(cs) => {
                    // Partial deletion: find owned rows in the categories; each is
                    // deleted with its own cascade, the record stays.
                    let mut stack = vec![(entity.to_owned(), root_path)];
                    while let Some((ename, at)) = stack.pop() {
                        let e = r.entity(&ename)?;
                        for (rname, rel) in &e.relations {
                            if rel.on_delete != OnDelete::Delete || at.path.len() >= MAX_DEPTH {
                                continue;
                            }
                            let Some((child, s)) = step(model, e, rname) else {
                                continue;
                            };
                            let ce = r.entity(&child)?;
                            let mut path = at.path.clone();
                            path.push(s);
                            let tp = TablePath {
                                entity: child.clone(),
                                table: ce.table.clone(),
                                key: ce.key.clone(),
                                path,
                            };
                            if ce.fields.values().any(|f| covers(Some(cs), &f.category)) {
                                delete.push(tp.clone());
                                cascade_delete(r, &child, &tp, false, &mut delete, &mut nullify)?;
                            } else {
                                stack.push((child, tp));
                            }
                        }
                    }
                }
            }
            delete.sort_by_key(|t| std::cmp::Reverse(t.path.len()));
            Ok(Work::Delete {
                root: categories.is_none(),
                delete,
                nullify,
            })
        }
        Action::Deactivate {} | Action::KeepLogin {} => {
            let keep_login = matches!(action, Action::KeepLogin {});
            let Some(d) = &root.deactivate else {
                return Err(Unknown {
                    what: "deactivate definition for entity",
                    name: entity.to_owned(),
                });
            };
            let set = d
                .set
                .iter()
                .map(|(k, v)| (column_or_self(root, k), json_value(v)))
                .collect();
            let insert = insert_specs(r, &d.insert)?;
            let mut unlink = Vec::new();
            let mut delete = Vec::new();
            if !keep_login {
                for (rname, rel) in &root.relations {
                    if rel.role != Some(RelationRole::Login) {
                        continue;
                    }
                    let Some((child, s)) = step(model, root, rname) else {
                        continue;
                    };
                    let ce = r.entity(&child)?;
                    let tp = TablePath {
                        entity: child,
                        table: ce.table.clone(),
                        key: ce.key.clone(),
                        path: vec![s],
                    };
                    match rel.on_delete {
                        OnDelete::Delete => delete.push(tp),
                        OnDelete::Nullify => unlink.push(tp),
                        OnDelete::Keep | OnDelete::Block => {}
                    }
                }
            }
            let mut cascade = Vec::new();
            for c in &d.cascade {
                let parent = r.entity(&c.entity)?;
                let Some((_, rel)) = parent
                    .relations
                    .iter()
                    .find(|(_, rel)| rel.entity == entity)
                else {
                    continue;
                };
                let Some(pd) = &parent.deactivate else {
                    continue;
                };
                cascade.push(CascadeSpec {
                    entity: c.entity.clone(),
                    table: parent.table.clone(),
                    key: parent.key.clone(),
                    link: rel.foreign_key.clone(),
                    when: r.all(&c.entity, &c.when.0)?,
                    back: Join {
                        table: root.table.clone(),
                        foreign_key: rel.foreign_key.clone(),
                        key: parent.key.clone(),
                    },
                    set: pd
                        .set
                        .iter()
                        .map(|(k, v)| (column_or_self(parent, k), json_value(v)))
                        .collect(),
                });
            }
            Ok(Work::Deactivate {
                set,
                insert,
                unlink,
                delete,
                cascade,
            })
        }
        Action::Rectify {} => {
            let Some(rd) = &root.rectifies else {
                return Err(Unknown {
                    what: "rectifies definition for entity",
                    name: entity.to_owned(),
                });
            };
            let target = r.entity(&rd.entity)?;
            let mut fields = Vec::new();
            for (from, to) in &rd.fields {
                fields.push(RectifiedField {
                    field: to.clone(),
                    column: r.column(&rd.entity, to)?,
                    from: r.column(entity, from)?,
                });
            }
            let insert = insert_specs(r, &rd.insert)?;
            Ok(Work::Rectify(RectifySpec {
                entity: rd.entity.clone(),
                table: target.table.clone(),
                key: target.key.clone(),
                link: column_or_self(root, &rd.foreign_key),
                fields,
                set: rd
                    .set
                    .iter()
                    .map(|(k, v)| (column_or_self(root, k), v.clone()))
                    .collect(),
                insert,
            }))
        }
    }
}

/// Whether a field's values must stay unique: the model says so, or the
/// table has a one-column unique index on it.
pub fn is_unique(
    entity: Option<&Entity>,
    table: Option<&lethe_connector::Table>,
    field: &str,
    column: &str,
) -> bool {
    entity
        .and_then(|e| e.fields.get(field))
        .is_some_and(|f| f.unique)
        || table.is_some_and(|t| t.unique.iter().any(|u| u.len() == 1 && u[0] == column))
}

/// The model's side-effect rows, with column names resolved.
fn insert_specs(
    r: &Resolver<'_>,
    rows: &[crate::spec::model::InsertRow],
) -> Result<Vec<InsertSpec>, Unknown> {
    rows.iter()
        .map(|ins| {
            let e = r.entity(&ins.entity)?;
            Ok(InsertSpec {
                entity: ins.entity.clone(),
                table: e.table.clone(),
                values: ins
                    .values
                    .iter()
                    .map(|(k, v)| (column_or_self(e, k), v.clone()))
                    .collect(),
            })
        })
        .collect()
}

/// Requests whose record no longer exists: a rectify plan leaves them out,
/// with this reason.
pub fn missing_record(
    r: &Resolver<'_>,
    entity: &str,
    action: &Action,
) -> Result<Option<(Cond, String)>, Unknown> {
    let Action::Rectify {} = action else {
        return Ok(None);
    };
    let root = r.entity(entity)?;
    let Some(rd) = &root.rectifies else {
        return Ok(None);
    };
    let target = r.entity(&rd.entity)?;
    let link = column_or_self(root, &rd.foreign_key);
    let cond = Cond::Or(vec![
        Cond::IsNull {
            expr: Expr::Column(link.clone()),
            negated: false,
        },
        Cond::Not(Box::new(Cond::InSet {
            column: link,
            table: target.table.clone(),
            key: target.key.clone(),
            filter: Box::new(Cond::True),
        })),
    ]);
    Ok(Some((
        cond,
        format!("the {} it changes no longer exists", rd.entity),
    )))
}

/// Follows every relation of a deleted entity by its `on_delete` (or, for
/// `scope: all`, deletes whatever is reachable except through `block`).
fn cascade_delete(
    r: &Resolver<'_>,
    entity: &str,
    at: &TablePath,
    all: bool,
    delete: &mut Vec<TablePath>,
    nullify: &mut Vec<TablePath>,
) -> Result<(), Unknown> {
    if at.path.len() >= MAX_DEPTH {
        return Ok(());
    }
    let e = r.entity(entity)?;
    for (rname, rel) in &e.relations {
        let Some((child, s)) = step(r.model, e, rname) else {
            continue;
        };
        if at
            .path
            .iter()
            .any(|p| p.table == s.table && p.foreign_key == s.foreign_key)
        {
            continue;
        }
        let ce = r.entity(&child)?;
        let mut path = at.path.clone();
        path.push(s);
        let tp = TablePath {
            entity: child.clone(),
            table: ce.table.clone(),
            key: ce.key.clone(),
            path,
        };
        let how = if all && rel.on_delete != OnDelete::Block {
            OnDelete::Delete
        } else {
            rel.on_delete
        };
        match how {
            OnDelete::Delete => {
                delete.push(tp.clone());
                cascade_delete(r, &child, &tp, all, delete, nullify)?;
            }
            OnDelete::Nullify => nullify.push(tp),
            OnDelete::Keep | OnDelete::Block => {}
        }
    }
    Ok(())
}

/// Records that cannot be deleted because something they (or the rows they
/// take with them) own is under a `block` relation: conditions on the
/// selected entity, each with its reason.
pub fn delete_blockers(
    r: &Resolver<'_>,
    entity: &str,
    action: &Action,
) -> Result<Vec<(Cond, String)>, Unknown> {
    let Action::Delete { .. } = action else {
        return Ok(Vec::new());
    };
    let Work::Delete { root, delete, .. } = work(r, entity, action)? else {
        return Ok(Vec::new());
    };
    let root_entity = r.entity(entity)?;
    let mut deleted: Vec<TablePath> = delete;
    if root {
        deleted.push(TablePath {
            entity: entity.to_owned(),
            table: root_entity.table.clone(),
            key: root_entity.key.clone(),
            path: Vec::new(),
        });
    }
    let mut out = Vec::new();
    for tp in &deleted {
        let e = r.entity(&tp.entity)?;
        for (rname, rel) in &e.relations {
            if rel.on_delete != OnDelete::Block {
                continue;
            }
            let (join, _) = r.join(&tp.entity, rname)?;
            // has (path …) that has (blocking relation)
            let mut cond = Cond::Exists {
                join,
                filter: Box::new(Cond::True),
            };
            for s in tp.path.iter().rev() {
                cond = Cond::Exists {
                    join: Join {
                        table: s.table.clone(),
                        foreign_key: s.foreign_key.clone(),
                        key: s.parent_key.clone(),
                    },
                    filter: Box::new(cond),
                };
            }
            let via = if tp.path.is_empty() {
                String::new()
            } else {
                format!(" (through {})", tp.describe())
            };
            out.push((
                cond,
                format!("has {rname}{via}, which the system model does not let lethe delete"),
            ));
        }
    }
    Ok(out)
}

fn column_or_self(e: &Entity, name: &str) -> String {
    e.fields
        .get(name)
        .map(|f| f.column(name).to_owned())
        .unwrap_or_else(|| name.to_owned())
}

/// A model value (`status: inactive`, `active: 0`) as a bound value.
pub fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_f64().map(Value::Float))
            .unwrap_or(Value::Null),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

impl Work {
    /// The privileges applying this work needs beyond reading, by table:
    /// `root` is the selected entity's table.
    pub fn writes(&self, root: &str) -> BTreeMap<String, BTreeSet<Privilege>> {
        let mut out: BTreeMap<String, BTreeSet<Privilege>> = BTreeMap::new();
        let mut add = |t: &str, p: Privilege| {
            out.entry(t.to_owned()).or_default().insert(p);
        };
        match self {
            Work::Anonymize { tables } => {
                for t in tables {
                    add(&t.rows.table, Privilege::Update);
                }
            }
            Work::Delete {
                root: deletes_root,
                delete,
                nullify,
            } => {
                if *deletes_root {
                    add(root, Privilege::Delete);
                }
                for t in delete {
                    add(&t.table, Privilege::Delete);
                }
                for t in nullify {
                    add(&t.table, Privilege::Update);
                }
            }
            Work::Deactivate {
                set,
                insert,
                unlink,
                delete,
                cascade,
            } => {
                if !set.is_empty() {
                    add(root, Privilege::Update);
                }
                for i in insert {
                    add(&i.table, Privilege::Insert);
                }
                for t in unlink {
                    add(&t.table, Privilege::Update);
                }
                for t in delete {
                    add(&t.table, Privilege::Delete);
                }
                for c in cascade {
                    add(&c.table, Privilege::Update);
                }
            }
            Work::Rectify(spec) => {
                add(&spec.table, Privilege::Update);
                if !spec.set.is_empty() {
                    add(root, Privilege::Update);
                }
                for i in &spec.insert {
                    add(&i.table, Privilege::Insert);
                }
            }
        }
        out
    }
}

/// Records an earlier anonymize run marked (the entity's `anonymized`
/// marker): an anonymize plan leaves them out, with this reason.
pub fn already_anonymized(
    r: &Resolver<'_>,
    entity: &str,
    action: &Action,
) -> Result<Option<(Cond, String)>, Unknown> {
    let Action::Anonymize { .. } = action else {
        return Ok(None);
    };
    let e = r.entity(entity)?;
    let Some(m) = e.anonymized.as_ref().filter(|m| !m.set.is_empty()) else {
        return Ok(None);
    };
    let cond = Cond::And(
        m.set
            .iter()
            .map(|(k, v)| {
                let expr = Expr::Column(column_or_self(e, k));
                match json_value(v) {
                    Value::Null => Cond::IsNull {
                        expr,
                        negated: false,
                    },
                    value => Cond::Compare {
                        expr,
                        op: lethe_connector::CmpOp::Eq,
                        value,
                    },
                }
            })
            .collect(),
    );
    Ok(Some((cond, "anonymized by an earlier run".to_owned())))
}
