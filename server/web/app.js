// oms browser client: plain JS on the wire contract (protocol.md §1).
// Signs in over ws(s)://HOST/v1/ws announcing "offline-messages", shows the
// sign-in notification of `welcome`, the messages (acked once shown),
// missed-message notices and the missed.summary digest, presence of watched
// users, and sends IMs. No framework, no build step, no inline script (CSP).
'use strict';

(() => {
  const CLIENT = { name: 'oms-web', version: '0.1.0', features: ['offline-messages'] };
  const STATE_LABELS = {
    available: 'Available', busy: 'Busy', dnd: 'Do not disturb', presenting: 'Presenting',
    away: 'Away', brb: 'Be right back', 'appear-offline': 'Appear offline', offline: 'Offline',
  };
  const USER_ID = /^[A-Za-z0-9._@+-]{1,128}$/;

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
  let nextRid = 1;
  const pending = new Map();   // rid -> callback(frame)
  const seen = new Set();      // message ids shown (a redelivery is dropped)
  const contacts = new Map();  // user -> <li>
  let ackQueue = [];
  let ackScheduled = false;

  // ---- small helpers ----------------------------------------------------

  function setConn(text) { $('conn').textContent = text; }

  function fmtTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

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
    try {
      if (!token) {
        if (!USER_ID.test(user)) throw new Error('enter a user id (letters, digits and . _ @ + -)');
        token = await devToken(user);
      }
    } catch (e) {
      signinError(`Cannot sign in: ${e.message}`);
      return;
    }
    connect(token);
  }

  function connect(token) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    setConn('Connecting…');
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws`);
    ws = socket;
    let welcomed = false;
    // A socket left behind by a sign-out may still report; only the current one counts.
    socket.onopen = () => {
      if (ws !== socket) return;
      send({ type: 'hello', token, client: CLIENT }, (f) => {
        if (f.type === 'welcome') {
          welcomed = true;
          onWelcome(f);
        } else {
          signinError(`Sign-in refused: ${f.code || f.type}${f.message ? ` — ${f.message}` : ''}`);
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
      if (!welcomed && !$('signin-error').textContent) signinError(`Connection closed (${ev.code}${why})`);
      if (!welcomed) showSignin();
      ws = null;
      pending.clear();
    };
  }

  function onWelcome(f) {
    me = f.user;
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    $('signout').hidden = false;
    $('me').hidden = false;
    $('me').textContent = `Signed in as ${me}`;
    setConn('Connected');
    showMyPresence(f.presence || 'available');

    const mb = f.mailbox || { count: 0 };
    const box = $('signin-notice');
    box.replaceChildren();
    box.dataset.count = String(mb.count || 0);
    if (mb.count > 0) {
      const missed = mb.missed ? `, ${mb.missed} missed` : '';
      box.append(el('strong', {
        text: `${mb.count} message${mb.count === 1 ? '' : 's'} waited for you${missed}.`,
      }));
      box.append(el('div', { 'data-testid': 'signin-notice-from', text: `From: ${fromList(mb.from)}` }));
      if (mb.oldest) box.append(el('div', { class: 'hint', text: `Oldest: ${new Date(mb.oldest).toLocaleString()}` }));
    } else {
      box.textContent = 'No messages waited for you.';
    }
    box.hidden = false;
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
    pending.clear();
    ackQueue = [];
    seen.clear();
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

  // ---- sending ----------------------------------------------------------

  function sendMessage(event) {
    event.preventDefault();
    const to = $('to').value.trim();
    const body = $('body').value;
    if (!to || !body) return;
    const status = el('span', { class: 'badge', 'data-testid': 'send-status', 'data-status': 'pending', text: 'sending…' });
    const li = el('li', { class: 'out', 'data-testid': 'outgoing', 'data-to': to },
      el('div', { class: 'meta' }, el('span', { text: `to ${to}` }), status),
      el('div', { class: 'text', text: body }));
    const clientMsgId = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
    const rid = send({ type: 'send', to, body, client_msg_id: clientMsgId }, (f) => {
      if (f.type === 'sent') {
        status.textContent = f.status;
        status.title = `recipient was ${f.recipient}`;
        status.dataset.status = f.status;
        status.className = `badge status-${f.status}`;
        li.dataset.id = f.id;
      } else {
        status.textContent = `not sent: ${f.code}`;
        status.title = f.message || '';
        status.dataset.status = 'error';
        status.dataset.code = f.code || '';
        status.className = 'badge status-error';
      }
    });
    if (rid === null) return;
    $('messages').append(li);
    scrollMessages();
    $('body').value = '';
    $('body').focus();
  }

  // ---- wiring -----------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('presence').addEventListener('change', setPresence);
    $('contact-form').addEventListener('submit', addContact);
    $('send-form').addEventListener('submit', sendMessage);
    $('body').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('send-form').requestSubmit(); }
    });
    probeDevTokens();
    $('user').focus();
  });
})();
