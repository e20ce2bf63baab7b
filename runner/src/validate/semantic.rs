//! The second layer: what a schema cannot know.
//!
//! A job is checked against its system model (entities, fields, relations,
//! criteria, checks, categories, what the entity can do), and a model against
//! itself (relations point at entities, deletion does not go round in a
//! circle, strategies fit their fields, criteria use only their parameters).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::suggest;
use super::{JobFile, ModelFile, item_pointer};
use crate::diag::{Diagnostic, Location};
use crate::spec::condition::{Aggregate, Condition, Operand, Test};
use crate::spec::job::{Action, ApprovalMode, Confirmation, ConnectorRef, Guard, Scope};
use crate::spec::model::{
    Category, Entity, Field, FieldType, OnDelete, ParamType, RelationRole, SystemModel,
};
use crate::spec::source::{SourceFile, SpanMap, pointer_push};
use crate::spec::time::DateValue;
use crate::spec::yaml::YamlDoc;

/// Collects diagnostics for one document.
struct Out<'a> {
    file: &'a Arc<SourceFile>,
    spans: &'a SpanMap,
    value: &'a Value,
    list: Vec<Diagnostic>,
}

impl<'a> Out<'a> {
    fn new(doc: &'a YamlDoc) -> Self {
        Self {
            file: &doc.file,
            spans: &doc.spans,
            value: &doc.value,
            list: Vec::new(),
        }
    }

    /// An error at the value of `pointer`.
    fn at(
        &mut self,
        pointer: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::error(code, message).at(self.file, self.spans.value(pointer));
        self.list.push(d);
        self.list.last_mut().expect("just pushed")
    }
}

/// Sets help on a diagnostic when there is some.
fn help(d: &mut Diagnostic, h: Option<String>) {
    if h.is_some() {
        d.help = h;
    }
}

/// A field of an entity as conditions see it: a declared field, or the key.
enum FieldRef<'m> {
    Declared(&'m Field),
    Key,
}

impl FieldRef<'_> {
    fn kind(&self) -> Option<FieldType> {
        match self {
            FieldRef::Declared(f) => f.kind,
            FieldRef::Key => None,
        }
    }
}

fn field<'m>(e: &'m Entity, name: &str) -> Option<FieldRef<'m>> {
    if let Some(f) = e.fields.get(name) {
        return Some(FieldRef::Declared(f));
    }
    (name == e.key).then_some(FieldRef::Key)
}

fn field_names(e: &Entity) -> Vec<&str> {
    let mut v: Vec<&str> = e.fields.keys().map(String::as_str).collect();
    if !e.fields.contains_key(&e.key) {
        v.push(&e.key);
    }
    v
}

/// Entities a record owns: reached through relations with `on_delete: delete`.
pub(crate) fn owned<'m>(model: &'m SystemModel, entity: &str) -> Vec<&'m str> {
    let mut seen: Vec<&str> = Vec::new();
    let mut stack: Vec<&str> = vec![entity];
    while let Some(e) = stack.pop() {
        let Some(ent) = model.entities.get(e) else {
            continue;
        };
        for r in ent.relations.values() {
            if r.on_delete == OnDelete::Delete
                && r.entity != entity
                && !seen.contains(&r.entity.as_str())
                && let Some((name, _)) = model.entities.get_key_value(&r.entity)
            {
                seen.push(name);
                stack.push(name);
            }
        }
    }
    seen
}

/// Every category and each of its dotted prefixes, for suggestions.
fn category_prefixes<'m>(fields: impl Iterator<Item = &'m Field>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in fields {
        if let Some(c) = &f.category {
            let mut acc = String::new();
            for seg in c.0.split('.') {
                if !acc.is_empty() {
                    acc.push('.');
                }
                acc.push_str(seg);
                out.insert(acc.clone());
            }
        }
    }
    out
}

// ---------------------------------------------------------------- conditions

struct CondCx<'m> {
    model: &'m SystemModel,
}

