//! What broke a transfer, told from its data connection's teardown: the cause of a 426,
//! and of a transfer that failed or got no final reply.

use std::time::Duration;

use super::data::DataConn;
use super::output::{AbortCause, CloseHow, DataClose, Outcome, Role};
use super::time::Timestamp;
use super::transfer::Transfer;

/// Attribute a 426 received at `reply_at`, from what is known of the data connection
/// now. `abor` is set when the client sent ABOR during the transfer.
///
/// A teardown that followed `stall_after` without progress is `stalled`: the client
/// (or server) only gave up on a connection that had stopped moving, which points at
/// the network, not at a user's cancel.
pub fn attribute_abort(
    reply_at: Timestamp,
    abor: bool,
    data: Option<&DataConn>,
    stall_after: Duration,
) -> AbortCause {
    if abor {
        return AbortCause::Abor;
    }
    let Some(d) = data else {
        return AbortCause::NoDataConnection;
    };
    let idle_until = match &d.first_close {
        Some(close) => close.at,
        None if d.ended => return AbortCause::Unknown,
        None => reply_at,
    };
    if idle_until.since(d.last_progress) >= stall_after {
        return AbortCause::Stalled;
    }
    match &d.first_close {
        Some(close) => AbortCause::from_close(close),
        // Waited for a teardown that did not come while the connection kept moving.
        None => AbortCause::Unknown,
    }
}

/// Why a transfer that ended without a 426 was broken, in the words of abort causes,
/// or `None` when nothing says it was: a `failed` transfer (another 4yz/5yz) that had
/// started (125/150), or an `incomplete` one (no final reply: pure-ftpd answers a
/// client's reset download with none). It was broken by the client's ABOR, by a
/// teardown before the data was through (see `torn_early`), or by its data connection
/// standing idle for `stall_after` while the session went on. A failed transfer with
/// no data connection is `no_data_connection`, and one whose connection shows nothing
/// either way is `unknown`, as for a 426. A data connection whose sender finished was
/// not interrupted: a failure after it (a full disk, a quota) has no cause here.
pub fn attribute_interruption(
    outcome: Outcome,
    t: &Transfer,
    at: Timestamp,
    data: Option<&DataConn>,
    stall_after: Duration,
) -> Option<AbortCause> {
    let failed = match outcome {
        Outcome::Failed if t.started() => true,
        Outcome::Incomplete => false,
        _ => return None,
    };
    if t.abor_at.is_some() {
        return Some(AbortCause::Abor);
    }
    let Some(d) = data else {
        return failed.then_some(AbortCause::NoDataConnection);
    };
    let Some(close) = d.first_close else {
        if !d.ended && at.since(d.last_progress) >= stall_after {
            return Some(AbortCause::Stalled);
        }
        return failed.then_some(AbortCause::Unknown);
    };
    if !torn_early(t, d, &close) {
        return None;
    }
    if close.at.since(d.last_progress) >= stall_after {
        Some(AbortCause::Stalled)
    } else {
        Some(AbortCause::from_close(&close))
    }
}

