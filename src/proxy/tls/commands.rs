//! The security commands of RFC 2228/4217 (AUTH, PBSZ, PROT, CCC), which the proxy
//! answers itself and never passes on: each leg is secured on its own, so the client's
//! choices are about the client leg only. Sans-IO: a line in, what to do out.

use crate::proxy::own::ProxyReply;

/// What the client leg is, when a command arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLeg {
    /// The control connection is under TLS now.
    pub tls: bool,
    /// A TLS security exchange took place (AUTH TLS or implicit TLS), even if CCC
    /// ended it on the control connection since: PBSZ and PROT still apply (RFC 4217).
    pub negotiated: bool,
    /// PBSZ was accepted: PROT may follow.
    pub pbsz: bool,
    /// The proxy has a certificate (`--tls-cert`).
    pub can_tls: bool,
    /// `--require-tls`.
    pub require_tls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Not one of these commands (or allowed as it is): pass it on.
    Pass,
    /// A protocol answer of the proxy's own.
    Reply(&'static [u8]),
    /// A refusal the proxy counts and logs (`ProxyReply`).
    Refuse(ProxyReply),
    /// PBSZ 0 accepted (`PBSZ_OK`): PROT may follow.
    Pbsz,
    /// AUTH TLS: answer 234, then the TLS handshake, the proxy as server.
    StartTls,
    /// PROT C (false) or P (true): answer 200, protect data connections so.
    Prot(bool),
    /// CCC: answer 200, then close_notify, and the control connection is in clear.
    Ccc,
}

pub const AUTH_OK: &[u8] = b"234 Proceed with TLS negotiation.\r\n";
pub const PROT_OK: &[u8] = b"200 Protection level set.\r\n";
pub const PBSZ_OK: &[u8] = b"200 PBSZ=0\r\n";
pub const CCC_OK: &[u8] = b"200 Control connection in clear from here (CCC).\r\n";

