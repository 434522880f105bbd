//! The seam between the proxy's sockets and the engine: every session and data task
//! sends what it relays as notes; one analysis thread turns them into the engine's own
//! stream events (the same `Input` capture mode builds from packets), and writes the
//! engine's events with what only the proxy knows: `via`, each data connection's two
//! `legs`, and the `origin` of a 426 or 421.
//!
//! The engine sees the server-side conversation (commands as forwarded, replies as the
//! server sent them) and each data connection as one connection from end to end: bytes
//! as read from each peer, and the first FIN or RST a peer sent. Its outputs and
//! metrics are therefore those of capture mode on the server-side wire.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::ftp::{
    Bound, CloseHow, CloseReason, ConnId, ConnKind, Counters, Engine, Event, Expectation, Input,
    Output, Side, StreamEvent, Timestamp,
};
use crate::sink::eventlog::{LogOptions, event_json};
use crate::sink::metrics::ProxyMetrics;
use crate::sink::{EventLog, Metrics};

use super::relay::{Leg, LegEvent};

/// A stream event that owns its bytes, to cross to the analysis thread.
#[derive(Debug)]
pub enum Stream {
    Opened {
        initiator: SocketAddr,
        responder: SocketAddr,
    },
    Data {
        from: Side,
        bytes: Vec<u8>,
    },
    Progress {
        from: Side,
        bytes: u64,
    },
    Fin {
        from: Side,
    },
    Reset {
        from: Side,
    },
    Closed,
}

/// What a proxy task reports.
#[derive(Debug)]
pub enum Note {
    /// An event on a control connection (`Opened` starts a session) or on a data
    /// connection announced by `DataOpened`.
    Stream(ConnId, Stream),
    /// Both legs of a data connection are up. `initiator`/`responder` are the ends the
    /// engine is told (client and server peers, by who listened on the server leg).
    DataOpened {
        control: ConnId,
        conn: ConnId,
        initiator: SocketAddr,
        responder: SocketAddr,
        client_leg: (SocketAddr, SocketAddr),
        server_leg: (SocketAddr, SocketAddr),
    },
    /// A leg's bytes or close, for the `legs` of the transfer record.
    Leg(ConnId, Leg, LegEvent),
    /// A reply the proxy wrote itself (never one of the server's).
    ProxyReply {
        client: SocketAddr,
        server: Option<SocketAddr>,
        code: u16,
        reason: &'static str,
        /// What went wrong, in words (a TLS error), when there is more than the reason.
        detail: Option<String>,
    },
    /// A leg of a control connection went under TLS (or, after CCC, back to clear).
    ControlTls {
        conn: ConnId,
        leg: Leg,
        version: Option<&'static str>,
    },
    /// A data connection's legs are under TLS (their versions), once both are up.
    DataTls {
        conn: ConnId,
        client: Option<&'static str>,
        server: Option<&'static str>,
    },
}

pub struct Msg {
    pub ts: Timestamp,
    pub note: Note,
}

/// Where proxy tasks send their notes. Bounded: a slow analysis thread slows the
/// relays rather than growing a queue.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Msg>,
    clock: fn() -> Timestamp,
}

/// Notes queued at most; a note carries at most one control read (16 KiB).
pub const FEED_QUEUE: usize = 1024;

impl Feed {
    pub fn new(clock: fn() -> Timestamp) -> (Feed, mpsc::Receiver<Msg>) {
        let (tx, rx) = mpsc::channel(FEED_QUEUE);
        (Feed { tx, clock }, rx)
    }

    pub async fn send(&self, note: Note) {
        let ts = (self.clock)();
        // The analysis thread outlives every task; a closed channel means shutdown.
        let _ = self.tx.send(Msg { ts, note }).await;
    }
}

