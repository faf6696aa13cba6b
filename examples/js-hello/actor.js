// js-hello is hello (examples/hello) written in JavaScript and built into a
// WebAssembly component by componentize-js against wit/theater-simple.wit's
// world simple-actor: it greets with its id and name, takes the greeting from
// the GREETING variable, records an event and a metric, and counts its runs
// in its state, so the count survives restarts. docs/javascript.md is the
// guide; hack/components.sh builds it with the pinned toolchain:
//
//   componentize-js --wit wit/theater-simple.wit --world-name simple-actor \
//     --out js-hello.wasm examples/js-hello/actor.js
//
// The runtime interface is a module named like the WIT interface; its
// functions are the WIT names in camelCase. An import that returns
// result<_, string> throws on err; init's result is what it returns (ok) or
// the string it throws (err).
import {
  getActorId,
  getActorName,
  getCurrentTime,
  getEnv,
  log,
  recordEvent,
  recordMetric,
} from 'theater:simple/runtime';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const actor = {
  // init(state: option<list<u8>>, params: tuple<string>)
  //   -> result<tuple<option<list<u8>>>, string>
  // state is a Uint8Array, or undefined for none; the returned array is
  // the tuple, whose one element is the new state (undefined for none).
  init(state, [actorId]) {
    // pure.js sets this in a build without WASI features, where
    // performance.now traps and the console writes nowhere.
    const wasi = !globalThis.jsHelloWithoutWASI;
    const started = wasi ? performance.now() : Number(getCurrentTime());

    let saved = { count: 0 };
    if (state !== undefined && state.length > 0) {
      try {
        saved = JSON.parse(decoder.decode(state));
      } catch (e) {
        throw `js-hello: saved state ${JSON.stringify(decoder.decode(state))} is not {"count": N}: ${e.message}`;
      }
    }
    const count = (Number(saved.count) || 0) + 1;

    if (getActorId() !== actorId) {
      throw `js-hello: get-actor-id says ${getActorId()}, init was given ${actorId}`;
    }
    const greeting = getEnv('GREETING') || 'Hello';
    const name = getActorName();
    const line = `${greeting} from ${name} (${actorId}), run #${count}`;
    if (wasi) {
      // stdout and stderr become the actor's log lines, like a Go actor's.
      console.log(line);
      console.error(`js-hello: ${name} writes to stderr too`);
    }
    log('info', `${line}, through the runtime`);

    // Math.random and Date.now need the WASI random and clocks the host
    // serves; the event shows they work (a nonce, and how far Date.now is
    // from the host's clock).
    const nonce = Math.floor(Math.random() * 2 ** 32);
    const skewMs = Date.now() - Number(getCurrentTime());
    recordEvent('greeted', encoder.encode(JSON.stringify({ greeting, name, count, nonce, skewMs, wasi })));
    const ended = wasi ? performance.now() : Number(getCurrentTime());
    recordMetric('js_hello_init_ms', ended - started);

    return [encoder.encode(JSON.stringify({ count }))];
  },
};
