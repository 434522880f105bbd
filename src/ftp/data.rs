//! Data connections: the endpoint a PASV/EPSV/PORT/EPRT announced, and the life of the
//! connection that used it (who opened it, bytes each way, its first FIN or RST).

use std::net::SocketAddr;

use super::input::{ConnId, ExpectId, Side};
use super::output::{CloseHow, DataClose, DataRecord, Mode, Role};
use super::time::Timestamp;

/// An announced data endpoint, and the connection that used it once one did.
#[derive(Debug, Clone)]
pub struct Channel {
    pub expect: ExpectId,
    pub mode: Mode,
    pub announced: SocketAddr,
    pub conn: Option<ConnId>,
}

/// A data connection's observed life.
#[derive(Debug)]
pub struct DataConn {
    pub session: ConnId,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub opened_by: Role,
    pub syn_seen: bool,
    pub first_packet: Timestamp,
    pub last_packet: Timestamp,
    /// When the byte count last grew (retransmissions do not count).
    pub last_progress: Timestamp,
    pub bytes_to_client: u64,
    pub bytes_to_server: u64,
    pub first_close: Option<DataClose>,
    /// The connection left the connection table.
    pub ended: bool,
    /// No transfer or announcement refers to it any more.
    pub released: bool,
    /// Inferred for an encrypted session (no transfer will claim it): whose, kept here
    /// so that it is reported even when it outlives its control connection.
    pub encrypted: Option<Box<EncryptedOwner>>,
}

#[derive(Debug, Clone, Copy)]
pub struct EncryptedOwner {
    pub session: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl DataConn {
    /// A connection just opened at `now`, between the FTP client's and server's ends.
    pub fn opened(
        session: ConnId,
        (client, server): (SocketAddr, SocketAddr),
        opened_by: Role,
        syn_seen: bool,
        now: Timestamp,
    ) -> Self {
        DataConn {
            session,
            client,
            server,
            opened_by,
            syn_seen,
            first_packet: now,
            last_packet: now,
            last_progress: now,
            bytes_to_client: 0,
            bytes_to_server: 0,
            first_close: None,
            ended: false,
            released: false,
            encrypted: None,
        }
    }

    pub fn role_of(&self, side: Side) -> Role {
        match side {
            Side::Initiator => self.opened_by,
            Side::Responder => self.opened_by.other(),
        }
    }

    pub fn progress(&mut self, ts: Timestamp, from: Side, bytes: u64) {
        self.last_packet = self.last_packet.max(ts);
        if bytes > 0 {
            self.last_progress = self.last_progress.max(ts);
            match self.role_of(from) {
                Role::Server => self.bytes_to_client += bytes,
                Role::Client => self.bytes_to_server += bytes,
            }
        }
    }

    /// Record a FIN or RST; only the first one is the teardown.
    pub fn close(&mut self, ts: Timestamp, from: Side, how: CloseHow) {
        self.last_packet = self.last_packet.max(ts);
        if self.first_close.is_none() {
            self.first_close = Some(DataClose {
                by: self.role_of(from),
                how,
                at: ts,
            });
        }
    }

    pub fn record(&self) -> DataRecord {
        DataRecord {
            client: self.client,
            server: self.server,
            opened_by: self.opened_by,
            syn_seen: self.syn_seen,
            bytes_to_client: self.bytes_to_client,
            bytes_to_server: self.bytes_to_server,
            first_close: self.first_close,
            first_packet: self.first_packet,
            last_packet: self.last_packet,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn ts(ms: u64) -> Timestamp {
        Timestamp::from_nanos(ms * 1_000_000)
    }

    /// A passive data connection, opened by the client at 0 ms, nothing moved yet.
    pub fn conn() -> DataConn {
        let ends = (
            "10.0.0.2:40000".parse().unwrap(),
            "10.0.0.1:50000".parse().unwrap(),
        );
        DataConn::opened(ConnId(1), ends, Role::Client, true, ts(0))
    }

    #[test]
    fn bytes_are_attributed_by_role_not_by_side() {
        let mut d = conn();
        d.progress(ts(1), Side::Responder, 1000);
        d.progress(ts(2), Side::Initiator, 10);
        assert_eq!((d.bytes_to_client, d.bytes_to_server), (1000, 10));
        let mut active = conn();
        active.opened_by = Role::Server;
        active.progress(ts(1), Side::Initiator, 1000);
        assert_eq!(active.bytes_to_client, 1000);
    }

    #[test]
    fn only_the_first_teardown_counts() {
        let mut d = conn();
        d.close(ts(5), Side::Initiator, CloseHow::Rst);
        d.close(ts(6), Side::Responder, CloseHow::Fin);
        assert_eq!(
            d.first_close,
            Some(DataClose {
                by: Role::Client,
                how: CloseHow::Rst,
                at: ts(5)
            })
        );
    }
}
