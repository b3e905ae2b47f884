// What the browser client keeps in this browser profile's localStorage:
//   oms.device        its device name (contract 4.1), made once per profile;
//   oms.sent.<user>   a small record of the messages <user> sent from here,
//                     with what became of them (the `sent` reply, then the
//                     receipt of 4.2), so a reload still shows them.
// Where storage is blocked (some private modes) it lasts as long as the page.
'use strict';

window.omsLocal = (() => {
  const DEVICE_KEY = 'oms.device';
  const SENT_PREFIX = 'oms.sent.';
  const SENT_MAX = 100;       // records kept per user, oldest dropped first
  const PREVIEW_MAX = 200;    // characters of a body kept (enough to recognise it)
  const DEVICE = /^[A-Za-z0-9._-]{1,64}$/;
  const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

  const memory = new Map();
  let storageWorks = true;

  function read(key) {
    if (storageWorks) {
      try { return localStorage.getItem(key); } catch (_) { storageWorks = false; }
    }
    return memory.has(key) ? memory.get(key) : null;
  }

  function write(key, value) {
    memory.set(key, value);
    if (!storageWorks) return;
    try { localStorage.setItem(key, value); } catch (_) { storageWorks = false; }
  }

  // ---- the device name ----------------------------------------------------

  // 1–64 bytes of [A-Za-z0-9._-], not the shared device "legacy" (4.1).
  function validDevice(name) {
    return typeof name === 'string' && DEVICE.test(name) && name !== 'legacy';
  }

  // "web-" and 8 of [a-z0-9], unbiased (bytes of 252 and up are drawn again).
  function newDevice() {
    let out = 'web-';
    const bytes = new Uint8Array(16);
    while (out.length < 12) {
      crypto.getRandomValues(bytes);
      for (const b of bytes) if (b < 252 && out.length < 12) out += ALPHABET[b % 36];
    }
    return out;
  }

  function deviceName() {
    let name = read(DEVICE_KEY);
    if (!validDevice(name)) {
      name = newDevice();
      write(DEVICE_KEY, name);
    }
    return name;
  }

  function setDeviceName(name) {
    if (!validDevice(name)) return false;
    write(DEVICE_KEY, name);
    return true;
  }

  // ---- the record of sent messages ----------------------------------------
  // An entry: {client_msg_id, id?, to, body, at (ms), status, code?,
  //            receipt?: {state, at}}; status is 'pending' until the reply.

  function sentList(user) {
    try {
      const list = JSON.parse(read(SENT_PREFIX + user) || '[]');
      return Array.isArray(list) ? list.filter((e) => e && typeof e.client_msg_id === 'string') : [];
    } catch (_) {
      return [];
    }
  }

  function saveSent(user, list) {
    write(SENT_PREFIX + user, JSON.stringify(list.slice(-SENT_MAX)));
  }

  function recordSent(user, entry) {
    const list = sentList(user);
    const body = entry.body.length > PREVIEW_MAX ? `${entry.body.slice(0, PREVIEW_MAX)}…` : entry.body;
    const kept = { ...entry, body };
    list.push(kept);
    saveSent(user, list);
    return kept;
  }

  // Applies `changes` to the entry with message id `id`, or else to the one
  // with `client_msg_id` that has no other id yet; null when none matches.
  function updateSent(user, { id, client_msg_id: cmid }, changes) {
    const list = sentList(user);
    const entry = (id && list.find((e) => e.id === id)) ||
      (cmid && list.find((e) => e.client_msg_id === cmid && (!e.id || !id || e.id === id)));
    if (!entry) return null;
    Object.assign(entry, changes);
    saveSent(user, list);
    return entry;
  }

  return { validDevice, deviceName, setDeviceName, sentList, recordSent, updateSent };
})();
