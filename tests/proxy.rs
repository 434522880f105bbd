//! The inline proxy on loopback, without root: a scripted FTP server on one side, a
//! client on the other, the proxy and its engine in between. What the real servers and
//! clients do through it is tests/e2e/proxy.sh; here each relay rule is pinned down
//! exactly: bytes unchanged, the data-channel rewrite, FIN stays FIN, RST stays RST, the
//! proxy's own replies, and what the engine reports.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod proxy_harness;

use proxy_harness::{Running, WAIT, start};

/// A line-at-a-time peer on a control connection.
struct Peer {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Peer {
    fn new(s: TcpStream) -> Self {
        let (r, w) = s.into_split();
        Peer {
            r: BufReader::new(r),
            w,
        }
    }

    /// One line with its ending (bytes that are not UTF-8 shown as U+FFFD).
    async fn line(&mut self) -> String {
        let mut l = Vec::new();
        tokio::time::timeout(WAIT, self.r.read_until(b'\n', &mut l))
            .await
            .expect("a line in time")
            .unwrap();
        String::from_utf8_lossy(&l).into_owned()
    }

    async fn send(&mut self, l: &str) {
        self.w.write_all(l.as_bytes()).await.unwrap();
    }
}

/// How the scripted server ends a download's data connection.
#[derive(Clone, Copy, PartialEq, Debug)]
enum ServerData {
    /// Send the bytes, FIN, then 226.
    Complete,
    /// Send until the client's reset reaches it, then 426.
    UntilReset,
    /// Upload: read to EOF, then write a late "bye" on the half-closed connection.
    ReadThenWrite,
}

/// One scripted session: greeting, login, EPSV, a transfer as `how` says, QUIT.
/// Returns every line the server received.
async fn scripted_server(listener: TcpListener, how: ServerData, payload: Vec<u8>) -> Vec<String> {
    let (s, _) = listener.accept().await.unwrap();
    let mut c = Peer::new(s);
    let mut got = Vec::new();
    c.send("220 scripted server\r\n").await;
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dport = data.local_addr().unwrap().port();
    loop {
        let line = c.line().await;
        if line.is_empty() {
            return got;
        }
        got.push(line.clone());
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "USER" => c.send("331 Password please.\r\n").await,
            "PASS" => {
                c.send("230-Welcome\r\n230-to the\r\n230 scripted server.\r\n")
                    .await
            }
            "EPSV" => {
                c.send(&format!(
                    "229 Entering Extended Passive Mode (|||{dport}|)\r\n"
                ))
                .await
            }
            "RETR" | "STOR" => {
                let (mut d, _) = data.accept().await.unwrap();
                c.send("150 Opening data connection (65536 bytes).\r\n")
                    .await;
                match how {
                    ServerData::Complete => {
                        d.write_all(&payload).await.unwrap();
                        d.shutdown().await.unwrap();
                        let mut rest = Vec::new();
                        let _ = d.read_to_end(&mut rest).await;
                        c.send("226 Transfer complete.\r\n").await;
                    }
                    ServerData::UntilReset => {
                        let chunk = vec![7u8; 16384];
                        let mut failed = false;
                        for _ in 0..100_000 {
                            if d.write_all(&chunk).await.is_err() {
                                failed = true;
                                break;
                            }
                        }
                        assert!(failed, "the client's reset reached the server");
                        c.send("426 Failure writing network stream.\r\n").await;
                    }
                    ServerData::ReadThenWrite => {
                        let mut up = Vec::new();
                        d.read_to_end(&mut up).await.unwrap();
                        assert_eq!(up, payload, "the upload arrived unchanged");
                        // The client only half-closed: this still reaches it.
                        d.write_all(b"bye").await.unwrap();
                        d.shutdown().await.unwrap();
                        c.send("226 Transfer complete.\r\n").await;
                    }
                }
            }
            "QUIT" => {
                c.send("221 Goodbye.\r\n").await;
                return got;
            }
            _ => c.send("200 OK.\r\n").await,
        }
    }
}

