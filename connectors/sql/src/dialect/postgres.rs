//! PostgreSQL (12 or later).

use lethe_connector::{ColumnKind, Instant, Name, Normalization, ParamType, Statement, Value};

use super::{Dialect, TimeBinding, WHITESPACE};
use crate::{Builder, Catalog, Col};

/// PostgreSQL.
///
/// PostgreSQL types parameters strictly: a text parameter does not compare
/// with a `date` column. Parameters are bound as the basic types (`int8`,
/// `float8`, `bool`, `text`, `bytea`) and cast to the column's type where
/// the two differ, using the [`Catalog`] the connector built from
/// introspection. Values are read back as those basic types, other types
/// as their text form, which casts back losslessly (a restore writes
/// exactly what was read).
///
/// Times: the connection's `TimeZone` is the system's zone, so a
/// `timestamptz` compares with the UTC form of an instant and a `timestamp`
/// or `date` (wall-clock values) with the local form, each with its own type
/// and therefore its index.
#[derive(Debug, Clone, Default)]
pub struct Postgres {
    pub catalog: Catalog,
    /// A collation that lower-cases all of Unicode, when the server has one
    /// (`und-x-icu`); otherwise the column's own.
    pub fold_collation: Option<String>,
}

/// A bound value as a value of type `ty`. Text written to a wall-clock
/// column (`timestamp`, `date`) is read as an instant first, so a value
/// with a zone (`{{ now }}`, `2018-01-01T00:00:00Z`) lands as the wall-clock
/// time of the session's zone, the system's; one without a zone stays as
/// written.
fn typed(ty: &str, value: &Value, placeholder: &str) -> String {
    match (builtin(ty), value) {
        (Some("timestamp" | "date"), Value::Text(_)) => {
            format!("CAST(CAST({placeholder} AS timestamptz) AS {ty})")
        }
        _ => format!("CAST({placeholder} AS {ty})"),
    }
}

/// The name of a built-in type (`pg_catalog."timestamp"` → `timestamp`).
fn builtin(ty: &str) -> Option<&str> {
    ty.strip_prefix("pg_catalog.").map(|t| t.trim_matches('"'))
}

/// Values as the text of a PostgreSQL array (`{"a","b",NULL}`), which the
/// server casts to an array of the column's type: a list of any length is
/// one parameter, and a statement of one text, prepared once.
fn array_literal<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::from("{");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = match v {
            Value::Null => {
                out.push_str("NULL");
                continue;
            }
            Value::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("\\x{hex}")
            }
            other => other.render(),
        };
        out.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// The SQL of a text parameter (an [`array_literal`]) as an array of `ty`
/// (`{}` stands for the placeholder); text for wall-clock columns is read
/// as instants first, like [`typed`].
fn array_of(ty: &str) -> String {
    match builtin(ty) {
        Some("timestamp" | "date") => format!("CAST(CAST({{}} AS timestamptz[]) AS {ty}[])"),
        _ => format!("CAST({{}} AS {ty}[])"),
    }
}

/// Types a connector binds and decodes natively: no cast needed.
fn native(ty: &str, value: &Value) -> bool {
    let Some(base) = builtin(ty) else {
        return false;
    };
    match value {
        Value::Int(_) => matches!(base, "int2" | "int4" | "int8"),
        Value::Float(_) => base == "float8",
        Value::Bool(_) => base == "bool",
        Value::Text(_) => matches!(base, "text" | "varchar" | "bpchar" | "name"),
        Value::Bytes(_) => base == "bytea",
        Value::Null => false,
    }
}

/// [`WHITESPACE`] as an escape-string literal (`E'\u0009…'`), readable in
/// logs and independent of `standard_conforming_strings`.
fn whitespace_literal() -> String {
    let escaped: String = WHITESPACE
        .chars()
        .map(|c| format!("\\u{:04X}", u32::from(c)))
        .collect();
    format!("E'{escaped}'")
}