impl CondCx<'_> {
    fn list(&self, out: &mut Out<'_>, entity: &str, conds: &[Condition], base: &str) {
        for (i, c) in conds.iter().enumerate() {
            let p = item_pointer(out.value, base, i);
            self.one(out, entity, c, &p);
        }
    }

    fn one(&self, out: &mut Out<'_>, entity_name: &str, c: &Condition, p: &str) {
        let Some(entity) = self.model.entities.get(entity_name) else {
            return;
        };
        match c {
            Condition::All(items) => self.list(out, entity_name, items, p),
            Condition::Any(items) => {
                for (i, c) in items.iter().enumerate() {
                    self.one(out, entity_name, c, &format!("{p}/any/{i}"));
                }
            }
            Condition::Not(inner) => self.one(out, entity_name, inner, &format!("{p}/not")),
            Condition::Field { field: name, test } => match field(entity, name) {
                None => {
                    let d = out.at(
                        &format!("{p}/field"),
                        "unknown-field",
                        format!("`{entity_name}` has no field `{name}`"),
                    );
                    help(
                        d,
                        suggest::help(name, field_names(entity), "its fields are"),
                    );
                }
                Some(f) => {
                    self.test_fits(out, &format!("{p}/{}", test.key()), name, f.kind(), test)
                }
            },
            Condition::Related {
                relation,
                negated,
                filter,
            } => {
                let head = if *negated { "none" } else { "has" };
                match entity.relations.get(relation) {
                    None => {
                        let d = out.at(
                            &format!("{p}/{head}"),
                            "unknown-relation",
                            format!("`{entity_name}` has no relation `{relation}`"),
                        );
                        help(
                            d,
                            suggest::help(
                                relation,
                                entity.relations.keys().map(String::as_str),
                                "its relations are",
                            ),
                        );
                    }
                    Some(r) => self.list(out, &r.entity, filter, &format!("{p}/where")),
                }
            }
            Condition::Aggregate {
                func,
                relation,
                field: fname,
                test,
            } => {
                let at = format!("{p}/{}", func.key());
                let Some(r) = entity.relations.get(relation) else {
                    let d = out.at(
                        &at,
                        "unknown-relation",
                        format!("`{entity_name}` has no relation `{relation}`"),
                    );
                    help(
                        d,
                        suggest::help(
                            relation,
                            entity.relations.keys().map(String::as_str),
                            "its relations are",
                        ),
                    );
                    return;
                };
                let Some(fname) = fname else { return };
                let Some(related) = self.model.entities.get(&r.entity) else {
                    return;
                };
                match field(related, fname) {
                    None => {
                        let d = out.at(
                            &at,
                            "unknown-field",
                            format!(
                                "`{}` (the rows of `{relation}`) has no field `{fname}`",
                                r.entity
                            ),
                        );
                        help(
                            d,
                            suggest::help(fname, field_names(related), "its fields are"),
                        );
                    }
                    Some(f) => {
                        if *func == Aggregate::Sum
                            && matches!(f.kind(), Some(k) if !matches!(k, FieldType::Integer | FieldType::Decimal))
                        {
                            out.at(
                                &at,
                                "aggregate-type",
                                format!(
                                    "`sum` adds numbers, but `{fname}` is a {} field",
                                    f.kind().map_or("", FieldType::as_str)
                                ),
                            );
                        }
                        let kind = if *func == Aggregate::Count {
                            Some(FieldType::Integer)
                        } else {
                            f.kind()
                        };
                        self.test_fits(out, &format!("{p}/{}", test.key()), fname, kind, test);
                    }
                }
            }
            Condition::Criterion { name, params } => {
                let at = format!("{p}/criterion");
                let Some(cr) = self.model.criteria.get(name) else {
                    let d = out.at(
                        &at,
                        "unknown-criterion",
                        format!("the system model has no criterion `{name}`"),
                    );
                    help(
                        d,
                        suggest::help(
                            name,
                            self.model.criteria.keys().map(String::as_str),
                            "its criteria are",
                        ),
                    );
                    return;
                };
                if cr.entity != entity_name {
                    out.at(
                        &at,
                        "criterion-entity",
                        format!(
                            "the criterion `{name}` selects `{}`, not `{entity_name}`",
                            cr.entity
                        ),
                    );
                }
                for (k, v) in params {
                    let pp = format!("{p}/params/{k}");
                    match cr.params.get(k) {
                        None => {
                            let mut d = Diagnostic::error(
                                "unknown-param",
                                format!("the criterion `{name}` has no parameter `{k}`"),
                            )
                            .at(out.file, out.spans.key_or_value(&pp));
                            help(
                                &mut d,
                                suggest::help(
                                    k,
                                    cr.params.keys().map(String::as_str),
                                    "its parameters are",
                                ),
                            );
                            out.list.push(d);
                        }
                        Some(t) => {
                            if let Err(why) = check_param(*t, v) {
                                out.at(
                                    &pp,
                                    "param-type",
                                    format!("parameter `{k}` is a {}: {why}", t.as_str()),
                                );
                            }
                        }
                    }
                }
                for k in cr.params.keys().filter(|k| !params.contains_key(*k)) {
                    out.at(
                        &at,
                        "missing-param",
                        format!("the criterion `{name}` needs the parameter `{k}`"),
                    )
                    .help = Some(format!("add `params: {{ {k}: ... }}`"));
                }
            }
        }
    }

    /// Whether an operator suits the field's type, when the model gives one.
    fn test_fits(
        &self,
        out: &mut Out<'_>,
        at: &str,
        name: &str,
        kind: Option<FieldType>,
        test: &Test,
    ) {
        let Some(kind) = kind else { return };
        let is_time = matches!(kind, FieldType::Date | FieldType::Datetime);
        let dated = !test.dates().is_empty();
        let numeric = matches!(
            test,
            Test::Lt(Operand::Int(_) | Operand::Float(_))
                | Test::Lte(Operand::Int(_) | Operand::Float(_))
                | Test::Gt(Operand::Int(_) | Operand::Float(_))
                | Test::Gte(Operand::Int(_) | Operand::Float(_))
                | Test::Between(Operand::Int(_) | Operand::Float(_), _)
        );
        if dated && !is_time {
            out.at(
                at,
                "operator-type",
                format!(
                    "`{}` compares dates, but `{name}` is a {} field",
                    test.key(),
                    kind.as_str()
                ),
            );
        } else if numeric && !matches!(kind, FieldType::Integer | FieldType::Decimal) {
            out.at(
                at,
                "operator-type",
                format!(
                    "`{}` compares numbers, but `{name}` is a {} field",
                    test.key(),
                    kind.as_str()
                ),
            );
        } else if matches!(test, Test::Contains(_)) && kind != FieldType::String {
            out.at(
                at,
                "operator-type",
                format!(
                    "`contains` searches text, but `{name}` is a {} field",
                    kind.as_str()
                ),
            );
        }
    }
}

