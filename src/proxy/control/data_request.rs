//! A data-channel command from the client (PASV, EPSV, PORT, EPRT): both legs of the
//! data connection are set up, and the client gets the proxy's endpoint in the form it
//! asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::proxy::UpstreamMode;
use crate::proxy::data::{self, ClientLeg, DataJob, DataTls, ServerLeg};
use crate::proxy::own::ProxyReply;
use crate::proxy::rewrite::{self, DataRequest, UpstreamRequest};

use super::Session;

impl Session {
    /// How the next data connection's legs are protected: as the client chose with
    /// PROT on its leg, as the server accepted on the proxy's.
    fn data_tls(&self) -> DataTls {
        DataTls {
            client: self.tls.client_side.clone().filter(|_| self.client_prot),
            server: self
                .tls
                .upstream
                .clone()
                .filter(|_| self.server_prot && self.server_tls)
                .map(|c| (c, self.server_name.clone())),
            require_reuse: self.shared.cfg.tls.require_reuse,
        }
    }

    /// PASV, EPSV, PORT or EPRT from the client: set up both legs, answer in the form
    /// the client asked for.
    pub(super) async fn data_request(&mut self, req: DataRequest) -> std::io::Result<()> {
        let shared = self.shared.clone();
        if let DataRequest::Active { to, .. } = req
            && let Err(why) = rewrite::check_active(to, self.client.ip())
        {
            shared.metrics.data_refused(why.as_str());
            self.own(ProxyReply::Bounce).await;
            return Ok(());
        }
        if req == DataRequest::Pasv && self.client_facing.to_canonical().is_ipv6() {
            self.own(ProxyReply::PasvOnIpv6).await;
            return Ok(());
        }
        self.settle().await?;
        // The client leg's endpoint first: a proxy with no free port says so at once.
        let client_leg = match req {
            DataRequest::Active { to, .. } => ClientLeg::Connect {
                to,
                local_ip: self.client_facing,
            },
            _ => match shared.ports.listen(self.client_facing) {
                Ok(Some(listener)) => ClientLeg::Accept {
                    listener,
                    from: self.client.ip(),
                },
                Ok(None) | Err(_) => {
                    shared.metrics.data_connect_failed("client", "no_port");
                    self.own(ProxyReply::NoDataPort).await;
                    return Ok(());
                }
            },
        };
        let passive_upstream = match shared.cfg.upstream_mode {
            UpstreamMode::Passive => true,
            UpstreamMode::Active => false,
            UpstreamMode::Same => req.passive(),
        };
        let server_leg = if passive_upstream {
            let mut answer = self.ask(UpstreamRequest::Epsv).await?;
            if answer.as_ref().is_some_and(|(code, ..)| *code >= 500) {
                answer = self.ask(UpstreamRequest::Pasv).await?;
            }
            let Some((code, text, raw)) = answer else {
                return Ok(());
            };
            let endpoint = match code {
                227 | 229 => rewrite::server_endpoint(code, &text, self.server.ip()).ok(),
                _ => None,
            };
            let Some((to, _nat)) = endpoint else {
                // The server's own refusal (or a reply that names no endpoint) goes to
                // the client as the server wrote it.
                self.send_client(&raw).await?;
                return Ok(());
            };
            ServerLeg::Connect { to }
        } else {
            let listener = match shared.ports.listen(self.server_facing) {
                Ok(Some(l)) => l,
                Ok(None) | Err(_) => {
                    shared.metrics.data_connect_failed("server", "no_port");
                    self.own(ProxyReply::NoDataPort).await;
                    return Ok(());
                }
            };
            let at = listener.local_addr()?;
            let extended = !at.ip().to_canonical().is_ipv4();
            let answer = self.ask(UpstreamRequest::Active { at, extended }).await?;
            let Some((code, _, raw)) = answer else {
                return Ok(());
            };
            if code != 200 {
                self.send_client(&raw).await?;
                return Ok(());
            }
            ServerLeg::Accept {
                listener,
                from: self.server.ip(),
            }
        };
        let at = match &client_leg {
            ClientLeg::Accept { listener, .. } => listener.local_addr()?,
            ClientLeg::Connect { to, .. } => *to,
        };
        // The server's success, in the form the client asked for, at the proxy's port.
        self.send_client(&rewrite::client_reply(req, at)).await?;
        shared.metrics.reply_rewritten();
        if let Some((old, started)) = self.data.take()
            && !started.load(Ordering::Relaxed)
        {
            // A new PASV/PORT replaces one whose connection never came (as a server
            // closes its old listener); one already relaying goes on.
            old.abort();
        }
        let started = Arc::new(AtomicBool::new(false));
        let job = DataJob {
            control: self.conn,
            client: client_leg,
            server: server_leg,
            started: started.clone(),
            relaying: self.relaying.clone(),
            tls: self.data_tls(),
        };
        self.data = Some((tokio::spawn(data::run(job, shared)), started));
        Ok(())
    }
}
