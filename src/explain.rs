//! `ftpwatch explain CODE`: what a reply code means, when operators see it, and what to
//! do about it. Codes from RFC 959 §4.2, RFC 2228 (security), RFC 2428 (EPSV).

pub struct Entry {
    pub code: u16,
    pub text: &'static str,
    pub when: &'static str,
    pub action: &'static str,
}

const fn e(code: u16, text: &'static str, when: &'static str, action: &'static str) -> Entry {
    Entry {
        code,
        text,
        when,
        action,
    }
}

pub const TABLE: &[Entry] = &[
    e(
        110,
        "Restart marker reply.",
        "During a restartable (block or compressed mode) transfer.",
        "Nothing; it lets a client resume a broken transfer.",
    ),
    e(
        120,
        "Service ready in nnn minutes.",
        "At connection time, when the server is not ready yet.",
        "Wait; a 220 should follow.",
    ),
    e(
        125,
        "Data connection already open; transfer starting.",
        "After RETR/STOR/LIST when the client already opened the data connection (usually after PASV/EPSV).",
        "Nothing; a 226 or 250 should follow. ftpwatch flags a 125 when it saw no open data connection: check that the data path is captured (and that a NAT rewrites addresses consistently).",
    ),
    e(
        150,
        "File status okay; about to open data connection.",
        "After RETR/STOR/LIST, before the data connection is opened or used. vsftpd and ProFTPD add the size: \"(N bytes)\".",
        "Nothing; a 226 or 250 should follow. If none does, the transfer is 'incomplete': look at the session's end and the data connection.",
    ),
    e(
        200,
        "Command okay.",
        "After TYPE, MODE, PORT, EPRT and other simple commands.",
        "Nothing.",
    ),
    e(
        202,
        "Command not implemented, superfluous at this site.",
        "After ALLO or ACCT on servers that do not need them.",
        "Nothing.",
    ),
    e(
        211,
        "System status, or system help reply.",
        "After FEAT or STAT.",
        "Nothing.",
    ),
    e(
        212,
        "Directory status.",
        "After STAT on a directory.",
        "Nothing.",
    ),
    e(
        213,
        "File status.",
        "After SIZE, MDTM or STAT on a file.",
        "Nothing; ftpwatch uses a SIZE answer as the announced size of a following RETR.",
    ),
    e(214, "Help message.", "After HELP.", "Nothing."),
    e(215, "NAME system type.", "After SYST.", "Nothing."),
    e(
        220,
        "Service ready for new user.",
        "The greeting when a control connection opens (and after REIN).",
        "Nothing.",
    ),
    e(
        221,
        "Service closing control connection.",
        "After QUIT.",
        "Nothing; a clean end of session.",
    ),
    e(
        225,
        "Data connection open; no transfer in progress.",
        "After ABOR when nothing was being transferred (vsftpd answers ABOR with 225 after its 426).",
        "Nothing.",
    ),
    e(
        226,
        "Closing data connection; requested file action successful.",
        "The normal end of RETR/STOR/LIST, and the second reply to an ABOR that interrupted a transfer.",
        "Nothing; the transfer completed. ftpwatch counts it as outcome 'completed'.",
    ),
    e(
        227,
        "Entering Passive Mode (h1,h2,h3,h4,p1,p2).",
        "After PASV: the server announces the address and port it listens on.",
        "Nothing. If the announced address is private while the client reaches the server on another, the server is behind NAT: ftpwatch marks such transfers nat=true.",
    ),
    e(
        228,
        "Entering Long Passive Mode.",
        "After LPSV (rare).",
        "Nothing.",
    ),
    e(
        229,
        "Entering Extended Passive Mode (|||port|).",
        "After EPSV (IPv6, or IPv4 clients preferring it).",
        "Nothing.",
    ),
    e(
        230,
        "User logged in, proceed.",
        "After a successful USER/PASS.",
        "Nothing.",
    ),
    e(
        232,
        "User logged in, authorized by security data exchange.",
        "After RFC 2228 authentication.",
        "Nothing.",
    ),
    e(
        234,
        "Security data exchange complete (AUTH accepted).",
        "After AUTH TLS/SSL: the control connection switches to TLS.",
        "Nothing; from here ftpwatch cannot see commands and counts the session as TLS.",
    ),
    e(
        235,
        "Security data exchange completed successfully.",
        "After ADAT (GSSAPI, GridFTP).",
        "Nothing.",
    ),
    e(
        250,
        "Requested file action okay, completed.",
        "After CWD, DELE, RNTO, and as the end of some transfers (MLSD, LIST on some servers).",
        "Nothing; counted as outcome 'completed' for a transfer.",
    ),
    e(
        257,
        "\"PATHNAME\" created.",
        "After PWD or MKD.",
        "Nothing.",
    ),
    e(
        331,
        "User name okay, need password.",
        "After USER.",
        "Nothing; PASS should follow.",
    ),
    e(
        332,
        "Need account for login.",
        "After USER/PASS on servers that use ACCT.",
        "Nothing.",
    ),
    e(
        334,
        "Security mechanism accepted; ADAT required.",
        "After AUTH GSSAPI.",
        "Nothing.",
    ),
    e(
        335,
        "Security data accepted; more required.",
        "During ADAT exchanges.",
        "Nothing.",
    ),
    e(
        350,
        "Requested file action pending further information.",
        "After REST or RNFR.",
        "Nothing; the next command completes it.",
    ),
    e(
        421,
        "Service not available, closing control connection.",
        "Any time: server shutting down, too many connections, idle timeout, or (vsftpd) 'Data timeout' when a data connection stopped moving.",
        "If it ends transfers, look for idle timeouts on the server or a firewall silently dropping the data path; if at login, the server's connection limits.",
    ),
    e(
        425,
        "Can't open data connection.",
        "After RETR/STOR/LIST when the server could not open or accept the data connection.",
        "Check the data path: passive port range open on firewalls, NAT announcing a reachable address (227), active mode blocked towards clients.",
    ),
    e(
        426,
        "Connection closed; transfer aborted.",
        "During a transfer, when the data connection closed before the transfer finished: the client cancelled (reset or closed it), the client sent ABOR, the network dropped it, or a firewall killed a connection it thought idle. vsftpd says 'Failure writing/reading network stream', ProFTPD 'Transfer aborted. Data connection closed'.",
        "Look at ftpwatch's abort cause. client_reset/client_closed: the client gave up (user cancel, client timeout) - usually not a server problem unless it spikes. abor: an explicit cancel. server_reset/server_closed: the server side tore the connection down - check server logs and disk. stalled: the data connection stopped moving - suspect the network path or a firewall idle timeout. A spike across many clients points at the network or a middlebox, not at users.",
    ),
    e(
        430,
        "Invalid username or password.",
        "After login (RFC 2577 suggestion, rare).",
        "Check credentials.",
    ),
    e(
        434,
        "Requested host unavailable.",
        "After HOST (RFC 7151).",
        "Check the virtual host name.",
    ),
    e(
        450,
        "Requested file action not taken; file unavailable (busy).",
        "After RETR/STOR/DELE when the file is locked or busy.",
        "Retry later; check what holds the file.",
    ),
    e(
        451,
        "Requested action aborted: local error in processing.",
        "During a transfer when the server failed (disk, I/O); pure-ftpd answers a reset upload with 451.",
        "Check server logs and storage; a burst of 451 is a server-side fault.",
    ),
    e(
        452,
        "Requested action not taken; insufficient storage space.",
        "During STOR when the server's disk is full.",
        "Free space on the server.",
    ),
    e(
        500,
        "Syntax error, command unrecognized.",
        "After an unknown or malformed command (also an ABOR sent with Telnet interrupt bytes to some servers).",
        "Usually harmless; many in a session may mean a non-FTP client or a scan.",
    ),
    e(
        501,
        "Syntax error in parameters or arguments.",
        "After a command with a bad argument.",
        "Check the client.",
    ),
    e(
        502,
        "Command not implemented.",
        "After a command the server does not support.",
        "Nothing, unless the client depends on it.",
    ),
    e(
        503,
        "Bad sequence of commands.",
        "E.g. PASS without USER, RNTO without RNFR.",
        "Check the client.",
    ),
    e(
        504,
        "Command not implemented for that parameter.",
        "E.g. TYPE with an unsupported type.",
        "Check the client.",
    ),
    e(
        522,
        "Network protocol not supported.",
        "After EPRT with an address family the server cannot use.",
        "Use EPSV, or the other address family.",
    ),
    e(
        530,
        "Not logged in.",
        "After a failed PASS, or a command before login.",
        "Many in a row from one source is a password-guessing attempt.",
    ),
    e(
        532,
        "Need account for storing files.",
        "After STOR on servers that require ACCT.",
        "Check the account.",
    ),
    e(
        533,
        "Command protection level denied for policy reasons.",
        "RFC 2228.",
        "Check the security policy.",
    ),
    e(
        534,
        "Request denied for policy reasons.",
        "After AUTH when TLS is refused, or PROT when a level is not allowed.",
        "Check TLS configuration.",
    ),
    e(
        535,
        "Failed security check.",
        "RFC 2228.",
        "Check credentials/keys.",
    ),
    e(
        536,
        "Data protection level not supported by security mechanism.",
        "RFC 2228.",
        "Check PROT settings.",
    ),
    e(
        550,
        "Requested action not taken; file unavailable.",
        "After RETR/CWD/DELE of a missing file or without permission.",
        "Usually a client asking for something that is not there; a spike may follow a content change.",
    ),
    e(
        551,
        "Requested action aborted: page type unknown.",
        "Rare.",
        "Nothing.",
    ),
    e(
        552,
        "Requested file action aborted: exceeded storage allocation.",
        "During STOR over a quota.",
        "Raise the quota or clean up.",
    ),
    e(
        553,
        "Requested action not taken; file name not allowed.",
        "After STOR/RNTO with a forbidden name.",
        "Check the client's file names.",
    ),
    e(
        631,
        "Integrity protected reply.",
        "RFC 2228 (MIC): the real reply is inside, encoded.",
        "Nothing; the reply is not readable on the wire.",
    ),
    e(
        632,
        "Confidentiality and integrity protected reply.",
        "RFC 2228 (ENC), e.g. GridFTP.",
        "Nothing; the reply is not readable on the wire.",
    ),
    e(
        633,
        "Confidentiality protected reply.",
        "RFC 2228 (CONF).",
        "Nothing; the reply is not readable on the wire.",
    ),
];

