//! The `switchboard` command line: `serve` runs the server, `token` mints
//! a development token with the configured secret, `plugin new` / `plugin
//! build` scaffold and build plugins. Lives in the library so
//! the test package can build the very same command as its own binary.

use std::path::PathBuf;

use crate::{Config, Server};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Real-time WebSocket server with WebAssembly plugins"
)]
struct Cli {
    /// A TOML configuration file; embedded defaults apply without one, and
    /// SWITCHBOARD_* environment variables override both.
    #[arg(long, short, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Listen address, e.g. 127.0.0.1:3001 (overrides `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The plugins folder (overrides `plugins.dir`).
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
    /// Print an HS256 token signed with the server's secret (the configured
    /// `auth.jwt_secret`, or the one generated under the data directory).
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// The `role` claim.
        #[arg(long)]
        role: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Extra claims as key=value (value parsed as JSON when it parses).
        #[arg(long = "claim", value_parser = parse_claim)]
        claims: Vec<(String, Value)>,
    },
    /// Make and build plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a ready plugin folder: a manifest, one walker, one guard, the
    /// WIT and a README.
    New {
        /// The plugin's name (lowercase letters, digits, `-`); the walker is
        /// named the same with `_` for `-`.
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Lang,
        /// Where to put it (default: `./<name>`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin folder into `<plugins dir>/<name>.wasm` with its
    /// language's toolchain; a running server loads it without a restart.
    Build {
        /// The plugin folder (default: the current directory).
        dir: Option<PathBuf>,
        /// Where to write the component (default: `plugins.dir` from the
        /// configuration, `plugins/` without one).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn plugin(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = crate::scaffold::new(&dir, &name, lang)?;
            for file in &files {
                println!("  wrote {}", file.display());
            }
            println!(
                "next: switchboard plugin build {} --out {}",
                dir.display(),
                config.plugins.dir.display()
            );
        }
        PluginCommand::Build { dir, out } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let out = out.unwrap_or_else(|| config.plugins.dir.clone());
            let wasm = crate::scaffold::build::build(&dir, &out)?;
            println!("{}", wasm.display());
        }
    }
    Ok(())
}

fn parse_claim(raw: &str) -> Result<(String, Value), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got `{raw}`"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// Runs the command line and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    main_with(|_| {})
}

/// As [`main`], calling `setup` on the application once `serve` has bound
/// and before it prints its address: how an embedding program registers
/// native walkers (the benchmarks' baseline does) and keeps the same
/// command line.
pub fn main_with(setup: impl FnOnce(&crate::app::App)) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(setup)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(setup: impl FnOnce(&crate::app::App)) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    match cli.command {
        Command::Serve { listen, plugins } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(dir) = plugins {
                config.plugins.dir = dir;
            }
            let server = Server::start(config).await?;
            setup(&server.app);
            println!("switchboard listening on ws://{}", server.addr);
            for (extra, addr) in server.app.config.listeners.iter().zip(&server.listeners) {
                println!("  {:?} at every path of ws://{addr}", extra.dialect);
            }
            let app = server.app.clone();
            tokio::spawn(async move {
                crate::shutdown::signal().await;
                app.stop();
            });
            server.wait().await?;
            tracing::info!("stopped");
        }
        Command::Token {
            sub,
            role,
            ttl,
            claims,
        } => {
            let extra: Map<String, Value> = claims.into_iter().collect();
            let secret = crate::auth::secret::hs256_secret(&config)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "this server verifies RS256 tokens only (auth.jwt_public_key_*): mint tokens with your identity provider"
                )
            })?;
            let token = crate::auth::mint_token(&secret, &sub, role.as_deref(), ttl, extra)?;
            println!("{token}");
        }
        Command::Plugin { command } => plugin(command, &config)?,
    }
    Ok(())
}
