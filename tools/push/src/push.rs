//! A whole push: read the image, check the registry, upload the blobs (`--jobs` at once,
//! each skipped if the repository has it, each in chunks and resumable), then the manifest,
//! whose digest is the result.

use crate::archive::{self, Select};
use crate::blob::{sha256_digest, Blob};
use crate::cli::PushArgs;
use crate::progress::Progress;
use crate::registry::auth::Credentials;
use crate::registry::upload::{Uploader, EXIT_AFTER_BYTES};
use crate::registry::Client;
use crate::state::State;
use indicatif::HumanBytes;
use std::sync::Mutex;

pub fn run(args: &PushArgs) -> Result<String, String> {
    let progress = Progress::new(args.quiet);
    let select = Select { image: args.image.clone(), platform: args.platform.clone() };
    let spool = progress.spooling();
    let image = archive::open(&args.source, &select, args.tmp_dir.as_deref(), &|n| {
        if let Some(bar) = &spool {
            bar.set_position(n);
        }
    });
    if let Some(bar) = spool {
        bar.finish_and_clear();
    }
    let image = image?;
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    let layers = match image.layers.len() {
        1 => "1 layer".to_string(),
        n => format!("{n} layers"),
    };
    progress.line(&format!("{}: {layers}, {}", image.describe, HumanBytes(total)));

    let target = &args.target;
    let client = Client::new(&target.base_url(args.plain_http), &target.repository, credentials(args)?);
    client.check()?;
    let (state, warning) =
        State::open(args.state_dir.as_deref(), &format!("{}/{}", target.registry, target.repository));
    if let Some(warning) = warning {
        progress.line(&format!("warning: {warning}"));
    }
    let exit_after = std::env::var(EXIT_AFTER_BYTES).ok().and_then(|v| v.parse().ok());
    let uploader = Uploader { client: &client, state: &state, chunk_size: args.chunk_size, exit_after };
    let mut blobs: Vec<&Blob> = image.layers.iter().collect();
    blobs.push(&image.config);
    blobs.dedup_by(|a, b| a.digest == b.digest);
    upload_all(&uploader, &blobs, args.jobs, &progress)?;

    let digest = sha256_digest(&image.manifest);
    let reported = client.put_manifest(&target.tag, &image.manifest_type, &image.manifest)?;
    if let Some(reported) = reported.filter(|r| *r != digest) {
        return Err(format!("the registry stored the manifest as {reported}, not {digest}"));
    }
    progress.line(&format!("{target}: manifest {digest}"));
    Ok(digest)
}

/// Uploads `blobs` on `jobs` threads; after a failure no new blob is started.
fn upload_all(uploader: &Uploader<'_>, blobs: &[&Blob], jobs: usize, progress: &Progress) -> Result<(), String> {
    let queue = Mutex::new(blobs.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(blobs.len()) {
            scope.spawn(|| loop {
                if !failures.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                    return;
                }
                let Some(blob) = queue.lock().unwrap_or_else(|e| e.into_inner()).next() else { return };
                let bar = progress.bar(blob);
                let outcome = uploader.push(blob, &bar);
                bar.finish(&outcome);
                if let Err(e) = outcome {
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// `--username/--password`, else EDGE_PUSH_USERNAME/EDGE_PUSH_PASSWORD, else the registry's
/// entry in the docker config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
fn credentials(args: &PushArgs) -> Result<Option<Credentials>, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let username = args.username.clone().or_else(|| env("EDGE_PUSH_USERNAME"));
    let password = args.password.clone().or_else(|| env("EDGE_PUSH_PASSWORD"));
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        (Some(user), None) => {
            Err(format!("a username ({user}) without a password: give --password or EDGE_PUSH_PASSWORD"))
        }
        (None, Some(_)) => Err("a password without a username: give --username or EDGE_PUSH_USERNAME".into()),
        (None, None) => {
            let dir = env("DOCKER_CONFIG")
                .map(std::path::PathBuf::from)
                .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".docker")));
            let json = dir.and_then(|d| std::fs::read_to_string(d.join("config.json")).ok());
            Ok(json.and_then(|j| Credentials::from_docker_config(&j, &args.target.registry)))
        }
    }
}
