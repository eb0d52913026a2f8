//! The command line: `edge-push push [options] <source> <registry>/<repository>:<tag>`.

use crate::archive::{host_platform, Source};
use crate::target::Target;
use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
edge-push: push an image to an OCI registry in chunks no bigger than the registry allows,
several layers at once, resuming interrupted uploads.

usage: edge-push push [options] <source> <registry>/<repository>:<tag>

sources:
  -                       a `docker save` archive on stdin (docker save app:1 | edge-push push - ...)
  <file>                  a `docker save` archive file (either format: docker's own, or an OCI layout)
  oci:<dir>[:<name>]      an OCI image layout directory
  docker-daemon:<image>   runs `docker save <image>` ($DOCKER, default docker)

options:
  -j, --jobs <n>          blobs uploaded at once (default 3)
  -u, --username <user>   credentials (or EDGE_PUSH_USERNAME; else ~/.docker/config.json auths)
  -p, --password <pass>   (or EDGE_PUSH_PASSWORD)
      --plain-http        speak HTTP, not HTTPS (the default for localhost and 127.0.0.0/8)
      --chunk-size <size> bytes per PATCH, e.g. 64MiB (default: the registry's
                          OCI-Chunk-Max-Length, rounded down to a multiple of its
                          OCI-Chunk-Min-Length; 64MiB when it sets none)
      --image <name>      which image of an archive or layout that holds several
      --platform <p>      os/arch[/variant] to take from an index (default: this machine's)
      --tmp-dir <dir>     where stdin and docker save output are spooled (default $TMPDIR)
      --state-dir <dir>   where open uploads are remembered for a later run to resume
                          (default $XDG_STATE_HOME/edge-push or ~/.local/state/edge-push)
  -q, --quiet             no progress bars and no per-blob lines; only the digest
  -h, --help, -V, --version

The manifest's digest is printed on stdout once the manifest is pushed.";

#[derive(Debug)]
pub struct PushArgs {
    pub source: Source,
    pub target: Target,
    pub jobs: usize,
    pub username: Option<String>,
    pub password: Option<String>,
    pub plain_http: bool,
    pub chunk_size: Option<u64>,
    pub image: Option<String>,
    pub platform: String,
    pub tmp_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub quiet: bool,
}

#[derive(Debug)]
pub enum Command {
    Push(Box<PushArgs>),
    Help,
    Version,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut positional: Vec<String> = Vec::new();
    let mut args = PushArgs {
        source: Source::Stdin,
        target: Target { registry: String::new(), repository: String::new(), tag: String::new() },
        jobs: 3,
        username: None,
        password: None,
        plain_http: false,
        chunk_size: None,
        image: None,
        platform: host_platform(),
        tmp_dir: None,
        state_dir: None,
        quiet: false,
    };
    let text = |v: Result<OsString, lexopt::Error>| -> Result<String, String> {
        v.map_err(|e| e.to_string())?.into_string().map_err(|v| format!("not UTF-8: {v:?}"))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Short('j') | Long("jobs") => {
                let v = text(parser.value())?;
                args.jobs =
                    v.parse().ok().filter(|&n| n > 0).ok_or_else(|| format!("--jobs {v}: a whole number above 0"))?;
            }
            Short('u') | Long("username") => args.username = Some(text(parser.value())?),
            Short('p') | Long("password") => args.password = Some(text(parser.value())?),
            Long("plain-http") => args.plain_http = true,
            Long("chunk-size") => args.chunk_size = Some(parse_size(&text(parser.value())?)?),
            Long("image") => args.image = Some(text(parser.value())?),
            Long("platform") => {
                let p = text(parser.value())?;
                if p.split('/').count() < 2 || p.split('/').any(str::is_empty) {
                    return Err(format!("--platform {p}: expected os/arch or os/arch/variant"));
                }
                args.platform = p;
            }
            Long("tmp-dir") => args.tmp_dir = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?)),
            Long("state-dir") => args.state_dir = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?)),
            Short('q') | Long("quiet") => args.quiet = true,
            Value(v) => positional.push(text(Ok(v))?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    match positional.as_slice() {
        [] => Ok(Command::Help),
        [cmd, source, target] if cmd == "push" => {
            args.source = Source::parse(source)?;
            args.target = Target::parse(target)?;
            Ok(Command::Push(Box::new(args)))
        }
        [cmd, ..] if cmd == "push" => Err("push takes two arguments: <source> <registry>/<repository>:<tag>".into()),
        [cmd, ..] => Err(format!("unknown command {cmd:?} (the one command is push)")),
    }
}

/// `1048576`, `64MiB`, `100MB`, `8M` (M = MiB), `1GiB`.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let s = raw.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("size {raw:?}: use bytes or a unit (KiB, MiB, GiB, KB, MB, GB)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("size {raw:?}: not a number"))?;
    n.checked_mul(factor).filter(|&b| b > 0).ok_or_else(|| format!("size {raw:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_args(line: &str) -> Result<PushArgs, String> {
        match parse(line.split_whitespace().map(OsString::from))? {
            Command::Push(args) => Ok(*args),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn a_push_with_every_flag() {
        let a = push_args(
            "push -j 5 -u writer --password pw --plain-http --chunk-size 16MiB --image app:1 \
             --platform linux/arm64/v8 --tmp-dir /t --state-dir /s -q app.tar reg.io:5000/team/app:1",
        )
        .unwrap();
        assert_eq!(a.jobs, 5);
        assert_eq!((a.username.as_deref(), a.password.as_deref()), (Some("writer"), Some("pw")));
        assert!(a.plain_http && a.quiet);
        assert_eq!(a.chunk_size, Some(16 << 20));
        assert_eq!(a.platform, "linux/arm64/v8");
        assert_eq!(a.source, Source::Archive("app.tar".into()));
        assert_eq!(a.target.to_string(), "reg.io:5000/team/app:1");
        let d = push_args("push - reg.io/app:1").unwrap();
        assert_eq!((d.jobs, d.source, d.platform.starts_with("linux/")), (3, Source::Stdin, true));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(push_args("push -j 0 - reg.io/a:1").unwrap_err().contains("--jobs"));
        assert!(push_args("push - ").unwrap_err().contains("two arguments"));
        assert!(push_args("pull - reg.io/a:1").unwrap_err().contains("unknown command"));
        assert!(push_args("push --nope - reg.io/a:1").unwrap_err().contains("nope"));
        assert!(push_args("push --platform linux - reg.io/a:1").unwrap_err().contains("os/arch"));
        assert!(push_args("push - app:1").unwrap_err().contains("registry host"));
        assert!(matches!(parse(["--help"].map(OsString::from)), Ok(Command::Help)));
        assert!(matches!(parse(Vec::<OsString>::new()), Ok(Command::Help)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("8m").unwrap(), 8 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        for bad in ["", "MiB", "12 parsecs", "0", "99999999999999GiB", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
