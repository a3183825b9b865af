//! Building a git source from the command line's arguments. Reads the
//! environment variable that holds an access token, when one is named.

use std::path::PathBuf;
use std::sync::Arc;

use zentralink_model::secrets::{SecretString, is_reserved_env};
use zentralink_operator::source::Source;
use zentralink_operator::source::git::{GitCredentials, GitSource, GitSourceOptions, HostKeyCheck};

use crate::ops::SourceArgs;

pub fn build(args: &SourceArgs) -> anyhow::Result<Arc<dyn Source>> {
    Ok(Arc::new(build_git(args)?))
}

/// The git source itself (the operator also re-reads known commits through it).
pub fn build_git(args: &SourceArgs) -> anyhow::Result<GitSource> {
    let files_root = match &args.zonefile_root {
        Some(root) => root.clone(),
        None => std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot tell the current directory: {e}"))?,
    };
    let mut options = GitSourceOptions::new(args.source.clone(), args.state_dir.clone())
        .with_reference(args.git_ref.clone())
        .with_files_root(files_root);
    if let Some(path) = &args.path {
        options = options.with_path(path.clone());
    }
    if let Some(var) = &args.git_token_env {
        if var.starts_with("PLATFORM_")
            || (is_reserved_env(var) && !var.starts_with("ZENTRALINK_GIT"))
        {
            anyhow::bail!(
                "--git-token-env {var}: the process's own configuration is never sent to a git server"
            );
        }
        let token = std::env::var(var)
            .map_err(|_| anyhow::anyhow!("--git-token-env {var}: the variable is not set"))?;
        options = options.with_credentials(GitCredentials::token(SecretString::new(token)));
    }
    if let Some(key) = &args.ssh_key {
        options = options.with_credentials(GitCredentials::ssh_key(key.clone()));
    }
    if let Some(known) = &args.known_hosts {
        options = options.with_host_keys(HostKeyCheck::KnownHostsFile(PathBuf::from(known)));
    }
    Ok(GitSource::new(options)?)
}
