// Browser test browser/devices_and_receipts: two browser profiles (two
// playwright contexts, each with its own localStorage) are two devices of
// Bob (contract 4.1); Alice's page shows the receipt of her message (4.2).
//
//   node devices_and_receipts.mjs --omsd PATH --chromium PATH --artifacts DIR
//
// Each of Bob's profiles makes its own device name and keeps it across a
// reload; both devices sign in once and leave. Alice's message to offline Bob
// is stored; Bob's first device gets it at sign-in and acks it, Alice's page
// shows "delivered"; the message still waits for the second device, which
// gets the same id at its sign-in, then the mailbox is empty. A second
// message's receipt reaches Alice at a later sign-in after a reload of her
// page (her record of sent messages is in localStorage). A second window of
// the first profile replaces the first window (4409), which says so; with
// [devices] max_per_user = 2 a third profile is refused (4403) and says so;
// an operator removes the second device (4403), whose page says so.
import {
  WAIT_MS, adminRequest, check, contactState, log, newPage, run, sendIm, shot, signIn, signOut, submitSignIn, tid,
  waitFor, watch, watchPage,
} from './harness.mjs';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const GENERATED_DEVICE = /^web-[a-z0-9]{8}$/;
const FIRST = 'Lunch at noon?';
const SECOND = 'Or tomorrow?';

async function mailboxCount(env, user) {
  const { status, body } = await adminRequest('GET', `${env.adminBase}/v1/users/${encodeURIComponent(user)}`, env.adminToken);
  check(status === 200, `GET /v1/users/${user}: ${status}`);
  return body.mailbox.count;
}

async function deviceName(page) {
  return tid(page, 'device-input').inputValue();
}

// Bob's page shows `body` as a stored message once, and drains; returns its id.
async function receivesStored(page, body) {
  await tid(page, 'signin-notice').filter({ hasText: '1 message waited for you' }).waitFor({ timeout: WAIT_MS });
  const msg = tid(page, 'message', '[data-kind="offline"]').filter({ hasText: body }).filter({ hasText: ALICE });
  await msg.waitFor({ timeout: WAIT_MS });
  await tid(page, 'drained').waitFor({ state: 'visible', timeout: WAIT_MS });  // acked and drained
  check(await msg.count() === 1, `"${body}" shown once`);
  return msg.getAttribute('data-id');
}

async function receiptShown(out, state) {
  await out.locator(`[data-testid="receipt"][data-state="${state}"]`).waitFor({ timeout: WAIT_MS });
}

