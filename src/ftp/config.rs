//! What the engine is told at start: bounds, waits, and what to keep out of outputs.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Longest control line kept; longer lines are cut (and counted).
    pub max_line: usize,
    /// Commands waiting for a reply, per session.
    pub max_pending: usize,
    /// Longest user name, file name or reply text kept in a record.
    pub max_text: usize,
    /// Sessions tracked at once.
    pub max_sessions: usize,
    /// Announced data endpoints waiting for a connection, over all sessions.
    pub max_expectations: usize,
    /// How long a final reply waits for its data connection's teardown when the
    /// connection is still open (after a 426 with none, the cause is `unknown`, or
    /// `stalled` if the connection stood idle).
    pub abort_settle: Duration,
    /// A data connection that moved no bytes for this long is `stalled`.
    pub stall_after: Duration,
    /// Bytes of unfinished lines held by all sessions together; past it, lines are
    /// cut at 512 bytes (counted as `line_length`).
    pub max_partial_total: usize,
    /// Keep user names out of every output: records carry none, and the session's
    /// user name is replaced by `****` in every text kept (file names, reply texts,
    /// anomaly details, trace lines). Names shorter than 3 characters are not scrubbed
    /// from texts (they would match everywhere).
    pub redact_user: bool,
    /// Emit `Output::Trace` lines: every command (PASS as `PASS ****`) and reply.
    pub trace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_line: 8192,
            max_pending: 64,
            max_text: 256,
            max_sessions: 100_000,
            max_expectations: 100_000,
            abort_settle: Duration::from_secs(2),
            stall_after: Duration::from_secs(5),
            max_partial_total: 32 << 20,
            redact_user: false,
            trace: false,
        }
    }
}
