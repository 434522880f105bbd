//! The event log: one JSON object per line, the stable schema documented in the README.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::recent::Recent;
use crate::ftp::{
    AnomalyRecord, DataRecord, EncryptedDataRecord, Event, SessionRecord, TransferRecord,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Leave the `user` field out of session records.
    pub redact_user: bool,
}

impl LogOptions {
    /// What the engine keeps out of its records, the log leaves out too: one setting.
    pub fn of(engine: &crate::ftp::Config) -> Self {
        LogOptions {
            redact_user: engine.redact_user,
        }
    }
}

pub fn transfer_json(t: &TransferRecord) -> Value {
    let mut v = Map::new();
    let mut put = |k: &str, x: Value| {
        v.insert(k.to_string(), x);
    };
    put("type", json!("transfer"));
    put("session", json!(t.session));
    put("start", json!(t.start.epoch_seconds()));
    put("end", json!(t.end.epoch_seconds()));
    put("client", json!(t.client.to_string()));
    put("server", json!(t.server.to_string()));
    put("command", json!(t.command.map(|c| c.as_str())));
    put("argument", json!(t.argument));
    put("mode", json!(t.mode.map(|m| m.as_str())));
    put(
        "replies",
        json!(t.replies.iter().map(|c| c.get()).collect::<Vec<_>>()),
    );
    put("final_code", json!(t.final_code.map(|c| c.get())));
    put("final_text", json!(t.final_text));
    put("outcome", json!(t.outcome.as_str()));
    if let Some(cause) = t.abort_cause {
        put("abort_cause", json!(cause.as_str()));
    }
    if let Some(cause) = t.interruption_cause {
        put("interruption_cause", json!(cause.as_str()));
    }
    put("nat", json!(t.nat));
    put("announced_size", json!(t.announced_size));
    put(
        "teardown_to_reply_seconds",
        json!(t.teardown_to_reply_seconds),
    );
    put("data", json!(t.data.as_ref().map(data_json)));
    Value::Object(v)
}

fn data_json(d: &DataRecord) -> Value {
    json!({
        "client": d.client.to_string(),
        "server": d.server.to_string(),
        "opened_by": d.opened_by.as_str(),
        "syn_seen": d.syn_seen,
        "bytes_to_client": d.bytes_to_client,
        "bytes_to_server": d.bytes_to_server,
        "first_close": d.first_close.map(|c| json!({
            "by": c.by.as_str(),
            "how": c.how.as_str(),
            "at": c.at.epoch_seconds(),
        })),
        "duration_seconds": d.last_packet.micros_after(d.first_packet),
    })
}

/// A data connection of an encrypted session, inferred from its hosts and time (see
/// `EncryptedExpectation`): `inferred: true` says so in every record.
pub fn encrypted_data_json(r: &EncryptedDataRecord) -> Value {
    json!({
        "type": "tls_data_connection",
        "inferred": true,
        "session": r.session,
        "client": r.client.to_string(),
        "server": r.server.to_string(),
        "start": r.data.first_packet.epoch_seconds(),
        "end": r.data.last_packet.epoch_seconds(),
        "data": data_json(&r.data),
    })
}

pub fn session_json(s: &SessionRecord, opts: LogOptions) -> Value {
    let codes: Map<String, Value> = s
        .reply_codes
        .iter()
        .map(|(c, n)| (c.get().to_string(), json!(n)))
        .collect();
    let mut v = json!({
        "type": "session",
        "session": s.session,
        "client": s.client.to_string(),
        "server": s.server.to_string(),
        "start": s.start.epoch_seconds(),
        "end": s.end.epoch_seconds(),
        "midstream": s.midstream,
        "tls": s.tls,
        "ccc": s.ccc,
        "commands": s.commands,
        "reply_codes": codes,
        "transfers": s.transfers,
        "gap_bytes": s.gap_bytes,
        "end_reason": s.end_reason.as_str(),
    });
    if !opts.redact_user {
        v["user"] = json!(s.user);
    }
    v
}

pub fn anomaly_json(a: &AnomalyRecord) -> Value {
    json!({
        "type": "anomaly",
        "session": a.session,
        "ts": a.ts.epoch_seconds(),
        "kind": a.kind.as_str(),
        "detail": a.detail,
    })
}

pub fn event_json(e: &Event, opts: LogOptions) -> Value {
    match e {
        Event::Transfer(t) => transfer_json(t),
        Event::Session(s) => session_json(s, opts),
        Event::Anomaly(a) => anomaly_json(a),
        Event::EncryptedData(r) => encrypted_data_json(r),
    }
}

/// Writes each event as one line, flushing after every line so that a reader (or a
/// crash) never sees half an event.
pub struct EventLog<W: Write> {
    out: W,
    opts: LogOptions,
    error: Option<io::Error>,
    recent: Option<Recent>,
}

impl<W: Write> EventLog<W> {
    pub fn new(out: W, opts: LogOptions) -> Self {
        EventLog {
            out,
            opts,
            error: None,
            recent: None,
        }
    }

    /// Every record written is also shown to `recent` (the landing page's list).
    pub fn set_recent(&mut self, recent: Recent) {
        self.recent = Some(recent);
    }

    /// The first write error, if any (events after it were dropped).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn replace(&mut self, out: W) -> W {
        std::mem::replace(&mut self.out, out)
    }
}

impl<W: Write> EventLog<W> {
    /// What the log leaves out.
    pub fn options(&self) -> LogOptions {
        self.opts
    }

    /// Write one record as a line. Records other than the engine's events (the proxy's
    /// own, or an engine event with fields added) go through here too.
    pub fn record(&mut self, v: &Value) {
        if let Some(r) = &self.recent {
            r.observe(v);
        }
        if self.error.is_some() {
            return;
        }
        let mut line = v.to_string();
        line.push('\n');
        if let Err(err) = self
            .out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.flush())
        {
            self.error = Some(err);
        }
    }
}

impl<W: Write> super::EventSink for EventLog<W> {
    fn event(&mut self, e: &Event) {
        self.record(&event_json(e, self.opts));
    }
}