async function scenario(env) {
  const { base } = env;
  const alice = await newPage(env, 'alice');
  const bob1 = await newPage(env, 'bob-1');
  const bob2 = await newPage(env, 'bob-2');

  // Each profile makes its own device name and keeps it across a reload.
  await bob1.goto(base, { timeout: WAIT_MS });
  await bob2.goto(base, { timeout: WAIT_MS });
  const dev1 = await deviceName(bob1);
  const dev2 = await deviceName(bob2);
  check(GENERATED_DEVICE.test(dev1) && GENERATED_DEVICE.test(dev2), `generated device names: ${dev1}, ${dev2}`);
  check(dev1 !== dev2, 'two profiles, two device names');
  await bob1.reload({ timeout: WAIT_MS });
  check(await deviceName(bob1) === dev1, 'the device name is kept across a reload');
  log(`bob's devices: ${dev1}, ${dev2}`);

  // "legacy" is not a name a client may take (4.1): refused before connecting.
  await tid(bob2, 'device-input').fill('legacy');
  await tid(bob2, 'user-input').fill(BOB);
  await tid(bob2, 'signin').click();
  await tid(bob2, 'signin-error').filter({ hasText: 'Device name' }).waitFor({ timeout: WAIT_MS });
  await tid(bob2, 'device-input').fill(dev2);

  // Both devices sign in once (the server knows them), then leave.
  await submitSignIn(bob1, BOB);
  await tid(bob1, 'device').filter({ hasText: dev1 }).waitFor({ timeout: WAIT_MS });
  await submitSignIn(bob2, BOB);
  await tid(bob2, 'device').filter({ hasText: dev2 }).waitFor({ timeout: WAIT_MS });
  await signOut(bob1);
  await signOut(bob2);
  log('both of bob\'s devices signed in once and left');

  // Alice's message to offline Bob is stored.
  await signIn(alice, base, ALICE);
  await watch(alice, BOB);
  await contactState(alice, BOB, 'offline');
  const out1 = await sendIm(alice, BOB, FIRST, 'stored');
  const id1 = await out1.getAttribute('data-id');
  await shot(alice, '01-alice-message-stored');
  log(`alice: "${FIRST}" stored as ${id1}`);

  // Bob's first device gets it at sign-in and acks it: Alice sees "delivered".
  await submitSignIn(bob1, BOB);
  check(await receivesStored(bob1, FIRST) === id1, 'device 1 got the message id alice was given');
  await shot(bob1, '02-bob-device1-got-it');
  await receiptShown(out1, 'delivered');
  await shot(alice, '03-alice-receipt-delivered');
  log('bob device 1: message shown and acked; alice: delivered');

  // Still stored: it waits for the second device, which gets the same id.
  check(await mailboxCount(env, BOB) === 1, 'after device 1\'s ack the message still waits for device 2');
  await submitSignIn(bob2, BOB);
  check(await receivesStored(bob2, FIRST) === id1, 'device 2 got the same message id');
  await shot(bob2, '04-bob-device2-got-it-too');
  await waitFor('bob\'s mailbox to be empty after both devices acked', async () => await mailboxCount(env, BOB) === 0);
  log('bob device 2: the same message; then the mailbox is empty');

  // A receipt that arrives at a later sign-in, after a reload of Alice's page.
  await signOut(bob1);
  await signOut(bob2);
  await contactState(alice, BOB, 'offline');
  const out2 = await sendIm(alice, BOB, SECOND, 'stored');
  const id2 = await out2.getAttribute('data-id');
  await alice.reload({ timeout: WAIT_MS });
  await tid(alice, 'signin-form').waitFor({ state: 'visible', timeout: WAIT_MS });
  await submitSignIn(bob1, BOB);
  check(await receivesStored(bob1, SECOND) === id2, 'device 1 got the second message');
  await submitSignIn(alice, ALICE);
  const receipts = tid(alice, 'signin-notice-receipts');
  await receipts.waitFor({ timeout: WAIT_MS });
  const waiting = Number(await tid(alice, 'signin-notice').getAttribute('data-receipts'));
  check(waiting === 1, `welcome.mailbox.receipts counts the one waiting receipt (${waiting})`);
  const again1 = tid(alice, 'outgoing', `[data-id="${id1}"]`).filter({ hasText: FIRST });
  const again2 = tid(alice, 'outgoing', `[data-id="${id2}"]`).filter({ hasText: SECOND });
  await receiptShown(again1, 'delivered');   // from the record in localStorage
  await receiptShown(again2, 'delivered');   // the receipt of this sign-in
  await shot(alice, '05-alice-after-reload-receipt-at-signin');
  log(`alice after a reload: both messages shown delivered (${waiting} receipt(s) waited)`);

  // A second window of the first profile: same device name, it replaces the first.
  const bob1b = await bob1.context().newPage();
  watchPage(env, 'bob-1b', bob1b);
  await signIn(bob1b, base, BOB);
  await tid(bob1b, 'device').filter({ hasText: dev1 }).waitFor({ timeout: WAIT_MS });
  await tid(bob1, 'banner', '[data-code="4409"]').filter({ hasText: 'signed in elsewhere' }).waitFor({ timeout: WAIT_MS });
  await shot(bob1, '06-bob-device1-replaced');
  log('bob device 1: the older window says it was replaced (4409)');

  // A third profile is one device too many (max_per_user = 2): refused, 4403.
  const bob3 = await newPage(env, 'bob-3');
  await bob3.goto(base, { timeout: WAIT_MS });
  await tid(bob3, 'user-input').fill(BOB);
  await tid(bob3, 'signin').click();
  await tid(bob3, 'signin-error').filter({ hasText: 'Too many devices' }).waitFor({ timeout: WAIT_MS });
  await tid(bob3, 'connection').filter({ hasText: '4403' }).waitFor({ timeout: WAIT_MS });
  await shot(bob3, '07-bob-device3-too-many-devices');
  log('bob device 3: refused, too many devices (4403)');

  // An operator removes the second device while it is signed in: 4403, shown.
  await submitSignIn(bob2, BOB);
  const path = `/v1/users/${encodeURIComponent(BOB)}/devices/${encodeURIComponent(dev2)}`;
  const removed = await adminRequest('DELETE', `${env.adminBase}${path}`, env.adminToken);
  check(removed.status === 200 || removed.status === 204, `DELETE ${path}: ${removed.status}`);
  await tid(bob2, 'banner', '[data-code="4403"]').filter({ hasText: 'removed by an operator' }).waitFor({ timeout: WAIT_MS });
  await shot(bob2, '08-bob-device2-removed');
  log('bob device 2: removed by an operator (4403)');
}

run('browser/devices_and_receipts', scenario, { config: ['[devices]', 'max_per_user = 2'] });
