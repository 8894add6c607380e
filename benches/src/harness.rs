//! Rounds, medians and the shape of one measurement.

use std::time::{Duration, Instant};

use crate::BenchResult;

/// What a workload counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Completed operations per second.
    Ops,
    /// Keys read per second (W3: 100 keys per call).
    Keys,
    /// Value bytes read per second, shown in MB/s (10^6 bytes).
    Bytes,
    /// Completed multi-key calls per second (W7: 100 keys per call).
    Calls,
}

impl Unit {
    /// The label of a rate in this unit.
    pub fn rate_label(self) -> &'static str {
        match self {
            Unit::Ops => "ops/s",
            Unit::Keys => "keys/s",
            Unit::Bytes => "MB/s",
            Unit::Calls => "calls/s",
        }
    }

    /// A rate (units per second) in this unit's display scale.
    pub fn scale(self, per_second: f64) -> f64 {
        match self {
            Unit::Bytes => per_second / 1e6,
            Unit::Ops | Unit::Keys | Unit::Calls => per_second,
        }
    }
}

/// What one run of a case did: how many units in how long.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Operations, keys, bytes or calls, as the workload's [`Unit`] says.
    pub count: u64,
    /// Wall-clock time from the first request to the last completion.
    pub elapsed: Duration,
}

impl Sample {
    /// Units per second.
    pub fn rate(self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// Measures `count` units done by `body`, which is handed the deadline.
pub fn timed(
    budget: Duration,
    body: impl FnOnce(Instant) -> BenchResult<u64>,
) -> BenchResult<Sample> {
    let start = Instant::now();
    let count = body(start + budget)?;
    Ok(Sample {
        count,
        elapsed: start.elapsed(),
    })
}

/// One client on one workload: a closure that runs for about the budget it is given and
/// reports what it did. It verifies a sample of what it reads on every run.
pub struct Case {
    /// The client's label in the table.
    pub client: String,
    run: Box<dyn FnMut(Duration) -> BenchResult<Sample>>,
}

impl Case {
    /// A case named `client`.
    pub fn new(
        client: impl Into<String>,
        run: impl FnMut(Duration) -> BenchResult<Sample> + 'static,
    ) -> Self {
        Case {
            client: client.into(),
            run: Box::new(run),
        }
    }

    /// Runs the case once for about `budget`.
    ///
    /// # Errors
    /// Whatever the client or the verification reported, prefixed with the client's label.
    pub fn run(&mut self, budget: Duration) -> BenchResult<Sample> {
        (self.run)(budget).map_err(|error| format!("{}: {error}", self.client).into())
    }
}

/// The result of one case over every round.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The client's label.
    pub client: String,
    /// Median rate over the rounds, in units per second.
    pub median: f64,
    /// Lowest rate over the rounds.
    pub min: f64,
    /// Highest rate over the rounds.
    pub max: f64,
}

/// Runs every case once to warm up, then `rounds` times in turn (round-robin, so a slow
/// spell of the machine hits every client alike) and keeps the median of each.
///
/// # Errors
/// The first error any case reports.
pub fn measure(
    cases: &mut [Case],
    rounds: usize,
    budget: Duration,
    warmup: Duration,
) -> BenchResult<Vec<Measured>> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    for case in cases.iter_mut() {
        case.run(warmup)?;
    }
    for _ in 0..rounds {
        for (case, rates) in cases.iter_mut().zip(&mut rates) {
            rates.push(case.run(budget)?.rate());
        }
    }
    Ok(cases
        .iter()
        .zip(rates)
        .map(|(case, mut rates)| {
            rates.sort_by(f64::total_cmp);
            Measured {
                client: case.client.clone(),
                median: median(&rates),
                min: rates[0],
                max: rates[rates.len() - 1],
            }
        })
        .collect())
}

/// The median of sorted, non-empty `values`.
fn median(values: &[f64]) -> f64 {
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }
}
