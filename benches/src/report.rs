//! What the benchmark prints: the run's conditions, the table and the targets of issues 4
//! and 10.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::harness::{Measured, Unit};
use crate::server::Memcached;
use crate::workloads::Section;
use crate::{cluster, ours, typed, BenchResult, Options, RuntimeKind};

/// The measured rows of one section.
#[derive(Debug, Clone)]
pub struct SectionResult {
    /// The section.
    pub section: Section,
    /// One row per client, in measuring order.
    pub rows: Vec<Measured>,
}

impl SectionResult {
    /// Bundles a section with its rows.
    pub fn new(section: Section, rows: Vec<Measured>) -> Self {
        SectionResult { section, rows }
    }

    /// The median of the row labelled `client`.
    fn median_of(&self, client: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| row.client == client)
            .map(|row| row.median)
    }

    /// The raw figure the ratios divide by: the best of the section's reference rows.
    fn reference(&self) -> Option<f64> {
        self.section
            .reference()
            .iter()
            .filter_map(|label| self.median_of(label))
            .reduce(f64::max)
    }

    /// This client's median divided by the reference.
    fn ours_ratio(&self) -> Option<f64> {
        Some(self.median_of(ours::LABEL)? / self.reference()?)
    }

    /// The best of the section's peers' medians.
    fn best_peer(&self) -> Option<f64> {
        self.section
            .peers()
            .iter()
            .filter_map(|label| self.median_of(label))
            .reduce(f64::max)
    }

    /// The median of the row labelled `client` divided by the best peer's.
    fn peer_ratio(&self, client: &str) -> Option<f64> {
        Some(self.median_of(client)? / self.best_peer()?)
    }

    /// W6: the time of one typed get over the time of one untyped get of the same keys
    /// (the inverse of their ops/s ratio).
    fn typed_time_ratio(&self) -> Option<f64> {
        Some(self.median_of(typed::UNTYPED)? / self.median_of(typed::TYPED)?)
    }
}

/// Today's date (UTC) as `YYYY-MM-DD HH:MM UTC`.
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_text(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
fn utc_text(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar, in 400-year
    // eras of 146,097 days starting on March 1st).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60
    )
}

