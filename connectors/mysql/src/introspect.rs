//! Tables, columns, keys and indexes from `information_schema`, for the
//! connection's database.

use lethe_connector::{Column, ColumnKind, ForeignKey, Schema, Table};
use lethe_sql::{Catalog, ColumnType};
use sqlx::Row;
use sqlx::mysql::MySqlConnection;

/// The family of a column (`tinyint(1)` is MySQL's boolean).
fn kind(data_type: &str, column_type: &str) -> ColumnKind {
    match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") => ColumnKind::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            ColumnKind::Integer
        }
        "decimal" | "numeric" => ColumnKind::Decimal,
        "float" | "double" | "real" => ColumnKind::Float,
        "date" => ColumnKind::Date,
        "datetime" | "timestamp" => ColumnKind::Timestamp,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            ColumnKind::Text
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ColumnKind::Bytes
        }
        _ => ColumnKind::Other,
    }
}

pub async fn schema(conn: &mut MySqlConnection) -> sqlx::Result<(Schema, Catalog)> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR),
                CAST(LOWER(DATA_TYPE) AS CHAR), CAST(IS_NULLABLE AS CHAR),
                CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED)
         FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE()
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables: Vec<Table> = Vec::new();
    let mut catalog = Catalog::default();
    for r in rows {
        let table: String = r.try_get(0)?;
        let column: String = r.try_get(1)?;
        let column_type: String = r.try_get(2)?;
        let data_type: String = r.try_get(3)?;
        let nullable: String = r.try_get(4)?;
        let length: Option<i64> = r.try_get(5)?;
        let k = kind(&data_type, &column_type);
        catalog.insert(
            &table,
            &column,
            ColumnType {
                kind: k,
                name: data_type.clone(),
            },
        );
        if tables.last().is_none_or(|t| t.name != table) {
            tables.push(Table {
                name: table.clone(),
                ..Table::default()
            });
        }
        if let Some(t) = tables.last_mut() {
            t.columns.push(Column {
                name: column,
                data_type: column_type,
                kind: k,
                nullable: nullable == "YES",
                max_length: match k {
                    ColumnKind::Text => length.and_then(|l| u32::try_from(l).ok()),
                    _ => None,
                },
            });
        }
    }

    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR)
         FROM information_schema.STATISTICS
         WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 AND COLUMN_NAME IS NOT NULL
         ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut last: Option<(String, String)> = None;
    for r in rows {
        let table: String = r.try_get(0)?;
        let index: String = r.try_get(1)?;
        let column: String = r.try_get(2)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        if index == "PRIMARY" {
            t.primary_key.push(column);
        } else {
            let same = last.as_ref() == Some(&(table.clone(), index.clone()));
            match t.unique.last_mut() {
                Some(cols) if same => cols.push(column),
                _ => t.unique.push(vec![column]),
            }
        }
        last = Some((table, index));
    }

    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(CONSTRAINT_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR),
                CAST(REFERENCED_TABLE_NAME AS CHAR), CAST(REFERENCED_COLUMN_NAME AS CHAR)
         FROM information_schema.KEY_COLUMN_USAGE
         WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
         ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut last: Option<(String, String)> = None;
    for r in rows {
        let table: String = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let column: String = r.try_get(2)?;
        let references: String = r.try_get(3)?;
        let referenced: String = r.try_get(4)?;
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            continue;
        };
        let same = last.as_ref() == Some(&(table.clone(), name.clone()));
        match t.foreign_keys.last_mut() {
            Some(fk) if same => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced);
            }
            _ => t.foreign_keys.push(ForeignKey {
                columns: vec![column],
                references,
                referenced_columns: vec![referenced],
            }),
        }
        last = Some((table, name));
    }
    Ok((Schema { tables }, catalog))
}
