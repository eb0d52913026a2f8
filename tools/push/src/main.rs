//! edge-push: pushes an image from `docker save` output (a file or stdin), an OCI layout, or
//! a docker daemon to an OCI registry in chunks no bigger than the registry's
//! `OCI-Chunk-Max-Length`, several blobs at once, resuming interrupted uploads from the
//! offset the registry reports. Made for registries behind a request body limit (Cloudflare
//! Workers: 100 MB on the Free and Pro plans), where docker, podman and skopeo cannot push a
//! bigger layer. See `edge-push --help` and the README's "Big layers" section.

mod archive;
mod blob;
mod chunks;
mod cli;
mod progress;
mod push;
mod registry;
mod resume;
mod state;
mod target;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(cli::Command::Version) => {
            println!("edge-push {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(cli::Command::Push(args)) => match push::run(&args) {
            Ok(digest) => {
                println!("{digest}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("edge-push: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("edge-push: {e}\n(edge-push --help for usage)");
            ExitCode::from(2)
        }
    }
}
