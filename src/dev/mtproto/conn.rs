//! One client connection: full-transport packets in, each opened under the auth key, its
//! messages (inside `msg_container` and `gzip_packed` where the client used them) answered with
//! `rpc_result`, `pong` for pings, nothing for `msgs_ack`; and the account's new messages pushed
//! as `updateShortMessage` (edits as `updateEditMessage`) while the key is signed in.
//!
//! A reader task turns the socket into packets (reading is not cancel-safe, so it is not raced
//! against the pushes directly); the connection loop owns the writer. A packet under an unknown
//! key gets the transport's `-404`, as from Telegram. A connection that falls behind the push
//! channel is closed: its client reconnects and fills the hole with `updates.getDifference`.

use std::io::Read;
use std::sync::Arc;

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};

use super::Shared;
use super::crypto::{CryptoError, ServerKey};
use super::frame::{self, Seq};
use super::rpc::{self, Answer};

const MSG_CONTAINER: u32 = 0x73f1_f8dc;
const GZIP_PACKED: u32 = 0x3072_cfa1;
const MSGS_ACK: u32 = 0x62d6_b459;
const RPC_RESULT: u32 = 0xf35c_6d01;
/// Most bytes a `gzip_packed` request may inflate to.
const MAX_INFLATED: u64 = 4 << 20;

/// The server's side of one MTProto session.
struct Session {
    id: Option<i64>,
    salt: i64,
    last_msg_id: i64,
    content_sent: i32,
}

impl Session {
    /// Server message IDs grow and are 1 mod 4 for answers, 3 mod 4 otherwise.
    fn next_msg_id(&mut self, answer: bool) -> i64 {
        let now = i64::from(super::world::now()) << 32;
        let mut id = (now.max(self.last_msg_id + 4) & !3) | if answer { 1 } else { 3 };
        if id <= self.last_msg_id {
            id += 4;
        }
        self.last_msg_id = id;
        id
    }