/// Was the data connection torn down before its data was through: reset, closed by
/// the side receiving the data, or closed by the sender short of the announced size?
/// (After REST the announced size is the whole file's, so it is not compared.)
fn torn_early(t: &Transfer, d: &DataConn, close: &DataClose) -> bool {
    let (sender, moved) = if t.verb.is_upload() {
        (Role::Client, d.bytes_to_server)
    } else {
        (Role::Server, d.bytes_to_client)
    };
    let short = !t.restarted && t.announced_size.is_some_and(|size| moved < size);
    close.how != CloseHow::Fin || close.by != sender || short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::command::Verb;
    use crate::ftp::data::tests::{conn, ts};
    use crate::ftp::input::Side;
    use crate::ftp::reply::ReplyCode;

    const STALL: Duration = Duration::from_secs(5);

    #[test]
    fn attribution_order() {
        let mut d = conn();
        d.progress(ts(4), Side::Responder, 10);
        d.close(ts(5), Side::Responder, CloseHow::Fin);
        // ABOR wins over the teardown it caused.
        assert_eq!(
            attribute_abort(ts(6), true, Some(&d), STALL),
            AbortCause::Abor
        );
        assert_eq!(
            attribute_abort(ts(6), false, Some(&d), STALL),
            AbortCause::ServerClosed
        );
        assert_eq!(
            attribute_abort(ts(6), false, None, STALL),
            AbortCause::NoDataConnection
        );
        let mut open = conn();
        open.progress(ts(100), Side::Responder, 10);
        // Open and moving when the 426 came, no teardown after waiting.
        assert_eq!(
            attribute_abort(ts(200), false, Some(&open), STALL),
            AbortCause::Unknown
        );
        assert_eq!(
            attribute_abort(ts(5100), false, Some(&open), STALL),
            AbortCause::Stalled
        );
        open.ended = true;
        assert_eq!(
            attribute_abort(ts(200), false, Some(&open), STALL),
            AbortCause::Unknown
        );
    }

    #[test]
    fn a_fin_without_close_notify_is_an_unclean_tls_shutdown_whoever_sent_it() {
        for side in [Side::Initiator, Side::Responder] {
            let mut d = conn();
            d.progress(ts(4), Side::Responder, 10);
            d.close(ts(5), side, CloseHow::FinWithoutCloseNotify);
            assert_eq!(
                attribute_abort(ts(6), false, Some(&d), STALL),
                AbortCause::TlsUncleanShutdown
            );
            // Later closes do not replace the first.
            d.close(ts(7), side.other(), CloseHow::Rst);
            assert_eq!(
                attribute_abort(ts(8), false, Some(&d), STALL),
                AbortCause::TlsUncleanShutdown
            );
        }
    }

    #[test]
    fn a_reset_after_a_long_stall_is_a_stall() {
        let mut d = conn();
        d.progress(ts(1000), Side::Responder, 10);
        d.close(ts(30_000), Side::Initiator, CloseHow::Rst);
        assert_eq!(
            attribute_abort(ts(30_001), false, Some(&d), STALL),
            AbortCause::Stalled
        );
        let mut quick = conn();
        quick.progress(ts(1000), Side::Responder, 10);
        quick.close(ts(1001), Side::Initiator, CloseHow::Rst);
        assert_eq!(
            attribute_abort(ts(1002), false, Some(&quick), STALL),
            AbortCause::ClientReset
        );
    }

    fn started(verb: Verb, size: Option<u64>) -> Transfer {
        let mut t = Transfer::new(verb, None, ts(0));
        t.push_reply(ReplyCode::new(150).unwrap());
        t.announced_size = size;
        t
    }

    #[test]
    fn interruption_of_an_incomplete_download() {
        let t = started(Verb::RETR, Some(100));
        let at = ts(10_000);
        let inc =
            |d: &DataConn| attribute_interruption(Outcome::Incomplete, &t, at, Some(d), STALL);
        let mut whole = conn();
        whole.progress(ts(9000), Side::Responder, 100);
        whole.close(ts(9001), Side::Responder, CloseHow::Fin);
        assert_eq!(
            inc(&whole),
            None,
            "the sender finished: only the reply is missing"
        );
        let mut short = conn();
        short.progress(ts(9000), Side::Responder, 60);
        short.close(ts(9001), Side::Responder, CloseHow::Fin);
        assert_eq!(inc(&short), Some(AbortCause::ServerClosed));
        let mut reset = conn();
        reset.progress(ts(9000), Side::Responder, 100);
        reset.close(ts(9001), Side::Responder, CloseHow::Rst);
        assert_eq!(inc(&reset), Some(AbortCause::ServerReset));
        let mut receiver = conn();
        receiver.progress(ts(9000), Side::Responder, 100);
        receiver.close(ts(9001), Side::Initiator, CloseHow::Fin);
        assert_eq!(inc(&receiver), Some(AbortCause::ClientClosed));
        let mut late = conn();
        late.progress(ts(1000), Side::Responder, 10);
        late.close(ts(9000), Side::Initiator, CloseHow::Rst);
        assert_eq!(inc(&late), Some(AbortCause::Stalled));
        let mut idle = conn();
        idle.progress(ts(1000), Side::Responder, 10);
        assert_eq!(inc(&idle), Some(AbortCause::Stalled));
        let mut moving = conn();
        moving.progress(ts(9999), Side::Responder, 10);
        assert_eq!(inc(&moving), None);
        idle.ended = true;
        assert_eq!(inc(&idle), None, "left the table: nothing is known");
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, None, STALL),
            None
        );
    }

    #[test]
    fn interruption_of_an_upload_is_judged_by_the_client_as_sender() {
        let t = started(Verb::STOR, None);
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Initiator, CloseHow::Fin);
        let at = ts(1000);
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            None
        );
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Responder, CloseHow::Fin);
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            Some(AbortCause::ServerClosed)
        );
    }

    #[test]
    fn interruption_by_abor_failure_or_none() {
        let mut t = started(Verb::RETR, None);
        let at = ts(1000);
        assert_eq!(
            attribute_interruption(Outcome::Failed, &t, at, None, STALL),
            Some(AbortCause::NoDataConnection)
        );
        let refused = Transfer::new(Verb::RETR, None, ts(0));
        assert_eq!(
            attribute_interruption(Outcome::Failed, &refused, at, None, STALL),
            None,
            "refused before it started"
        );
        for o in [Outcome::Completed, Outcome::Aborted] {
            assert_eq!(attribute_interruption(o, &t, at, None, STALL), None);
        }
        t.abor_at = Some(ts(500));
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, None, STALL),
            Some(AbortCause::Abor)
        );
    }

    #[test]
    fn a_failure_after_the_sender_finished_is_no_interruption() {
        // STOR: the whole file sent and the client's FIN, then 552 (quota) or 451.
        let t = started(Verb::STOR, None);
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Initiator, CloseHow::Fin);
        let at = ts(950);
        assert_eq!(
            attribute_interruption(Outcome::Failed, &t, at, Some(&d), STALL),
            None
        );
        // The same failure after the client reset the upload is the reset.
        let mut d = conn();
        d.progress(ts(900), Side::Initiator, 5000);
        d.close(ts(901), Side::Initiator, CloseHow::Rst);
        assert_eq!(
            attribute_interruption(Outcome::Failed, &t, at, Some(&d), STALL),
            Some(AbortCause::ClientReset)
        );
        // Open and moving when the failure came: nothing tells.
        let mut d = conn();
        d.progress(ts(940), Side::Initiator, 5000);
        assert_eq!(
            attribute_interruption(Outcome::Failed, &t, at, Some(&d), STALL),
            Some(AbortCause::Unknown)
        );
    }

    #[test]
    fn a_restarted_download_is_not_short_of_the_whole_files_size() {
        let mut t = started(Verb::RETR, Some(10_000));
        let mut d = conn();
        d.progress(ts(900), Side::Responder, 4000);
        d.close(ts(901), Side::Responder, CloseHow::Fin);
        let at = ts(950);
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            Some(AbortCause::ServerClosed)
        );
        t.restarted = true;
        assert_eq!(
            attribute_interruption(Outcome::Incomplete, &t, at, Some(&d), STALL),
            None
        );
    }
}