impl Postgres {
    fn cast(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        match col.and_then(|c| self.catalog.get(c)) {
            Some(t) if !native(&t.name, value) => typed(&t.name, value, placeholder),
            _ => placeholder.to_owned(),
        }
    }

    /// Whether a column holds wall-clock times (compared in local time).
    fn wall_clock(&self, col: Option<Col<'_>>) -> bool {
        col.and_then(|c| self.catalog.get(c))
            .is_some_and(|t| matches!(builtin(&t.name), Some("timestamp" | "date")))
    }
}

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn quote(&self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }

    fn max_params(&self) -> usize {
        u16::MAX as usize
    }

    fn compare_value(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        self.cast(col, value, placeholder)
    }

    fn write_value(&self, col: Option<Col<'_>>, value: &Value, placeholder: &str) -> String {
        self.cast(col, value, placeholder)
    }

    fn value_array(&self, col: Option<Col<'_>>, values: &[&Value]) -> Option<(Value, String)> {
        // Short lists stay lists: the planner sees their values.
        if values.len() < 8 {
            return None;
        }
        let ty = col.and_then(|c| self.catalog.get(c))?;
        Some((
            Value::Text(array_literal(values.iter().copied())),
            array_of(&ty.name),
        ))
    }

    fn typed_param(&self, ty: ParamType, placeholder: &str) -> String {
        match ty {
            ParamType::Date => format!("CAST({placeholder} AS date)"),
            ParamType::Datetime => format!("CAST({placeholder} AS timestamp)"),
            ParamType::Decimal => format!("CAST({placeholder} AS numeric)"),
            ParamType::Int | ParamType::String | ParamType::Bool => placeholder.to_owned(),
        }
    }

    fn output(&self, col: Col<'_>, sql: &str) -> String {
        match self.catalog.get(col) {
            Some(t)
                if matches!(
                    builtin(&t.name).unwrap_or_default(),
                    "int2"
                        | "int4"
                        | "int8"
                        | "float4"
                        | "float8"
                        | "bool"
                        | "text"
                        | "varchar"
                        | "bpchar"
                        | "name"
                        | "bytea"
                ) =>
            {
                sql.to_owned()
            }
            _ => format!("CAST({sql} AS text)"),
        }
    }

    fn contains(&self, haystack: &str, needle: &str) -> String {
        format!("(strpos(CAST({haystack} AS text), {needle}) > 0)")
    }

    fn time_of(&self, col: Option<Col<'_>>, sql: &str) -> String {
        match self.catalog.kind(col) {
            Some(ColumnKind::Date | ColumnKind::Timestamp) => sql.to_owned(),
            // Times stored as text: read as the engine reads a literal
            // (without a zone: in the connection's zone, the system's).
            _ => format!("CAST({sql} AS timestamptz)"),
        }
    }

    fn time_param(&self, col: Option<Col<'_>>, placeholder: &str) -> String {
        if self.wall_clock(col) {
            format!("CAST({placeholder} AS timestamp)")
        } else {
            format!("CAST({placeholder} AS timestamptz)")
        }
    }

    fn time_binding(&self, _at: &Instant, col: Option<Col<'_>>) -> TimeBinding {
        if self.wall_clock(col) {
            TimeBinding::Local
        } else {
            TimeBinding::Utc
        }
    }

    fn aggregate_time_binding(&self, col: Option<Col<'_>>) -> TimeBinding {
        self.time_binding(
            &Instant {
                utc: String::new(),
                local: String::new(),
            },
            col,
        )
    }

    fn normalized(&self, sql: &str, form: Normalization) -> String {
        match form {
            Normalization::Folded => {
                let trimmed = format!("btrim(CAST({sql} AS text), {})", whitespace_literal());
                let collated = match &self.fold_collation {
                    Some(c) => format!("{trimmed} COLLATE {}", self.quote(c)),
                    None => trimmed,
                };
                format!("NULLIF(lower({collated}), '')")
            }
            Normalization::Digits => {
                format!("NULLIF(regexp_replace(CAST({sql} AS text), '[^0-9]', '', 'g'), '')")
            }
        }
    }

    fn order_item(&self, col: Option<Col<'_>>, sql: &str) -> String {
        match self.catalog.kind(col) {
            Some(ColumnKind::Text) => format!("{sql} COLLATE \"C\" ASC NULLS LAST"),
            _ => format!("{sql} ASC NULLS LAST"),
        }
    }

    fn update_rows(
        &self,
        table: &Name,
        key: &Name,
        columns: &[Name],
        rows: &[Vec<Value>],
    ) -> Statement {
        // UPDATE t AS t0 SET c = v.c0 FROM unnest($1, $2, …) AS v(k, c0, …)
        // WHERE t0.key = v.k: one array per column, so the statement has
        // as many parameters as columns and is the same for every batch.
        let names: Vec<&str> = std::iter::once(key.as_str())
            .chain(columns.iter().map(String::as_str))
            .collect();
        let types: Option<Vec<&str>> = names
            .iter()
            .map(|c| {
                self.catalog
                    .get(Col { table, column: c })
                    .map(|t| t.name.as_str())
            })
            .collect();
        let Some(types) = types else {
            return self.update_values(table, key, columns, rows);
        };
        let mut b = Builder::new(self);
        update_head(&mut b, table, columns);
        b.push(" FROM unnest(");
        for (i, ty) in types.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            let p = b.next_placeholder();
            let array = array_literal(rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null)));
            b.push_param(Value::Text(array), &array_of(ty).replace("{}", &p));
        }
        update_tail(&mut b, key, columns);
        b.finish()
    }
}