fn check_param(t: ParamType, v: &Value) -> Result<(), String> {
    match t {
        ParamType::Date | ParamType::Datetime => {
            let s = v
                .as_str()
                .ok_or("expected a date such as 2017-12-31 or -1y")?;
            let d: DateValue = s.parse().map_err(|e: crate::spec::time::DateError| e.why)?;
            if t == ParamType::Date && matches!(d, DateValue::Instant(_) | DateValue::Local(_)) {
                return Err(
                    "expected a calendar day (2017-12-31) or a period (-1y), not a time".into(),
                );
            }
            Ok(())
        }
        ParamType::Int => v
            .as_i64()
            .map(|_| ())
            .ok_or_else(|| "expected a whole number".into()),
        ParamType::Decimal => {
            if v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()) {
                Ok(())
            } else {
                Err("expected a number".into())
            }
        }
        ParamType::String => v.as_str().map(|_| ()).ok_or_else(|| "expected text".into()),
        ParamType::Bool => v
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "expected true or false".into()),
    }
}

// -------------------------------------------------------------------- models

/// Checks a system model on its own.
pub fn check_model(m: &ModelFile) -> Vec<Diagnostic> {
    let mut out = Out::new(&m.doc);
    let model = &m.model;
    let cx = CondCx { model };
    if let Some(tz) = &model.timezone
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        out.at(
            "/timezone",
            "unknown-timezone",
            format!("`{tz}` is not a time zone"),
        )
        .help = Some("use an IANA name such as Europe/Stockholm or America/Sao_Paulo".into());
    }
    let entity_names: Vec<&str> = model.entities.keys().map(String::as_str).collect();
    let unknown_entity = |out: &mut Out<'_>, at: &str, name: &str| {
        let d = out.at(
            at,
            "unknown-entity",
            format!("the model has no entity `{name}`"),
        );
        help(
            d,
            suggest::help(name, entity_names.iter().copied(), "its entities are"),
        );
    };
    for (ename, e) in &model.entities {
        let ep = pointer_push("/entities", ename);
        for (fname, f) in &e.fields {
            let fp = pointer_push(&pointer_push(&ep, "fields"), fname);
            if let (Some(s), Some(k)) = (f.strategy, f.kind)
                && !s.fits(k)
            {
                out.at(
                    &format!("{fp}/strategy"),
                    "strategy-type",
                    format!("`{s}` cannot write a {} field", k.as_str()),
                )
                .help = Some(strategy_help(k));
            }
            if let Some(s) = f.strategy
                && f.unique
                && !s.keeps_unique()
            {
                out.at(
                    &format!("{fp}/strategy"),
                    "strategy-unique",
                    format!("`{s}` can give two records the same value, but `{fname}` is unique"),
                )
                .help = Some("use `hash`, `hash-email`, `null` or `keep` on a unique field".into());
            }
        }
        for (rname, r) in &e.relations {
            let rp = pointer_push(&pointer_push(&ep, "relations"), rname);
            if !model.entities.contains_key(&r.entity) {
                unknown_entity(&mut out, &format!("{rp}/entity"), &r.entity);
            }
        }
        if let Some(d) = &e.deactivate {
            let dp = format!("{ep}/deactivate");
            for (i, c) in d.cascade.iter().enumerate() {
                let cp = format!("{dp}/cascade/{i}");
                match model.entities.get(&c.entity) {
                    None => unknown_entity(&mut out, &format!("{cp}/entity"), &c.entity),
                    Some(parent) => {
                        if !parent.relations.values().any(|r| r.entity == *ename) {
                            out.at(
                                &format!("{cp}/entity"),
                                "cascade-relation",
                                format!("`{}` has no relation to `{ename}`, so a cascade cannot reach it", c.entity),
                            )
                            .help = Some(format!("add a relation to `{ename}` under `{}`", c.entity));
                        }
                        cx.list(&mut out, &c.entity, &c.when.0, &format!("{cp}/when"));
                    }
                }
            }
            for (i, ins) in d.insert.iter().enumerate() {
                if !model.entities.contains_key(&ins.entity) {
                    unknown_entity(&mut out, &format!("{dp}/insert/{i}/entity"), &ins.entity);
                }
            }
        }
        if let Some(rd) = &e.rectifies {
            let rp = format!("{ep}/rectifies");
            match model.entities.get(&rd.entity) {
                None => unknown_entity(&mut out, &format!("{rp}/entity"), &rd.entity),
                Some(target) => {
                    for (from, to) in &rd.fields {
                        let fp = pointer_push(&format!("{rp}/fields"), from);
                        if !e.fields.contains_key(from) {
                            let d = out.at(
                                &fp,
                                "unknown-field",
                                format!(
                                    "`{ename}` has no field `{from}` to take a requested value from"
                                ),
                            );
                            help(d, suggest::help(from, field_names(e), "its fields are"));
                        }
                        if !target.fields.contains_key(to) {
                            let d = out.at(
                                &fp,
                                "unknown-field",
                                format!(
                                    "`{}` has no field `{to}` for a request to change",
                                    rd.entity
                                ),
                            );
                            help(d, suggest::help(to, field_names(target), "its fields are"));
                        } else if let (Some(a), Some(b)) = (
                            e.fields.get(from).and_then(|f| f.kind),
                            target.fields.get(to).and_then(|f| f.kind),
                        ) && a != b
                        {
                            out.at(
                                &fp,
                                "rectify-type",
                                format!(
                                    "`{ename}.{from}` holds a {} but `{}.{to}` a {}",
                                    a.as_str(),
                                    rd.entity,
                                    b.as_str()
                                ),
                            )
                            .help = Some("a request's field must hold the same kind of value as the field it changes".into());
                        }
                    }
                    if rd.set.is_empty() {
                        out.at(
                            &format!("{rp}/set"),
                            "rectify-set",
                            format!("`{ename}` rectifies but sets nothing on an applied request, so every run would apply it again"),
                        )
                        .help = Some("mark applied requests, for example `set: { status: applied }`, and select only unmarked ones".into());
                    }
                    if rd.fields.is_empty() {
                        out.at(
                            &format!("{rp}/fields"),
                            "rectify-fields",
                            format!(
                                "`{ename}` rectifies `{}` but names no field to change",
                                rd.entity
                            ),
                        );
                    }
                }
            }
            for (i, ins) in rd.insert.iter().enumerate() {
                if !model.entities.contains_key(&ins.entity) {
                    unknown_entity(&mut out, &format!("{rp}/insert/{i}/entity"), &ins.entity);
                }
            }
        }
        if let Some(m) = &e.anonymized {
            for k in m.set.keys() {
                if !e.fields.contains_key(k) {
                    let d = out.at(
                        &format!("{}/{}", pointer_push(&format!("{ep}/anonymized"), "set"), k),
                        "unknown-field",
                        format!("`{ename}` has no field `{k}` to mark anonymized records with"),
                    );
                    help(d, suggest::help(k, field_names(e), "its fields are"));
                }
            }
        }
        if let Some(st) = &e.stations {
            let sp = format!("{ep}/stations");
            match e.relations.get(&st.relation) {
                None => {
                    let d = out.at(
                        &format!("{sp}/relation"),
                        "unknown-relation",
                        format!("`{ename}` has no relation `{}`", st.relation),
                    );
                    help(
                        d,
                        suggest::help(
                            &st.relation,
                            e.relations.keys().map(String::as_str),
                            "its relations are",
                        ),
                    );
                }
                Some(r) => {
                    if let Some(re) = model.entities.get(&r.entity) {
                        if field(re, &st.name).is_none() {
                            let d = out.at(
                                &format!("{sp}/name"),
                                "unknown-field",
                                format!("`{}` has no field `{}`", r.entity, st.name),
                            );
                            help(
                                d,
                                suggest::help(&st.name, field_names(re), "its fields are"),
                            );
                        }
                        cx.list(&mut out, &r.entity, &st.filter.0, &format!("{sp}/where"));
                    }
                }
            }
        }
    }
    delete_cycles(&mut out, model);
    for (cname, c) in &model.criteria {
        let cp = pointer_push("/criteria", cname);
        if !model.entities.contains_key(&c.entity) {
            unknown_entity(&mut out, &format!("{cp}/entity"), &c.entity);
        }
        match template_params(&c.sql) {
            Err(e) => {
                out.at(
                    &format!("{cp}/sql"),
                    "criterion-template",
                    format!("the template does not parse: {e}"),
                );
            }
            Ok(used) => {
                for u in used.iter().filter(|u| !c.params.contains_key(*u)) {
                    let d = out.at(
                        &format!("{cp}/sql"),
                        "unknown-param",
                        format!("the template uses `param(\"{u}\")`, but `{cname}` declares no parameter `{u}`"),
                    );
                    help(
                        d,
                        suggest::help(u, c.params.keys().map(String::as_str), "its parameters are"),
                    );
                }
            }
        }
    }
    for (i, h) in model.holds.iter().enumerate() {
        let hp = format!("/holds/{i}");
        if model.entities.contains_key(&h.entity) {
            cx.list(
                &mut out,
                &h.entity,
                &h.ignore_if.0,
                &format!("{hp}/ignore_if"),
            );
        } else {
            unknown_entity(&mut out, &format!("{hp}/entity"), &h.entity);
        }
    }
    out.list
}

