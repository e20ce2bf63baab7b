//! Timing runs and summarising them.

use std::time::{Duration, Instant};

/// Times `runs` calls of `f` (after one warm-up call).
pub fn time_runs<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    std::hint::black_box(f());
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect()
}

/// Median, minimum and maximum.
pub struct Summary {
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

pub fn summarise(mut times: Vec<Duration>) -> Summary {
    times.sort();
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    };
    Summary {
        median,
        min: times[0],
        max: times[n - 1],
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
