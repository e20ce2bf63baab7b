//! The CSV backend's data: tests write SQL to a shadow SQLite file, which
//! is then exported as a CSV folder (`examples/plugin-csv`'s format), so
//! one fixture serves every connector.

use std::collections::BTreeMap;
use std::path::Path;

use lethe_connector::{ColumnKind, Cond, Connector, OpenOptions, Select, TxMode, Value};
use lethe_plugin_csv::folder::{self, ForeignKeyLayout, TableData, TableLayout};
use sha2::{Digest, Sha256};

/// Exports every table of the SQLite file at `shadow` to `dir`.
pub async fn export(shadow: &Path, dir: &Path) {
    let mut conn = lethe_sqlite::SqliteConnector::open(&OpenOptions {
        url: format!("sqlite://{}", shadow.display()),
        timezone: None,
        read_only: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let schema = conn.introspect().await.unwrap();
    conn.begin(TxMode::ReadOnly).await.unwrap();
    let mut layout = BTreeMap::new();
    let mut tables = BTreeMap::new();
    for t in &schema.tables {
        let key = t.primary_key.first().cloned().unwrap_or_default();
        let kinds: Vec<ColumnKind> = t.columns.iter().map(|c| c.kind).collect();
        layout.insert(
            t.name.clone(),
            TableLayout {
                key,
                types: t
                    .columns
                    .iter()
                    .filter(|c| c.kind != ColumnKind::Text)
                    .map(|c| (c.name.clone(), folder::kind_name(c.kind).to_owned()))
                    .collect(),
                foreign_keys: t
                    .foreign_keys
                    .iter()
                    .filter(|f| f.columns.len() == 1)
                    .map(|f| ForeignKeyLayout {
                        column: f.columns[0].clone(),
                        references: f.references.clone(),
                    })
                    .collect(),
                unique: t.unique.clone(),
                // The fixtures hold empty texts as well as NULLs.
                null: "\\N".into(),
            },
        );
        let q = Select {
            table: t.name.clone(),
            columns: t.columns.iter().map(|c| c.name.clone()).collect(),
            flags: vec![],
            filter: Cond::True,
            order_by: t.primary_key.clone(),
            limit: None,
        };
        let mut rows: Vec<Vec<Value>> = Vec::new();
        conn.select(&q, &mut |r: Vec<Value>| {
            rows.push(r);
            Ok(())
        })
        .await
        .unwrap();
        tables.insert(
            t.name.clone(),
            TableData {
                columns: t.columns.iter().map(|c| c.name.clone()).collect(),
                kinds,
                rows,
                null: "\\N".into(),
            },
        );
    }
    conn.rollback().await.unwrap();
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    folder::create(dir, &layout, &tables).unwrap();
    std::fs::write(dir.join(".exported"), digest(dir)).unwrap();
}

/// The folder's content, hashed.
fn digest(dir: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "toml"))
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.file_name().unwrap().as_encoded_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    hex::encode(h.finalize())
}

/// Tests write SQL only before the plugin writes: after a run changed the
/// folder, the shadow no longer holds its data, and a second export would
/// silently undo the run.
pub fn assert_unchanged(dir: &Path) {
    let Ok(was) = std::fs::read_to_string(dir.join(".exported")) else {
        return;
    };
    assert_eq!(
        was,
        digest(dir),
        "the CSV folder changed since the harness wrote it: SQL after a run is not supported on the CSV backend"
    );
}