fn strategy_help(k: FieldType) -> String {
    match k {
        FieldType::Date | FieldType::Datetime => {
            "a date field takes `truncate-year`, `truncate-month`, `null` or `keep`".into()
        }
        FieldType::String => {
            "a text field takes any strategy but `truncate-year` and `truncate-month`".into()
        }
        _ => "a field of this type takes `null` or `keep`".into(),
    }
}

/// Reports relation cycles along `on_delete: delete`: deleting would never end.
fn delete_cycles(out: &mut Out<'_>, model: &SystemModel) {
    let mut reported: HashSet<Vec<String>> = HashSet::new();
    for start in model.entities.keys() {
        // Depth-first search with the current path.
        let mut stack: Vec<(String, Vec<(String, String)>)> = vec![(start.clone(), Vec::new())];
        while let Some((at, path)) = stack.pop() {
            let Some(e) = model.entities.get(&at) else {
                continue;
            };
            for (rname, r) in &e.relations {
                if r.on_delete != OnDelete::Delete {
                    continue;
                }
                let mut next = path.clone();
                next.push((at.clone(), rname.clone()));
                if r.entity == *start {
                    let mut key: Vec<String> = next.iter().map(|(e, _)| e.clone()).collect();
                    key.sort();
                    if reported.insert(key) {
                        let chain: Vec<String> = next
                            .iter()
                            .map(|(e, _)| e.clone())
                            .chain(std::iter::once(start.clone()))
                            .collect();
                        let (last_e, last_r) = next.last().cloned().unwrap_or_default();
                        let p = pointer_push(
                            &pointer_push(&pointer_push("/entities", &last_e), "relations"),
                            &last_r,
                        );
                        out.at(
                            &format!("{p}/on_delete"),
                            "delete-cycle",
                            format!("deleting goes round in a circle: {}", chain.join(" → ")),
                        )
                        .help = Some(
                            "one relation of the circle must not be `on_delete: delete`".into(),
                        );
                    }
                } else if !path.iter().any(|(e, _)| *e == r.entity) && next.len() < 32 {
                    stack.push((r.entity.clone(), next));
                }
            }
        }
    }
}

