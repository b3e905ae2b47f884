// oms browser client: plain JS on the wire contract (protocol.md §1, §4.1,
// §4.2). Signs in over ws(s)://HOST/v1/ws announcing "offline-messages" and
// this browser's device name (local.js), shows the sign-in notification of
// `welcome`, the messages (acked once shown), missed-message notices and the
// missed.summary digest, presence of watched users, and sends IMs, each
// shown with what became of it: the `sent` status, then its receipt
// (delivered / expired / purged; acked once recorded). No framework, no
// build step, no inline script (CSP).
'use strict';

(() => {
  const CLIENT = { name: 'oms-web', version: '0.2.0', features: ['offline-messages'] };
  const STATE_LABELS = {
    available: 'Available', busy: 'Busy', dnd: 'Do not disturb', presenting: 'Presenting',
    away: 'Away', brb: 'Be right back', 'appear-offline': 'Appear offline', offline: 'Offline',
  };
  const USER_ID = /^[A-Za-z0-9._@+-]{1,128}$/;
  const RECEIPT_LABELS = { delivered: 'delivered', expired: 'expired, never read', purged: 'purged by an operator' };
  const local = window.omsLocal;

  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  };

  let ws = null;
  let me = null;
  let device = null;          // the device name of this sign-in
  let nextRid = 1;
  const pending = new Map();   // rid -> callback(frame)
  const seen = new Set();      // message ids shown (a redelivery is dropped)
  const contacts = new Map();  // user -> <li>
  const outgoing = new Map();  // client_msg_id -> {li, entry} of a sent message
  const sentById = new Map();  // message id -> its client_msg_id
  let ackQueue = [];
  let ackScheduled = false;

  // ---- small helpers ----------------------------------------------------

  function setConn(text) { $('conn').textContent = text; }

  function fmtTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  function fmtDateTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

  function fromList(from) {
    // [{user, count}] (or plain user ids) -> "alice@contoso.com (2), ..."
    return (from || []).map((f) => (typeof f === 'string' ? f : `${f.user} (${f.count})`)).join(', ');
  }

  function send(frame, onReply) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return null;
    const rid = nextRid++;
    if (onReply) pending.set(rid, onReply);
    ws.send(JSON.stringify({ ...frame, rid }));
    return rid;
  }

  function notice(text, cls, testid) {
    const li = el('li', { class: cls || '', 'data-testid': testid || 'notice', text });
    $('notices').prepend(li);
    return li;
  }

  function scrollMessages() {
    const list = $('messages');
    list.scrollTop = list.scrollHeight;
  }

  // Acks go out in one frame per task: everything shown so far.
  function ack(id) {
    ackQueue.push(id);
    if (ackScheduled) return;
    ackScheduled = true;
    setTimeout(() => {
      ackScheduled = false;
      const ids = ackQueue;
      ackQueue = [];
      while (ids.length) send({ type: 'ack', ids: ids.splice(0, 1024) });
    }, 0);
  }

  // ---- sign-in ----------------------------------------------------------

  async function devToken(user) {
    const res = await fetch('/v1/dev/token', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user }),
    });
    if (res.status === 404) {
      showDevTokensOff();
      throw new Error('dev tokens are off on this server: paste a token');
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((body.error && body.error.message) || `HTTP ${res.status}`);
    return body.token;
  }

  function showDevTokensOff() {
    $('dev-tokens-off').hidden = false;
    $('token-hint').textContent = '(required)';
  }

  // GET on the dev token endpoint: 200 when it is on, 404 when it is off.
  async function probeDevTokens() {
    try {
      const res = await fetch('/v1/dev/token', { method: 'GET' });
      if (res.status === 404) showDevTokensOff();
    } catch (_) { /* the sign-in will tell */ }
  }

  function signinError(text) {
    const p = $('signin-error');
    p.textContent = text;
    p.hidden = !text;
  }

  async function signIn(event) {
    event.preventDefault();
    signinError('');
    const user = $('user').value.trim();
    let token = $('token').value.trim();
    const name = $('device').value.trim();
    if (!local.setDeviceName(name)) {
      signinError('Device name: 1 to 64 letters, digits, dots, dashes or underscores, and not "legacy".');
      return;
    }
    try {
      if (!token) {
        if (!USER_ID.test(user)) throw new Error('enter a user id (letters, digits and . _ @ + -)');
        token = await devToken(user);
      }
    } catch (e) {
      signinError(`Cannot sign in: ${e.message}`);
      return;
    }
    connect(token, name);
  }

  // Why a closed socket closed, for the user (4.1 and 4.3 close codes).
  function closeExplanation(code, reason, name) {
    if (code === 4409) {
      return `This device (${name}) signed in elsewhere: another window or tab with the same ` +
        'device name took over, and this one stopped receiving. To use two windows as two devices, ' +
        'give each its own device name before signing in.';
    }
    if (code === 4403 && reason === 'device removed') {
      return `This device (${name}) was removed by an operator: it no longer holds messages back, ` +
        'and its session was closed. Sign in again to use it as a new device.';
    }
    if (code === 4403) {
      return 'Too many devices: this user already has as many devices as the server allows. ' +
        'An operator can remove an old one (omsctl device remove USER DEVICE).';
    }
    if (code === 4401) return `Signed out by the server (${reason || 'token no longer valid'}): sign in again.`;
    return null;
  }

  function showBanner(code, text) {
    $('banner').dataset.code = String(code);
    $('banner-text').textContent = text;
    $('banner').hidden = false;
  }

  function hideBanner() {
    $('banner').hidden = true;
    $('banner-text').textContent = '';
    delete $('banner').dataset.code;
  }

  function refusal(f) {
    if (f.code === 'too_many_devices') return `Sign-in refused: ${closeExplanation(4403, '', '')}`;
    return `Sign-in refused: ${f.code || f.type}${f.message ? ` — ${f.message}` : ''}`;
  }

  function connect(token, name) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    setConn('Connecting…');
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws`);
    ws = socket;
    let welcomed = false;
    // A socket left behind by a sign-out may still report; only the current one counts.
    socket.onopen = () => {
      if (ws !== socket) return;
      send({ type: 'hello', token, client: { ...CLIENT, device: name } }, (f) => {
        if (f.type === 'welcome') {
          welcomed = true;
          device = name;
          onWelcome(f);
        } else {
          signinError(refusal(f));
        }
      });
    };
    socket.onmessage = (ev) => {
      if (ws !== socket) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      onFrame(f);
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return;
      const why = ev.reason ? ` — ${ev.reason}` : '';
      setConn(`Disconnected (${ev.code}${why})`);
      const explained = closeExplanation(ev.code, ev.reason, name);
      if (!welcomed && !$('signin-error').textContent) signinError(explained || `Connection closed (${ev.code}${why})`);
      if (!welcomed) showSignin();
      if (welcomed && explained) showBanner(ev.code, explained);
      ws = null;
      pending.clear();
    };
  }

  function onWelcome(f) {
    me = f.user;
    hideBanner();
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    $('signout').hidden = false;
    $('me').hidden = false;
    $('me').replaceChildren(`Signed in as ${me}`,
      el('span', { class: 'device', 'data-testid': 'device', text: ` on ${device}` }));
    setConn('Connected');
    showMyPresence(f.presence || 'available');

    const mb = f.mailbox || { count: 0 };
    const box = $('signin-notice');
    box.replaceChildren();
    box.dataset.count = String(mb.count || 0);
    box.dataset.receipts = String(mb.receipts || 0);
    if (mb.count > 0) {
      const missed = mb.missed ? `, ${mb.missed} missed` : '';
      box.append(el('strong', { text: `${plural(mb.count, 'message')} waited for you${missed}.` }));
      box.append(el('div', { 'data-testid': 'signin-notice-from', text: `From: ${fromList(mb.from)}` }));
      if (mb.oldest) box.append(el('div', { class: 'hint', text: `Oldest: ${new Date(mb.oldest).toLocaleString()}` }));
    } else {
      box.append(el('strong', { text: 'No messages waited for you.' }));
    }
    if (mb.receipts > 0) {
      box.append(el('div', { 'data-testid': 'signin-notice-receipts',
        text: `${plural(mb.receipts, 'receipt')} for messages you sent (shown on them below).` }));
    }
    box.hidden = false;
    showSentRecord();
    for (const user of contacts.keys()) send({ type: 'presence.subscribe', users: [user] });
    $('to').focus();
  }

  function showSignin() {
    $('signin-view').hidden = false;
    $('app-view').hidden = true;
    $('signout').hidden = true;
    $('me').hidden = true;
  }

  function signOut() {
    if (ws) ws.close(1000, 'signed out');
    ws = null;
    me = null;
    device = null;
    pending.clear();
    ackQueue = [];
    seen.clear();
    sentById.clear();
    outgoing.clear();
    hideBanner();
    $('device').value = local.deviceName();
    $('messages').replaceChildren();
    $('notices').replaceChildren();
    $('drained').hidden = true;
    $('signin-notice').hidden = true;
    showSignin();
    setConn('Signed out');
  }

  // ---- frames from the server -------------------------------------------

  function onFrame(f) {
    if (f.rid !== undefined && pending.has(f.rid)) {
      const cb = pending.get(f.rid);
      pending.delete(f.rid);
      cb(f);
      return;
    }
    switch (f.type) {
      case 'message': return onMessage(f);
      case 'missed': return onMissed(f);
      case 'missed.summary': return onMissedSummary(f);
      case 'receipt': return onReceipt(f);
      case 'presence': return onPresence(f);
      case 'mailbox.drained': $('drained').hidden = false; return undefined;
      case 'error': notice(`Error ${f.code}: ${f.message || ''}`, 'error', 'error-notice'); return undefined;
      default: return undefined;
    }
  }

  function onMessage(f) {
    if (seen.has(f.id)) { ack(f.id); return; }
    seen.add(f.id);
    const kind = f.kind || 'live';
    const li = el('li', { class: 'in', 'data-testid': 'message', 'data-id': f.id, 'data-kind': kind, 'data-from': f.from },
      el('div', { class: 'meta' },
        el('span', { class: 'from', text: f.from }),
        el('time', { dateTime: f.sent_at || '', text: fmtTime(f.sent_at) }),
        el('span', { class: `badge badge-${kind}`, 'data-testid': 'message-kind', text: kind })),
      el('div', { class: 'text', 'data-testid': 'message-body', text: f.body }));
    $('messages').append(li);
    scrollMessages();
    ack(f.id);  // shown: the server may delete it
  }

  function onMissed(f) {
    const reason = f.reason === 'presenting' ? 'while you were presenting' : 'while you were in Do not disturb';
    const li = notice(`Missed message from ${f.from} ${reason}: “${f.preview || ''}”`, 'missed', 'missed-notice');
    li.dataset.id = f.id;
    li.dataset.from = f.from;
  }

  function onMissedSummary(f) {
    const n = f.count || 0;
    const text = n === 0
      ? 'Missed-message summary: nothing missed is still waiting (what you missed is shown here).'
      : `Missed-message summary: ${n} missed message${n === 1 ? '' : 's'} still waiting, from ${fromList(f.from)}.`;
    const li = notice(text, 'summary', 'missed-summary');
    li.dataset.count = String(n);
  }

  // ---- presence ---------------------------------------------------------

  function stateBadge(state) {
    return el('span', { class: `state state-${state}`, 'data-testid': 'contact-state', 'data-state': state,
      text: STATE_LABELS[state] || state });
  }

  function showMyPresence(state) {
    $('presence').value = state;
    $('presence-state').textContent = `Others see you as: ${STATE_LABELS[state === 'appear-offline' ? 'offline' : state] || state}`;
    $('presence-state').dataset.state = state;
  }

  function setPresence() {
    const state = $('presence').value;
    send({ type: 'presence.set', state }, (f) => {
      if (f.type === 'ok') showMyPresence(state);
      else notice(`Cannot set presence: ${f.code}`, 'error', 'error-notice');
    });
  }

  function addContact(event) {
    event.preventDefault();
    const user = $('contact').value.trim().toLowerCase();
    if (!USER_ID.test(user) || contacts.has(user)) return;
    const li = el('li', { 'data-testid': 'contact', 'data-user': user },
      el('span', { class: 'user', text: user }), stateBadge('offline'));
    const write = el('button', { type: 'button', text: 'Write', 'aria-label': `Write to ${user}` });
    write.addEventListener('click', () => { $('to').value = user; $('body').focus(); });
    li.append(write);
    contacts.set(user, li);
    $('contacts').append(li);
    $('contact').value = '';
    send({ type: 'presence.subscribe', users: [user] }, (f) => {
      if (f.type !== 'ok') notice(`Cannot watch ${user}: ${f.code}`, 'error', 'error-notice');
    });
  }

  function onPresence(f) {
    const li = contacts.get(f.user);
    if (!li) return;
    li.querySelector('[data-testid="contact-state"]').replaceWith(stateBadge(f.state));
  }

  // ---- sending, and what became of it -------------------------------------
  // Every sent message has an entry in local.js's record and an outgoing <li>
  // (outgoing: client_msg_id -> {li, entry}); the `sent` reply and then the
  // receipt update both. A receipt is matched by message id, or by
  // client_msg_id for an entry whose reply never came (the page was closed).

  function newClientMsgId() {
    return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
  }

  function statusText(entry) {
    if (entry.status === 'pending') return entry.restored ? 'unconfirmed' : 'sending…';
    if (entry.status === 'error') return `not sent: ${entry.code}`;
    return entry.status;
  }

  function statusTitle(entry) {
    if (entry.status === 'error') return entry.message || '';
    if (entry.status === 'pending' && entry.restored) {
      return 'The page closed before the server answered. If it was stored, its receipt still shows here.';
    }
    if (entry.status === 'stored' || entry.status === 'missed') {
      return `${entry.to} was ${entry.recipient || 'away'}: it waits in their mailbox. ` +
        'What becomes of it (delivered, expired, purged) shows here.';
    }
    return entry.recipient ? `recipient was ${entry.recipient}` : '';
  }

  function renderOutgoing({ li, entry }) {
    const status = li.querySelector('[data-testid="send-status"]');
    status.textContent = statusText(entry);
    status.title = statusTitle(entry);
    status.dataset.status = entry.status;
    status.className = `badge status-${entry.status}`;
    if (entry.code) status.dataset.code = entry.code;
    if (entry.id) li.dataset.id = entry.id;
    const receipt = li.querySelector('[data-testid="receipt"]');
    if (entry.receipt) {
      const { state, at } = entry.receipt;
      receipt.textContent = `${RECEIPT_LABELS[state] || state} ${fmtTime(at)}`;
      receipt.title = `${state} at ${fmtDateTime(at)}`;
      receipt.dataset.state = state;
      receipt.className = `badge receipt receipt-${state}`;
      receipt.hidden = false;
    }
  }

  function showOutgoing(entry) {
    const li = el('li', { class: 'out', 'data-testid': 'outgoing', 'data-to': entry.to },
      el('div', { class: 'meta' },
        el('span', { text: `to ${entry.to}` }),
        el('time', { text: fmtTime(entry.at) }),
        el('span', { 'data-testid': 'send-status' }),
        el('span', { 'data-testid': 'receipt', hidden: true })),
      el('div', { class: 'text', text: entry.body }));
    const o = { li, entry };
    outgoing.set(entry.client_msg_id, o);
    if (entry.id) sentById.set(entry.id, entry.client_msg_id);
    renderOutgoing(o);
    $('messages').append(li);
    return o;
  }

  function updateOutgoing(cmid, changes) {
    const o = outgoing.get(cmid);
    Object.assign(o.entry, changes);
    if (o.entry.id) sentById.set(o.entry.id, cmid);
    renderOutgoing(o);
  }

  // At sign-in: what this user sent from this browser before (a reload).
  function showSentRecord() {
    for (const entry of local.sentList(me)) {
      if (outgoing.has(entry.client_msg_id)) continue;
      showOutgoing({ ...entry, restored: true });
    }
    scrollMessages();
  }

  function sendMessage(event) {
    event.preventDefault();
    const to = $('to').value.trim();
    const body = $('body').value;
    if (!to || !body || !me) return;
    const user = me;
    const cmid = newClientMsgId();
    const rid = send({ type: 'send', to, body, client_msg_id: cmid }, (f) => {
      const changes = f.type === 'sent'
        ? { id: f.id, status: f.status, recipient: f.recipient }
        : { status: 'error', code: f.code || f.type, message: f.message || '' };
      local.updateSent(user, { client_msg_id: cmid }, changes);
      if (outgoing.has(cmid)) updateOutgoing(cmid, changes);
    });
    if (rid === null) return;
    const entry = { client_msg_id: cmid, to, body, at: Date.now(), status: 'pending' };
    local.recordSent(user, entry);
    showOutgoing(entry);
    scrollMessages();
    $('body').value = '';
    $('body').focus();
  }

  // A receipt (4.2): recorded, shown on its message (or as a notice when the
  // message was sent from elsewhere), then acked like a message.
  function onReceipt(f) {
    if (typeof f.id !== 'string' || !f.id) return;
    const receipt = { state: String(f.state || ''), at: f.at || '' };
    const changes = typeof f.msg === 'string' && f.msg ? { id: f.msg, receipt } : { receipt };
    if (me) local.updateSent(me, { id: f.msg, client_msg_id: f.client_msg_id }, changes);
    let cmid = sentById.get(f.msg);
    if (!cmid && outgoing.has(f.client_msg_id)) {
      const { entry } = outgoing.get(f.client_msg_id);
      if (!entry.id || entry.id === f.msg) cmid = f.client_msg_id;
    }
    if (cmid) {
      updateOutgoing(cmid, changes);
    } else if (!seen.has(f.id)) {
      const li = notice(`Your message to ${f.to || 'someone'} was ${RECEIPT_LABELS[receipt.state] || receipt.state}` +
        ` at ${fmtDateTime(receipt.at)} (sent from another device or long ago).`, 'receipt', 'receipt-notice');
      li.dataset.msg = f.msg || '';
      li.dataset.state = receipt.state;
    }
    seen.add(f.id);
    ack(f.id);
  }

  // ---- wiring -----------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('presence').addEventListener('change', setPresence);
    $('contact-form').addEventListener('submit', addContact);
    $('send-form').addEventListener('submit', sendMessage);
    $('banner-signin').addEventListener('click', signOut);
    $('body').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('send-form').requestSubmit(); }
    });
    $('device').value = local.deviceName();
    probeDevTokens();
    $('user').focus();
  });
})();
