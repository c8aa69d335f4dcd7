// How messages look: every body kind of the model, text entities, replies, forwards, edits,
// albums, statuses, reactions. Built with DOM nodes only (no HTML strings from the server).

import { h, append, clock, size, fullTime } from './dom.js';

// The signed-in user, so "You" means only your own messages (`setMe` at start-up).
let me = null;
export function setMe(id) { me = id; }

/** True for an outgoing message a teammate sent (not you). */
export function byTeammate(m) { return m.direction === 'outgoing' && !!m.sent_by && m.sent_by.user !== me; }

export function senderName(m) {
  const s = m.sender || {};
  if (m.direction === 'outgoing' && m.sent_by) {
    const who = m.sent_by.user === me ? 'You' : (m.sent_by.name || 'A former user');
    const t = m.sent_by.token;
    return t ? `${who} (API: ${t.label || t.id})` : who;
  }
  if (m.direction === 'outgoing' && !s.name) return 'You';
  return s.name || (s.username ? '@' + s.username : s.signature || (s.type === 'anonymous_admin' ? 'Admin' : 'Unknown'));
}

const MEDIA_LABEL = {
  image: 'Photo', file: 'File', video: 'Video', audio: 'Audio', voice: 'Voice message',
  video_note: 'Video message', sticker: 'Sticker', animation: 'GIF',
};

/** One line for chat lists, quotes and notifications. */
export function preview(m) {
  if (!m) return '';
  const d = m.media || {};
  switch (m.kind) {
    case 'text': case 'interactive_reply': case 'redacted': return m.text || '';
    case 'location': return '📍 Location';
    case 'venue': return '📍 ' + (m.text || 'Venue');
    case 'contact': return '👤 ' + [m.contact?.first_name, m.contact?.last_name].filter(Boolean).join(' ');
    case 'poll': return '📊 ' + (m.text || 'Poll');
    case 'dice': return (m.dice?.emoji || '🎲') + ' ' + (m.dice?.value ?? '');
    case 'service': return serviceText(m);
    case 'postback': return '🔘 Button pressed';
    case 'unsupported': return 'Unsupported message';
    case 'sticker': return (d.emoji || '') + ' Sticker';
    default: {
      const label = MEDIA_LABEL[m.kind] || 'Attachment';
      return m.text ? `${label}: ${m.text}` : (d.file_name ? `${label}: ${d.file_name}` : label);
    }
  }
}

export function serviceText(m) {
  const s = m.service || {};
  const names = (s.users || []).map((u) => u.name).join(', ');
  switch (s.event) {
    case 'members_joined': return `${names} joined`;
    case 'member_left': return `${names} left`;
    case 'pinned': return `${senderName(m)} pinned a message`;
    case 'topic_created': return `Topic “${s.name}” created`;
    case 'topic_edited': return `Topic renamed to “${s.name}”`;
    case 'topic_closed': return 'Topic closed';
    case 'topic_reopened': return 'Topic reopened';
    case 'migrated_to': return 'This group became a supergroup';
    case 'migrated_from': return 'Moved here from the old group';
    case 'title_changed': return `Title changed to “${s.name}”`;
    case 'chat_created': return 'Chat created';
    default: return (s.event || 'event').replace(/_/g, ' ');
  }
}

function safeUrl(u) {
  try {
    const url = new URL(u, location.href);
    return ['http:', 'https:', 'mailto:', 'tel:'].includes(url.protocol) ? url.href : null;
  } catch { return null; }
}

function wrap(e, inner) {
  switch (e.kind) {
    case 'bold': return h('strong', null, inner);
    case 'italic': return h('em', null, inner);
    case 'underline': return h('u', null, inner);
    case 'strikethrough': return h('s', null, inner);
    case 'code': return h('code', null, inner);
    case 'pre': return h('pre', null, h('code', e.language ? { 'data-lang': e.language } : null, inner));
    case 'blockquote': case 'expandable_blockquote': return h('blockquote', null, inner);
    case 'spoiler': {
      const s = h('span', { class: 'spoiler', tabindex: 0, role: 'button', 'aria-label': 'Spoiler, press to show' }, inner);
      const show = () => s.classList.add('shown');
      s.addEventListener('click', show);
      s.addEventListener('keydown', (ev) => (ev.key === 'Enter' || ev.key === ' ') && show());
      return s;
    }
    case 'text_link': {
      const u = safeUrl(e.url);
      return u ? h('a', { href: u, target: '_blank', rel: 'noopener noreferrer', title: u }, inner) : inner;
    }
    case 'url': {
      const raw = inner.textContent;
      const u = safeUrl(/^[a-z]+:/i.test(raw) ? raw : 'https://' + raw);
      return u ? h('a', { href: u, target: '_blank', rel: 'noopener noreferrer' }, inner) : inner;
    }
    case 'email': return h('a', { href: 'mailto:' + inner.textContent }, inner);
    case 'phone_number': return h('a', { href: 'tel:' + inner.textContent.replace(/[^+\d]/g, '') }, inner);
    case 'mention': case 'hashtag': case 'cashtag': case 'bot_command': case 'text_mention':
      return h('span', { class: 'ent-' + e.kind, style: null }, inner);
    default: return inner;
  }
}