fn class_text(first: u16) -> &'static str {
    match first {
        1 => "1yz positive preliminary: the command started; another reply will follow",
        2 => "2yz positive completion: the command succeeded",
        3 => "3yz positive intermediate: accepted, more information needed",
        4 => "4yz transient negative completion: failed this time; retrying may work",
        5 => "5yz permanent negative completion: failed; retrying the same will fail",
        6 => "6yz protected reply (RFC 2228): the real reply is encoded inside",
        _ => "not a reply class",
    }
}

/// The explanation of `code`, or an error line for input that is not a reply code.
pub fn explain(code: &str) -> Result<String, String> {
    let n: u16 = match code.trim() {
        c if c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) => c
            .parse()
            .map_err(|_| format!("{c:?} is not a reply code"))?,
        c => {
            return Err(format!(
                "{c:?} is not a reply code: expected three digits, 100 to 699"
            ));
        }
    };
    if !(100..=699).contains(&n) {
        return Err(format!(
            "{n} is not a reply code: the first digit must be 1 to 6"
        ));
    }
    let class = class_text(n / 100);
    Ok(match TABLE.iter().find(|x| x.code == n) {
        Some(x) => format!(
            "{n} {}\nclass:  {class}\nwhen:   {}\naction: {}\n",
            x.text, x.when, x.action
        ),
        None => format!(
            "{n} is not a standard reply code\nclass:  {class}\naction: read the server's reply text; its meaning is server-specific.\n"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_codes_are_explained() {
        for c in [125, 150, 226, 421, 425, 426, 451] {
            let t = explain(&c.to_string()).unwrap();
            assert!(t.starts_with(&format!("{c} ")), "{t}");
            assert!(t.contains("when:") && t.contains("action:"), "{t}");
        }
        assert!(explain("426").unwrap().contains("client_reset"));
    }

    #[test]
    fn table_is_sorted_unique_and_in_range() {
        for w in TABLE.windows(2) {
            assert!(w[0].code < w[1].code);
        }
        assert!(TABLE.iter().all(|x| (100..=699).contains(&x.code)));
    }

    #[test]
    fn bad_input() {
        assert!(explain("42").unwrap_err().contains("three digits"));
        assert!(explain("abc").is_err());
        assert!(explain("999").unwrap_err().contains("first digit"));
        assert!(explain("099").is_err());
        assert!(explain("299").unwrap().contains("not a standard"));
    }
}
