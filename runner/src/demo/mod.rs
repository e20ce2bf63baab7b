//! `lethe demo`: a retail system with a few thousand customers in a
//! temporary SQLite file, a job against it, and the walk from plan to apply.

mod data;

use std::path::{Path, PathBuf};

pub use data::{DemoSpec, DemoStats, generate};

/// The files of a demo.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    pub dir: PathBuf,
    pub database: PathBuf,
    pub job: PathBuf,
}

/// The demo's job: anonymize private customers who have bought nothing for
/// three years, at most 200 per run, two approvers.
pub fn job_text(database: &Path) -> String {
    format!(
        "# yaml-language-server: $schema=https://lethe.dev/schemas/job.schema.json
version: 1
name: demo-anonymize-lapsed
description: Anonymize private customers who have bought nothing in the last three years
owner: dpo@example.com
target:
  system: retail-crm
  connector: sqlite
  url: sqlite://{}
selection:
  entity: customer
  where:
    - field: kind
      eq: private
    - has: purchases
    - none: purchases
      where:
        - field: purchased_at
          after: -3y
  order_by: created_at
  cap: 200
action:
  type: anonymize
  categories: [identity, contact, notes]
approval:
  approvers: {{ min: 2, roles: [dpo, admin] }}
  reason: required
guards:
  - ignore_if: {{ has: loans, where: [{{ field: returned_at, is_null: true }}] }}
    reason: open equipment loan
safety:
  backup: required
  batch_size: 50
",
        database.display()
    )
}

/// Creates the demo database and job in `dir`.
pub async fn prepare(dir: &Path, spec: &DemoSpec) -> Result<(DemoFiles, DemoStats), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let database = dir.join("retail.db");
    if database.exists() {
        std::fs::remove_file(&database).map_err(|e| e.to_string())?;
    }
    let stats = generate(&database, spec).await?;
    let job = dir.join("demo-job.yaml");
    std::fs::write(&job, job_text(&database)).map_err(|e| e.to_string())?;
    Ok((
        DemoFiles {
            dir: dir.to_path_buf(),
            database,
            job,
        },
        stats,
    ))
}