impl Postgres {
    /// `UPDATE … FROM (VALUES …)`, for columns whose types the catalog
    /// does not know.
    fn update_values(
        &self,
        table: &Name,
        key: &Name,
        columns: &[Name],
        rows: &[Vec<Value>],
    ) -> Statement {
        // UPDATE t AS t0 SET c = v.c0 FROM (VALUES (…), …) AS v(k, c0) WHERE
        // t0.key = v.k: every cell cast to its column's type, so each
        // VALUES column has one type whatever the first row holds.
        let mut b = Builder::new(self);
        update_head(&mut b, table, columns);
        b.push(" FROM (VALUES ");
        let names: Vec<&str> = std::iter::once(key.as_str())
            .chain(columns.iter().map(String::as_str))
            .collect();
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                b.push(", ");
            }
            b.push("(");
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                let col = names.get(i).map(|c| Col { table, column: c });
                // A NULL, or a value of another type than its column, is
                // cast; the first row is cast whole so the VALUES list is
                // typed by the columns, not by what the first row holds.
                let p = b.next_placeholder();
                let sql = match col.and_then(|c| self.catalog.get(c)) {
                    Some(t) if r == 0 || !native(&t.name, v) => typed(&t.name, v, &p),
                    _ => p,
                };
                b.push_param(v.clone(), &sql);
            }
            b.push(")");
        }
        update_tail(&mut b, key, columns);
        b.finish()
    }
}

/// `UPDATE t AS t0 SET c = v."c0", …`: what both forms of a per-row update
/// start with (the values come as `v("k", "c0", …)`).
fn update_head(b: &mut Builder<'_>, table: &Name, columns: &[Name]) {
    b.push("UPDATE ");
    b.name(table);
    b.push(" AS t0 SET ");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.name(c);
        b.push(&format!(" = v.\"c{i}\""));
    }
}

/// `) AS v("k", "c0", …) WHERE t0.key = v."k"`: what both forms end with.
fn update_tail(b: &mut Builder<'_>, key: &Name, columns: &[Name]) {
    b.push(") AS v(\"k\"");
    for i in 0..columns.len() {
        b.push(&format!(", \"c{i}\""));
    }
    b.push(") WHERE t0.");
    b.name(key);
    b.push(" = v.\"k\"");
}