/** Text with Telegram entities (offsets in UTF-16 units, which is what JS strings index). */
export function richText(text, entities) {
  const frag = document.createDocumentFragment();
  if (!text) return frag;
  const ents = (entities || []).filter((e) => e.length > 0 && e.offset < text.length);
  if (!ents.length) { frag.append(text); return frag; }
  const cuts = new Set([0, text.length]);
  for (const e of ents) { cuts.add(e.offset); cuts.add(Math.min(text.length, e.offset + e.length)); }
  const points = [...cuts].sort((a, b) => a - b);
  // Outer entities first (longer, then earlier), so nesting follows the source.
  const ordered = [...ents].sort((a, b) => a.offset - b.offset || b.length - a.length);
  let i = 0;
  while (i < points.length - 1) {
    const start = points[i];
    // Group runs covered by the same outermost entity so a link stays one element.
    const outer = ordered.find((e) => e.offset <= start && e.offset + e.length > start);
    if (!outer) { frag.append(text.slice(start, points[i + 1])); i++; continue; }
    const end = Math.min(text.length, outer.offset + outer.length);
    const inner = richText(text.slice(start, end), ents
      .filter((e) => e !== outer && e.offset < end && e.offset + e.length > start)
      .map((e) => ({ ...e, offset: Math.max(0, e.offset - start), length: Math.min(end, e.offset + e.length) - Math.max(start, e.offset) })));
    const holder = h('span');
    holder.append(inner);
    frag.append(wrap(outer, holder.childNodes.length === 1 && holder.firstChild.nodeType === 3 ? holder.firstChild : holder));
    while (i < points.length - 1 && points[i] < end) i++;
  }
  return frag;
}

function statusMark(m) {
  if (m.direction !== 'outgoing') return null;
  const label = { queued: 'queued', sending: 'sending', sent: 'sent', delivered: 'sent', read: 'read', failed: 'failed' }[m.status] || m.status;
  const icon = { queued: '🕓', sending: '🕓', sent: '✓', delivered: '✓', read: '✓✓', failed: '⚠' }[m.status] || '';
  return h('span', { class: 'status ' + m.status, title: m.status_reason || label, 'data-status': m.status },
    icon + ' ' + label + (m.status === 'failed' && m.status_reason ? ': ' + m.status_reason : ''));
}

