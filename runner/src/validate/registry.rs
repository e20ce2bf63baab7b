//! Where system models are found.
//!
//! `target.system` is a path (relative to the job) or a name. A name is
//! looked up, in order: among the models given on the same command line; in
//! `connectors/systems/NAME.yaml` and `systems/NAME.yaml` of the job's folder
//! and each of its parents; in the folders of `LETHE_SYSTEMS_PATH`; and
//! among the models shipped inside lethe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a model was found.
#[derive(Debug, Clone)]
pub enum ModelLocation {
    Path(PathBuf),
    Builtin(&'static str, &'static str),
}

impl ModelLocation {
    /// The cache key.
    pub fn key(&self) -> PathBuf {
        match self {
            ModelLocation::Path(p) => canonical(p),
            ModelLocation::Builtin(name, _) => PathBuf::from(format!("builtin:{name}")),
        }
    }
}

/// The models shipped with lethe: name and YAML text.
pub fn builtin_models() -> &'static [(&'static str, &'static str)] {
    &[
        (
            "retail-crm",
            include_str!("../../../connectors/systems/retail-crm.yaml"),
        ),
        (
            "isp-billing",
            include_str!("../../../connectors/systems/isp-billing.yaml"),
        ),
        (
            "retail-pos",
            include_str!("../../../connectors/systems/retail-pos.yaml"),
        ),
        (
            "salon-crm",
            include_str!("../../../connectors/systems/salon-crm.yaml"),
        ),
        (
            "customer-portal",
            include_str!("../../../connectors/systems/customer-portal.yaml"),
        ),
    ]
}

/// True when `target.system` is written as a path.
pub fn is_path(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.ends_with(".yaml") || s.ends_with(".yml")
}

pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn search_dirs(job: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let start = job
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .map(canonical);
    let mut cur = start.as_deref();
    while let Some(d) = cur {
        dirs.push(d.to_path_buf());
        dirs.push(d.join("connectors").join("systems"));
        dirs.push(d.join("systems"));
        cur = d.parent();
    }
    if let Some(extra) = std::env::var_os("LETHE_SYSTEMS_PATH") {
        dirs.extend(std::env::split_paths(&extra));
    }
    dirs
}

/// Finds the model `name` for the job at `job`.
pub fn find(name: &str, job: &Path, named: &BTreeMap<String, PathBuf>) -> Option<ModelLocation> {
    if is_path(name) {
        let base = job.parent().unwrap_or(Path::new("."));
        let p = base.join(name);
        return p.is_file().then_some(ModelLocation::Path(p));
    }
    if let Some(p) = named.get(name) {
        return Some(ModelLocation::Path(p.clone()));
    }
    for dir in search_dirs(job) {
        // The job's own folder only counts when it is a `systems` folder.
        for ext in ["yaml", "yml"] {
            let p = dir.join(format!("{name}.{ext}"));
            let in_systems_dir = dir.ends_with("systems");
            if in_systems_dir && p.is_file() {
                return Some(ModelLocation::Path(p));
            }
        }
    }
    builtin_models()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, t)| ModelLocation::Builtin(n, t))
}

/// Names of models in the search folders (for "did you mean").
pub fn discover_names(job: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for dir in search_dirs(job)
        .into_iter()
        .filter(|d| d.ends_with("systems"))
    {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
                {
                    names.push(stem.to_owned());
                }
            }
        }
    }
    names
}
