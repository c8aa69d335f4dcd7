//! Webhook delivery, as Telegram does it: after `setWebhook`, each queued update is POSTed to
//! the URL as JSON with `X-Telegram-Bot-Api-Secret-Token`, one at a time and in order. A 2xx
//! answer confirms the update; anything else (another status, a refused connection, a timeout,
//! a certificate that does not verify) is recorded for `getWebhookInfo` (`last_error_date`,
//! `last_error_message`) and retried after a growing pause, so updates wait, never get lost.
//!
//! A certificate uploaded with `setWebhook` is the only one trusted for that webhook (pinned
//! by its SHA-256 fingerprint, signatures checked); without one the server must chain to the
//! Mozilla roots, as with Telegram.

use std::sync::Arc;
use std::time::Duration;

use super::State;

/// Starts delivering for the bot's current webhook (the task ends when the webhook changes or
/// goes, the token is revoked, or the simulator stops).
pub(super) fn spawn(state: &Arc<State>, token: &str) {
    let hook = state.read_bot(token, |b| {
        b.webhook.as_ref().map(|w| {
            (
                w.generation,
                w.url.clone(),
                w.secret.clone(),
                w.certificate.clone(),
            )
        })
    });
    let Some((generation, url, secret, certificate)) = hook else {
        return;
    };
    let Some(client) = client(certificate.as_deref()) else {
        state.with_bot(token, |b| {
            b.last_error = Some((super::reply::unix_now(), "TLS configuration failed".into()));
        });
        return;
    };
    let target = Target {
        state: state.clone(),
        token: token.to_owned(),
        generation,
        url,
        secret,
        client,
    };
    tokio::spawn(target.run());
}

fn client(certificate: Option<&[u8]>) -> Option<reqwest::Client> {
    match certificate {
        None => crate::channels::telegram::client::http_client().ok(),
        Some(der) => {
            let fingerprint = crate::system::tls::fingerprint(der);
            let mut tls = crate::system::tls::client_config(
                Some(&fingerprint),
                &[&rustls::version::TLS13, &rustls::version::TLS12],
            );
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .connect_timeout(Duration::from_secs(10))
                .build()
                .ok()
        }
    }
}

struct Target {
    state: Arc<State>,
    token: String,
    generation: u64,
    url: String,
    secret: Option<String>,
    client: reqwest::Client,
}

impl Target {
    async fn run(self) {
        let state = &self.state;
        let (initial, longest) = state.config.webhook_retry;
        let mut delay = initial;
        let mut changed = state.changed.subscribe();
        let mut stopped = state.stopped.clone();
        loop {
            changed.borrow_and_update();
            if *stopped.borrow() {
                return;
            }
            let next = state.read_bot(&self.token, |b| match &b.webhook {
                Some(w) if w.generation == self.generation && !b.revoked => {
                    Some(b.queue.front().map(|q| (q.id, q.text.clone())))
                }
                _ => None,
            });
            let Some(next) = next else {
                return;
            };
            let Some((id, text)) = next else {
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = stopped.wait_for(|v| *v) => return,
                }
                continue;
            };
            let outcome = tokio::select! {
                r = self.post(text) => r,
                _ = stopped.wait_for(|v| *v) => return,
            };
            match outcome {
                Ok(()) => {
                    delay = initial;
                    state.with_inner(|inner| {
                        let b = inner.bots.get_mut(&self.token).expect("bot registered");
                        if b.queue.front().is_some_and(|q| q.id == id) {
                            let q = b.queue.pop_front().expect("front");
                            if q.counted {
                                inner.pending_bytes = inner.pending_bytes.saturating_sub(q.text.len() as u64);
                            }
                        }
                    });
                }
                Err(message) => {
                    state.with_bot(&self.token, |b| {
                        if b.webhook
                            .as_ref()
                            .is_some_and(|w| w.generation == self.generation)
                        {
                            b.last_error = Some((super::reply::unix_now(), message));
                        }
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped.wait_for(|v| *v) => return,
                    }
                    delay = (delay * 2).min(longest);
                }
            }
        }
    }

    /// One delivery; the error is what Telegram would put in `last_error_message`.
    async fn post(&self, body: String) -> Result<(), String> {
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.state.config.webhook_timeout)
            .body(body);
        if let Some(s) = &self.secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!(
                "Wrong response from the webhook: {} {}",
                resp.status().as_u16(),
                resp.status().canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_owned()),
            Err(e) if e.is_timeout() => Err("Read timeout expired".into()),
            Err(e) => {
                let mut chain = String::new();
                let mut source: Option<&dyn std::error::Error> = Some(&e);
                while let Some(s) = source {
                    chain.push_str(&s.to_string());
                    chain.push(' ');
                    source = s.source();
                }
                let chain = chain.to_ascii_lowercase();
                if chain.contains("certificate") || chain.contains("tls") {
                    Err("SSL error {error:0A000086:SSL routines::certificate verify failed}".into())
                } else if e.is_connect() {
                    Err("Connection refused".into())
                } else {
                    Err("Connection closed".into())
                }
            }
        }
    }
}
