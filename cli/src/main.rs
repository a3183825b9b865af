//! The `zentralink` binary: argument parsing over the ZentraLink libraries.
//! Does I/O (files, providers, terminal).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use zentralink_model::report::{render_markdown, render_text};
use zentralink_operator::planner::plan_all;
use zentralink_operator::source::directory::load_catalog;

/// ZentraLink: a GitOps control plane for DNS.
#[derive(Debug, Parser)]
#[command(name = "zentralink", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate manifests (files or directories, read recursively). Exit 0 when all are valid, 1 otherwise.
    Validate {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate, read each zone from its provider (read-only) and print the plan.
    Plan {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Colour the text output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        /// Exit 2 when any zone has changes.
        #[arg(long)]
        exit_code: bool,
    },
    /// Print the CustomResourceDefinitions, or write one file per CRD into a directory.
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::Plan {
            paths,
            format,
            color,
            exit_code,
        } => plan(&paths, format, color, exit_code),
        Command::Crds { out } => crds(out),
    }
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            eprintln!("{e}");
        }
        eprintln!(
            "{} error{} found",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "valid: {} tenant(s), {} policy(ies), {} connection(s), {} zone(s), {} record set(s)",
        catalog.tenants.len(),
        catalog.policies.len(),
        catalog.connections.len(),
        catalog.zones.len(),
        catalog.zones.iter().map(|z| z.desired.len()).sum::<usize>()
    );
    Ok(ExitCode::SUCCESS)
}

fn plan(
    paths: &[PathBuf],
    format: Format,
    color: Color,
    exit_code: bool,
) -> anyhow::Result<ExitCode> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            eprintln!("{e}");
        }
        eprintln!(
            "{} error{} found; nothing planned",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(plan_all(&catalog));
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Markdown => render_markdown(&report),
        Format::Text => {
            let colour = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            render_text(&report, colour)
        }
    };
    std::io::stdout().write_all(text.as_bytes())?;
    if report.has_errors() {
        for z in report
            .zones
            .iter()
            .filter_map(|z| z.error.as_ref().map(|e| (z, e)))
        {
            eprintln!("{}: {}", z.0.zone, z.1);
        }
        return Ok(ExitCode::from(1));
    }
    if exit_code && report.has_changes() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn crds(out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = zentralink_model::resources::crd_files()?;
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            for (i, (_, yaml)) in files.iter().enumerate() {
                if i > 0 {
                    writeln!(stdout, "---")?;
                }
                stdout.write_all(yaml.as_bytes())?;
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, yaml) in files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
