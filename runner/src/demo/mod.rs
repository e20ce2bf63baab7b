//! `lethe demo`: a retail system with a few thousand customers in a
//! temporary SQLite file, a job against it, and the walk from plan to apply.

mod data;
pub mod isp;
pub mod portal;
pub mod pos;
pub mod salon;
pub mod server;

use std::path::{Path, PathBuf};

pub use data::{DemoSpec, DemoStats, Engine, generate, generate_on};

/// The files of a demo.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    pub dir: PathBuf,
    /// Where the demo system is: a SQLite file, or a server's database
    /// (shown without credentials).
    pub database: String,
    pub job: PathBuf,
}

/// The environment variable a server demo's job reads its URL from (the
/// URL may hold a password, which must not be written into a file).
pub const URL_VARIABLE: &str = "LETHE_DEMO_URL";

/// The demo's job: anonymize private customers who have bought nothing for
/// three years, at most 200 per run, two approvers.
pub fn job_text(database: &Path) -> String {
    job_text_for("sqlite", &format!("sqlite://{}", database.display()))
}

/// The demo's job against `connector` at `url` (written as given: pass
/// `${LETHE_DEMO_URL}` for a URL that holds credentials).
pub fn job_text_for(connector: &str, url: &str) -> String {
    format!(
        "# yaml-language-server: $schema=https://lethe.dev/schemas/job.schema.json
version: 1
name: demo-anonymize-lapsed
description: Anonymize private customers who have bought nothing in the last three years
owner: dpo@example.com
target:
  system: retail-crm
  connector: {connector}
  url: {url}
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
"
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
            database: crate::spec::source::display_path(&database),
            job,
        },
        stats,
    ))
}

/// Creates the demo system in the server database `url` names (created
/// when missing; refused when it holds other tables) and its job in `dir`.
pub async fn prepare_on(
    dir: &Path,
    engine: Engine,
    url: &str,
    spec: &DemoSpec,
) -> Result<(DemoFiles, DemoStats), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stats = server::prepare(engine, url, spec).await?;
    let connector = match engine {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
        Engine::Sqlite => "sqlite",
    };
    let job = dir.join("demo-job.yaml");
    let text = job_text_for(connector, &format!("${{{URL_VARIABLE}}}"));
    std::fs::write(&job, text).map_err(|e| e.to_string())?;
    Ok((
        DemoFiles {
            dir: dir.to_path_buf(),
            database: crate::target::strip_credentials(url),
            job,
        },
        stats,
    ))
}