#[derive(Debug, Default, Clone)]
struct LegRecord {
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    bytes_to_client: u64,
    bytes_to_server: u64,
    first_close: Option<(&'static str, CloseHow, Timestamp)>,
    /// The leg's TLS version, when it was protected.
    tls: Option<&'static str>,
}

impl LegRecord {
    fn json(&self) -> Value {
        json!({
            "local": self.local.map(|a| a.to_string()),
            "peer": self.peer.map(|a| a.to_string()),
            "bytes_to_client": self.bytes_to_client,
            "bytes_to_server": self.bytes_to_server,
            "first_close": self.first_close.map(|(by, how, at)| json!({
                "by": by,
                "how": how.as_str(),
                "at": at.epoch_seconds(),
            })),
            "tls": self.tls,
        })
    }
}

struct DataLegs {
    control_ends: (SocketAddr, SocketAddr),
    ends: (SocketAddr, SocketAddr),
    client_side: Side,
    client: LegRecord,
    server: LegRecord,
}

/// The analysis side: the engine and what it needs to name data connections.
pub struct Analysis<W: std::io::Write> {
    engine: Engine,
    metrics: Metrics,
    proxy: ProxyMetrics,
    log: EventLog<W>,
    /// Expectations the engine announced, by control connection (oldest first).
    expected: HashMap<ConnId, Vec<Expectation>>,
    /// Control connections' ends, for the data connections they announce.
    controls: HashMap<ConnId, (SocketAddr, SocketAddr)>,
    legs: HashMap<ConnId, DataLegs>,
    /// Sessions with a leg under TLS, by their control connection's ends.
    tls: HashMap<(SocketAddr, SocketAddr), SessionTls>,
}

/// A session's TLS, as the proxy terminated it: each leg's version while under TLS.
#[derive(Debug, Default, Clone, Copy)]
struct SessionTls {
    client: Option<&'static str>,
    server: Option<&'static str>,
    /// The client leg went back to clear (CCC).
    ccc: bool,
}

impl<W: std::io::Write> Analysis<W> {
    pub fn new(
        engine: Engine,
        metrics: Metrics,
        proxy: ProxyMetrics,
        log: W,
        opts: LogOptions,
    ) -> Self {
        Analysis {
            engine,
            metrics,
            proxy,
            log: EventLog::new(log, opts),
            expected: HashMap::new(),
            controls: HashMap::new(),
            legs: HashMap::new(),
            tls: HashMap::new(),
        }
    }

    pub fn log_mut(&mut self) -> &mut EventLog<W> {
        &mut self.log
    }

    pub fn handle(&mut self, msg: Msg) {
        let ts = msg.ts;
        match msg.note {
            Note::Stream(conn, ev) => self.stream(ts, conn, ev),
            Note::DataOpened {
                control,
                conn,
                initiator,
                responder,
                client_leg,
                server_leg,
            } => self.data_opened(
                ts,
                control,
                conn,
                (initiator, responder),
                client_leg,
                server_leg,
            ),
            Note::Leg(conn, leg, ev) => self.leg(ts, conn, leg, ev),
            Note::ControlTls { conn, leg, version } => {
                if let Some(ends) = self.controls.get(&conn) {
                    let t = self.tls.entry(*ends).or_default();
                    match (leg, version) {
                        (Leg::Client, None) => t.ccc = true,
                        (Leg::Client, v) => t.client = v,
                        (Leg::Server, v) => t.server = v,
                    }
                }
            }
            Note::DataTls {
                conn,
                client,
                server,
            } => {
                if let Some(d) = self.legs.get_mut(&conn) {
                    d.client.tls = client;
                    d.server.tls = server;
                }
            }
            Note::ProxyReply {
                client,
                server,
                code,
                reason,
                detail,
            } => {
                let line = json!({
                    "type": "proxy_reply",
                    "via": "proxy",
                    "ts": ts.epoch_seconds(),
                    "client": client.to_string(),
                    "server": server.map(|s| s.to_string()),
                    "code": code,
                    "origin": "proxy",
                    "reason": reason,
                });
                let mut line = line;
                if let Some(d) = detail {
                    line["detail"] = json!(d);
                }
                self.log.record(&line);
            }
        }
        self.drain();
    }

    /// Time passes: 426s waiting for their data connection's teardown settle.
    pub fn tick(&mut self, now: Timestamp) {
        self.engine.tick(now, &mut self.metrics);
        self.drain();
    }

    pub fn finish(&mut self) {
        self.engine.finish(&mut self.metrics);
        self.drain();
    }