function mediaBlock(m, ctx) {
  const d = m.media || {};
  const box = h('div', { class: 'media' });
  const meta = [d.file_name, d.mime_type, size(d.size), d.duration ? `${d.duration} s` : null,
    d.width && d.height ? `${d.width}×${d.height}` : null].filter(Boolean).join(' · ');
  const placeholder = (why) => h('div', { class: 'placeholder' },
    h('div', null, (MEDIA_LABEL[m.kind] || 'File') + (d.emoji ? ' ' + d.emoji : '') + (d.title ? ` “${d.title}”` : '') + (d.performer ? ` — ${d.performer}` : '')),
    h('div', null, meta), h('div', null, why));
  box.append(placeholder('Loading the file…'));
  ctx.attachments(m).then((list) => {
    box.replaceChildren();
    queueMicrotask(() => ctx.grew());
    box.addEventListener('load', () => ctx.grew(), true);
    box.addEventListener('loadedmetadata', () => ctx.grew(), true);
    const file = list.find((a) => a.role === 'file') || list.find((a) => a.role === 'upload');
    const thumb = list.find((a) => a.role === 'thumbnail' && a.state === 'ready');
    // No record yet: the fetcher has not registered the file; same as pending.
    if (!file || file.state === 'pending') { box.append(placeholder('The file is still being fetched from Telegram…')); ctx.waitFor(m, () => box.replaceWith(mediaBlock(m, ctx))); return; }
    if (file.state === 'too_big') { box.append(placeholder('Over the Bot API’s 20 MB download limit: not fetched.')); return; }
    if (file.state !== 'ready' || !file.url) { box.append(placeholder('The file could not be fetched.')); return; }
    const url = file.url;
    const name = d.file_name || (m.kind + '-' + m.id);
    const download = h('a', { href: url, download: name, class: 'dl', 'aria-label': `Download ${name}` }, '⬇ Download');
    switch (m.kind) {
      case 'image': {
        const img = h('img', { src: thumb && thumb.url || url, alt: m.text || 'Photo', loading: 'lazy', width: d.width || null, height: d.height || null });
        box.append(h('button', { class: 'thumb', 'aria-label': 'Open photo', onclick: () => ctx.view(url, m.text || 'Photo', name) }, img));
        break;
      }
      case 'sticker':
        if ((d.mime_type || '').startsWith('image/') || name.endsWith('.webp')) box.append(h('div', { class: 'sticker' }, h('img', { src: url, alt: 'Sticker ' + (d.emoji || '') })));
        else box.append(h('div', { class: 'sticker', role: 'img', 'aria-label': 'Sticker' }, d.emoji || '🖼'));
        break;
      case 'video': case 'animation': case 'video_note':
        box.append(h('video', { src: url, controls: true, preload: 'metadata', loop: m.kind === 'animation', muted: m.kind === 'animation', playsinline: true, 'aria-label': MEDIA_LABEL[m.kind] }));
        box.append(h('div', { class: 'muted' }, meta, ' ', download));
        break;
      case 'voice': case 'audio':
        box.append(h('audio', { src: url, controls: true, preload: 'metadata', 'aria-label': MEDIA_LABEL[m.kind] }));
        box.append(h('div', { class: 'muted' }, meta, ' ', download));
        break;
      default:
        box.append(h('div', { class: 'file' },
          h('div', { class: 'ficon', 'aria-hidden': 'true' }, (name.split('.').pop() || 'file').slice(0, 4).toUpperCase()),
          h('div', null, h('div', null, name), h('div', { class: 'muted' }, size(file.size ?? d.size), ' · ', download))));
    }
  }).catch((e) => {
    box.replaceChildren(placeholder(e && e.status === 404 || e && e.status === 501
      ? 'Files are not available on this box yet.' : 'The file could not be loaded.'));
  });
  return box;
}

function bodyBlock(m, ctx) {
  const parts = [];
  switch (m.kind) {
    case 'image': case 'file': case 'video': case 'audio': case 'voice': case 'video_note': case 'sticker': case 'animation':
      parts.push(mediaBlock(m, ctx));
      break;
    case 'location': case 'venue': {
      const l = m.kind === 'venue' ? m.venue.location : m.location;
      const lat = Number(l.latitude).toFixed(5), lon = Number(l.longitude).toFixed(5);
      parts.push(h('div', { class: 'location' },
        m.kind === 'venue' ? h('strong', null, m.venue.title) : h('strong', null, '📍 Location'),
        m.kind === 'venue' && m.venue.address ? h('span', null, m.venue.address) : null,
        h('span', { class: 'mono' }, `${lat}, ${lon}`),
        l.accuracy_m ? h('span', { class: 'muted' }, `± ${Math.round(l.accuracy_m)} m`) : null,
        l.live_period_s ? h('span', { class: 'muted' }, 'Live location') : null,
        h('a', { href: `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`, target: '_blank', rel: 'noopener noreferrer' }, 'Open in a map ↗')));
      return parts;
    }
    case 'contact': {
      const c = m.contact || {};
      parts.push(h('div', { class: 'contact' },
        h('strong', null, '👤 ' + [c.first_name, c.last_name].filter(Boolean).join(' ')),
        c.phone ? h('a', { href: 'tel:' + String(c.phone).replace(/[^+\d]/g, '') }, c.phone) : null,
        c.user_id ? h('span', { class: 'muted' }, 'Telegram user ' + c.user_id) : null));
      return parts;
    }
    case 'poll': {
      const p = m.poll || {};
      const total = Math.max(1, ...(p.options || []).map((o) => o.votes || 0));
      parts.push(h('div', { class: 'poll' },
        h('strong', null, (p.quiz ? '❓ Quiz: ' : '📊 ') + (m.text || '')),
        h('ul', null, (p.options || []).map((o) => h('li', null,
          h('div', null, o.text, h('span', { class: 'muted' }, ` — ${o.votes || 0}`)),
          h('div', { class: 'bar', style: null, 'data-w': o.votes || 0, 'aria-hidden': 'true' })))),
        h('div', { class: 'muted' }, `${p.total_voters || 0} voters` + (p.anonymous ? ' · anonymous' : '') + (p.multiple_answers ? ' · multiple answers' : '') + (p.closed ? ' · closed' : ''))));
      // Bar widths set through CSSOM (inline style attributes are blocked by the CSP).
      parts[parts.length - 1].querySelectorAll('.bar').forEach((b) => { b.style.width = (100 * Number(b.dataset.w) / total) + '%'; });
      return parts;
    }
    case 'dice':
      parts.push(h('div', { class: 'sticker', role: 'img', 'aria-label': `Dice: ${m.dice?.value}` }, m.dice?.emoji || '🎲', h('small', null, ' ' + (m.dice?.value ?? ''))));
      return parts;
    case 'postback':
      parts.push(h('div', { class: 'muted' }, '🔘 Pressed a button', m.payload ? ': ' : '', m.payload ? h('code', null, m.payload) : null));
      return parts;
    case 'unsupported':
      parts.push(h('div', { class: 'placeholder' }, 'lanbox cannot show this message', m.reason ? ` (${m.reason})` : ''));
      return parts;
    case 'redacted':
      parts.push(h('div', { class: 'placeholder' }, m.text || 'Login code hidden'));
      return parts;
  }
  if (m.text) parts.push(h('div', { class: 'text', dir: 'auto' }, richText(m.text, m.entities)));
  return parts;
}

