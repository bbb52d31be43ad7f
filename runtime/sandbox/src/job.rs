//! One job as the sandbox sees it: the fuel each call may burn, the
//! sealed log (escaped, capped), the cancel flag, and why a call failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use keyong_model::api::ModuleLog;

/// Why one unit's mapper call produced nothing. Counted, never shown per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFailure {
    /// The module trapped (panic, unreachable, out-of-bounds, stack overflow…).
    Trap,
    /// The call burnt all its fuel (the deterministic per-call limit).
    OutOfFuel,
    /// The call ran past its wall-clock backstop.
    Deadline,
    /// The module exceeded a memory or table limit.
    ResourceLimit,
    /// The module returned something malformed (e.g. a ragged table).
    InvalidOutput,
    /// The host ended the job (withdrawn, closed, or past its backstop)
    /// while the call ran; the call stopped within one epoch tick.
    Cancelled,
}

/// The error an epoch callback raises when the job was cancelled.
#[derive(Debug)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the job was cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// What one job's calls share: the fuel each call may burn, the sealed
/// log, and the flag the host sets when the job ends, which stops a running
/// call within one epoch tick (10 ms).
#[derive(Debug)]
pub struct Job {
    pub(crate) fuel: Option<u64>,
    pub(crate) log: Mutex<JobLog>,
    cancelled: AtomicBool,
}

impl Job {
    /// A job whose calls get the sandbox's fuel limits, or `fuel` where it is
    /// lower (a module's declared fuel), and a log capped at `log_cap` bytes.
    pub fn new(fuel: Option<u64>, log_cap: usize) -> Arc<Self> {
        Arc::new(Self { fuel, log: Mutex::new(JobLog::new(log_cap)), cancelled: AtomicBool::new(false) })
    }

    /// Stops the job's calls: the running one traps at the next epoch tick,
    /// later ones fail at once.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The log so far (and empties it).
    pub fn take_log(&self) -> ModuleLog {
        std::mem::take(&mut *self.log.lock().expect("log lock")).finish()
    }

    pub(crate) fn note(&self, note: String) {
        self.log.lock().expect("log lock").notes.push(note);
    }
}

/// The sealed log of one job: what the module wrote (host `log` lines and
/// captured stdio), as data, and the host's notes, which the module cannot
/// write.
#[derive(Debug, Default)]
pub(crate) struct JobLog {
    text: String,
    notes: Vec<String>,
    dropped_bytes: u64,
    cap: usize,
}

impl JobLog {
    fn new(cap: usize) -> Self {
        Self { cap, ..Self::default() }
    }

    pub(crate) fn push(&mut self, line: &str) {
        let line = escape(line);
        if self.text.len() + line.len() + 1 > self.cap {
            self.dropped_bytes += line.len() as u64 + 1;
            return;
        }
        self.text.push_str(&line);
        self.text.push('\n');
    }

    fn finish(mut self) -> ModuleLog {
        if self.dropped_bytes > 0 {
            self.notes.push(format!("{} further bytes of module log dropped at the per-job cap", self.dropped_bytes));
        }
        ModuleLog { module: self.text, host: self.notes }
    }
}

/// A module's text as data: control characters (terminal escapes, carriage
/// returns, C1 controls) and bidirectional overrides are written as
/// `\u{…}`, so a line can neither move a reviewer's cursor nor reorder what
/// they read. Line breaks separate lines; tabs stay.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // Bidirectional overrides and marks, zero-width characters, line and
        // paragraph separators: they reorder, hide or break what a reviewer reads.
        let invisible = matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{feff}'
        );
        if c == '\\' {
            // So a module cannot print something that looks like an escape.
            out.push_str("\\\\");
        } else if (c.is_control() && c != '\n' && c != '\t') || invisible {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_log_is_capped_and_notes_are_the_hosts_own() {
        let mut log = JobLog::new(10);
        log.push("12345");
        log.push("123456789");
        let t = log.finish();
        assert_eq!(t.module, "12345\n");
        assert_eq!(t.host, ["10 further bytes of module log dropped at the per-job cap"]);
    }

    #[test]
    fn module_text_is_shown_as_data() {
        assert_eq!(escape("ok\tfine\nnext"), "ok\tfine\nnext");
        assert_eq!(escape("\x1b[2J\rforged"), "\\u{1b}[2J\\u{d}forged");
        assert_eq!(escape("a\u{202e}b\u{9b}c\u{200b}\u{2028}"), "a\\u{202e}b\\u{9b}c\\u{200b}\\u{2028}");
        assert_eq!(escape("\\u{1b}"), "\\\\u{1b}", "a literal backslash is not an escape");
    }
}
