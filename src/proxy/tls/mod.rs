//! FTPS in the proxy (RFC 4217): TLS is terminated on each leg, so the engine sees the
//! session in clear. The client leg and the server leg are secured independently: the
//! proxy answers AUTH, PBSZ, PROT and CCC itself (`commands`), and secures its own
//! connection to the server as `--upstream-tls` says (`upstream`). rustls with the
//! `ring` provider (it builds with a C compiler alone; aws-lc-rs wants cmake).
//!
//! Resumption is kept per session: each session gets its own server-side session cache
//! and its own client-side resumption store, so a data connection can resume only its
//! own control connection's TLS session (what vsftpd's `require_ssl_reuse` checks, and
//! what `--require-tls-reuse` checks of clients).

pub mod commands;
pub mod relay;
pub mod upstream;
pub mod wire;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::ServerSessionMemoryCache;
use rustls::{
    ClientConfig, CommonState, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

pub use wire::{Socket, Wire};

/// `--upstream-tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    /// AUTH TLS when the server's FEAT offers it.
    Auto,
    /// AUTH TLS always; a server that refuses it is not used.
    Required,
    /// Never: the server leg stays in clear.
    Off,
}

/// What the proxy's TLS is made of, built once from the command line.
#[derive(Clone)]
pub struct TlsConfig {
    /// The proxy's certificate, for clients (AUTH TLS, and implicit FTPS).
    pub client_side: Option<Arc<ServerConfig>>,
    pub upstream: UpstreamTls,
    /// `ftps://` in `--upstream`: TLS from the server connection's first byte.
    pub upstream_implicit: bool,
    /// Verification and versions for the server leg; `None` when `upstream` is off.
    pub upstream_client: Option<Arc<ClientConfig>>,
    pub upstream_insecure: bool,
    /// `--require-tls`: USER and PASS in clear get 530.
    pub require_tls: bool,
    /// `--require-tls-reuse`: a client's protected data connection must resume its
    /// control connection's TLS session.
    pub require_reuse: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_side", &self.client_side.is_some())
            .field("upstream", &self.upstream)
            .field("upstream_implicit", &self.upstream_implicit)
            .field("upstream_insecure", &self.upstream_insecure)
            .field("require_tls", &self.require_tls)
            .field("require_reuse", &self.require_reuse)
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            client_side: None,
            upstream: UpstreamTls::Off,
            upstream_implicit: false,
            upstream_client: None,
            upstream_insecure: false,
            require_tls: false,
            require_reuse: false,
        }
    }
}

/// The command line's TLS options, as given.
#[derive(Debug, Default, Clone)]
pub struct TlsOptions<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub upstream: Option<UpstreamTls>,
    pub upstream_implicit: bool,
    pub upstream_ca: Option<&'a Path>,
    pub upstream_insecure: bool,
    pub require_tls: bool,
    pub require_reuse: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

