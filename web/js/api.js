// The REST API under /api/v1: JSON in and out, one error shape ({error: {code, message}}).
// The session cookie travels by itself (same origin); the browser adds Origin to writes.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const e = body && body.error;
    throw new ApiError(res.status, e ? e.code : 'http_' + res.status, e ? e.message : `HTTP ${res.status}`);
  }
  return body;
}

export async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'the box cannot be reached');
  }
  // A session that ended (expired, signed out elsewhere, user disabled): back to sign-in.
  if (res.status === 401 && !path.startsWith('/api/v1/auth/') && path !== '/api/v1/me' && path !== '/api/v1/setup') {
    dispatchEvent(new Event('lanbox:unauthorized'));
  }
  return parse(res);
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const patch = (p, b) => api('PATCH', p, b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

/** A query string from an object, leaving out empty values. */
export function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '' && v !== false) p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

export const chatPath = (chat) => `/api/v1/chats/${encodeURIComponent(chat)}`;

/** Streams a file to POST /api/v1/attachments with upload progress (fetch has none). */
export function upload(account, file, onProgress) {
  // The file's own name and type go with it: Telegram shows the name, and picks a photo
  // over a document by the type.
  const name = file.name ? `&name=${encodeURIComponent(file.name)}` : '';
  return sendFile('POST', `/api/v1/attachments?account=${encodeURIComponent(account)}${name}`, file, onProgress, file.type);
}

/** Streams `file` as the body of `method path`, calling `onProgress(loaded, total)`. */
export function sendFile(method, path, file, onProgress, type) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, path);
    x.setRequestHeader('content-type', type || 'application/octet-stream');
    x.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    x.onload = () => {
      let body = null;
      try { body = JSON.parse(x.responseText); } catch { body = null; }
      if (x.status >= 200 && x.status < 300) resolve(body);
      else {
        const e = body && body.error;
        reject(new ApiError(x.status, e ? e.code : 'http_' + x.status, e ? e.message : `HTTP ${x.status}`));
      }
    };
    x.onerror = () => reject(new ApiError(0, 'network', 'the upload was interrupted'));
    x.send(file);
  });
}

/** What to tell a person about a failed request. */
export function explain(e) {
  if (!(e instanceof ApiError)) return String(e && e.message || e);
  switch (e.code) {
    case 'daily_limit_reached': return 'Daily sending limit reached for this account; it resets at 00:00 UTC.';
    case 'too_large': return 'The file is too large for this box.';
    case 'account_not_connected': return 'This account is not connected to Telegram, so it cannot send.';
    case 'telegram_refused': return 'Telegram refused it: ' + e.message;
    case 'telegram_unavailable': return 'Telegram cannot be reached right now; try again shortly.';
    case 'unauthorized': return 'Your session ended; sign in again.';
    case 'forbidden': return 'Not allowed.';
    case 'disk_full': return 'The box’s disk is full, so this was not saved; reading works, and it resumes by itself once space is freed.';
    case 'network': return 'The box cannot be reached (network down?).';
    default: return e.message || e.code;
  }
}
