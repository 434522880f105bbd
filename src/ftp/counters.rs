//! The engine's window onto metrics. Every label value is an enum here, so no caller
//! can create an unbounded label.

use super::command::Verb;
use super::reply::ReplyCode;

/// An enum of metric label values, with `ALL` (for pre-registering every series) and
/// `as_str` (the label). The connection table declares its own with it.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($v),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }
    };
}

label_enum!(
    /// Protocol oddities worth an operator's attention.
    Anomaly {
        PreliminaryWithoutDataConnection => "125_without_data_connection",
        AbortWithoutTransfer => "426_without_transfer",
        ReplyWithoutCommand => "reply_without_command",
        // A reply no command waiting can get (RFC 959 §5.4): kept in the record of
        // the transfer it came during, which goes on waiting.
        ReplyOutOfSequence => "reply_out_of_sequence",
        MalformedReply => "malformed_reply",
        ReplyCodeGlued => "reply_code_without_space",
        MissingReply => "missing_reply",
        BadDataEndpoint => "bad_data_endpoint",
        UnusableDataEndpoint => "unusable_data_endpoint",
        NotAFtpStream => "not_ftp",
    }
);

label_enum!(
    /// Limits that keep memory bounded. Hitting one is counted, never fatal.
    Bound {
        LineLength => "line_length",
        PendingCommands => "pending_commands",
        Expectations => "expectations",
        Sessions => "sessions",
        StoredText => "stored_text",
    }
);

/// Sink for counts. The prometheus registry implements it; tests use `NoCounters`.
pub trait Counters {
    fn command(&mut self, verb: Verb);
    fn reply(&mut self, code: ReplyCode);
    fn anomaly(&mut self, kind: Anomaly);
    fn bound_hit(&mut self, bound: Bound);
    /// A control connection became a session (+1) or ended (-1).
    fn sessions_active(&mut self, delta: i64);
    fn tls_session(&mut self);
    /// A session's control connection returned to cleartext after TLS (CCC).
    fn ccc_session(&mut self);
    /// A data connection was matched (+1) or ended (-1).
    fn data_connections_active(&mut self, delta: i64);
    /// Bytes on data connections; `to_client` is a download.
    fn data_bytes(&mut self, to_client: bool, bytes: u64);
    /// Lines skipped because the session is encrypted (after AUTH TLS).
    fn encrypted_bytes(&mut self, bytes: u64);
}

/// Counts nothing: for tests and for callers that only want events.
pub struct NoCounters;

impl Counters for NoCounters {
    fn command(&mut self, _: Verb) {}
    fn reply(&mut self, _: ReplyCode) {}
    fn anomaly(&mut self, _: Anomaly) {}
    fn bound_hit(&mut self, _: Bound) {}
    fn sessions_active(&mut self, _: i64) {}
    fn tls_session(&mut self) {}
    fn ccc_session(&mut self) {}
    fn data_connections_active(&mut self, _: i64) {}
    fn data_bytes(&mut self, _: bool, _: u64) {}
    fn encrypted_bytes(&mut self, _: u64) {}
}

pub(crate) use label_enum;
