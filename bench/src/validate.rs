//! `lethe validate` over a folder of job files.

use std::error::Error;

use lethe::validate::Workspace;

use crate::stats::{ms, summarise, time_runs};

const JOBS: [&str; 3] = [
    include_str!("../../jobs/anonymize-old-customers.yaml"),
    include_str!("../../jobs/delete-never-purchased.yaml"),
    include_str!("../../jobs/deactivate-dormant-customers.yaml"),
];

pub fn run(files: usize, runs: usize) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    for i in 0..files {
        let base = JOBS[i % JOBS.len()];
        let name_line = base
            .lines()
            .find(|l| l.starts_with("name: "))
            .ok_or("an example job has no name")?;
        let text = base.replacen(name_line, &format!("name: bench-job-{i}"), 1);
        std::fs::write(dir.path().join(format!("job-{i:05}.yaml")), text)?;
    }
    let paths = vec![dir.path().to_path_buf()];
    let mut errors = 0;
    let times = time_runs(runs, || {
        // A fresh workspace per run: one run is one `lethe validate` call.
        let report = Workspace::default().validate_paths(&paths);
        errors = report.diagnostics.len();
        report.files
    });
    if errors > 0 {
        return Err(format!("the generated jobs are not valid ({errors} diagnostics)").into());
    }
    let s = summarise(times);
    println!("validate: {files} job files, {runs} runs");
    println!(
        "  median {} (min {}, max {}), {:.0} µs per file; target < 1 s: {}",
        ms(s.median),
        ms(s.min),
        ms(s.max),
        s.median.as_secs_f64() * 1e6 / files as f64,
        if s.median.as_secs_f64() < 1.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}
