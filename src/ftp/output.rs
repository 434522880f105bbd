//! What the engine produces: events for the sinks, and expectations for whoever feeds
//! it (the connection table), naming the data connections it wants to be told about.

use std::net::{IpAddr, SocketAddr};

use super::command::Verb;
use super::counters::Anomaly;
use super::input::{ConnId, ExpectId};
use super::reply::ReplyCode;
use super::time::Timestamp;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }

    pub fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// How the data endpoint was announced.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pasv => "PASV",
            Mode::Epsv => "EPSV",
            Mode::Port => "PORT",
            Mode::Eprt => "EPRT",
        }
    }

    /// Who listens at the announced endpoint.
    pub fn listener(self) -> Role {
        match self {
            Mode::Pasv | Mode::Epsv => Role::Server,
            Mode::Port | Mode::Eprt => Role::Client,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// 226 or 250 (any 2yz final reply).
    Completed,
    /// 426.
    Aborted,
    /// Another 4yz or 5yz final reply.
    Failed,
    /// No final reply before the session ended or timed out.
    Incomplete,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Completed,
        Outcome::Aborted,
        Outcome::Failed,
        Outcome::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "failed",
            Outcome::Incomplete => "incomplete",
        }
    }
}

/// What a 426 is attributed to, from what happened to the data connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbortCause {
    ClientReset,
    ServerReset,
    ClientClosed,
    ServerClosed,
    /// The client sent ABOR during the transfer.
    Abor,
    /// The data connection was open and had moved no bytes for a while.
    Stalled,
    /// No data connection was seen for the transfer.
    NoDataConnection,
    /// A TLS-protected data connection ended with a TCP FIN but no TLS close_notify
    /// (RFC 4217 §10): the receiver cannot tell the data was whole. Known only where the
    /// TLS is terminated (the proxy); a capture sees the alert encrypted, if at all.
    TlsUncleanShutdown,
    Unknown,
}

impl AbortCause {
    pub const ALL: [AbortCause; 9] = [
        AbortCause::ClientReset,
        AbortCause::ServerReset,
        AbortCause::ClientClosed,
        AbortCause::ServerClosed,
        AbortCause::Abor,
        AbortCause::Stalled,
        AbortCause::NoDataConnection,
        AbortCause::TlsUncleanShutdown,
        AbortCause::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AbortCause::ClientReset => "client_reset",
            AbortCause::ServerReset => "server_reset",
            AbortCause::ClientClosed => "client_closed",
            AbortCause::ServerClosed => "server_closed",
            AbortCause::Abor => "abor",
            AbortCause::Stalled => "stalled",
            AbortCause::NoDataConnection => "no_data_connection",
            AbortCause::TlsUncleanShutdown => "tls_unclean_shutdown",
            AbortCause::Unknown => "unknown",
        }
    }

    pub fn from_close(close: &DataClose) -> AbortCause {
        match (close.by, close.how) {
            (Role::Client, CloseHow::Rst) => AbortCause::ClientReset,
            (Role::Server, CloseHow::Rst) => AbortCause::ServerReset,
            (Role::Client, CloseHow::Fin) => AbortCause::ClientClosed,
            (Role::Server, CloseHow::Fin) => AbortCause::ServerClosed,
            (_, CloseHow::FinWithoutCloseNotify) => AbortCause::TlsUncleanShutdown,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseHow {
    Fin,
    Rst,
    /// A FIN on a TLS connection that had sent no close_notify first (an unclean TLS
    /// shutdown); seen only where the TLS is terminated.
    FinWithoutCloseNotify,
}

impl CloseHow {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseHow::Fin => "fin",
            CloseHow::Rst => "rst",
            CloseHow::FinWithoutCloseNotify => "fin_without_close_notify",
        }
    }
}

/// The first FIN or RST seen on a data connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DataClose {
    pub by: Role,
    pub how: CloseHow,
    pub at: Timestamp,
}

