//! Tables, columns, keys and indexes from `pg_catalog`.
//!
//! The tables are those visible on the session's `search_path` (usually
//! `public`), ordinary, partitioned and foreign tables and views alike, so
//! a model may name a view the integrator granted instead of a table.

use lethe_connector::{Column, ColumnKind, ForeignKey, Schema, Table};
use lethe_sql::{Catalog, ColumnType};
use sqlx::Row;
use sqlx::postgres::PgConnection;

const TABLES: &str = "
    c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND pg_catalog.pg_table_is_visible(c.oid)
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// One row per column: table, column, declared type, cast name, base type
/// name, not null, declared length.
async fn columns(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(String, String, String, String, String, bool, Option<i32>)>> {
    let sql = format!(
        "SELECT c.relname::text, a.attname::text,
                pg_catalog.format_type(a.atttypid, a.atttypmod),
                quote_ident(tn.nspname) || '.' || quote_ident(t.typname),
                COALESCE(bt.typname, t.typname)::text,
                a.attnotnull,
                CASE WHEN COALESCE(bt.typname, t.typname) IN ('varchar', 'bpchar') AND a.atttypmod > 4
                     THEN a.atttypmod - 4 END
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
         LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
         WHERE {TABLES}
         ORDER BY c.relname, a.attnum"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ))
        })
        .collect()
}

/// The family of a base type.
fn kind(base: &str) -> ColumnKind {
    match base {
        "int2" | "int4" | "int8" | "oid" => ColumnKind::Integer,
        "float4" | "float8" => ColumnKind::Float,
        "numeric" | "money" => ColumnKind::Decimal,
        "bool" => ColumnKind::Boolean,
        "date" => ColumnKind::Date,
        "timestamp" | "timestamptz" => ColumnKind::Timestamp,
        "text" | "varchar" | "bpchar" | "name" | "citext" => ColumnKind::Text,
        "bytea" => ColumnKind::Bytes,
        _ => ColumnKind::Other,
    }
}

/// Every column's cast name and family, for the dialect.
pub async fn catalog(conn: &mut PgConnection) -> sqlx::Result<Catalog> {
    let mut c = Catalog::default();
    for (table, column, _, cast, base, _, _) in columns(conn).await? {
        c.insert(
            &table,
            &column,
            ColumnType {
                kind: kind(&base),
                name: cast,
            },
        );
    }
    Ok(c)
}

pub async fn schema(conn: &mut PgConnection) -> sqlx::Result<Schema> {
    let mut tables: Vec<Table> = Vec::new();
    for (table, column, declared, _, base, not_null, length) in columns(conn).await? {
        if tables.last().is_none_or(|t| t.name != table) {
            tables.push(Table {
                name: table.clone(),
                ..Table::default()
            });
        }
        if let Some(t) = tables.last_mut() {
            t.columns.push(Column {
                name: column,
                data_type: declared,
                kind: kind(&base),
                nullable: !not_null,
                max_length: length.and_then(|l| u32::try_from(l).ok()),
            });
        }
    }

    // Primary keys and unique indexes (plain columns only: an expression
    // index has a 0 in `indkey`).
    let sql = format!(
        "SELECT c.relname::text, i.indisprimary, i.indexrelid::int8, a.attname::text
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
         WHERE {TABLES} AND i.indisunique AND i.indpred IS NULL
           AND NOT (0 = ANY (i.indkey::int2[]))
         ORDER BY c.relname, i.indisprimary DESC, i.indexrelid, k.ord"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    let mut last: Option<(String, i64)> = None;
    for r in rows {
        let table: String = r.try_get(0)?;
        let primary: bool = r.try_get(1)?;
        let index: i64 = r.try_get(2)?;
        let column: String = r.try_get(3)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        if primary {
            t.primary_key.push(column);
        } else {
            let same = last.as_ref() == Some(&(table.clone(), index));
            match t.unique.last_mut() {
                Some(cols) if same => cols.push(column),
                _ => t.unique.push(vec![column]),
            }
        }
        last = Some((table, index));
    }

    let sql = format!(
        "SELECT c.relname::text, con.oid::int8, rt.relname::text, a.attname::text, ra.attname::text
         FROM pg_catalog.pg_constraint con
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_class rt ON rt.oid = con.confrelid
         CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, ref, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
         JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.ref
         WHERE {TABLES} AND con.contype = 'f'
         ORDER BY c.relname, con.oid, k.ord"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    let mut last: Option<i64> = None;
    for r in rows {
        let table: String = r.try_get(0)?;
        let id: i64 = r.try_get(1)?;
        let references: String = r.try_get(2)?;
        let column: String = r.try_get(3)?;
        let referenced: String = r.try_get(4)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        match t.foreign_keys.last_mut() {
            Some(fk) if last == Some(id) => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced);
            }
            _ => t.foreign_keys.push(ForeignKey {
                columns: vec![column],
                references,
                referenced_columns: vec![referenced],
            }),
        }
        last = Some(id);
    }
    Ok(Schema { tables })
}