/// The CPU model from `/proc/cpuinfo`.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Prints the date, machine, server and settings of the run.
///
/// # Errors
/// When the server's version cannot be read.
pub fn print_header(
    server: &Memcached,
    several: &[Memcached],
    options: &Options,
) -> BenchResult<()> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("date:      {}", now_utc());
    println!(
        "machine:   {cpus} CPUs (nproc), {}, Linux {}",
        cpu_model(),
        kernel.trim()
    );
    println!(
        "memcached: {} (-t 1 -U 0, loopback port {})",
        server.version()?,
        server.addr().port()
    );
    if let Some(tls) = server.tls_addr() {
        println!(
            "TLS:       the same memcached, -Z, TLS listener on loopback port {} (the rows \
             \"memcache-core over TLS\", TLS 1.3)",
            tls.port()
        );
    }
    if !several.is_empty() {
        let ports: Vec<String> = several
            .iter()
            .map(|s| s.addr().port().to_string())
            .collect();
        println!(
            "W7, W8:    {} more memcacheds, the same settings, loopback ports {}",
            several.len(),
            ports.join(", ")
        );
    }
    println!(
        "run:       {} round(s) of {} ms per client (median reported), memcache-core protocol: {:?}{}, one-caller async runtime: {}",
        options.rounds,
        options.round.as_millis(),
        options.protocol,
        if options.join_gets { " with join_gets" } else { "" },
        match options.runtime {
            RuntimeKind::Multi => "multi-thread, 2 workers",
            RuntimeKind::Current => "current-thread",
        }
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("load:      {} (1, 5, 15 min, at start)", load.join(" "));
    println!(
        "command:   {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!();
    Ok(())
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn format_rate(unit: Unit, per_second: f64) -> String {
    let scaled = unit.scale(per_second);
    match unit {
        Unit::Bytes => format!("{scaled:.1}"),
        Unit::Ops | Unit::Keys | Unit::Calls => thousands(scaled),
    }
}

/// Prints the table, in Markdown.
pub fn print_table(results: &[SectionResult]) {
    println!("| workload | client | median | unit | vs raw | vs best peer | min .. max |");
    println!("|---|---|---:|---|---:|---:|---:|");
    for result in results {
        let unit = result.section.unit();
        let reference = result.reference();
        for row in &result.rows {
            let ratio = reference.map_or_else(
                || "-".to_owned(),
                |r| format!("{:.1}%", 100.0 * row.median / r),
            );
            let peer_ratio = result
                .peer_ratio(&row.client)
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
            println!(
                "| {} | {} | {} | {} | {} | {} | {} .. {} |",
                result.section.title(),
                row.client,
                format_rate(unit, row.median),
                unit.rate_label(),
                ratio,
                peer_ratio,
                format_rate(unit, row.min),
                format_rate(unit, row.max),
            );
        }
    }
    println!();
    println!("vs raw: each median divided by the raw figure of the same run that the section's");
    println!(
        "issue-4 target names (W1: the better of raw get and raw mg one in flight; W2: raw set"
    );
    println!("one in flight; W2 noreply: raw set noreply, one per write; W3: raw multi-get one in");
    println!(
        "flight; W4: raw pipelined mg; W4s: raw noreply sets batched; W5: raw get one in flight;"
    );
    println!(
        "W6: memcache-core's own Client::get of the same keys, the untyped read; W7: raw, one"
    );
    println!("multi-key get per server on 3 sockets at once; W8: raw mg pipelined on 3 sockets).");
    println!(
        "vs best peer: each median divided by the best peer's of the section (W1-W5, W8: memcache,"
    );
    println!(
        "async-memcached; W7: pylibmc, pymemcache, memcache; not the current-thread rows and not"
    );
    println!(
        "async-memcached in W7, which has no client of several servers and is helped to three)."
    );
    println!("W7 counts calls of 100 keys each: keys/s = 100 x calls/s. memcache-core without a");
    println!(
        "distribution named is rendezvous, its default (= pymemcache's HashClient placement)."
    );
    println!("memcache and async-memcached have no noreply set: no row in the noreply sections.");
    println!();
}

/// Prints each target of issues 4 and 10 that this run can judge, with the measured ratio.
pub fn print_targets(results: &[SectionResult]) {
    println!("| target | measured | met |");
    println!("|---|---:|---|");
    for result in results {
        let (goal, floor) = match result.section {
            Section::W1 => ("W1 get >= 97% of raw one in flight", 0.97),
            Section::W2 => ("W2 set acknowledged >= 97% of raw", 0.97),
            Section::W2Noreply => ("W2 set noreply >= 95% of raw", 0.95),
            Section::W3 => ("W3 get_many(100) >= 95% of raw multi-get", 0.95),
            Section::W4 => ("W4 >= 50% of raw pipelined mg", 0.50),
            Section::W4s => ("W4s >= 50% of raw pipelined noreply", 0.50),
            Section::W5 => ("W5 100 KiB >= 95% of raw MB/s", 0.95),
            Section::W6 => {
                let goal = "W6 typed get <= 1.10x raw get time";
                print_ceiling(goal, result.typed_time_ratio(), 1.10);
                continue;
            }
            Section::W7 | Section::W8 => {
                let (name, floor) = if result.section == Section::W7 {
                    ("W7", 2.0)
                } else {
                    ("W8", 4.0)
                };
                let goal = format!("{name} >= {floor}x the best peer");
                print_target(&goal, result.peer_ratio(ours::LABEL), floor, "x");
                let goal = format!("{name} >= {floor}x the best peer, with ketama");
                print_target(&goal, result.peer_ratio(cluster::KETAMA), floor, "x");
                continue;
            }
        };
        print_target(goal, result.ours_ratio(), floor, "%");
        if result.section == Section::W4 {
            let ratio = result.peer_ratio(ours::LABEL);
            print_target("W4 >= 4x the best peer", ratio, 4.0, "x");
        }
    }
    println!("(W1 client CPU: see --callgrind. W6: time per typed get / time per Client::get.)");
}

/// A target met when `ratio` is at most `ceiling` (W6: a time ratio, shown with three
/// decimals, `1.042x`, so that a ratio just above the line does not print as on it).
fn print_ceiling(goal: &str, ratio: Option<f64>, ceiling: f64) {
    let (shown, met) = match ratio {
        Some(ratio) => (format!("{ratio:.3}x"), ratio <= ceiling),
        None => ("-".to_owned(), false),
    };
    println!("| {goal} | {shown} | {} |", if met { "yes" } else { "NO" });
}

fn print_target(goal: &str, ratio: Option<f64>, floor: f64, style: &str) {
    let (shown, met) = match ratio {
        Some(ratio) if style == "%" => (format!("{:.1}%", ratio * 100.0), ratio >= floor),
        Some(ratio) => (format!("{ratio:.2}x"), ratio >= floor),
        None => ("-".to_owned(), false),
    };
    println!("| {goal} | {shown} | {} |", if met { "yes" } else { "NO" });
}

#[cfg(test)]
mod tests {
    use super::{thousands, utc_text};

    #[test]
    fn formats_dates() {
        for (secs, text) in [
            (0, "1970-01-01 00:00 UTC"),
            (951_782_400, "2000-02-29 00:00 UTC"),
            (1_709_210_096, "2024-02-29 12:34 UTC"),
            (4_102_444_799, "2099-12-31 23:59 UTC"),
        ] {
            assert_eq!(utc_text(secs), text);
        }
    }

    #[test]
    fn groups_thousands() {
        for (value, text) in [
            (0.0, "0"),
            (999.4, "999"),
            (1_000.0, "1,000"),
            (1_234_567.8, "1,234,568"),
        ] {
            assert_eq!(thousands(value), text);
        }
    }
}