    fn stream(&mut self, ts: Timestamp, conn: ConnId, ev: Stream) {
        let event = match &ev {
            Stream::Opened {
                initiator,
                responder,
            } => {
                self.controls.insert(conn, (*initiator, *responder));
                StreamEvent::Opened {
                    kind: ConnKind::Control,
                    initiator: *initiator,
                    responder: *responder,
                    syn_seen: true,
                }
            }
            Stream::Data { from, bytes } => StreamEvent::Data { from: *from, bytes },
            Stream::Progress { from, bytes } => StreamEvent::Progress {
                from: *from,
                bytes: *bytes,
            },
            Stream::Fin { from } => StreamEvent::Fin { from: *from },
            Stream::Reset { from } => StreamEvent::Reset { from: *from },
            Stream::Closed => {
                self.controls.remove(&conn);
                self.expected.remove(&conn);
                StreamEvent::Closed(CloseReason::Finished)
            }
        };
        self.engine
            .handle(Input { ts, conn, event }, &mut self.metrics);
    }

    fn data_opened(
        &mut self,
        ts: Timestamp,
        control: ConnId,
        conn: ConnId,
        (initiator, responder): (SocketAddr, SocketAddr),
        client_leg: (SocketAddr, SocketAddr),
        server_leg: (SocketAddr, SocketAddr),
    ) {
        // The expectation for this connection: the one naming the endpoint connected to
        // (or, for a server behind NAT, the session's latest).
        let Some(list) = self.expected.get_mut(&control) else {
            return;
        };
        let at = list
            .iter()
            .position(|e| e.listener == responder || e.listener == initiator)
            .or(list.len().checked_sub(1));
        let Some(at) = at else { return };
        let e = list.remove(at);
        let control_ends = self
            .controls
            .get(&control)
            .copied()
            .unwrap_or(e.control_ends);
        // Which engine side is the FTP client's peer: the initiator when the server
        // listened (passive on the server leg).
        let client_side = if initiator == client_leg.1 {
            Side::Initiator
        } else {
            Side::Responder
        };
        self.legs.insert(
            conn,
            DataLegs {
                control_ends,
                ends: (initiator, responder),
                client_side,
                client: LegRecord {
                    local: Some(client_leg.0),
                    peer: Some(client_leg.1),
                    ..LegRecord::default()
                },
                server: LegRecord {
                    local: Some(server_leg.0),
                    peer: Some(server_leg.1),
                    ..LegRecord::default()
                },
            },
        );
        let event = StreamEvent::Opened {
            kind: ConnKind::Data(e.id),
            initiator,
            responder,
            syn_seen: true,
        };
        self.engine
            .handle(Input { ts, conn, event }, &mut self.metrics);
    }

    fn leg(&mut self, ts: Timestamp, conn: ConnId, leg: Leg, ev: LegEvent) {
        match ev {
            LegEvent::Read(n) => self.proxy.data_bytes(leg.as_str(), leg == Leg::Client, n),
            LegEvent::Written(n) => self.proxy.data_bytes(leg.as_str(), leg == Leg::Server, n),
            _ => {}
        }
        let Some(d) = self.legs.get_mut(&conn) else {
            return;
        };
        let side = match leg {
            Leg::Client => d.client_side,
            Leg::Server => d.client_side.other(),
        };
        let (rec, mirror) = match leg {
            Leg::Client => (&mut d.client, &mut d.server),
            Leg::Server => (&mut d.server, &mut d.client),
        };
        let event = match ev {
            LegEvent::Read(n) => {
                match leg {
                    Leg::Client => rec.bytes_to_server += n,
                    Leg::Server => rec.bytes_to_client += n,
                }
                Some(StreamEvent::Progress {
                    from: side,
                    bytes: n,
                })
            }
            LegEvent::Written(n) => {
                match leg {
                    Leg::Client => rec.bytes_to_client += n,
                    Leg::Server => rec.bytes_to_server += n,
                }
                None
            }
            LegEvent::PeerClosed(how) => {
                if how == CloseHow::FinWithoutCloseNotify {
                    self.proxy.tls.unclean_shutdown(leg.as_str(), "data");
                }
                rec.first_close.get_or_insert((leg.as_str(), how, ts));
                // The relay did the same to the other leg at once.
                mirror.first_close.get_or_insert(("proxy", how, ts));
                Some(match how {
                    CloseHow::Fin => StreamEvent::Fin { from: side },
                    CloseHow::Rst => StreamEvent::Reset { from: side },
                    CloseHow::FinWithoutCloseNotify => {
                        StreamEvent::FinWithoutCloseNotify { from: side }
                    }
                })
            }
            LegEvent::ProxyReset => {
                rec.first_close.get_or_insert(("proxy", CloseHow::Rst, ts));
                None
            }
        };
        if let Some(event) = event {
            self.engine
                .handle(Input { ts, conn, event }, &mut self.metrics);
        }
    }

