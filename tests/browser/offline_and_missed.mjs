// Browser test browser/offline_and_missed: omsd's embedded client (served at
// /) in headless Chromium, driven by playwright-core (Debian's chromium, no
// browser download); the harness is harness.mjs.
//
//   node offline_and_missed.mjs --omsd PATH --chromium PATH --artifacts DIR
//
// Alice leaves Bob (offline) a message; Bob signs in and sees the sign-in
// notification and the message; Bob goes Do not disturb; Alice's next
// message shows as a missed notice on Bob's page and as status "missed" on
// Alice's.
import {
  WAIT_MS, adminRequest, check, contactState, log, newPage, run, sendIm, shot, signIn, tid, waitFor, watch,
} from './harness.mjs';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

async function scenario(env) {
  const { base, adminBase, adminToken } = env;
  const alice = await newPage(env, 'alice');
  const bob = await newPage(env, 'bob');

  // Alice signs in (dev token) and watches Bob, who is offline.
  await signIn(alice, base, ALICE);
  await tid(alice, 'signin-notice').filter({ hasText: 'No messages waited for you.' }).waitFor({ timeout: WAIT_MS });
  await watch(alice, BOB);
  await contactState(alice, BOB, 'offline');
  log('alice signed in, bob is offline');

  // An offline message: stored.
  await sendIm(alice, BOB, 'Lunch at noon?', 'stored');
  await shot(alice, '01-alice-offline-message-stored');
  log('alice: sent, status stored');

  // Bob signs in: the sign-in notification, then the message (acked by the page).
  await signIn(bob, base, BOB);
  const notice = tid(bob, 'signin-notice');
  await notice.filter({ hasText: '1 message waited for you' }).waitFor({ timeout: WAIT_MS });
  await tid(bob, 'signin-notice-from').filter({ hasText: `${ALICE} (1)` }).waitFor({ timeout: WAIT_MS });
  check((await notice.getAttribute('data-count')) === '1', 'welcome mailbox.count is 1');
  await tid(bob, 'message', '[data-kind="offline"]').filter({ hasText: 'Lunch at noon?' })
    .filter({ hasText: ALICE }).waitFor({ timeout: WAIT_MS });
  await tid(bob, 'drained').waitFor({ state: 'visible', timeout: WAIT_MS });  // acked and drained
  await shot(bob, '02-bob-signin-notification');
  log('bob: sign-in notification and the offline message shown');

  // Alice sees Bob come online.
  await contactState(alice, BOB, 'available');

  // Bob goes Do not disturb; Alice sees it.
  await tid(bob, 'presence-select').selectOption('dnd');
  await tid(bob, 'presence-state', '[data-state="dnd"]').waitFor({ timeout: WAIT_MS });
  await contactState(alice, BOB, 'dnd');
  log('bob: dnd');

  // Alice's next message is a missed message.
  await sendIm(alice, BOB, 'Call me when you are free', 'missed');
  await tid(bob, 'missed-notice').filter({ hasText: ALICE }).filter({ hasText: 'Call me when you are free' })
    .waitFor({ timeout: WAIT_MS });
  await tid(bob, 'message', '[data-kind="missed"]').filter({ hasText: 'Call me when you are free' })
    .waitFor({ timeout: WAIT_MS });
  await shot(alice, '03-alice-status-missed');
  await shot(bob, '04-bob-missed-notice');
  log('alice: status missed; bob: missed notice and the missed message');

  // Bob is available again: the missed.summary digest.
  await tid(bob, 'presence-select').selectOption('available');
  await tid(bob, 'missed-summary').waitFor({ timeout: WAIT_MS });
  await contactState(alice, BOB, 'available');
  await shot(bob, '05-bob-missed-summary');
  log('bob: missed.summary shown');

  // The page acked everything it showed: Bob's mailbox is empty.
  await waitFor('bob\'s mailbox to be empty', async () => {
    const { status, body } = await adminRequest('GET', `${adminBase}/v1/users/${encodeURIComponent(BOB)}`, adminToken);
    return status === 200 && body.mailbox && body.mailbox.count === 0;
  }, WAIT_MS);
  log('bob\'s mailbox is empty (acked)');
}

run('browser/offline_and_missed', scenario);
