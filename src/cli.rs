//! Command-line interface.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::live::{LiveConfig, Source};
use crate::read::{EXIT_BAD_INPUT, Output, ReadConfig};
use ftpwatch::pipeline::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "ftpwatch",
    version,
    about = "Watch FTP traffic: follow every transfer to its final reply and explain every 426."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse capture files (pcap or pcapng; `-` reads standard input) as one timeline.
    Read(ReadArgs),
    /// Capture on network interfaces and serve Prometheus metrics (needs CAP_NET_RAW).
    Live(LiveArgs),
    /// Relay FTP as an inline proxy (reverse or transparent) and explain every transfer
    /// first-hand: same event log and metrics as `live`, plus the proxy's own.
    Proxy(ProxyArgs),
    /// Explain an FTP reply code: its class, meaning, when you see it, what to do.
    Explain {
        /// A three-digit reply code, e.g. 426.
        code: String,
    },
}

/// Options of the FTP engine, shared by every command that analyses traffic.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Leave user names out of every output (records, texts, logs).
    #[arg(long)]
    pub redact_user: bool,
    /// Log every command and reply as parsed to standard error (PASS as `PASS ****`).
    #[arg(long)]
    pub debug: bool,
    /// Memory for the analysis state (connections, sessions, buffers), e.g. 512M, 2G;
    /// the caps below it are derived from it. The live capture ring (64 MiB per capture
    /// thread) comes on top.
    #[arg(long, default_value = "512M", value_parser = parse_size)]
    pub max_memory: usize,
    /// Seconds after a 426 to wait for the data connection's teardown.
    #[arg(long, default_value_t = 2.0)]
    pub abort_settle: f64,
    /// Seconds without data progress after which an open data connection is `stalled`.
    #[arg(long, default_value_t = 5.0)]
    pub stall_after: f64,
}

/// A number of seconds given on the command line.
pub fn secs(name: &str, v: f64) -> Result<Duration, String> {
    if (0.0..1e6).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{name}: {v} is not a number of seconds"))
    }
}

impl EngineArgs {
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings::with_memory_budget(self.max_memory);
        s.engine.abort_settle = secs("--abort-settle", self.abort_settle)?;
        s.engine.stall_after = secs("--stall-after", self.stall_after)?;
        s.engine.redact_user = self.redact_user;
        s.engine.trace = self.debug;
        Ok(s)
    }
}

/// Options shared by the commands that analyse captured packets.
#[derive(Args, Debug, Clone)]
pub struct AnalysisArgs {
    /// TCP ports of FTP control connections, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "21")]
    pub ports: Vec<u16>,
    /// Connections tracked at once (default: from --max-memory, 262,144 for 512M).
    #[arg(long)]
    pub max_flows: Option<usize>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl AnalysisArgs {
    pub fn settings(&self) -> Result<Settings, String> {
        if self.ports.contains(&0) {
            return Err("--ports: port 0 is not a port".into());
        }
        let mut s = self.engine.settings()?;
        s.flow.control_ports = self.ports.clone();
        if let Some(n) = self.max_flows {
            s.flow.max_flows = n.max(1);
        }
        Ok(s)
    }
}

/// `512M`, `2G`, `64KiB`, or plain bytes; at least 1M.
fn parse_size(s: &str) -> Result<usize, String> {
    let bytes = parse_bytes(s)?;
    if bytes < (1 << 20) {
        return Err(format!("{s:?} is below the 1M minimum"));
    }
    Ok(bytes)
}

/// `512M`, `2G`, `64KiB`, or plain bytes.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("4096KiB"), Ok(4 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("12").unwrap_err().contains("minimum"));
        assert!(parse_size("5T").is_err());
        assert!(parse_size("lots").is_err());
    }
}

#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Capture files, read in this order; `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// One JSON object per line (transfers, sessions, anomalies) instead of the summary.
    #[arg(long, conflicts_with = "metrics")]
    pub json: bool,
    /// Print the Prometheus text exposition of the counters instead of the summary.
    #[arg(long)]
    pub metrics: bool,
    /// Also write a self-contained HTML report (timeline, charts, the transfers that
    /// went wrong, capture health) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// The default metrics port: outside 9100-9999 (the Prometheus exporters' range, fully
