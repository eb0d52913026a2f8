//! What the user sees on stderr: a bar per blob while it uploads (only on a terminal, and
//! not with `--quiet`), a counter while a stream is spooled, and one line per blob at the
//! end of its upload (also without a terminal, so logs keep them).

use crate::blob::Blob;
use crate::registry::upload::{Pushed, Watch};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    multi: Option<MultiProgress>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        let multi = show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi, quiet }
    }

    /// A line above the bars (or plain on stderr), unless `--quiet`.
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// A bar for one blob's upload.
    pub fn bar(&self, blob: &Blob) -> BlobBar<'_> {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(blob.size));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(blob.short().to_string());
            bar
        });
        BlobBar { bar, progress: self, label: blob.short().to_string(), size: blob.size }
    }

    /// A counter for the bytes of a stream being spooled.
    pub fn spooling(&self) -> Option<ProgressBar> {
        let bar = self.multi.as_ref()?.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("reading the archive: {bytes} {bytes_per_sec}").expect("a valid template"),
        );
        Some(bar)
    }
}

pub struct BlobBar<'a> {
    bar: Option<ProgressBar>,
    progress: &'a Progress,
    label: String,
    size: u64,
}

impl BlobBar<'_> {
    /// Removes the bar and prints the blob's line.
    pub fn finish(self, outcome: &Result<Pushed, String>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let size = HumanBytes(self.size);
        let line = match outcome {
            Ok(Pushed::Existed) => format!("{}  {size}  already in the repository, skipped", self.label),
            Ok(Pushed::Uploaded { chunks, resumed_at, sent }) => {
                let resumed: Vec<String> = resumed_at.iter().map(u64::to_string).collect();
                let resumed = if resumed.is_empty() {
                    String::new()
                } else {
                    format!(", resumed at byte {}", resumed.join(", "))
                };
                let plural = if *chunks == 1 { "" } else { "s" };
                format!("{}  {size}  pushed in {chunks} chunk{plural}{resumed}, sent {sent} bytes", self.label)
            }
            Err(_) => format!("{}  {size}  failed", self.label),
        };
        self.progress.line(&line);
    }
}

impl Watch for BlobBar<'_> {
    fn position(&self, at: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(at);
        }
    }

    fn note(&self, line: String) {
        self.progress.line(&line);
    }
}
