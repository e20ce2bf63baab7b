//! The entry points fuzzing drives (`fuzz/`), shared with the regression
//! test that replays every input fuzzing ever kept
//! (`runner/tests/fuzz_regressions.rs`): whatever the bytes, none of these
//! may panic.

use lethe_connector::{ConnectorError, OpenOptions, Request, Response, Select};

use crate::spec::source::SourceFile;
use crate::validate::Workspace;

/// The YAML loader and validator, on a job or a system model.
pub fn yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let file = SourceFile::new("fuzz.yaml", text);
    let _ = Workspace::default().load_source(&file);
}

/// The plan-file reader: parse, then check the id against the content.
pub fn plan_file(data: &[u8]) {
    if let Ok(mut plan) = serde_json::from_slice::<crate::plan::Plan>(data) {
        let _ = plan.verify();
    }
}

/// What crosses the plugin boundary as JSON, both ways.
pub fn plugin_json(data: &[u8]) {
    let _ = serde_json::from_slice::<Request>(data);
    let _ = serde_json::from_slice::<Response>(data);
    let _ = serde_json::from_slice::<ConnectorError>(data);
    let _ = serde_json::from_slice::<OpenOptions>(data);
    let _ = serde_json::from_slice::<Vec<lethe_connector::Value>>(data);
}

/// The condition compiler: any condition a request can carry, on every
/// dialect (errors are fine, panics are not).
pub fn condition(data: &[u8]) {
    let Ok(filter) = serde_json::from_slice::<lethe_connector::Cond>(data) else {
        return;
    };
    let q = Select {
        table: "customers".into(),
        columns: vec!["id".into()],
        flags: vec![filter.clone()],
        filter,
        order_by: vec!["id".into()],
        limit: Some(10),
    };
    let dialects: [&dyn lethe_sql::Dialect; 3] = [
        &lethe_sql::Sqlite { zoned: true },
        &lethe_sql::Postgres {
            catalog: lethe_sql::Catalog::default(),
            fold_collation: None,
        },
        &lethe_sql::Mysql {
            catalog: lethe_sql::Catalog::default(),
        },
    ];
    for d in dialects {
        let _ = lethe_sql::select(d, &q);
    }
}