/// allocated) and below the ephemeral ports.
pub const DEFAULT_LISTEN: &str = "[::]:10426";
/// The proxy's metrics port: the next one, so that a gateway can run both.
pub const DEFAULT_PROXY_LISTEN: &str = "[::]:10427";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Ring,
    Pnet,
}

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on; repeat for several. A packet seen on two interfaces
    /// (forwarded by a gateway) is counted once.
    #[arg(short = 'i', long = "interface", default_value = "lo")]
    pub interfaces: Vec<String>,
    /// Address for the HTTP server (/metrics, /, /healthz).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Write the event log (JSON lines, as `read --json`) here; `-` for standard output.
    #[arg(long)]
    pub events: Option<String>,
    /// Capture threads per interface (PACKET_FANOUT); analysis stays one thread.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// How frames are read: `ring` (TPACKET_V3 shared ring, no system call per packet)
    /// or `pnet` (pnet's AF_PACKET channel, one recvfrom per packet).
    #[arg(long, value_enum, default_value_t = Backend::Ring)]
    pub backend: Backend,
    /// Play a capture file (or `-`) in as if it were an interface (testing, demos).
    #[arg(long, hide = true)]
    pub replay: Option<String>,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamModeArg {
    Passive,
    Active,
    Same,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Reverse mode: relay every client to this FTP server (HOST:PORT).
    #[arg(
        long,
        required_unless_present = "transparent",
        conflicts_with = "transparent"
    )]
    pub upstream: Option<String>,
    /// Transparent mode: relay each client to where it was going before a REDIRECT
    /// rule sent it here (SO_ORIGINAL_DST); needs --allow-dest.
    #[arg(long, requires = "allow_dest")]
    pub transparent: bool,
    /// Servers that may be reached in transparent mode (CIDR; repeat for several).
    #[arg(long = "allow-dest", value_name = "CIDR")]
    pub allow_dest: Vec<ftpwatch::proxy::Cidr>,
    /// Address to accept FTP clients on; repeat for several.
    #[arg(long = "ftp-listen", value_name = "ADDR", default_value = "[::]:21")]
    pub ftp_listen: Vec<std::net::SocketAddr>,
    /// Address for the HTTP server (/metrics, /, /healthz).
    #[arg(long, default_value = DEFAULT_PROXY_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Write the event log (JSON lines) here; `-` for standard output.
    #[arg(long)]
    pub events: Option<String>,
    /// Ports for the proxy's data listeners, LO-HI (default: ephemeral ports).
    #[arg(long, value_name = "LO-HI", value_parser = parse_port_range)]
    pub data_ports: Option<(u16, u16)>,
    /// How the proxy opens data connections to the server: `passive` (EPSV, then PASV
    /// if refused), `active` (PORT/EPRT), or the `same` as the client.
    #[arg(long, value_enum, default_value_t = UpstreamModeArg::Passive)]
    pub upstream_mode: UpstreamModeArg,
    /// Sessions relayed at once; more are answered with 421 and counted.
    #[arg(long, default_value_t = 1024)]
    pub max_sessions: usize,
    /// Seconds to wait for a connection to a server or to a client's PORT endpoint.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds a session (control and data) may stand idle before it is closed.
    #[arg(long, default_value_t = 900.0)]
    pub idle_timeout: f64,
    /// Bytes held per direction of a data connection (a kernel pipe between the legs),
    /// 64K to 1M: more costs memory per transfer and saves CPU (README, Performance).
    #[arg(long, default_value = "64K", value_parser = parse_buffer)]
    pub data_buffer: usize,
    /// On SIGTERM, seconds running sessions get to finish before they are closed.
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
    /// The proxy's certificate chain (PEM), for FTPS clients: AUTH TLS, and
    /// --ftps-listen.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Address to accept implicit FTPS clients on (TLS from the first byte, port 990);
    /// repeat for several. Needs --tls-cert.
    #[arg(long = "ftps-listen", value_name = "ADDR", requires = "tls_cert")]
    pub ftps_listen: Vec<std::net::SocketAddr>,
    /// Refuse USER and PASS in clear with 530: clients must send AUTH TLS first.
    #[arg(long, requires = "tls_cert")]
    pub require_tls: bool,
    /// A client's protected data connection must resume its control connection's TLS
    /// session (as vsftpd's require_ssl_reuse); Python's ftplib cannot.
    #[arg(long, requires = "tls_cert")]
    pub require_tls_reuse: bool,
    /// TLS toward the server: `auto` (AUTH TLS when its FEAT offers it), `required`
    /// (a server without it is not used), `off`. `ftps://HOST:PORT` in --upstream means
    /// implicit TLS.
    #[arg(long, value_enum)]
    pub upstream_tls: Option<UpstreamTlsArg>,
    /// CA certificates (PEM) the server's certificate is checked against, instead of
    /// the system's.
    #[arg(long, value_name = "FILE", conflicts_with = "upstream_insecure")]
    pub upstream_ca: Option<std::path::PathBuf>,
    /// Do not check the server's certificate (its handshake still is). Shown on the
    /// landing page.
    #[arg(long)]
    pub upstream_insecure: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamTlsArg {
    Auto,
    Required,
    Off,
}

/// A data buffer size: 64K to 1M.
fn parse_buffer(s: &str) -> Result<usize, String> {
    let n = parse_bytes(s)?;
    if !((64 << 10)..=(1 << 20)).contains(&n) {
        return Err(format!("{s:?}: the data buffer must be 64K to 1M"));
    }
    Ok(n)
}