/// A data connection as seen up to the moment its transfer got its final reply.
#[derive(Clone, Debug, PartialEq)]
pub struct DataRecord {
    /// The FTP client's end and the FTP server's end of the data connection.
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub opened_by: Role,
    pub syn_seen: bool,
    pub bytes_to_client: u64,
    pub bytes_to_server: u64,
    pub first_close: Option<DataClose>,
    pub first_packet: Timestamp,
    pub last_packet: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransferRecord {
    pub session: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The control connection's ends.
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// `None` only for a 426 in a session picked up after its transfer command.
    pub command: Option<Verb>,
    pub argument: Option<String>,
    pub mode: Option<Mode>,
    /// Every reply code after the command, in order (capped).
    pub replies: Vec<ReplyCode>,
    pub final_code: Option<ReplyCode>,
    /// Text of the final reply when it was a single line (capped).
    pub final_text: Option<String>,
    pub outcome: Outcome,
    /// For `Aborted` (426): what the data connection's teardown says.
    pub abort_cause: Option<AbortCause>,
    /// For `Failed` and `Incomplete`: what broke the transfer, when something did
    /// (a reset or early close of its data connection, a stall, an ABOR).
    pub interruption_cause: Option<AbortCause>,
    /// The data connection went to another address than the one announced.
    pub nat: bool,
    pub announced_size: Option<u64>,
    /// Final reply time minus the data connection's first FIN/RST (negative when the
    /// teardown followed the reply).
    pub teardown_to_reply_seconds: Option<f64>,
    pub data: Option<DataRecord>,
}

impl TransferRecord {
    /// The command's name; `unknown` when the capture did not see it.
    pub fn command_name(&self) -> &'static str {
        self.command.map_or("unknown", Verb::as_str)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    Quit,
    Fin,
    Rst,
    Timeout,
    Evicted,
    CaptureEnd,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::Quit,
        EndReason::Fin,
        EndReason::Rst,
        EndReason::Timeout,
        EndReason::Evicted,
        EndReason::CaptureEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Quit => "quit",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Timeout => "timeout",
            EndReason::Evicted => "evicted",
            EndReason::CaptureEnd => "capture_end",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub session: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Picked up mid-stream (the TCP handshake was not seen).
    pub midstream: bool,
    pub user: Option<String>,
    /// AUTH TLS/SSL was accepted (234).
    pub tls: bool,
    /// The control connection returned to cleartext after TLS (CCC, RFC 4217 §6).
    pub ccc: bool,
    pub commands: u32,
    /// Reply code → count, sorted by code.
    pub reply_codes: Vec<(ReplyCode, u32)>,
    pub transfers: u32,
    pub gap_bytes: u64,
    pub end_reason: EndReason,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyRecord {
    pub session: u64,
    pub ts: Timestamp,
    pub kind: Anomaly,
    /// A short human-readable note (capped; never a password).
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Transfer(Box<TransferRecord>),
    Session(Box<SessionRecord>),
    Anomaly(AnomalyRecord),
    /// A data connection of a session gone encrypted, inferred (see
    /// `EncryptedExpectation`), when it ended.
    EncryptedData(Box<EncryptedDataRecord>),
}

/// A data connection inferred for an encrypted session: what is known of it without its
/// commands and replies (no command, no file, no final reply), its teardown included.
#[derive(Clone, Debug, PartialEq)]
pub struct EncryptedDataRecord {
    pub session: u64,
    /// The control connection's ends.
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub data: DataRecord,
}

/// A session went encrypted (AUTH TLS accepted): the data endpoints it announces next
/// cannot be read. The connection table reports every new connection (a SYN) between
/// the control connection's two hosts, on ports other than the control ports, as
/// `ConnKind::Data(id)`, until `Unexpect(id)`. It is an inference, not a reading: another
/// connection between the same two hosts at that time is taken for one too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedExpectation {
    pub id: ExpectId,
    pub control: ConnId,
    /// The control connection's ends (client, server).
    pub control_ends: (SocketAddr, SocketAddr),
}

/// An announced data endpoint. The connection table should report the next TCP
/// connection to `listener.port()` as `ConnKind::Data(id)` when it goes to
/// `listener`'s address, or, for a listener behind NAT (or announcing an address it
/// does not use), when it goes from `connector_ip` to `listener_control_ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub id: ExpectId,
    pub control: ConnId,
    /// The control connection's ends (client, server).
    pub control_ends: (SocketAddr, SocketAddr),
    pub listener: SocketAddr,
    /// The listener's address on the control connection.
    pub listener_control_ip: IpAddr,
    /// The other side's address on the control connection.
    pub connector_ip: IpAddr,
    pub created: Timestamp,
}

/// A data connection, named as the connection table knows it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub conn: ConnId,
    /// Its two ends (in either order).
    pub ends: (SocketAddr, SocketAddr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Event(Event),
    Expect(Expectation),
    ExpectEncrypted(EncryptedExpectation),
    /// The endpoint is no longer expected (replaced, refused, or its session ended).
    Unexpect(ExpectId),
    /// No transfer waits on this data connection any more: it may now time out like
    /// any idle connection. Until then a long silence does not end it.
    Release(Release),
    /// A debug line (only with `Config::trace`): a command or a reply as parsed.
    Trace(String),
}
