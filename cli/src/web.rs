//! `zentralink web`: serve the companion web service, and
//! `zentralink web create-owner`: bootstrap a tenant's first owner with a
//! password read from standard input. Does I/O (network, terminal, store).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use zentralink_model::secrets::SecretString;
use zentralink_web::{AppState, WebConfig};

use crate::{Inputs, open_store};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebArgs {
    #[command(subcommand)]
    pub command: Option<WebCommand>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Leave `Secure` off the cookies (and their `__Host-` prefix). Only for
    /// development over plain HTTP on localhost: browsers do not send
    /// `Secure` cookies over plain HTTP, so sign-in would not work there.
    #[arg(long)]
    pub insecure_cookies: bool,
    /// The service is reached over HTTPS (e.g. behind a TLS-terminating
    /// proxy): send Strict-Transport-Security.
    #[arg(long)]
    pub hsts: bool,
    /// How many password hashes (19 MiB each) may be computed at once.
    #[arg(long, default_value_t = 4)]
    pub hash_concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Create a user as OWNER of a tenant (and the tenant, if it does not
    /// exist). The password is read from standard input (one line).
    CreateOwner {
        /// The owner's e-mail address (the sign-in name).
        #[arg(long)]
        email: String,
        /// The tenant's slug, e.g. acme.
        #[arg(long)]
        tenant: String,
    },
}

pub async fn web(args: &WebArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = open_store(inputs).await?;
    store.migrate().await?;
    if let Some(WebCommand::CreateOwner { email, tenant }) = &args.command {
        let password = read_password()?;
        let user = zentralink_web::auth::create_owner(&store, email, tenant, &password).await?;
        let email = email.trim().to_lowercase();
        writeln!(
            std::io::stdout().lock(),
            "created {email} (user {user}) as OWNER of {tenant}"
        )
        .context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = WebConfig {
        secure_cookies: !args.insecure_cookies,
        hsts: args.hsts,
        hash_concurrency: args.hash_concurrency,
        ..WebConfig::default()
    };
    if args.insecure_cookies && !args.listen.ip().is_loopback() {
        tracing::warn!(
            "--insecure-cookies while listening on {}: session cookies may travel over plain HTTP; use it only on localhost",
            args.listen
        );
    }
    let state = AppState::new(store, config)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!("web service listening on http://{}", args.listen);
    zentralink_web::serve(
        listener,
        state,
        zentralink_operator::server::shutdown_signal(),
    )
    .await
    .context("the web service stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

/// One line from standard input, without its line ending.
fn read_password() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Typed at a terminal: not echoed.
        let password = rpassword::prompt_password("Password for the new owner (then Enter): ")
            .context("cannot read the password from the terminal")?;
        if password.is_empty() {
            anyhow::bail!("the password is empty");
        }
        return Ok(SecretString::new(password));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        anyhow::bail!(
            "no password on standard input; pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | zentralink web create-owner ...`"
        );
    }
    Ok(SecretString::new(password))
}
