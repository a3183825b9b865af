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
    /// The bearer token `POST /api/cron/<job>` requires (at least 32
    /// characters); without it every cron call is refused.
    #[arg(long, env = "CRON_TOKEN", hide_env_values = true)]
    pub cron_token: Option<String>,
    /// Where security reports go, shown on the public pages.
    #[arg(long, env = "ZENTRALINK_SECURITY_CONTACT", default_value = zentralink_web::DEFAULT_SECURITY_CONTACT)]
    pub security_contact: String,
    /// Where privacy and DPA requests go, shown on the public pages.
    #[arg(long, env = "ZENTRALINK_PRIVACY_CONTACT", default_value = zentralink_web::DEFAULT_PRIVACY_CONTACT)]
    pub privacy_contact: String,
    /// The address people reach the service at (e.g. https://dns.example.com),
    /// used for links in e-mails.
    #[arg(long, env = "ZENTRALINK_PUBLIC_URL")]
    pub public_url: Option<String>,
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
    /// Make an existing user one of the platform's staff (support desk,
    /// status incidents, platform mail settings), or no longer with --revoke.
    /// Staff pages also need the user's second factor.
    MakeStaff {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// Take the staff role away instead.
        #[arg(long)]
        revoke: bool,
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
    if let Some(WebCommand::MakeStaff { email, revoke }) = &args.command {
        let email = email.trim().to_lowercase();
        zentralink_web::auth::make_staff(&store, &email, !revoke).await?;
        let what = if *revoke { "is no longer" } else { "is now" };
        writeln!(
            std::io::stdout().lock(),
            "{email} {what} one of the platform's staff"
        )
        .context("cannot write to standard output")?;
        return Ok(ExitCode::SUCCESS);
    }
    let cron_token = match &args.cron_token {
        Some(t) if t.trim().len() < 32 => {
            anyhow::bail!(
                "CRON_TOKEN must have at least 32 characters (e.g. `openssl rand -hex 32`)"
            )
        }
        Some(t) => Some(SecretString::new(t.trim().to_owned())),
        None => {
            tracing::warn!("no CRON_TOKEN: every POST /api/cron/<job> will be refused");
            None
        }
    };
    let config = WebConfig {
        secure_cookies: !args.insecure_cookies,
        hsts: args.hsts,
        hash_concurrency: args.hash_concurrency,
        cron_token,
        security_contact: args.security_contact.clone(),
        privacy_contact: args.privacy_contact.clone(),
        public_url: args
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned()),
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
