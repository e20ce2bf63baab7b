//! `lethe connectors`: what lethe can reach, built in and as plugins.

use std::process::ExitCode;

use lethe_connector::plugin::{ABI_VERSION, PluginConnector};
use lethe_connector::{Capabilities, ConnectorInfo};
use serde::Serialize;

use crate::plugin::{self, PLUGIN_PATH_VAR};

#[derive(Debug, clap::Args)]
pub struct ConnectorsArgs {
    /// text for people, json for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    version: String,
    /// `built-in`, or the plugin's library.
    source: String,
    abi_version: u32,
    capabilities: Capabilities,
}

#[derive(Debug, Serialize)]
struct Broken {
    path: String,
    error: String,
}

#[derive(Debug, Serialize)]
struct Listing {
    abi_version: u32,
    plugin_path: Vec<String>,
    connectors: Vec<Listed>,
    unusable: Vec<Broken>,
}

pub fn run(args: &ConnectorsArgs) -> ExitCode {
    let builtin = |info: ConnectorInfo| Listed {
        name: info.name,
        version: info.version,
        source: "built-in".into(),
        abi_version: ABI_VERSION,
        capabilities: info.capabilities,
    };
    let mut listing = Listing {
        abi_version: ABI_VERSION,
        plugin_path: plugin::plugin_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
        connectors: vec![
            builtin(lethe_sqlite::SqliteConnector::describe()),
            builtin(lethe_postgres::PostgresConnector::describe()),
            builtin(lethe_mysql::MysqlConnector::describe()),
        ],
        unusable: Vec::new(),
    };
    for (path, loaded) in plugin::discover() {
        match loaded {
            Ok(p) => listing.connectors.push(Listed {
                name: p.info.name.clone(),
                version: p.info.version.clone(),
                source: p.path.display().to_string(),
                abi_version: p.abi_version(),
                capabilities: p.info.capabilities.clone(),
            }),
            Err(e) => listing.unusable.push(Broken {
                path: path.display().to_string(),
                error: e.to_string(),
            }),
        }
    }
    let text = match args.format {
        Output::Json => serde_json::to_string_pretty(&listing).unwrap_or_default() + "\n",
        Output::Text => text(&listing),
    };
    super::print(&text);
    ExitCode::SUCCESS
}

fn text(l: &Listing) -> String {
    let width = l.connectors.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &l.connectors {
        let mut can = Vec::new();
        if c.capabilities.sql_criteria {
            can.push("sql criteria");
        }
        if c.capabilities.sql_checks {
            can.push("sql checks");
        }
        if c.capabilities.transactions {
            can.push("transactions");
        }
        let can = if can.is_empty() {
            "no sql criteria, no sql checks, no transactions".to_owned()
        } else {
            can.join(", ")
        };
        out.push_str(&format!(
            "{:width$}  {:8}  ABI {}  {}  ({can})\n",
            c.name, c.version, c.abi_version, c.source
        ));
    }
    for b in &l.unusable {
        out.push_str(&format!("unusable: {}: {}\n", b.path, b.error));
    }
    if l.plugin_path.is_empty() {
        out.push_str(&format!(
            "\nNo plugin folders: set {PLUGIN_PATH_VAR} (folders separated by `:`), or name a plugin's library by path in a job (`connector: ./plugins/libfoo.so`).\n"
        ));
    } else {
        out.push_str(&format!(
            "\nPlugin folders ({PLUGIN_PATH_VAR}): {}\n",
            l.plugin_path.join(", ")
        ));
    }
    out
}
