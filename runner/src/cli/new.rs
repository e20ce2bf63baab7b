//! `lethe new job`: scaffolding.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{fail, print};
use crate::validate::{Validated, Workspace, registry_is_path};

#[derive(Debug, clap::Subcommand)]
pub enum NewCommand {
    /// Print a commented job for a system model that validates as written:
    /// the entity's fields and categories, every section with its default.
    Job {
        /// The system model: a name (`retail-crm`) or a path to its file.
        #[arg(long, value_name = "SYSTEM")]
        system: String,
        /// The entity to select (default: the one with the most personal fields).
        #[arg(long, value_name = "ENTITY")]
        entity: Option<String>,
        /// anonymize, delete, deactivate, keep-login or rectify.
        #[arg(long, default_value = "anonymize")]
        action: String,
        /// Write the job to this file instead of stdout (never overwrites).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print a starting system model from a database: its tables, keys,
    /// foreign keys as relations, and columns whose names suggest personal
    /// data with a category and a strategy to review.
    System {
        /// The database (`sqlite://file.db`, `postgres://…`, `mysql://…`;
        /// prefer an environment variable when it holds a password).
        #[arg(long, value_name = "URL", env = "LETHE_NEW_SYSTEM_URL")]
        from: String,
        /// sqlite, postgres, mysql or a plugin (default: from the URL).
        #[arg(long)]
        connector: Option<String>,
        /// The model's name (default: the database's).
        #[arg(long)]
        name: Option<String>,
        /// Write the model to this file instead of stdout (never overwrites).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(subcommand)]
    pub command: NewCommand,
}

pub async fn run(args: NewArgs) -> ExitCode {
    match args.command {
        NewCommand::System {
            from,
            connector,
            name,
            out,
        } => {
            let kind =
                connector.unwrap_or_else(|| from.split(':').next().unwrap_or("sqlite").to_owned());
            let kind: crate::spec::job::ConnectorRef =
                match serde_json::from_value(serde_json::Value::String(kind)) {
                    Ok(k) => k,
                    Err(e) => return fail(&e.to_string()),
                };
            let options = lethe_connector::OpenOptions {
                url: from.clone(),
                read_only: true,
                ..Default::default()
            };
            let base = std::env::current_dir().unwrap_or_default();
            let mut conn = match crate::target::connect(&kind, &options, &base).await {
                Ok(c) => c,
                Err(e) => return fail(&format!("cannot reach the database: {e}")),
            };
            let schema = match conn.introspect().await {
                Ok(s) => s,
                Err(e) => return fail(&format!("cannot read the tables: {e}")),
            };
            let shown = crate::target::identify(&kind, &from).location;
            let name = name.unwrap_or_else(|| {
                let base = shown.rsplit(['/', ':']).next().unwrap_or("system");
                let base = base.split('.').next().unwrap_or(base);
                let n: String = base
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                if n.is_empty() { "system".into() } else { n }
            });
            let text = crate::scaffold::system_text(&name, &shown, &schema);
            write_out(out, &text)
        }
        NewCommand::Job {
            system,
            entity,
            action,
            out,
        } => {
            let ws = Workspace::default();
            let anchor = std::env::current_dir().unwrap_or_default().join(
                out.as_deref()
                    .map_or("job.yaml".into(), |p| p.to_path_buf()),
            );
            let model = if registry_is_path(&system) {
                match ws.load(std::path::Path::new(&system)) {
                    Ok(Validated::System(m)) => m,
                    Ok(Validated::Job(_)) => {
                        return fail(&format!("{system} is a job, not a system model"));
                    }
                    Err(ds) => {
                        let first = ds.first().map(|d| d.message.clone()).unwrap_or_default();
                        return fail(&format!("{system} is not a valid system model: {first}"));
                    }
                }
            } else {
                match ws.model_named(&system, &anchor) {
                    Ok(m) => m,
                    Err(e) => return fail(&e),
                }
            };
            let text = match crate::scaffold::job_text(
                &model.model,
                &system,
                entity.as_deref(),
                &action,
            ) {
                Ok(t) => t,
                Err(e) => return fail(&e),
            };
            write_out(out, &text)
        }
    }
}

/// Prints, or writes a new file (never overwriting one).
fn write_out(out: Option<PathBuf>, text: &str) -> ExitCode {
    match out {
        None => print(text),
        Some(path) => {
            if path.exists() {
                return fail(&format!(
                    "{} exists; lethe new never overwrites",
                    path.display()
                ));
            }
            if let Err(e) = std::fs::write(&path, text) {
                return fail(&format!("cannot write {}: {e}", path.display()));
            }
            eprintln!(
                "wrote {}; next: lethe validate {}",
                path.display(),
                path.display()
            );
        }
    }
    ExitCode::SUCCESS
}
