//! The load generator: `memcache-loadgen --target http://127.0.0.1:8080 --duration 5s`
//! (`--help` for every flag). Prints a progress line every second on stderr and the
//! summary on stdout.

use std::process::ExitCode;

use memcache_service::loadgen::{self, LoadConfig, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match LoadConfig::from_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("memcache-loadgen: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "loading {} for {:?}: {} tasks, {:.0}% writes, ids 1..={}",
        config.target,
        config.duration,
        config.concurrency,
        config.write_ratio * 100.0,
        config.keys
    );
    match loadgen::run(&config).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("memcache-loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}
