//! Reaching the target system: which connector, which database, and how the
//! target is named without its credentials.

use std::path::Path;

use lethe_connector::{Connector, ConnectorError, OpenOptions};

use crate::plan::TargetRef;
use crate::spec::job::{ConnectorRef, Job};

/// Why the target cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the job gives no `target.url`")]
    NoUrl,
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error("{0}")]
    Connector(#[from] ConnectorError),
}

/// Opens the job's target: read-only for planning, read-write (through
/// `apply_url` when given) for applying. `job_dir` is the job file's
/// folder, which a plugin's relative path starts from.
pub async fn open(
    job: &Job,
    timezone: Option<String>,
    read_only: bool,
    job_dir: &Path,
) -> Result<(Box<dyn Connector>, TargetRef), TargetError> {
    let target = &job.target;
    let url = if read_only {
        target.url.clone()
    } else {
        target.apply_url.clone().or_else(|| target.url.clone())
    }
    .ok_or(TargetError::NoUrl)?;
    let identity = identify(&target.connector, target.url.as_deref().unwrap_or(&url));
    let millis = |d: crate::spec::time::Duration| {
        u64::try_from(d.to_signed().as_millis()).unwrap_or(u64::MAX)
    };
    let options = OpenOptions {
        url,
        timezone,
        read_only,
        lock_timeout_ms: Some(millis(job.safety.lock_timeout)),
        statement_timeout_ms: Some(millis(job.safety.statement_timeout)),
    };
    let connector = connect(&target.connector, &options, job_dir).await?;
    Ok((connector, identity))
}

/// Opens a connector by kind (`base`: where a plugin's relative path starts).
pub async fn connect(
    connector: &ConnectorRef,
    options: &OpenOptions,
    base: &Path,
) -> Result<Box<dyn Connector>, TargetError> {
    Ok(match connector {
        ConnectorRef::Sqlite => Box::new(lethe_sqlite::SqliteConnector::open(options).await?),
        ConnectorRef::Postgres => Box::new(lethe_postgres::PostgresConnector::open(options).await?),
        ConnectorRef::Mysql => Box::new(lethe_mysql::MysqlConnector::open(options).await?),
        ConnectorRef::Plugin(name) => {
            let path = crate::plugin::locate(name, Some(base))?;
            let plugin = crate::plugin::load(&path)?;
            Box::new(
                crate::plugin::PluginConnector::open(
                    plugin,
                    options,
                    crate::plugin::call_timeout(),
                )
                .await?,
            )
        }
    })
}

/// The folder of a job file given as written (`plan.job_file`).
pub fn job_dir(job_file: &str) -> &Path {
    Path::new(job_file)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The target's name in plans, the ledger and locks: the connector and the
/// database's location, with any user name and password removed.
pub fn identify(connector: &ConnectorRef, url: &str) -> TargetRef {
    let location = match connector {
        ConnectorRef::Sqlite => {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            let abs = std::fs::canonicalize(Path::new(path))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.to_owned());
            format!("sqlite:{abs}")
        }
        ConnectorRef::Plugin(_) if !url.contains("://") => {
            // `scheme:path` (e.g. `csv:data`): the path made absolute, so
            // the same folder is one target whatever the working directory.
            match url.split_once(':') {
                Some((scheme, path)) if !path.contains('@') => {
                    match std::fs::canonicalize(Path::new(path)) {
                        Ok(abs) => format!("{scheme}:{}", abs.display()),
                        Err(_) => url.to_owned(),
                    }
                }
                _ => "(unparsed url)".to_owned(),
            }
        }
        _ => strip_credentials(url),
    };
    TargetRef {
        connector: connector.as_str().to_owned(),
        location,
    }
}

/// `scheme://user:pass@host:port/db?…` → `scheme://host:port/db`.
pub fn strip_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "(unparsed url)".to_owned(),
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = match rest.rfind('@') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_identity() {
        assert_eq!(
            strip_credentials(
                "postgres://app:s3cret@db.example.com:5432/crm?sslmode=require&password=x"
            ),
            "postgres://db.example.com:5432/crm"
        );
        assert_eq!(
            strip_credentials("mysql://root@127.0.0.1:3306/pos"),
            "mysql://127.0.0.1:3306/pos"
        );
        assert_eq!(strip_credentials("no url"), "(unparsed url)");
    }
}
