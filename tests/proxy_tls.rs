//! FTPS through the proxy on loopback, without root: a scripted FTPS server (rustls,
//! with the test certificates of tests/data/tls) on one side, a scripted FTPS client on
//! the other. Pinned down here: each leg secured on its own, the server leg before the
//! client sees the greeting; data legs resuming the control connection's TLS session
//! upstream; the engine seeing the session in clear; an unclean TLS shutdown named as
//! the 426's cause; an upstream certificate that does not verify answered with a 421.
//! Real servers and clients: tests/e2e/proxy_tls.sh.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ftpwatch::proxy::{TlsConfig, TlsOptions, UpstreamTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

mod proxy_harness;

use proxy_harness::{WAIT, start};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config() -> Arc<ServerConfig> {
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(data("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(data("server.key")).unwrap();
    let c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(c)
}

fn client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(data("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let c = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(c)
}

/// The proxy's TLS as the command line would build it: the test certificate for
/// clients, the server leg as `mode` says, verified against `ca`.
fn proxy_tls(mode: UpstreamTls, ca: &str) -> TlsConfig {
    let (cert, key, ca) = (data("server.pem"), data("server.key"), data(ca));
    TlsConfig::build(&TlsOptions {
        cert: Some(&cert),
        key: Some(&key),
        upstream: Some(mode),
        upstream_ca: Some(&ca),
        ..TlsOptions::default()
    })
    .unwrap()
}

/// Line-at-a-time over any stream, clear or TLS.
struct Lines<S> {
    s: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lines<S> {
    async fn line(&mut self) -> String {
        let mut l = Vec::new();
        tokio::time::timeout(WAIT, self.s.read_until(b'\n', &mut l))
            .await
            .expect("a line in time")
            .unwrap();
        String::from_utf8_lossy(&l).into_owned()
    }

    async fn send_bytes(&mut self, b: &[u8]) {
        self.s.get_mut().write_all(b).await.unwrap();
        self.s.get_mut().flush().await.unwrap();
    }

    async fn send(&mut self, l: &str) {
        self.s.get_mut().write_all(l.as_bytes()).await.unwrap();
        self.s.get_mut().flush().await.unwrap();
    }
}

/// The server's side up to AUTH TLS, under `--upstream-tls required` (no FEAT first).
async fn greeted_up_to_auth(upstream: TcpListener) -> Lines<TcpStream> {
    let (s, _) = upstream.accept().await.unwrap();
    let mut c = Lines {
        s: BufReader::new(s),
    };
    c.send("220 scripted FTPS server\r\n").await;
    assert_eq!(c.line().await, "AUTH TLS\r\n");
    c
}

/// How the scripted server ends its download.
#[derive(Clone, Copy, PartialEq, Debug)]
enum End {
    /// close_notify, FIN, then 226.
    Clean,
    /// A bare FIN (no close_notify), then 426.
    Unclean,
}

/// What the scripted server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Commands received in clear, and under TLS.
    clear: Vec<String>,
    secured: Vec<String>,
    /// The data connection's handshake resumed the control connection's session.
    data_resumed: Option<bool>,
}

/// An FTPS server: AUTH TLS, then login, EPSV and one RETR ended as `end` says.
async fn ftps_server(listener: TcpListener, end: End, payload: Vec<u8>) -> Seen {
    ftps_server_as(listener, end, payload, false).await
}

/// `implicit`: TLS from the first byte (port 990's FTPS), greeting included.
async fn ftps_server_as(listener: TcpListener, end: End, payload: Vec<u8>, implicit: bool) -> Seen {
    let cfg = server_config();
    let (s, _) = listener.accept().await.unwrap();
    let seen = Seen::default();
    if implicit {
        let tls = TlsAcceptor::from(cfg.clone()).accept(s).await.unwrap();
        let mut c = Lines {
            s: BufReader::new(tls),
        };
        c.send("220 scripted FTPS server\r\n").await;
        return secured(c, cfg, end, payload, seen).await;
    }
    let mut seen = seen;
    let mut c = Lines {
        s: BufReader::new(s),
    };
    c.send("220 scripted FTPS server\r\n").await;
    loop {
        let line = c.line().await;
        seen.clear.push(line.clone());
        match line.trim_end() {
            "FEAT" => {
                c.send("211-Features:\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n")
                    .await
            }
            "AUTH TLS" => {
                c.send("234 Go ahead.\r\n").await;
                break;
            }
            "" => return seen,
            _ => c.send("530 Secure first.\r\n").await,
        }
    }
    let tls = TlsAcceptor::from(cfg.clone())
        .accept(c.s.into_inner())
        .await
        .unwrap();
    let c = Lines {
        s: BufReader::new(tls),
    };
    secured(c, cfg, end, payload, seen).await
}

/// The session once the control connection is under TLS.
async fn secured<S: AsyncRead + AsyncWrite + Unpin>(
    mut c: Lines<S>,
    cfg: Arc<ServerConfig>,
    end: End,
    payload: Vec<u8>,
    mut seen: Seen,
) -> Seen {
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dport = data.local_addr().unwrap().port();
    loop {
        let line = c.line().await;
        if line.is_empty() {
            return seen;
        }
        seen.secured.push(line.clone());
        let verb = line.split_whitespace().next().unwrap_or("").to_string();
        match verb.as_str() {
            "PBSZ" | "PROT" => c.send("200 OK.\r\n").await,
            "USER" => c.send("331 Password please.\r\n").await,
            "PASS" => c.send("230 Logged in.\r\n").await,
            "EPSV" => {
                c.send(&format!("229 Extended Passive Mode (|||{dport}|)\r\n"))
                    .await
            }
            "RETR" => {
                let (d, _) = data.accept().await.unwrap();
                c.send("150 Opening BINARY data connection.\r\n").await;
                let mut d = TlsAcceptor::from(cfg.clone()).accept(d).await.unwrap();
                seen.data_resumed =
                    Some(d.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed));
                d.write_all(&payload).await.unwrap();
                d.flush().await.unwrap();
                match end {
                    End::Clean => {
                        d.shutdown().await.unwrap();
                        c.send("226 Transfer complete.\r\n").await;
                    }
                    End::Unclean => {
                        // The TCP FIN alone: no close_notify before it.
                        let (tcp, _) = d.into_inner();
                        let mut tcp = tcp;
                        tcp.shutdown().await.unwrap();
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        c.send("426 Failure writing network stream.\r\n").await;
                    }
                }
            }
            "QUIT" => {
                c.send("221 Goodbye.\r\n").await;
                return seen;
            }
            _ => c.send("502 Not here.\r\n").await,
        }
    }
}

type Control = Lines<tokio_rustls::client::TlsStream<TcpStream>>;

/// An FTPS client through the proxy, up to the 150 of a RETR: AUTH TLS, PBSZ, PROT P,
/// login, EPSV. Returns the control connection and the data connection (TCP only: a
/// client starts its TLS after the 150).
async fn ftps_retr(proxy: SocketAddr) -> (Control, TcpStream) {
    let logins = [
        ("PBSZ 0", "200"),
        ("PROT P", "200"),
        ("USER ann", "331"),
        ("PASS x", "230"),
    ];
    let mut c = ftps_login(proxy, &logins).await;
    c.send("EPSV\r\n").await;
    let epsv = c.line().await;
    let port: u16 = epsv.split('|').nth(3).unwrap().parse().unwrap();
    let d = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.send("RETR file\r\n").await;
    assert!(c.line().await.starts_with("150"));
    (c, d)
}

/// AUTH TLS through the proxy, the handshake (verifying the proxy as `localhost`), then
/// each command with the reply code it must get.
async fn ftps_login(proxy: SocketAddr, commands: &[(&str, &str)]) -> Control {
    let s = TcpStream::connect(proxy).await.unwrap();
    let mut c = Lines {
        s: BufReader::new(s),
    };
    assert!(
        c.line().await.starts_with("220 scripted"),
        "the server's greeting"
    );
    c.send("AUTH TLS\r\n").await;
    assert!(c.line().await.starts_with("234"));
    let tls = TlsConnector::from(client_config())
        .connect(localhost(), c.s.into_inner())
        .await
        .unwrap();
    let mut c = Lines {
        s: BufReader::new(tls),
    };
    for (cmd, want) in commands {
        c.send(&format!("{cmd}\r\n")).await;
        let got = c.line().await;
        assert!(got.starts_with(want), "{cmd}: {got}");
    }
    c
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// `ftps_retr`, then the data read to its end and the final reply, then QUIT. Returns
/// the bytes received and the final reply.
async fn ftps_client(proxy: SocketAddr) -> (Vec<u8>, String) {
    let (mut c, d) = ftps_retr(proxy).await;
    let mut d = TlsConnector::from(client_config())
        .connect(localhost(), d)
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, d.read_to_end(&mut got))
        .await
        .unwrap();
    let last = c.line().await;
    c.send("QUIT\r\n").await;
    let _ = c.line().await;
    (got, last)
}

fn transfers(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "transfer").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_is_terminated_on_both_legs_and_the_engine_sees_it_in_clear() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let server = tokio::spawn(ftps_server(upstream, End::Clean, payload.clone()));
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Auto, "ca.pem")).await;
    let (got, last) = ftps_client(p.at).await;
    assert_eq!(
        got, payload,
        "the bytes arrive unchanged through two TLS legs"
    );
    assert!(last.starts_with("226"), "{last}");
    let seen = server.await.unwrap();
    // The proxy secured the server leg itself, before any of the client's commands:
    // under `auto`, once FEAT offered AUTH TLS.
    assert_eq!(seen.clear, vec!["FEAT\r\n", "AUTH TLS\r\n"]);
    assert_eq!(seen.secured[..2], ["PBSZ 0\r\n", "PROT P\r\n"]);
    assert!(seen.secured.contains(&"USER ann\r\n".to_string()));
    assert_eq!(
        seen.data_resumed,
        Some(true),
        "the data leg resumed the control session"
    );
    p.expect(
        "ftpwatch_proxy_tls_data_resumptions_total{leg=\"server\",result=\"resumed\"}",
        1.0,
    )
    .await;
    p.expect(
        "ftpwatch_proxy_tls_handshakes_total{channel=\"control\",leg=\"client\",result=\"ok\"}",
        1.0,
    )
    .await;
    let events = p.finish().await;
    let t = transfers(&events);
    assert_eq!(t.len(), 1, "{events:#?}");
    assert_eq!(t[0]["command"], "RETR");
    assert_eq!(t[0]["outcome"], "completed");
    assert_eq!(t[0]["tls"], true);
    assert_eq!(t[0]["legs"]["server"]["tls"], t[0]["legs"]["client"]["tls"]);
    assert!(
        t[0]["legs"]["server"]["tls"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1.")
    );
    let session = events.iter().find(|e| e["type"] == "session").unwrap();
    assert_eq!(session["tls"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclean_tls_shutdown_before_a_426_is_its_cause() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let server = tokio::spawn(ftps_server(upstream, End::Unclean, vec![7u8; 50_000]));
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Required, "ca.pem")).await;
    let (_, last) = ftps_client(p.at).await;
    assert!(last.starts_with("426"), "{last}");
    server.await.unwrap();
    p.expect(
        "ftpwatch_proxy_tls_unclean_shutdowns_total{channel=\"data\",leg=\"server\"}",
        1.0,
    )
    .await;
    let events = p.finish().await;
    let t = transfers(&events);
    assert_eq!(t.len(), 1, "{events:#?}");
    assert_eq!(t[0]["outcome"], "aborted");
    assert_eq!(t[0]["abort_cause"], "tls_unclean_shutdown");
    assert_eq!(
        t[0]["legs"]["server"]["first_close"]["how"],
        "fin_without_close_notify"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_certificate_that_does_not_verify_gets_the_client_a_421() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // The server's side of a handshake the proxy abandons.
        let mut c = greeted_up_to_auth(upstream).await;
        c.send("234 Go ahead.\r\n").await;
        let _ = TlsAcceptor::from(server_config())
            .accept(c.s.into_inner())
            .await;
    });
    // Verified against a CA that did not sign the server's certificate.
    let p = start(at, |c| {
        c.tls = proxy_tls(UpstreamTls::Required, "other-ca.pem")
    })
    .await;
    let s = TcpStream::connect(p.at).await.unwrap();
    let mut c = Lines {
        s: BufReader::new(s),
    };
    let reply = c.line().await;
    assert!(
        reply.starts_with("421 ") && reply.contains("TLS"),
        "{reply}"
    );
    server.await.unwrap();
    p.expect(
        "ftpwatch_proxy_tls_handshakes_total{channel=\"control\",leg=\"server\",result=\"certificate\"}",
        1.0,
    )
    .await;
    p.expect("ftpwatch_proxy_replies_written_total{code=\"421\"}", 1.0)
        .await;
    let events = p.finish().await;
    let r = events.iter().find(|e| e["type"] == "proxy_reply").unwrap();
    assert_eq!(r["reason"], "upstream_tls_failed");
    assert!(
        r["detail"].as_str().unwrap().contains("certificate"),
        "the reason is logged: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_refuses_a_login_in_clear_with_530() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let server = tokio::spawn(ftps_server(upstream, End::Clean, Vec::new()));
    let mut tls = proxy_tls(UpstreamTls::Required, "ca.pem");
    tls.require_tls = true;
    let p = start(at, |c| c.tls = tls).await;
    let s = TcpStream::connect(p.at).await.unwrap();
    let mut c = Lines {
        s: BufReader::new(s),
    };
    assert!(c.line().await.starts_with("220"));
    c.send("USER ann\r\n").await;
    let reply = c.line().await;
    assert!(reply.starts_with("530 "), "{reply}");
    c.send("QUIT\r\n").await;
    assert!(c.line().await.starts_with("221"));
    drop(c);
    let seen = server.await.unwrap();
    assert!(
        !seen.secured.iter().any(|l| l.starts_with("USER")),
        "the login never reached the server: {seen:?}"
    );
    p.expect("ftpwatch_proxy_replies_written_total{code=\"530\"}", 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_reply_reaches_the_client_after_the_end_of_the_data() {
    // RFC 4217's order: close_notify and FIN on the data connection, then the 226. The
    // server writes its 226 at once after closing; the client reads its data late.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let payload = vec![5u8; 300_000];
    let server = tokio::spawn(ftps_server(upstream, End::Clean, payload.clone()));
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Auto, "ca.pem")).await;
    let (mut c, d) = ftps_retr(p.at).await;
    let t0 = tokio::time::Instant::now();
    let reader = tokio::spawn(async move {
        let mut d = TlsConnector::from(client_config())
            .connect(localhost(), d)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut got = Vec::new();
        d.read_to_end(&mut got).await.unwrap();
        (got.len(), tokio::time::Instant::now())
        // The data connection closes here, as a client closes it after reading it all.
    });
    let reply = c.line().await;
    let reply_at = tokio::time::Instant::now();
    let (n, eof_at) = reader.await.unwrap();
    assert_eq!(n, payload.len());
    assert!(reply.starts_with("226"), "{reply}");
    assert!(
        eof_at <= reply_at,
        "the 226 came {:?} after the 150, the data's end {:?}",
        reply_at - t0,
        eof_at - t0
    );
    c.send("QUIT\r\n").await;
    c.line().await;
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ftps_upstream_is_tls_from_the_first_byte() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let payload = vec![9u8; 70_000];
    let server = tokio::spawn(ftps_server_as(upstream, End::Clean, payload.clone(), true));
    let (cert, key, ca) = (data("server.pem"), data("server.key"), data("ca.pem"));
    let tls = TlsConfig::build(&TlsOptions {
        cert: Some(&cert),
        key: Some(&key),
        upstream_implicit: true,
        upstream_ca: Some(&ca),
        ..TlsOptions::default()
    })
    .unwrap();
    assert_eq!(
        tls.upstream,
        UpstreamTls::Required,
        "ftps:// implies TLS required"
    );
    let p = start(at, |c| c.tls = tls).await;
    let (got, last) = ftps_client(p.at).await;
    assert_eq!(got, payload);
    assert!(last.starts_with("226"), "{last}");
    let seen = server.await.unwrap();
    assert!(seen.clear.is_empty(), "nothing in clear: {seen:?}");
    assert_eq!(seen.secured[..2], ["PBSZ 0\r\n", "PROT P\r\n"]);
    assert_eq!(seen.data_resumed, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_in_clear_behind_auth_tls_are_not_taken_as_secured() {
    // The STARTTLS injection (CVE-2011-0411): PROT C and USER ride in the same segment
    // as AUTH TLS. The proxy ends the session rather than obey them after its 234.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    // The server: reads what reaches it until the proxy closes or resets the session.
    let server = tokio::spawn(async move {
        let (s, _) = upstream.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        w.write_all(b"220 scripted FTPS server\r\n").await.unwrap();
        let mut r = BufReader::new(r);
        let mut got = Vec::new();
        loop {
            let mut l = String::new();
            match r.read_line(&mut l).await {
                Ok(0) | Err(_) => return got,
                Ok(_) => got.push(l),
            }
        }
    });
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Off, "ca.pem")).await;
    let mut s = TcpStream::connect(p.at).await.unwrap();
    let mut greeting = vec![0u8; 64];
    let n = s.read(&mut greeting).await.unwrap();
    assert!(greeting[..n].starts_with(b"220"));
    s.write_all(b"AUTH TLS\r\nPROT C\r\nUSER mallory\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rest).contains("234"),
        "no 234: {rest:?}"
    );
    drop(s);
    let got = server.await.unwrap();
    assert!(got.is_empty(), "nothing reached the server: {got:?}");
    p.expect(
        "ftpwatch_proxy_tls_handshakes_total{channel=\"control\",leg=\"client\",result=\"protocol\"}",
        1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_clear_behind_the_servers_234_are_not_taken_as_secured() {
    // The same injection toward the proxy: a forged "200" for PBSZ/PROT behind the 234
    // would leave the server leg's data in clear.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut c = greeted_up_to_auth(upstream).await;
        c.send("234 Go ahead.\r\n200 PBSZ=0\r\n534 PROT refused\r\n")
            .await;
        // The proxy gives up without a handshake: its side closes.
        let mut rest = Vec::new();
        let _ = c.s.read_to_end(&mut rest).await;
    });
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Required, "ca.pem")).await;
    let s = TcpStream::connect(p.at).await.unwrap();
    let mut c = Lines {
        s: BufReader::new(s),
    };
    let reply = c.line().await;
    assert!(
        reply.starts_with("421 ") && reply.contains("TLS"),
        "{reply}"
    );
    server.await.unwrap();
    let events = p.finish().await;
    let r = events.iter().find(|e| e["type"] == "proxy_reply").unwrap();
    assert_eq!(r["reason"], "upstream_tls_failed");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("after the server's 234"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ccc_the_clients_tls_13_close_notify_is_not_a_command() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = upstream.local_addr().unwrap();
    let server = tokio::spawn(ftps_server(upstream, End::Clean, Vec::new()));
    let p = start(at, |c| c.tls = proxy_tls(UpstreamTls::Required, "ca.pem")).await;
    let logins = [("PBSZ 0", "200"), ("PROT P", "200"), ("USER ann", "331")];
    let mut c = ftps_login(p.at, &logins).await;
    assert_eq!(
        c.s.get_ref().get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    c.send("CCC\r\n").await;
    assert!(c.line().await.starts_with("200"));
    // Answer the proxy's close_notify with ours (curl's active mode), then go on in
    // clear: the record must not reach the server as part of a command.
    let (tcp, mut conn) = c.s.into_inner().into_inner();
    conn.send_close_notify();
    let mut record = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut record).unwrap();
    }
    assert_eq!(record[0], 23, "TLS 1.3 sends its alert as application data");
    let mut c = Lines {
        s: BufReader::new(tcp),
    };
    // Split across two writes, the record is still one.
    c.send_bytes(&record[..3]).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    c.send_bytes(&record[3..]).await;
    c.send("PASS x\r\n").await;
    assert!(c.line().await.starts_with("230"));
    c.send("QUIT\r\n").await;
    assert!(c.line().await.starts_with("221"));
    let seen = server.await.unwrap();
    assert_eq!(seen.secured.last().unwrap(), "QUIT\r\n");
    assert!(seen.secured.contains(&"PASS x\r\n".to_string()), "{seen:?}");
}
