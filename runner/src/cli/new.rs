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
        /// anonymize, delete, deactivate or keep-login.
        #[arg(long, default_value = "anonymize")]
        action: String,
        /// Write the job to this file instead of stdout (never overwrites).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(subcommand)]
    pub command: NewCommand,
}

pub fn run(args: NewArgs) -> ExitCode {
    match args.command {
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
            match out {
                None => print(&text),
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
    }
}
