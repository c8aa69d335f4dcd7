//! The other side typing in a user account's chats (MTProto's `updateUserTyping` and its group
//! and channel forms, mapped by the connector), passed to the live feed as the same `typing`
//! event agents' typing makes, with the person's name as `user` (Telegram's `updateShort` for
//! a private chat names no one, so there the chat's title, which is the person's name, is
//! used). Not stored.
//!
//! A broadcast, not a queue: typing is best effort, so when this task falls behind it skips
//! what it missed rather than holding anyone up.

use tokio::sync::{broadcast, watch};

use crate::channels::mtproto::CustomerTyping;
use crate::live::{Ephemeral, Hub};
use crate::store::Store;

/// Publishes each typing notice until the service stops.
pub async fn forward(
    mut rx: broadcast::Receiver<CustomerTyping>,
    store: Store,
    hub: Hub,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let t = tokio::select! {
            r = rx.recv() => match r {
                Ok(t) => t,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "typing notices skipped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut user = t.name;
        if user.is_empty() && t.chat.chat > 0 {
            let key = t.chat;
            user = store
                .read(move |r| Ok(r.chat(key)?.and_then(|v| v.meta.title)))
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
        }
        hub.publish(Ephemeral::Typing {
            chat: t.chat,
            accounts: vec![t.account],
            user,
        });
    }
}