function quoteBlock(m, ctx) {
  if (!m.reply_to) return null;
  const q = ctx.quote(m.reply_to);
  const el = h('button', { class: 'quote', type: 'button', 'aria-label': 'Replied message; press to show it',
    onclick: () => ctx.jump(m.reply_to.message_id) },
    h('span', { class: 'q-who' }, q ? q.who : 'Reply'),
    h('span', { class: 'q-text' }, m.reply_to.quote || (q ? q.text : 'an earlier message')));
  if (!q) ctx.fetchQuote(m.reply_to).then((r) => {
    if (!r) return;
    el.querySelector('.q-who').textContent = r.who;
    if (!m.reply_to.quote) el.querySelector('.q-text').textContent = r.text;
  });
  return el;
}

/** A service event as a centred line; anything else as a bubble. */
export function renderMessage(m, ctx, group) {
  if (m.kind === 'service') {
    return h('div', { class: 'service', id: 'm-' + m.id, dataset: { id: m.id }, role: 'listitem' }, serviceText(m), ' · ', clock(m.date));
  }
  const out = m.direction === 'outgoing';
  const el = h('div', {
    class: 'msg' + (out ? ' out' : ''), id: 'm-' + m.id, role: 'listitem', tabindex: -1,
    dataset: { id: m.id, tg: m.telegram_id }, 'aria-label': `${senderName(m)} at ${clock(m.date)}`,
  });
  if (!out || ctx.showOwnName || byTeammate(m)) el.append(h('div', { class: 'who' }, senderName(m)));
  if (m.forward) el.append(h('div', { class: 'fwd' }, 'Forwarded from ', m.forward.name || 'a hidden user'));
  append(el, [quoteBlock(m, ctx)]);
  if (group && group.length > 1) {
    el.append(h('div', { class: 'album', role: 'group', 'aria-label': `Album of ${group.length}` }, group.map((g) => mediaBlock(g, ctx))));
    const cap = group.find((g) => g.text);
    if (cap) el.append(h('div', { class: 'text', dir: 'auto' }, richText(cap.text, cap.entities)));
  } else {
    append(el, bodyBlock(m, ctx));
  }
  if (m.reactions && m.reactions.length) {
    el.append(h('div', { class: 'reactions', 'aria-label': 'Reactions' }, m.reactions.map((r) => h('span', null, `${r.emoji || '★'} ${r.count}`))));
  }
  el.append(h('div', { class: 'meta' },
    m.edited_at ? h('span', { class: 'edited', title: 'Edited ' + fullTime(m.edited_at) }, 'edited') : null,
    h('time', { datetime: new Date(m.date * 1000).toISOString(), title: fullTime(m.date) }, clock(m.date)),
    statusMark(m)));
  // Your own sent messages can be edited (text) and deleted; a teammate's are theirs.
  const mine = out && m.id && m.status !== 'failed' && !byTeammate(m) && ctx.edit;
  el.append(h('div', { class: 'actions' },
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Reply to this message', title: 'Reply', onclick: () => ctx.reply(m) }, '↩'),
    mine && m.kind === 'text' ? h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Edit this message', title: 'Edit', onclick: () => ctx.edit(m) }, '✎') : null,
    mine ? h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Delete this message', title: 'Delete', onclick: () => ctx.remove(m) }, '🗑') : null));
  return el;
}