/// The parameters a criterion template uses; renders it with a recording
/// `param` function so that template logic is taken into account.
pub(crate) fn template_params(sql: &str) -> Result<BTreeSet<String>, String> {
    use std::sync::Mutex;
    let used = Arc::new(Mutex::new(BTreeSet::new()));
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let record = used.clone();
    env.add_function("param", move |name: String| -> String {
        if let Ok(mut u) = record.lock() {
            u.insert(name);
        }
        "?".to_owned()
    });
    let ctx = minijinja::context! { key => "t.id", table => "t", now => "?" };
    env.render_str(sql, ctx).map_err(|e| {
        let mut s = e.kind().to_string();
        if let Some(d) = e.detail() {
            s = format!("{s}: {d}");
        }
        s
    })?;
    let set = used.lock().map(|u| u.clone()).unwrap_or_default();
    Ok(set)
}

// ---------------------------------------------------------------------- jobs

/// Checks a job against its system model.
pub fn check_job(j: &JobFile) -> Vec<Diagnostic> {
    let mut out = Out::new(&j.doc);
    let job = &j.job;
    let model = &j.model.model;
    let model_note = |what: &str, pointer: &str| -> Option<(Location, String)> {
        let span = j.model.doc.spans.key_or_value(pointer)?;
        Some((
            Location {
                file: j.model.doc.file.clone(),
                span,
            },
            what.to_owned(),
        ))
    };
    check_connector(&mut out, j);

    let ename = job.selection.entity.as_str();
    let Some(entity) = model.entities.get(ename) else {
        let d = out.at(
            "/selection/entity",
            "unknown-entity",
            format!("the system model `{}` has no entity `{ename}`", model.name),
        );
        help(
            d,
            suggest::help(
                ename,
                model.entities.keys().map(String::as_str),
                "its entities are",
            ),
        );
        return out.list;
    };
    let entity_pointer = pointer_push("/entities", ename);
    let cx = CondCx { model };
    cx.list(&mut out, ename, &job.selection.filter.0, "/selection/where");
    if let Some(ob) = &job.selection.order_by
        && field(entity, ob).is_none()
    {
        let d = out.at(
            "/selection/order_by",
            "unknown-field",
            format!("`{ename}` has no field `{ob}`"),
        );
        help(d, suggest::help(ob, field_names(entity), "its fields are"));
    }

    match &job.action {
        Action::Anonymize { categories, fields } => {
            let mut scope: Vec<(&str, &str, &Field)> = entity
                .fields
                .iter()
                .map(|(n, f)| (ename, n.as_str(), f))
                .collect();
            for o in owned(model, ename) {
                if let Some(oe) = model.entities.get(o) {
                    scope.extend(oe.fields.iter().map(|(n, f)| (o, n.as_str(), f)));
                }
            }
            check_categories(
                &mut out,
                categories.as_deref(),
                scope.iter().map(|(_, _, f)| *f),
                ename,
            );
            for (fname, s) in fields {
                let fp = pointer_push("/action/fields", fname);
                match entity.fields.get(fname) {
                    None => {
                        let mut d = Diagnostic::error(
                            "unknown-field",
                            format!("`{ename}` has no field `{fname}`"),
                        )
                        .at(out.file, out.spans.key_or_value(&fp));
                        help(
                            &mut d,
                            suggest::help(
                                fname,
                                entity.fields.keys().map(String::as_str),
                                "its fields are",
                            ),
                        );
                        out.list.push(d);
                    }
                    Some(f) => {
                        if let Some(k) = f.kind
                            && !s.fits(k)
                        {
                            out.at(
                                &fp,
                                "strategy-type",
                                format!("`{s}` cannot write `{fname}`, a {} field", k.as_str()),
                            )
                            .help = Some(strategy_help(k));
                        }
                        if f.unique && !s.keeps_unique() {
                            out.at(&fp, "strategy-unique", format!("`{s}` can give two records the same value, but `{fname}` is unique"))
                                .help = Some("use `hash`, `hash-email`, `null` or `keep` on a unique field".into());
                        }
                    }
                }
            }
            // SPEC §6.11: a field the job would anonymize must have a strategy.
            for (e, fname, f) in &scope {
                let Some(cat) = &f.category else { continue };
                let selected = categories
                    .as_ref()
                    .is_none_or(|cs| cs.iter().any(|c| c.covers(cat)));
                let overridden = *e == ename && fields.contains_key(*fname);
                if selected && f.strategy.is_none() && !overridden {
                    let at = if categories.is_some() {
                        "/action/categories"
                    } else {
                        "/action/type"
                    };
                    let d = out.at(
                        at,
                        "missing-strategy",
                        format!("`{e}.{fname}` (category `{cat}`) would be anonymized, but has no strategy"),
                    );
                    d.help = Some(format!(
                        "give it a `strategy` in the system model, or add `{fname}: STRATEGY` under `action.fields`"
                    ));
                    let fp = pointer_push(
                        &pointer_push(&pointer_push("/entities", e), "fields"),
                        fname,
                    );
                    if let Some((loc, msg)) = model_note("the field is defined here", &fp) {
                        d.notes.push(crate::diag::Note {
                            location: loc,
                            message: msg,
                        });
                    }
                }
            }
        }
        Action::Delete { categories, scope } => {
            if categories.is_some() && scope.is_some() {
                out.at(
                    "/action/scope",
                    "delete-scope",
                    "`scope: all` deletes the whole record; it cannot be combined with `categories`",
                );
            }
            let owned_fields: Vec<&Field> = owned(model, ename)
                .into_iter()
                .filter_map(|o| model.entities.get(o))
                .flat_map(|e| e.fields.values())
                .collect();
            if categories.is_some() {
                check_categories(
                    &mut out,
                    categories.as_deref(),
                    owned_fields.into_iter(),
                    ename,
                );
            }
            if *scope == Some(Scope::All) && job.approval.mode == ApprovalMode::Auto {
                out.at(
                    "/approval/mode",
                    "auto-scope-all",
                    "`scope: all` wipes whole accounts and always needs a human approval; `mode: auto` is not allowed",
                )
                .help = Some("use `mode: manual` (the default)".into());
            }
        }
        Action::Deactivate {} | Action::KeepLogin {} => {
            let kind = job.action.kind().as_str();
            if entity.deactivate.is_none() {
                let d = out.at(
                    "/action/type",
                    "cannot-deactivate",
                    format!("`{ename}` has no `deactivate` definition in the system model, so it cannot `{kind}`"),
                );
                d.help = Some(format!(
                    "add `deactivate: {{ set: {{ status: inactive }} }}` to `{ename}` in the model"
                ));
                if let Some((loc, msg)) = model_note("the entity is defined here", &entity_pointer)
                {
                    d.notes.push(crate::diag::Note {
                        location: loc,
                        message: msg,
                    });
                }
            }
            if matches!(job.action, Action::KeepLogin {})
                && !entity
                    .relations
                    .values()
                    .any(|r| r.role == Some(RelationRole::Login))
            {
                out.at(
                    "/action/type",
                    "no-login-relation",
                    format!("`keep-login` keeps login rows, but `{ename}` has no relation with `role: login`"),
                )
                .help = Some("use `deactivate`, or mark the login relation with `role: login` in the model".into());
            }
        }
        Action::Rectify {} => {
            if entity.rectifies.is_none() {
                let d = out.at(
                    "/action/type",
                    "cannot-rectify",
                    format!("`{ename}` has no `rectifies` definition in the system model, so its records are not change requests to apply"),
                );
                d.help = Some(format!(
                    "select the change-request entity, or add `rectifies: {{ entity: …, foreign_key: …, fields: {{ …: … }}, set: {{ status: applied }} }}` to `{ename}` in the model"
                ));
                if let Some((loc, msg)) = model_note("the entity is defined here", &entity_pointer)
                {
                    d.notes.push(crate::diag::Note {
                        location: loc,
                        message: msg,
                    });
                }
            }
        }
    }

    for (i, g) in job.guards.iter().enumerate() {
        let gp = format!("/guards/{i}");
        match g {
            Guard::Ignore { ignore_if, .. } => {
                cx.list(&mut out, ename, &ignore_if.0, &format!("{gp}/ignore_if"))
            }
            Guard::Block { block_if, .. } => {
                if !model.checks.contains_key(block_if) {
                    let d = out.at(
                        &format!("{gp}/block_if"),
                        "unknown-check",
                        format!("the system model has no check `{block_if}`"),
                    );
                    help(
                        d,
                        suggest::help(
                            block_if,
                            model.checks.keys().map(String::as_str),
                            "its checks are",
                        ),
                    );
                }
            }
        }
    }

    for (i, c) in job.approval.confirmations.iter().enumerate() {
        let cp = format!("/approval/confirmations/{i}");
        match c {
            Confirmation::Stations(_) => {
                if entity.stations.is_none() {
                    out.at(
                        &cp,
                        "no-stations",
                        format!("`{ename}` declares no `stations` in the system model"),
                    );
                }
            }
            Confirmation::Typed { typed } => {
                if field(entity, &typed.field).is_none() {
                    let d = out.at(
                        &format!("{cp}/typed/field"),
                        "unknown-field",
                        format!("`{ename}` has no field `{}`", typed.field),
                    );
                    help(
                        d,
                        suggest::help(&typed.field, field_names(entity), "its fields are"),
                    );
                }
                if job.approval.mode == ApprovalMode::Auto {
                    out.at(
                        &cp,
                        "auto-typed",
                        "a typed confirmation needs a person, but `approval.mode` is `auto`",
                    );
                }
            }
        }
    }
    out.list
}

