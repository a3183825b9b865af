//! Loads and validates manifests, and with `--read` reads every zone once
//! from its provider, all with the system allocator, so that heap profilers
//! that wrap malloc (heaptrack, valgrind's massif) see every allocation: the
//! `zentralink` binary uses mimalloc, which they cannot see. Prints what was
//! loaded and read, and the inline sizes of the catalog's types. Reads files
//! and providers, never writes.
//!
//! ```text
//! heaptrack target/release/examples/load_heap DIR... [--read] [--allow-credential-env NAME]
//! ```
//!
//! The catalog is never freed, so that heaptrack's "total memory leaked" is
//! its size, beside the "peak heap memory consumption" of the whole load.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use zentralink_model::catalog::{Catalog, ZoneEntry};
use zentralink_model::record::{RecordSet, RecordValue, RrKey};
use zentralink_operator::source::directory::load_catalog;
use zentralink_providers::connect_in;
use zentralink_providers::credentials::{CredentialEnv, CredentialSources};

/// Reads every zone of the catalog once; returns how many record sets were read.
async fn read_all(catalog: &Catalog, env: &CredentialEnv) -> Result<usize, String> {
    let sources = CredentialSources {
        env,
        ..Default::default()
    };
    let mut sets = 0;
    for zone in &catalog.zones {
        let conn = catalog
            .connection(&zone.namespace, &zone.connection)
            .ok_or("no connection")?;
        let provider = connect_in(conn, &sources, None).map_err(|e| e.to_string())?;
        let content = provider
            .read_zone(&zone.zone)
            .await
            .map_err(|e| e.to_string())?;
        sets += content.map_or(0, |c| c.len());
    }
    Ok(sets)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut paths = Vec::new();
    let mut allowed = Vec::new();
    let mut read = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--read" => read = true,
            "--allow-credential-env" => allowed.extend(it.next().cloned()),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let (catalog, errors) = load_catalog(&paths);
    if !errors.is_empty() {
        eprintln!("{errors}");
        return std::process::ExitCode::from(1);
    }
    println!(
        "{} zone(s), {} record set(s)",
        catalog.zones.len(),
        catalog.zones.iter().map(|z| z.desired.len()).sum::<usize>()
    );
    // What one record set costs inline, before what its fields point to.
    println!(
        "size_of: RrKey {}, RecordSet {}, RecordValue {}, ZoneEntry {}",
        std::mem::size_of::<RrKey>(),
        std::mem::size_of::<RecordSet>(),
        std::mem::size_of::<RecordValue>(),
        std::mem::size_of::<ZoneEntry>(),
    );
    if read {
        let result = CredentialEnv::new(std::env::vars(), &allowed).and_then(|env| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(read_all(&catalog, &env))
        });
        match result {
            Ok(sets) => println!("read {sets} record set(s) from the providers"),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
    // Left allocated on purpose: heaptrack's "total memory leaked" is then
    // what the validated catalog holds.
    std::mem::forget(catalog);
    std::process::ExitCode::SUCCESS
}