/// A scripted server doing `how`, the proxy in front of it, and a client logged in
/// through the proxy.
async fn logged_in(
    how: ServerData,
    payload: Vec<u8>,
) -> (Running, Peer, tokio::task::JoinHandle<Vec<String>>) {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = server.local_addr().unwrap();
    let script = tokio::spawn(scripted_server(server, how, payload));
    let p = start(up, |_| {}).await;
    let mut c = Peer::new(TcpStream::connect(p.at).await.unwrap());
    login(&mut c).await;
    (p, c, script)
}

async fn login(c: &mut Peer) {
    assert_eq!(c.line().await, "220 scripted server\r\n");
    c.send("USER alice\r\n").await;
    assert_eq!(c.line().await, "331 Password please.\r\n");
    c.send("PASS secret\r\n").await;
    // A multi-line reply passes through line for line.
    assert_eq!(c.line().await, "230-Welcome\r\n");
    assert_eq!(c.line().await, "230-to the\r\n");
    assert_eq!(c.line().await, "230 scripted server.\r\n");
}

/// PASV through the proxy: the 227 names the proxy's own endpoint.
async fn pasv(c: &mut Peer, proxy: SocketAddr) -> TcpStream {
    c.send("PASV\r\n").await;
    let reply = c.line().await;
    assert!(
        reply.starts_with("227 Entering Passive Mode (127,0,0,1,"),
        "{reply}"
    );
    let nums: Vec<u16> = reply[reply.find('(').unwrap() + 1..reply.find(')').unwrap()]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let port = nums[4] * 256 + nums[5];
    assert_ne!(port, proxy.port());
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

fn transfers(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "transfer").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_relayed_unchanged_and_reported_completed() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let (p, mut c, script) = logged_in(ServerData::Complete, payload.clone()).await;
    let mut d = pasv(&mut c, p.at).await;
    c.send("RETR file.bin\r\n").await;
    assert_eq!(
        c.line().await,
        "150 Opening data connection (65536 bytes).\r\n"
    );
    let mut got = Vec::new();
    d.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, payload, "the bytes arrive unchanged");
    drop(d);
    assert_eq!(c.line().await, "226 Transfer complete.\r\n");
    c.send("QUIT\r\n").await;
    assert_eq!(c.line().await, "221 Goodbye.\r\n");
    let seen = script.await.unwrap();
    // The server saw the client's commands unchanged, and the proxy's EPSV for PASV.
    assert_eq!(
        seen,
        [
            "USER alice\r\n",
            "PASS secret\r\n",
            "EPSV\r\n",
            "RETR file.bin\r\n",
            "QUIT\r\n"
        ]
    );
    p.expect("ftpwatch_proxy_replies_rewritten_total", 1.0)
        .await;
    p.expect(
        "ftpwatch_proxy_data_bytes_total{direction=\"to_client\",leg=\"client\"}",
        65536.0,
    )
    .await;
    p.expect(
        "ftp_transfers_total{command=\"RETR\",outcome=\"completed\"}",
        1.0,
    )
    .await;
    let events = p.finish().await;
    let t = transfers(&events);
    assert_eq!(t.len(), 1);
    let t = t[0];
    assert_eq!(t["via"], "proxy");
    assert_eq!(t["outcome"], "completed");
    assert_eq!(
        t["mode"], "EPSV",
        "the engine sees the server-side conversation"
    );
    assert_eq!(t["data"]["bytes_to_client"], 65536);
    assert_eq!(t["legs"]["client"]["bytes_to_client"], 65536);
    assert_eq!(t["legs"]["server"]["bytes_to_client"], 65536);
    assert_eq!(t["legs"]["server"]["first_close"]["by"], "server");
    assert_eq!(t["legs"]["server"]["first_close"]["how"], "fin");
    assert_eq!(t["legs"]["client"]["first_close"]["by"], "proxy");
    assert!(t.get("origin").is_none(), "origin is for 426 and 421");
    let session = events.iter().find(|e| e["type"] == "session").unwrap();
    assert_eq!(session["end_reason"], "quit");
    assert_eq!(session["user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reset_reaches_the_server_as_a_reset_and_the_426_says_so() {
    let (p, mut c, script) = logged_in(ServerData::UntilReset, Vec::new()).await;
    let mut d = pasv(&mut c, p.at).await;
    c.send("RETR big.bin\r\n").await;
    assert!(c.line().await.starts_with("150 "));
    let mut buf = vec![0u8; 32768];
    let mut got = 0;
    while got < 100_000 {
        got += d.read(&mut buf).await.unwrap();
    }
    d.set_zero_linger().unwrap();
    drop(d); // RST
    // The scripted server asserts that its writes failed: the reset reached it.
    assert_eq!(c.line().await, "426 Failure writing network stream.\r\n");
    c.send("QUIT\r\n").await;
    assert_eq!(c.line().await, "221 Goodbye.\r\n");
    script.await.unwrap();
    let events = p.finish().await;
    let t = transfers(&events)[0];
    assert_eq!(t["outcome"], "aborted");
    assert_eq!(t["abort_cause"], "client_reset");
    assert_eq!(t["origin"], "server");
    assert_eq!(t["legs"]["client"]["first_close"]["by"], "client");
    assert_eq!(t["legs"]["client"]["first_close"]["how"], "rst");
    assert_eq!(t["legs"]["server"]["first_close"]["by"], "proxy");
    assert_eq!(t["legs"]["server"]["first_close"]["how"], "rst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_close_stays_a_half_close() {
    let payload = vec![b'u'; 40000];
    let (p, mut c, script) = logged_in(ServerData::ReadThenWrite, payload.clone()).await;
    let mut d = pasv(&mut c, p.at).await;
    c.send("STOR up.bin\r\n").await;
    assert!(c.line().await.starts_with("150 "));
    d.write_all(&payload).await.unwrap();
    d.shutdown().await.unwrap(); // FIN: the client is done sending, not receiving
    let mut late = Vec::new();
    d.read_to_end(&mut late).await.unwrap();
    assert_eq!(
        late, b"bye",
        "the server's bytes after the client's FIN arrive"
    );
    assert_eq!(c.line().await, "226 Transfer complete.\r\n");
    c.send("QUIT\r\n").await;
    c.line().await;
    script.await.unwrap();
    let events = p.finish().await;
    let t = transfers(&events)[0];
    assert_eq!(t["outcome"], "completed");
    assert_eq!(t["legs"]["client"]["first_close"]["by"], "client");
    assert_eq!(t["legs"]["client"]["first_close"]["how"], "fin");
    assert_eq!(t["legs"]["server"]["bytes_to_server"], 40000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_bounce_is_refused_by_the_proxy_and_never_reaches_the_server() {
    let (p, mut c, script) = logged_in(ServerData::Complete, Vec::new()).await;
    c.send("PORT 192,0,2,1,7,208\r\n").await;
    assert!(c.line().await.starts_with("500 PORT/EPRT refused"));
    c.send("EPRT |1|127.0.0.1|25|\r\n").await;
    assert!(c.line().await.starts_with("500 PORT/EPRT refused"));
    c.send("QUIT\r\n").await;
    c.line().await;
    let seen = script.await.unwrap();
    assert_eq!(seen, ["USER alice\r\n", "PASS secret\r\n", "QUIT\r\n"]);
    p.expect(
        "ftpwatch_proxy_data_refused_total{reason=\"bounce_third_party\"}",
        1.0,
    )
    .await;
    p.expect(
        "ftpwatch_proxy_data_refused_total{reason=\"bounce_privileged_port\"}",
        1.0,
    )
    .await;
    p.expect(
        "ftp_replies_total{class=\"5xx\",code=\"500\",origin=\"proxy\"}",
        2.0,
    )
    .await;
    let events = p.finish().await;
    let own: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "proxy_reply")
        .map(|e| (e["code"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(own, vec![(500.into(), "bounce".into()); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_gets_the_client_a_421_from_the_proxy() {
    // A port nobody listens on: bind, note it, close.
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let p = start(gone, |_| {}).await;
    let mut c = Peer::new(TcpStream::connect(p.at).await.unwrap());
    assert!(c.line().await.starts_with("421 Service not available"));
    p.expect(
        "ftpwatch_proxy_upstream_connect_failures_total{reason=\"refused\"}",
        1.0,
    )
    .await;
    p.expect(
        "ftp_replies_total{class=\"4xx\",code=\"421\",origin=\"proxy\"}",
        1.0,
    )
    .await;
    let events = p.finish().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "proxy_reply");
    assert_eq!(events[0]["reason"], "upstream_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_get_a_421_and_are_counted() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = server.local_addr().unwrap();
    let script = tokio::spawn(scripted_server(server, ServerData::Complete, Vec::new()));
    let p = start(up, |c| c.max_sessions = 1).await;
    let mut first = Peer::new(TcpStream::connect(p.at).await.unwrap());
    assert_eq!(first.line().await, "220 scripted server\r\n");
    let mut second = Peer::new(TcpStream::connect(p.at).await.unwrap());
    assert!(second.line().await.starts_with("421 Too many sessions"));
    p.expect(
        "ftpwatch_proxy_sessions_refused_total{reason=\"max_sessions\"}",
        1.0,
    )
    .await;
    first.send("QUIT\r\n").await;
    first.line().await;
    script.await.unwrap();
    p.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_connection_from_another_address_is_refused() {
    let payload = vec![1u8; 1000];
    let (p, mut c, script) = logged_in(ServerData::Complete, payload.clone()).await;
    c.send("PASV\r\n").await;
    let reply = c.line().await;
    let nums: Vec<u16> = reply[reply.find('(').unwrap() + 1..reply.find(')').unwrap()]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let port = nums[4] * 256 + nums[5];
    // 127.0.0.2 is loopback too, but not the session's client address.
    let stranger = tokio::net::TcpSocket::new_v4().unwrap();
    stranger.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    // On loopback the proxy's reset can overtake the end of connect() itself; either
    // way it is a reset (SO_LINGER 0), never a clean close.
    let refused = match stranger
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
    {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(mut s) => {
            let mut buf = [0u8; 16];
            matches!(s.read(&mut buf).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
        }
    };
    assert!(refused, "the stranger's connection was reset");
    // The real client still gets its transfer.
    let mut d = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.send("RETR f\r\n").await;
    c.line().await;
    let mut got = Vec::new();
    d.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, payload);
    drop(d);
    assert_eq!(c.line().await, "226 Transfer complete.\r\n");
    c.send("QUIT\r\n").await;
    c.line().await;
    script.await.unwrap();
    p.expect(
        "ftpwatch_proxy_data_refused_total{reason=\"wrong_peer\"}",
        1.0,
    )
    .await;
    p.finish().await;
}

/// A server that greets, then reads in-band bytes until `until` (reads stop at the
/// urgent mark, as a server handling a Telnet Synch does), takes the urgent byte,
/// answers 225 and reads what follows the mark. Returns the three.
fn urgent_server(
    server: TcpListener,
    until: &'static [u8],
) -> tokio::task::JoinHandle<(Vec<u8>, u8, Vec<u8>)> {
    use rustix::net::RecvFlags;
    tokio::spawn(async move {
        let (s, _) = server.accept().await.unwrap();
        let mut s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            s.write_all(b"220 scripted server\r\n").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut inband = Vec::new();
            let mut buf = [0u8; 64];
            while !inband.ends_with(until) {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended early: {inband:?}");
                inband.extend_from_slice(&buf[..n]);
            }
            // The urgent byte may follow the in-band bytes in a segment of its own.
            let mut urgent = [0u8; 1];
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                match rustix::net::recv(&s, &mut urgent[..], RecvFlags::OOB) {
                    Ok((_, 1)) => break,
                    _ if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    other => panic!("no urgent byte: {other:?}"),
                }
            }
            s.write_all(b"225 ABOR command successful.\r\n").unwrap();
            // Then the stream goes on after the mark.
            let mut after = Vec::new();
            while !after.ends_with(b"\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the stream ended early: {after:?}");
                after.extend_from_slice(&buf[..n]);
            }
            (inband, urgent[0], after)
        })
        .await
        .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bsd_abor_whose_urgent_byte_arrives_alone_keeps_its_mark() {
    use rustix::net::SendFlags;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = server.local_addr().unwrap();
    let script = urgent_server(server, b"\xff\xf4\xff");
    let p = start(up, |_| {}).await;
    let c = std::net::TcpStream::connect(p.at).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.set_nodelay(true).unwrap();
    let mut r = std::io::BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    // BSD ftp's abort: IAC IP IAC in band, DM urgent, then ABOR; each in a segment of
    // its own, the urgent byte alone (then it does not make the socket readable, and
    // the read the next bytes allow skips it).
    rustix::net::send(&c, b"\xff\xf4\xff", SendFlags::empty()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    rustix::net::send(&c, b"\xf2", SendFlags::OOB).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    rustix::net::send(&c, b"ABOR\r\n", SendFlags::empty()).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "225 ABOR command successful.\r\n");
    let (inband, urgent, after) = script.await.unwrap();
    assert_eq!(inband, b"\xff\xf4\xff");
    assert_eq!(urgent, 0xf2, "IAC DM, urgent, at its place");
    assert_eq!(after, b"ABOR\r\n");
    p.expect(
        "ftpwatch_proxy_urgent_bytes_total{direction=\"to_server\"}",
        1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_byte_reaches_the_server_with_its_mark_at_its_place() {
    use rustix::net::SendFlags;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = server.local_addr().unwrap();
    let script = urgent_server(server, b"ABOR\r");
    let p = start(up, |_| {}).await;
    let c = std::net::TcpStream::connect(p.at).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = std::io::BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "220 scripted server\r\n");
    // Python ftplib's abort(): `sendall(b"ABOR\r\n", MSG_OOB)`, the LF urgent.
    rustix::net::send(&c, b"NOOP\r\n", SendFlags::empty()).unwrap();
    rustix::net::send(&c, b"ABOR\r\n", SendFlags::OOB).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "225 ABOR command successful.\r\n");
    rustix::net::send(&c, b"QUIT\r\n", SendFlags::empty()).unwrap();
    let (inband, urgent, after) = script.await.unwrap();
    assert_eq!(inband, b"NOOP\r\nABOR\r");
    assert_eq!(urgent, b'\n');
    assert_eq!(after, b"QUIT\r\n");
    p.expect(
        "ftpwatch_proxy_urgent_bytes_total{direction=\"to_server\"}",
        1.0,
    )
    .await;
    drop(c);
    drop(r);
    let events = p.finish().await;
    let session = events.iter().find(|e| e["type"] == "session").unwrap();
    // The engine saw NOOP, ABOR (its line completed by the urgent LF) and QUIT.
    assert_eq!(session["commands"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_line_and_binary_garbage_pass_unchanged_and_framing_recovers() {
    let (p, mut c, script) = logged_in(ServerData::Complete, Vec::new()).await;
    // 20,000 bytes without a line end (over the 8192-byte cap), then garbage with
    // NUL and 0xFF bytes, then a line end and a real command.
    let long = "X".repeat(20_000);
    c.send(&long).await;
    c.w.write_all(b"\x00\xff\xfe garbage\r\n").await.unwrap();
    assert_eq!(c.line().await, "200 OK.\r\n");
    c.send("NOOP\r\n").await;
    assert_eq!(c.line().await, "200 OK.\r\n");
    c.send("QUIT\r\n").await;
    c.line().await;
    let seen = script.await.unwrap();
    // The server got the long line whole (as one line of its own framing) and NOOP.
    assert_eq!(seen.len(), 5);
    assert_eq!(
        seen[2],
        format!("{long}\0\u{FFFD}\u{FFFD} garbage\r\n"),
        "every byte, in order (0xFF and 0xFE shown as U+FFFD)"
    );
    assert_eq!(seen[3], "NOOP\r\n");
    // The engine's line cap was hit and counted; nothing else broke.
    p.expect("ftpwatch_bounds_hit_total{bound=\"line_length\"}", 1.0)
        .await;
    let events = p.finish().await;
    let session = events.iter().find(|e| e["type"] == "session").unwrap();
    assert_eq!(session["end_reason"], "quit");
}