fn check_categories<'m>(
    out: &mut Out<'_>,
    categories: Option<&[Category]>,
    scope: impl Iterator<Item = &'m Field> + Clone,
    entity: &str,
) {
    let Some(categories) = categories else { return };
    let known = category_prefixes(scope.clone());
    for (i, c) in categories.iter().enumerate() {
        let covered = scope
            .clone()
            .any(|f| f.category.as_ref().is_some_and(|fc| c.covers(fc)));
        if !covered {
            let d = out.at(
                &format!("/action/categories/{i}"),
                "unknown-category",
                format!("no field of `{entity}` or the rows it owns is in category `{c}`"),
            );
            help(
                d,
                suggest::help(&c.0, known.iter().map(String::as_str), "its categories are"),
            );
        }
    }
}

/// A plugin that lacks what the job uses (named SQL criteria or checks)
/// is reported now rather than when someone plans.
fn check_capabilities(out: &mut Out<'_>, j: &JobFile, info: &lethe_connector::ConnectorInfo) {
    let Some((sql, checks)) = crate::plan::required_capabilities(j) else {
        return;
    };
    let mut missing = Vec::new();
    if sql && !info.capabilities.sql_criteria {
        missing.push("named SQL criteria");
    }
    if checks && !info.capabilities.sql_checks {
        missing.push("named SQL checks (`block_if`)");
    }
    if !missing.is_empty() {
        let d = out.at(
            "/target/connector",
            "unsupported-by-connector",
            format!(
                "the connector `{}` does not support {}, which this job uses",
                info.name,
                missing.join(" or ")
            ),
        );
        d.help = Some(
            "write the selection with fields and relations of the system model, which every connector supports".into(),
        );
    }
}

