// The live feed: one WebSocket (subprotocol lanbox.v1, authenticated by the session cookie),
// `resume` from where the first REST snapshot was read (or `subscribe` without one), `resume`
// from the last sequence number seen after any drop, reconnecting with growing pauses. Emits DOM events on itself:
//   'event'        {detail: server event}      every message.* / chat.* / typing / ... event
//   'state'        {detail: {online, attempt}}
//   'reconnected'  {detail: {replayed}}        after a resume filled the gap
//   'resync'                                   the log no longer reaches back: reload over REST
//   'unauthorized'                             the session is gone

export class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.lastSeq = null;   // last seq received; null before the first subscribe
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.stopped = false;
    this.everConnected = false;
    this.heartbeat = null;
  }

  /** Connects; `fromSeq` (where a REST snapshot was read) makes the first connection resume
   *  from there instead of subscribing from "now". */
  start(fromSeq) {
    this.stopped = false;
    if (typeof fromSeq === 'number' && this.lastSeq === null) this.lastSeq = fromSeq;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000);
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  connect() {
    const ws = new WebSocket(`wss://${location.host}/api/v1/ws`, ['lanbox.v1']);
    this.ws = ws;
    ws.onmessage = (m) => this.onMessage(m);
    ws.onclose = (e) => this.onClose(ws, e);
    ws.onerror = () => {};
  }

  onClose(ws, e) {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    for (const [, p] of this.pending) p.reject(new Error('connection lost'));
    this.pending.clear();
    this.emit('state', { online: false, attempt: this.attempt });
    if (e.code === 4001) { this.emit('unauthorized'); return; }
    if (this.stopped) return;
    const pause = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt++;
    setTimeout(() => !this.stopped && this.connect(), pause);
  }

  async onMessage(m) {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    switch (msg.type) {
      case 'hello': return this.onHello(msg);
      case 'ack': case 'error': case 'pong': {
        const p = this.pending.get(msg.id);
        if (p) {
          this.pending.delete(msg.id);
          msg.type === 'error' ? p.reject(Object.assign(new Error(msg.message), { code: msg.code })) : p.resolve(msg);
        }
        return;
      }
      case 'resync_required': {
        const p = this.pending.get(msg.id);
        if (p) { this.pending.delete(msg.id); p.resolve(msg); }
        this.lastSeq = null;
        this.emit('resync');
        this.subscribe().catch(() => {});
        return;
      }
      default:
        if (typeof msg.seq === 'number' && (this.lastSeq === null || msg.seq > this.lastSeq)) this.lastSeq = msg.seq;
        this.emit('event', msg);
    }
  }

  async onHello(hello) {
    // The store's health as of this connection (a full disk, say): the same shape as the
    // `store.status` events that follow whenever it changes.
    if (hello.store) this.emit('event', hello.store);
    const every = Math.max(5, (hello.heartbeat_s || 30) * 0.6) * 1000;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.request({ type: 'ping' }).catch(() => {}), every);
    const wasReconnect = this.everConnected;
    this.everConnected = true;
    try {
      if (this.lastSeq === null) {
        await this.subscribe();
      } else {
        const ack = await this.request({ type: 'resume', from_seq: this.lastSeq });
        if (ack.type === 'ack') {
          if (typeof ack.last_seq === 'number' && ack.last_seq > this.lastSeq) this.lastSeq = ack.last_seq;
          this.attempt = 0;
          this.emit('state', { online: true });
          if (wasReconnect) this.emit('reconnected', { replayed: ack.replayed || 0 });
          return;
        }
      }
    } catch {
      return; // the close handler reconnects
    }
    this.attempt = 0;
    this.emit('state', { online: true });
    if (wasReconnect) this.emit('reconnected', { replayed: 0 });
  }

  async subscribe() {
    const ack = await this.request({ type: 'subscribe' });
    if (typeof ack.last_seq === 'number' && (this.lastSeq === null || ack.last_seq > this.lastSeq)) this.lastSeq = ack.last_seq;
    return ack;
  }

  /** Sends a client message and resolves with its ack (rejects on error or after 10 s). */
  request(msg) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return reject(new Error('not connected'));
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      setTimeout(() => {
        if (this.pending.delete(id)) reject(new Error('no answer'));
      }, 10000);
      this.ws.send(JSON.stringify({ ...msg, id }));
    });
  }

  get online() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }
}
