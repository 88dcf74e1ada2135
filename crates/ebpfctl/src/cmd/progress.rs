//! Progress bars for push and pull (indicatif), on stderr only when it is a terminal.
use std::io::IsTerminal;
use std::sync::Arc;

use ebpfctl_oci::{Progress, Transfer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

struct Bars {
    multi: MultiProgress,
    verb: &'static str,
}

struct Bar {
    bar: ProgressBar,
    label: String,
}

/// Bars for `verb` (`push`, `pull`) when stderr is a terminal; else nothing at all.
pub fn bars(verb: &'static str) -> Option<Arc<dyn Progress>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(Bars {
        multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        verb,
    }))
}

impl Progress for Bars {
    fn begin(&self, label: &str, total: u64) -> Arc<dyn Transfer> {
        let style = ProgressStyle::with_template(
            "{prefix} {msg:32!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        // Styled and named before it is added, so that its first frame already says what it is.
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(style)
            .with_prefix(self.verb)
            .with_message(label.to_string());
        let bar = self.multi.add(bar);
        Arc::new(Bar {
            bar,
            label: label.to_string(),
        })
    }
}

impl Transfer for Bar {
    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn done(&self) {
        self.bar.finish();
    }

    fn skipped(&self) {
        self.bar.set_style(
            ProgressStyle::with_template("{prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar
            .finish_with_message(format!("{}: already in the registry", self.label));
    }
}