    /// Wraps one message body for the client (before encryption).
    fn plaintext(&mut self, body: &[u8], answer: bool) -> Vec<u8> {
        let msg_id = self.next_msg_id(answer);
        self.content_sent += 1;
        let seq_no = self.content_sent * 2 - 1;
        let mut out = Vec::with_capacity(32 + body.len());
        out.extend_from_slice(&self.salt.to_le_bytes());
        out.extend_from_slice(&self.id.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&msg_id.to_le_bytes());
        out.extend_from_slice(&seq_no.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        out
    }
}

pub(super) async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut pushes: broadcast::Receiver<super::Push>,
    mut kick: watch::Receiver<u64>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut packets) = mpsc::channel::<Vec<u8>>(8);
    let reader = tokio::spawn(async move {
        let mut seq = Seq::default();
        while let Ok(p) = frame::read(&mut rd, &mut seq).await {
            if tx.send(p).await.is_err() {
                break;
            }
        }
    });
    let key = ServerKey::new(shared.auth_key);
    let mut session = Session {
        id: None,
        salt: 0,
        last_msg_id: 0,
        content_sent: 0,
    };
    let mut seq = Seq::default();
    let generation = *kick.borrow_and_update();
    loop {
        let out: Vec<Vec<u8>> = tokio::select! {
            p = packets.recv() => {
                let Some(packet) = p else { break };
                match key.open(&packet) {
                    Ok(plain) => handle(&shared, &mut session, &plain),
                    Err(CryptoError::UnknownKey) => {
                        // The transport's error packet: a negative length (-404: no such auth key).
                        let _ = wr.write_all(&(-404i32).to_le_bytes()).await;
                        break;
                    }
                    Err(_) => break,
                }
            }
            e = pushes.recv() => match e {
                Ok(e) if session.id.is_some() && shared.lock().authorized => {
                    vec![session.plaintext(&e.to_bytes(), false)]
                }
                Ok(_) => Vec::new(),
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = kick.changed() => break,
        };
        if *kick.borrow() != generation {
            break;
        }
        let mut failed = false;
        for plain in out {
            if frame::write(&mut wr, &mut seq, &key.seal(&plain)).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
    }
    reader.abort();
}

/// Opens one decrypted packet and returns the plaintexts to send back.
fn handle(shared: &Shared, session: &mut Session, plain: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Cursor::from_slice(plain);
    let (Ok(salt), Ok(session_id)) = (i64::deserialize(&mut c), i64::deserialize(&mut c)) else {
        return Vec::new();
    };
    session.salt = salt;
    session.id = Some(session_id);
    let mut out = Vec::new();
    if let Some((msg_id, body)) = message(&mut c) {
        dispatch(shared, session, msg_id, &body, &mut out, 0);
    }
    out
}

/// One `message msg_id:long seqno:int bytes:int body:bytes`.
fn message(c: &mut Cursor<'_>) -> Option<(i64, Vec<u8>)> {
    let msg_id = i64::deserialize(c).ok()?;
    let _seq_no = i32::deserialize(c).ok()?;
    let len = usize::try_from(i32::deserialize(c).ok()?).ok()?;
    if len > frame::MAX_PACKET {
        return None;
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    Some((msg_id, body))
}

fn dispatch(
    shared: &Shared,
    session: &mut Session,
    msg_id: i64,
    body: &[u8],
    out: &mut Vec<Vec<u8>>,
    depth: u8,
) {
    let Some(id) = body
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    else {
        return;
    };
    if depth > 2 {
        return;
    }
    match id {
        MSGS_ACK => {}
        MSG_CONTAINER => {
            let mut c = Cursor::from_slice(&body[4..]);
            let n = i32::deserialize(&mut c).unwrap_or(0).clamp(0, 1024);
            for _ in 0..n {
                let Some((inner_id, inner)) = message(&mut c) else {
                    break;
                };
                dispatch(shared, session, inner_id, &inner, out, depth + 1);
            }
        }
        GZIP_PACKED => {
            let Ok(packed) = Vec::<u8>::from_bytes(&body[4..]) else {
                return;
            };
            let mut inflated = Vec::new();
            let dec = flate2::read::GzDecoder::new(&packed[..]);
            if dec.take(MAX_INFLATED).read_to_end(&mut inflated).is_ok() {
                dispatch(shared, session, msg_id, &inflated, out, depth + 1);
            }
        }
        tl::functions::Ping::CONSTRUCTOR_ID | tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID => {
            let ping_id = i64::from_bytes(&body[4..]).unwrap_or(0);
            let pong = tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id });
            out.push(session.plaintext(&pong.to_bytes(), true));
        }
        _ => {
            let result = match rpc::call(shared, body) {
                Answer::Ok(bytes) => bytes,
                Answer::Err(error_code, error_message) => tl::enums::RpcError::Error(tl::types::RpcError {
                    error_code,
                    error_message,
                })
                .to_bytes(),
            };
            let mut r = Vec::with_capacity(12 + result.len());
            r.extend_from_slice(&RPC_RESULT.to_le_bytes());
            r.extend_from_slice(&msg_id.to_le_bytes());
            r.extend_from_slice(&result);
            out.push(session.plaintext(&r, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::dev::mtproto::world::{SimUser, World};

    fn shared() -> Shared {
        let me = SimUser {
            id: 1,
            access_hash: 2,
            first_name: "Me".into(),
            last_name: None,
            username: None,
            phone: Some("1555".into()),
        };
        Shared {
            world: Mutex::new(World::new(me, Duration::from_secs(60))),
            auth_key: [3u8; 256],
            addr: "127.0.0.1:1".parse().unwrap(),
            difference_page: 10,
            outbound: Mutex::default(),
        }
    }

    fn session() -> Session {
        Session {
            id: Some(9),
            salt: 0,
            last_msg_id: 0,
            content_sent: 0,
        }
    }

    fn message(msg_id: i64, body: &[u8]) -> Vec<u8> {
        let mut m = msg_id.to_le_bytes().to_vec();
        m.extend_from_slice(&1i32.to_le_bytes());
        m.extend_from_slice(&(body.len() as i32).to_le_bytes());
        m.extend_from_slice(body);
        m
    }

    /// The body of the one message in a plaintext the server wrote.
    fn body_of(plain: &[u8]) -> &[u8] {
        &plain[32..]
    }

    #[test]
    fn a_container_with_an_ack_and_a_ping_gets_one_pong_for_the_ping() {
        let ack = tl::enums::MsgsAck::Ack(tl::types::MsgsAck { msg_ids: vec![5] }).to_bytes();
        let ping = tl::functions::Ping { ping_id: 77 }.to_bytes();
        let mut container = MSG_CONTAINER.to_le_bytes().to_vec();
        container.extend_from_slice(&2i32.to_le_bytes());
        container.extend(message(100, &ack));
        container.extend(message(104, &ping));
        let mut out = Vec::new();
        dispatch(&shared(), &mut session(), 108, &container, &mut out, 0);
        assert_eq!(out.len(), 1);
        let tl::enums::Pong::Pong(p) = tl::enums::Pong::from_bytes(body_of(&out[0])).unwrap();
        assert_eq!((p.msg_id, p.ping_id), (104, 77));
        assert_eq!(
            i64::from_le_bytes(out[0][16..24].try_into().unwrap()) % 4,
            1,
            "an answer's msg_id"
        );
    }

    #[test]
    fn a_gzip_packed_call_is_inflated_and_answered_with_its_rpc_result() {
        let call = tl::functions::updates::GetState {}.to_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&call).unwrap();
        let packed = gz.finish().unwrap();
        let mut body = GZIP_PACKED.to_le_bytes().to_vec();
        body.extend(packed.to_bytes());
        let mut out = Vec::new();
        dispatch(&shared(), &mut session(), 200, &body, &mut out, 0);
        let b = body_of(&out[0]);
        assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), RPC_RESULT);
        assert_eq!(i64::from_le_bytes(b[4..12].try_into().unwrap()), 200);
        let tl::enums::RpcError::Error(e) = tl::enums::RpcError::from_bytes(&b[12..]).unwrap();
        assert_eq!(
            (e.error_code, e.error_message.as_str()),
            (401, "AUTH_KEY_UNREGISTERED")
        );
    }
}
