//! The bulk progress bar (indicatif) on stderr, drawn only when stderr is a terminal, and
//! the way every other stderr line goes while it is drawn: through
//! [`ProgressBar::suspend`], so a prompt or a row line never lands in a half-drawn bar.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keysmith_facade::BulkProgress;

/// The bar being drawn, if any (the session's prompt callback prints through it).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The bar's layout: rows finished of the total, rows per second, ETA, and the failed
/// rows so far (cut to the terminal's width).
pub const TEMPLATE: &str = "[{bar:24}] {pos}/{len} rows  {rate}  ETA {eta}  {wide_msg}";

/// A bulk run's bar; hidden (and every call a no-op) when `tty` is false.
pub struct Bar {
    bar: ProgressBar,
    tty: bool,
}

impl Bar {
    /// A bar for `total` rows, drawn on stderr when `tty`.
    pub fn new(total: u64, tty: bool) -> Self {
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("#>.").with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", s.per_sec());
                },
            ));
        }
        if tty {
            *lock() = Some(bar.clone());
        }
        Self { bar, tty }
    }

    /// Shows a row's progress.
    pub fn update(&self, p: &BulkProgress) {
        self.bar.set_length(p.total);
        self.bar.set_position(p.done + p.failed);
        if p.failed > 0 {
            self.bar.set_message(format!("{} failed", p.failed));
        }
    }

    /// Runs `f` with the bar cleared (it is drawn again afterwards).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Whether the bar is drawn.
    #[cfg(test)]
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // Leaves the last frame on screen (the next line below it) and stops routing
        // stderr lines through it.
        self.bar.abandon();
        if self.tty {
            *lock() = None;
            eprintln!();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ACTIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` (which writes to the terminal) with the active bar, if any, cleared.
pub fn suspended<R>(f: impl FnOnce() -> R) -> R {
    let bar = lock().clone();
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

/// A line on stderr that does not garble the bar.
pub fn eprintln(line: &str) {
    suspended(|| eprintln!("{line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn no_bar_without_a_terminal() {
        let bar = Bar::new(3, false);
        assert!(bar.is_hidden());
        assert!(lock().is_none(), "a hidden bar is not active");
        bar.update(&BulkProgress {
            job_id: 1,
            done: 1,
            failed: 0,
            total: 3,
            line: 2,
            status: "done".into(),
            outcome: String::new(),
        });
        assert_eq!(bar.suspend(|| 7), 7);
        assert_eq!(suspended(|| 8), 8);
    }
}
