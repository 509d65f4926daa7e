//! The `popcast` command: parses arguments, loads configuration, sets up logging and starts
//! the services the crates provide. No protocol or media logic lives here.

mod cli;
mod logging;
mod operator;
mod up;

use clap::Parser;
use cli::{Cli, Command};
use popcast_config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("popcast: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popcast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

/// `popcast bench`: runs scenarios, prints each table, writes its JSON; `results` remakes
/// bench/RESULTS.md from the JSON files.
async fn bench(args: cli::BenchArgs) -> anyhow::Result<()> {
    use popcast_bench::{report, scenarios};
    let opts = scenarios::Options { short: args.short };
    let order = ["latency", "startup", "fanout", "compare", "transcode", "player"];
    let run: Vec<cli::Scenario> = match args.scenario {
        cli::Scenario::Results => {
            let md = report::results_markdown(&args.results, &order);
            let path = args
                .results
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("RESULTS.md");
            std::fs::write(&path, md)?;
            println!("wrote {}", path.display());
            return Ok(());
        }
        cli::Scenario::All => vec![
            cli::Scenario::Latency,
            cli::Scenario::Startup,
            cli::Scenario::Fanout,
            cli::Scenario::Compare,
            cli::Scenario::Transcode,
            cli::Scenario::Player,
        ],
        s => vec![s],
    };
    for s in run {
        let r = match s {
            cli::Scenario::Latency => scenarios::latency(opts).await,
            cli::Scenario::Startup => scenarios::startup(opts).await,
            cli::Scenario::Compare => popcast_bench::compare::compare(opts).await,
            cli::Scenario::Transcode => popcast_bench::transcode::transcode(opts).await,
            cli::Scenario::Player => popcast_bench::player::player(opts).await,
            _ => scenarios::fanout(opts).await,
        }?;
        println!("{}", r.table());
        println!("wrote {}\n", r.write(&args.results)?.display());
    }
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => {
            let config = load(args.config.as_deref())?;
            up::run(config, args).await
        }
        Command::Origin(args) => up::origin(load(Some(&args.config))?).await,
        Command::Edge(args) => up::edge(load(Some(&args.config))?).await,
        Command::Event(cmd) => operator::run(cmd).await,
        Command::Bench(args) => bench(args).await,
        Command::Config(cli::ConfigCommand::Check { file }) => {
            Config::load(&file)?;
            println!("{}: valid", file.display());
            Ok(())
        }
    }
}