impl TlsConfig {
    /// Errors are one line naming the option and the file.
    pub fn build(o: &TlsOptions<'_>) -> Result<TlsConfig, String> {
        let client_side = match (o.cert, o.key) {
            (Some(cert), Some(key)) => Some(Arc::new(server_config(cert, key)?)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        if o.require_tls && client_side.is_none() {
            return Err("--require-tls needs --tls-cert and --tls-key".into());
        }
        let upstream = match o.upstream {
            Some(u) => u,
            None if o.upstream_implicit => UpstreamTls::Required,
            None => UpstreamTls::Auto,
        };
        if o.upstream_implicit && upstream == UpstreamTls::Off {
            return Err("--upstream ftps://… needs TLS: drop --upstream-tls off".into());
        }
        let upstream_client = match upstream {
            UpstreamTls::Off => None,
            _ => Some(Arc::new(client_config(
                o.upstream_ca,
                o.upstream_insecure,
                upstream,
            )?)),
        };
        Ok(TlsConfig {
            client_side,
            upstream,
            upstream_implicit: o.upstream_implicit,
            upstream_client,
            upstream_insecure: o.upstream_insecure,
            require_tls: o.require_tls,
            require_reuse: o.require_reuse,
        })
    }

    /// This session's own copies: a fresh session cache on each side, so resumption
    /// stays within the session.
    pub fn for_session(&self) -> SessionTls {
        SessionTls {
            client_side: self.client_side.as_ref().map(|base| {
                let mut c = ServerConfig::clone(base);
                c.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
                Arc::new(c)
            }),
            upstream: self.upstream_client.as_ref().map(|base| {
                let mut c = ClientConfig::clone(base);
                c.resumption = Resumption::in_memory_sessions(SESSION_CACHE);
                Arc::new(c)
            }),
        }
    }
}

/// Sessions (and TLS 1.3 tickets) a session's cache holds: one per data connection in
/// flight is enough; a few spare.
const SESSION_CACHE: usize = 8;

#[derive(Clone)]
pub struct SessionTls {
    pub client_side: Option<Arc<ServerConfig>>,
    pub upstream: Option<Arc<ClientConfig>>,
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert {} with --tls-key: {e}", cert.display()))
}

fn client_config(
    ca: Option<&Path>,
    insecure: bool,
    mode: UpstreamTls,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unanchored {
                provider: provider(),
                accept: true,
            }))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match ca {
        Some(ca) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("--upstream-ca {}: {e}", ca.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--upstream-ca {}: {e}", ca.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "--upstream-ca {}: no usable certificate",
                    ca.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        // No CA certificates here (no ca-certificates package): under `required` nothing
        // could ever be verified; under `auto` servers without TLS still work, and one
        // that offers it is refused, with this said in its 421's log record.
        if mode == UpstreamTls::Required {
            return Err(
                "--upstream-tls required: no CA certificates in the system's store \
                 (install ca-certificates) and no --upstream-ca"
                    .into(),
            );
        }
        eprintln!(
            "ftpwatch: no CA certificates in the system's store (install ca-certificates, or \
             give --upstream-ca): a server that offers AUTH TLS will be refused"
        );
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unanchored {
                provider: provider(),
                accept: false,
            }))
            .with_no_client_auth());
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("the system's CA certificates: {e}"))?;
    Ok(builder.with_webpki_verifier(verifier).with_no_client_auth())
}

/// A verifier that does not check the certificate against CA certificates, still
/// checking the handshake's signatures: `--upstream-insecure` accepts any certificate;
/// with no CA certificate at all (and `auto`), every certificate is refused, saying why
/// (in the log record of the 421 the client gets).
#[derive(Debug)]
struct Unanchored {
    provider: Arc<CryptoProvider>,
    accept: bool,
}

#[derive(Debug)]
struct NoRootsError;

impl std::fmt::Display for NoRootsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no CA certificates to check it against (install ca-certificates, or give --upstream-ca)",
        )
    }
}

impl std::error::Error for NoRootsError {}

impl ServerCertVerifier for Unanchored {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(NoRootsError))),
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a finished handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub version: &'static str,
    pub resumed: bool,
}

impl Handshake {
    fn of(c: &CommonState) -> Handshake {
        Handshake {
            version: match c.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "other",
            },
            resumed: c.handshake_kind() == Some(HandshakeKind::Resumed),
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
}

/// The proxy as TLS server (to an FTP client, on control or data).
pub async fn accept(
    cfg: Arc<ServerConfig>,
    tcp: TcpStream,
    wait: Duration,
) -> io::Result<(Wire, Handshake)> {
    let s = tokio::time::timeout(wait, TlsAcceptor::from(cfg).accept(tcp))
        .await
        .map_err(|_| timed_out())??;
    let h = Handshake::of(s.get_ref().1);
    Ok((Wire::Tls(Box::new(TlsStream::Server(s))), h))
}

/// The proxy as TLS client (to the FTP server, on control or data).
pub async fn connect(
    cfg: Arc<ClientConfig>,
    name: ServerName<'static>,
    tcp: TcpStream,
    wait: Duration,
) -> io::Result<(Wire, Handshake)> {
    let s = tokio::time::timeout(wait, TlsConnector::from(cfg).connect(name, tcp))
        .await
        .map_err(|_| timed_out())??;
    let h = Handshake::of(s.get_ref().1);
    Ok((Wire::Tls(Box::new(TlsStream::Client(s))), h))
}

/// A handshake failure as a bounded label (one of `HANDSHAKE_RESULTS` of the metrics).
pub fn failure_reason(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::TimedOut {
        return "timeout";
    }
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => "certificate",
        Some(rustls::Error::AlertReceived(_)) => "alert",
        Some(_) => "protocol",
        None => "connection",
    }
}

/// The name the server's certificate must carry: the host of `--upstream`, or the
/// address connected to.
pub fn server_name(host: Option<&str>, addr: std::net::IpAddr) -> ServerName<'static> {
    host.and_then(|h| ServerName::try_from(h.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.into()))
}