fn check_connector(out: &mut Out<'_>, j: &JobFile) {
    let t = &j.job.target;
    match &t.connector {
        ConnectorRef::Plugin(name) => {
            let base = j.path().parent().unwrap_or(std::path::Path::new("."));
            let loaded = crate::plugin::locate(name, Some(base)).and_then(|p| {
                if p.exists() {
                    crate::plugin::load(&p)
                } else {
                    Err(crate::plugin::PluginError::Load {
                        path: p,
                        message: "no such file".into(),
                    })
                }
            });
            match loaded {
                Ok(plugin) => check_capabilities(out, j, &plugin.info),
                Err(crate::plugin::PluginError::NotFound { searched, .. }) => {
                    let d = out.at(
                        "/target/connector",
                        "unknown-connector",
                        format!("no connector named `{name}`"),
                    );
                    d.help = Some(
                        match suggest::closest(name, ["sqlite", "postgres", "mysql"]) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!(
                                "built in are `sqlite`, `postgres` and `mysql`; plugins are found by path or in the folders of LETHE_PLUGIN_PATH (searched: {searched})"
                            ),
                        },
                    );
                }
                Err(e) => {
                    let d = out.at("/target/connector", "unknown-connector", e.to_string());
                    d.help = Some(if crate::plugin::is_path(name) {
                        "a plugin path is relative to the job file; `lethe connectors` lists the plugins lethe can load".into()
                    } else {
                        "`lethe connectors` lists the plugins lethe can load".into()
                    });
                }
            }
        }
        _ => {
            if t.url.is_none() {
                let mut d = Diagnostic::error(
                    "missing-url",
                    format!("`target.url` is needed to reach a {} database", t.connector),
                )
                .at(out.file, out.spans.key_or_value("/target"));
                d.help = Some("for example `url: ${MY_DB_URL}`, set in the environment".into());
                out.list.push(d);
            }
        }
    }
}
