//! lethe's benchmarks.
//!
//! Each workload runs several times and reports the median (and min/max),
//! because these machines are small and noisy; where there is a hand-written
//! baseline for the same work, it runs in the same process, interleaved with
//! lethe, and the report gives the ratio. The harness is written by hand
//! (not criterion) because what we report is a ratio against a baseline run
//! in the same session, plus peak memory, which criterion does not measure.

mod alloc;
mod apply;
mod plan;
mod spans;
mod stats;
mod target;
mod validate;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "lethe-bench", about = "Benchmarks of lethe")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// Validate a folder of generated job files (target: 1,000 files in under 1 s).
    Validate {
        /// How many job files.
        #[arg(long, default_value_t = 1000)]
        files: usize,
        /// How many timed runs (the median is reported).
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Plan the example anonymize job on the demo system, beside the
    /// hand-written SQL that selects the same keys (target ≤ 1.5×).
    Plan {
        /// How many customers the demo system has.
        #[arg(long, default_value_t = 100_000)]
        customers: u64,
        /// How many timed runs of each (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[command(flatten)]
        engine: target::EngineArgs,
    },
    /// Apply anonymize and delete of every private demo customer, beside
    /// hand-written batched SQL doing the same (target ≥ 0.8× its records/s).
    Apply {
        #[arg(long, default_value_t = 100_000)]
        customers: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[command(flatten)]
        engine: target::EngineArgs,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    spans::install();
    let result = match cli.workload {
        Workload::Validate { files, runs } => validate::run(files, runs),
        Workload::Plan {
            customers,
            runs,
            engine,
        } => plan::run(&engine, customers, runs),
        Workload::Apply {
            customers,
            runs,
            engine,
        } => apply::run(&engine, customers, runs),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