/// `LO-HI`, both unprivileged or not, LO ≤ HI.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected LO-HI, e.g. 40000-40999"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?}: {p:?} is not a port"))
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!("{s:?}: the first port is above the last"));
    }
    Ok((lo, hi))
}

impl ProxyArgs {
    fn config(self) -> Result<crate::proxy_cli::ProxyConfig, String> {
        use ftpwatch::proxy::{Config, TlsConfig, TlsOptions, Upstream, UpstreamMode, UpstreamTls};
        let settings = self.engine.settings()?;
        let mut implicit = false;
        let upstream = match self.upstream {
            Some(h) => {
                let h = match h.strip_prefix("ftps://") {
                    Some(rest) => {
                        implicit = true;
                        let rest = rest.trim_end_matches('/');
                        let has_port = rest.rsplit_once(':').is_some_and(|(_, p)| {
                            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
                        }) && !rest.ends_with(']');
                        if has_port {
                            rest.to_string()
                        } else {
                            format!("{rest}:990")
                        }
                    }
                    None => h,
                };
                if !h.contains(':') {
                    return Err(format!(
                        "--upstream {h:?}: expected HOST:PORT or ftps://HOST[:PORT]"
                    ));
                }
                Upstream::Fixed(h)
            }
            None => Upstream::Transparent {
                allow: self.allow_dest,
            },
        };
        if self.max_sessions == 0 {
            return Err("--max-sessions must be at least 1".into());
        }
        let proxy = Config {
            upstream,
            upstream_mode: match self.upstream_mode {
                UpstreamModeArg::Passive => UpstreamMode::Passive,
                UpstreamModeArg::Active => UpstreamMode::Active,
                UpstreamModeArg::Same => UpstreamMode::Same,
            },
            data_ports: self.data_ports,
            max_sessions: self.max_sessions,
            connect_timeout: secs("--connect-timeout", self.connect_timeout)?,
            idle_timeout: secs("--idle-timeout", self.idle_timeout)?,
            max_line: settings.engine.max_line,
            data_buffer: self.data_buffer,
            tls: TlsConfig::build(&TlsOptions {
                cert: self.tls_cert.as_deref(),
                key: self.tls_key.as_deref(),
                upstream: self.upstream_tls.map(|u| match u {
                    UpstreamTlsArg::Auto => UpstreamTls::Auto,
                    UpstreamTlsArg::Required => UpstreamTls::Required,
                    UpstreamTlsArg::Off => UpstreamTls::Off,
                }),
                upstream_implicit: implicit,
                upstream_ca: self.upstream_ca.as_deref(),
                upstream_insecure: self.upstream_insecure,
                require_tls: self.require_tls,
                require_reuse: self.require_tls_reuse,
            })?,
            ..Config::default()
        };
        Ok(crate::proxy_cli::ProxyConfig {
            proxy,
            ftp_listen: self.ftp_listen,
            ftps_listen: self.ftps_listen,
            listen: self.listen,
            events: self.events,
            drain: secs("--drain", self.drain)?,
            settings,
        })
    }
}

impl ReadArgs {
    fn config(self) -> Result<ReadConfig, String> {
        let output = if self.json {
            Output::Json
        } else if self.metrics {
            Output::Metrics
        } else {
            Output::Report
        };
        Ok(ReadConfig {
            settings: self.analysis.settings()?,
            files: self.files,
            output,
            html: self.html,
        })
    }
}

impl LiveArgs {
    fn config(self) -> Result<LiveConfig, String> {
        let settings = self.analysis.settings()?;
        if self.threads == 0 || self.threads > 64 {
            return Err("--threads must be 1 to 64".into());
        }
        // A replayed capture is one interface with one reader.
        let (source, interfaces, threads) = match self.replay {
            Some(path) => (Source::Replay(path), vec!["replay".to_string()], 1),
            None => {
                let source = match self.backend {
                    Backend::Ring => Source::Ring,
                    Backend::Pnet => Source::Pnet,
                };
                (source, self.interfaces, self.threads)
            }
        };
        Ok(LiveConfig {
            interfaces,
            source,
            promiscuous: !self.no_promisc,
            threads,
            listen: self.listen,
            events: self.events,
            settings,
        })
    }
}

/// A command line that does not make sense: one line, and the usage-error status.
fn invalid(e: String) -> ExitCode {
    eprintln!("ftpwatch: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Read(args) => match args.config() {
            Ok(cfg) => crate::read::run(cfg),
            Err(e) => invalid(e),
        },
        Command::Live(args) => match args.config() {
            Ok(cfg) => crate::live::run(cfg),
            Err(e) => invalid(e),
        },
        Command::Proxy(args) => match args.config() {
            Ok(cfg) => crate::proxy_cli::run(cfg),
            Err(e) => invalid(e),
        },
        Command::Explain { code } => match crate::explain::explain(&code) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ftpwatch: {e}");
                ExitCode::from(2)
            }
        },
    }
}
