//! The `nimbus` binary: `nimbus serve` runs the platform; the other subcommands are a
//! command line for people, speaking the same HTTP API as the AWS CLI.

/// `println!` that ends the program quietly once stdout is gone (`nimbus logs f | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod bench;
mod cli;
mod cost;
mod release;
mod serve;
mod stats;
mod tune;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "nimbus",
    version,
    about = "A self-hosted serverless platform that behaves like AWS Lambda"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the Nimbus server.
    Serve(serve::ServeArgs),
    /// Create or update a function from a directory or a .zip.
    Deploy(cli::DeployArgs),
    /// Invoke a function and print its response.
    Invoke(cli::InvokeArgs),
    /// List functions.
    Ls(cli::Endpoint),
    /// Delete a function.
    Rm(cli::RmArgs),
    /// Print a function's logs.
    Logs(cli::LogsArgs),
    /// Canary-release a new version behind an alias, rolling back on errors.
    Release(release::ReleaseArgs),
    /// Load-test a function: latency percentiles, throughput, cold starts, throttles.
    Bench(bench::BenchArgs),
    /// List scheduled EventBridge rules and when each fires next.
    Schedules(cli::Endpoint),
    /// Print what Nimbus kept for SQS/SNS/S3 targets (dead letters, destination records).
    Messages(cli::MessagesArgs),
    /// A live summary of invocations, errors, throttles and durations per function version.
    Stats(stats::StatsArgs),
    /// The bill: requests, GB-seconds and USD per function, with a monthly projection.
    Cost(cost::CostArgs),
    /// Run a function at several memory sizes; show duration and cost per size and a chart.
    Tune(tune::TuneArgs),
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("nimbus");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/nimbus"),
        None => PathBuf::from("/var/lib/nimbus"),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Serve(a) => serve::run(a),
        Command::Deploy(a) => cli::deploy(a),
        Command::Invoke(a) => cli::invoke(a),
        Command::Ls(a) => cli::ls(a),
        Command::Rm(a) => cli::rm(a),
        Command::Logs(a) => cli::logs(a),
        Command::Release(a) => release::release(a),
        Command::Bench(a) => bench::bench(a),
        Command::Schedules(a) => cli::schedules(a),
        Command::Messages(a) => cli::messages(a),
        Command::Stats(a) => stats::stats(a),
        Command::Cost(a) => cost::cost(a),
        Command::Tune(a) => tune::tune(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nimbus: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