pub fn security(line: &[u8], leg: ClientLeg) -> Security {
    let text = String::from_utf8_lossy(line);
    let mut words = text.trim_end_matches([' ', '\r', '\n']).splitn(2, ' ');
    let verb = words.next().unwrap_or_default().to_ascii_uppercase();
    let arg = words.next().unwrap_or_default().trim().to_ascii_uppercase();
    match verb.as_str() {
        "AUTH" if leg.tls => Security::Reply(b"503 Already under TLS.\r\n"),
        "AUTH" if !leg.can_tls => Security::Refuse(ProxyReply::TlsNotOffered),
        "AUTH" => match arg.as_str() {
            // TLS-C and SSL are the older drafts' names for the same thing.
            "TLS" | "TLS-C" | "SSL" => Security::StartTls,
            "" => Security::Reply(b"501 Syntax: AUTH TLS.\r\n"),
            _ => Security::Reply(b"504 Only AUTH TLS.\r\n"),
        },
        "PBSZ" if !leg.negotiated => Security::Reply(b"503 PBSZ needs AUTH TLS first.\r\n"),
        "PBSZ" => Security::Pbsz,
        "PROT" if !leg.negotiated => Security::Reply(b"503 PROT needs AUTH TLS first.\r\n"),
        "PROT" if !leg.pbsz => Security::Reply(b"503 PROT needs PBSZ first.\r\n"),
        "PROT" => match arg.as_str() {
            "P" => Security::Prot(true),
            "C" => Security::Prot(false),
            "S" | "E" => Security::Reply(b"536 Only PROT C or P.\r\n"),
            _ => Security::Reply(b"504 Syntax: PROT C or PROT P.\r\n"),
        },
        "CCC" if !leg.tls => Security::Reply(b"533 CCC needs AUTH TLS first.\r\n"),
        "CCC" => Security::Ccc,
        "USER" | "PASS" if leg.require_tls && !leg.tls => Security::Refuse(ProxyReply::TlsRequired),
        _ => Security::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAR: ClientLeg = ClientLeg {
        tls: false,
        negotiated: false,
        pbsz: false,
        can_tls: true,
        require_tls: false,
    };
    const SECURED: ClientLeg = ClientLeg {
        tls: true,
        negotiated: true,
        pbsz: true,
        ..CLEAR
    };

    #[test]
    fn auth_tls_in_any_case_and_its_old_names_start_tls() {
        for l in [
            "AUTH TLS",
            "auth tls",
            "AUTH TLS-C",
            "AUTH SSL",
            "AUTH  TLS",
        ] {
            assert_eq!(security(l.as_bytes(), CLEAR), Security::StartTls, "{l}");
        }
    }

    #[test]
    fn auth_is_refused_without_a_certificate_or_once_under_tls() {
        let no_cert = ClientLeg {
            can_tls: false,
            ..CLEAR
        };
        assert_eq!(
            security(b"AUTH TLS", no_cert),
            Security::Refuse(ProxyReply::TlsNotOffered)
        );
        assert!(
            matches!(security(b"AUTH TLS", SECURED), Security::Reply(r) if r.starts_with(b"503"))
        );
        assert!(
            matches!(security(b"AUTH KERBEROS_V4", CLEAR), Security::Reply(r) if r.starts_with(b"504"))
        );
        assert!(matches!(security(b"AUTH", CLEAR), Security::Reply(r) if r.starts_with(b"501")));
    }

    #[test]
    fn pbsz_prot_and_ccc_need_tls_first() {
        for l in ["PBSZ 0", "PROT P", "CCC"] {
            assert!(
                matches!(security(l.as_bytes(), CLEAR), Security::Reply(r) if r.starts_with(b"503") || r.starts_with(b"533")),
                "{l}"
            );
        }
        assert_eq!(security(b"PBSZ 0", SECURED), Security::Pbsz);
        assert_eq!(security(b"PROT P", SECURED), Security::Prot(true));
        assert_eq!(security(b"prot c", SECURED), Security::Prot(false));
        assert_eq!(security(b"CCC", SECURED), Security::Ccc);
    }

    #[test]
    fn prot_needs_pbsz_first_and_both_stay_allowed_after_ccc() {
        let no_pbsz = ClientLeg {
            pbsz: false,
            ..SECURED
        };
        assert!(
            matches!(security(b"PROT P", no_pbsz), Security::Reply(r) if r.starts_with(b"503 PROT needs PBSZ"))
        );
        // After CCC the control connection is in clear, the security exchange stands.
        let after_ccc = ClientLeg {
            tls: false,
            ..SECURED
        };
        assert_eq!(security(b"PROT C", after_ccc), Security::Prot(false));
        assert_eq!(security(b"PBSZ 0", after_ccc), Security::Pbsz);
        assert!(matches!(security(b"CCC", after_ccc), Security::Reply(r) if r.starts_with(b"533")));
    }

    #[test]
    fn prot_levels_beyond_c_and_p_are_refused() {
        assert!(
            matches!(security(b"PROT S", SECURED), Security::Reply(r) if r.starts_with(b"536"))
        );
        assert!(
            matches!(security(b"PROT E", SECURED), Security::Reply(r) if r.starts_with(b"536"))
        );
        assert!(matches!(security(b"PROT", SECURED), Security::Reply(r) if r.starts_with(b"504")));
    }

    #[test]
    fn require_tls_refuses_logins_in_clear_only() {
        let strict = ClientLeg {
            require_tls: true,
            ..CLEAR
        };
        assert_eq!(
            security(b"USER ann", strict),
            Security::Refuse(ProxyReply::TlsRequired)
        );
        assert_eq!(
            security(b"PASS x", strict),
            Security::Refuse(ProxyReply::TlsRequired)
        );
        assert_eq!(
            security(
                b"USER ann",
                ClientLeg {
                    tls: true,
                    ..strict
                }
            ),
            Security::Pass
        );
        assert_eq!(security(b"USER ann", CLEAR), Security::Pass);
        assert_eq!(security(b"SYST", strict), Security::Pass);
    }

    #[test]
    fn other_commands_pass() {
        for l in ["RETR auth", "AUTHX TLS", "PROTO", "", "   "] {
            assert_eq!(security(l.as_bytes(), SECURED), Security::Pass, "{l:?}");
        }
    }
}
