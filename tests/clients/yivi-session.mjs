// Runs one session the way a web page does, with the real yivi-core state machine and the
// real yivi-client plugin, in plain Node. It plays the page; the Rust test plays the app.
//
//   node yivi-session.mjs <server-url> <sse|poll>   (session request in $IRMA_REQUEST)
//
// Prints one JSON line per event on stdout: {"event":"state"|"qr"|"result"|"error", ...}.
// When the state machine asks for a pairing code, it reads one line from stdin.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const { YiviCore } = require('@privacybydesign/yivi-core');
const { YiviClient } = require('@privacybydesign/yivi-client');

const [, , server, mode] = process.argv;
const request = JSON.parse(process.env.IRMA_REQUEST);
if (mode === 'sse') {
  // Node 20 has no EventSource; this is the polyfill a Node integrator would use.
  globalThis.EventSource = require('eventsource');
}

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
// Library debug output goes to stderr, so that stdout carries only our events.
const debugging = process.env.YIVI_DEBUG === '1';
console.log = console.error;
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// A stand-in for the page's UI: shows the QR (prints the session pointer) and lets the user
// type the pairing code shown in the app.
class TestPage {
  constructor({ stateMachine }) {
    this.stateMachine = stateMachine;
  }

  stateChange({ newState, payload }) {
    say({ event: 'state', state: newState });
    if (newState === 'ShowingQRCode') {
      const sessionPtr = JSON.parse(decodeURIComponent(payload.qr.split('#')[1]));
      say({ event: 'qr', sessionPtr });
    }
    if (newState === 'EnterPairingCode') {
      lines.next().then(({ value }) =>
        this.stateMachine.selectTransition(({ validTransitions }) =>
          validTransitions.includes('codeEntered')
            ? { transition: 'codeEntered', payload: { enteredPairingCode: String(value).trim() } }
            : false));
    }
  }
}

const yivi = new YiviCore({
  debugging,
  session: {
    url: server,
    start: { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) },
  },
  state: { serverSentEvents: mode === 'sse' ? { endpoint: 'statusevents', timeout: 2000 } : false },
});
yivi.use(TestPage);
yivi.use(YiviClient);

try {
  const result = await yivi.start();
  say({ event: 'result', result });
  process.exit(0);
} catch (e) {
  say({ event: 'error', error: String(e) });
  process.exit(1);
}