    /// The legs of a transfer's data connection, taken out of the table: a transfer
    /// is reported once.
    fn take_legs(&mut self, t: &crate::ftp::TransferRecord) -> Option<Value> {
        let d = t.data.as_ref()?;
        let conn = self
            .legs
            .iter()
            .find(|(_, l)| l.ends == (d.client, d.server) || l.ends == (d.server, d.client))
            .map(|(c, _)| *c)?;
        let l = self.legs.remove(&conn)?;
        Some(json!({ "client": l.client.json(), "server": l.server.json() }))
    }

    fn drain(&mut self) {
        while let Some(out) = self.engine.poll() {
            match out {
                Output::Expect(e) => {
                    let list = self.expected.entry(e.control).or_default();
                    // Bounded like the engine's own table: a session has few at once
                    // (the engine withdraws a replaced one); past 16 the oldest goes,
                    // counted as the engine's own expectations bound is.
                    if list.len() >= 16 {
                        list.remove(0);
                        self.metrics.bound_hit(Bound::Expectations);
                    }
                    list.push(e);
                }
                Output::Unexpect(id) => {
                    for list in self.expected.values_mut() {
                        list.retain(|e| e.id != id);
                    }
                }
                // The proxy reads every session in clear: nothing is inferred.
                Output::ExpectEncrypted(_) | Output::Release(_) | Output::Trace(_) => {}
                Output::Event(e) => {
                    self.metrics.event(&e);
                    let mut v = event_json(&e, self.log.options());
                    v["via"] = json!("proxy");
                    let ends = match &e {
                        Event::Transfer(t) => Some((t.client, t.server)),
                        Event::Session(s) => Some((s.client, s.server)),
                        Event::Anomaly(_) | Event::EncryptedData(_) => None,
                    };
                    if let Some(t) = ends.and_then(|ends| self.tls.get(&ends)) {
                        // The engine saw clear text; the session was under TLS.
                        v["tls"] = json!(true);
                        if matches!(e, Event::Session(_)) {
                            v["ccc"] = json!(t.ccc);
                            v["tls_legs"] = json!({ "client": t.client, "server": t.server });
                        }
                    }
                    match &e {
                        Event::Transfer(t) => {
                            v["legs"] = self.take_legs(t).unwrap_or(Value::Null);
                            if let Some(code) = t.final_code.map(|c| c.get())
                                && (code == 426 || code == 421)
                            {
                                // Every reply the engine sees is the server's own; the
                                // proxy's replies are `proxy_reply` records.
                                v["origin"] = json!("server");
                            }
                        }
                        Event::Session(s) => {
                            let ends = (s.client, s.server);
                            self.legs.retain(|_, l| l.control_ends != ends);
                            self.tls.remove(&ends);
                        }
                        Event::Anomaly(_) | Event::EncryptedData(_) => {}
                    }
                    self.log.record(&v);
                }
            }
        }
    }
}

/// Run the analysis on this thread until every sender is gone, ticking once a second
/// so that waits end without traffic. The engine stays off the relays' runtime.
/// `each_turn` runs after every note and tick (the binary reopens the log there).
pub fn run<W: std::io::Write>(
    mut analysis: Analysis<W>,
    mut rx: mpsc::Receiver<Msg>,
    clock: fn() -> Timestamp,
    mut each_turn: impl FnMut(&mut EventLog<W>),
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime for the analysis thread");
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => analysis.handle(m),
                    None => break,
                },
                _ = tick.tick() => analysis.tick(clock()),
            }
            each_turn(&mut analysis.log);
        }
    });
    analysis.finish();
}
