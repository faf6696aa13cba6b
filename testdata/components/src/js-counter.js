// js-counter: a JavaScript actor of the world message-actor
// (wit/theater-message.wit), built by componentize-js, that the engine's
// tests send messages and requests to: a cross-check of the message ABI by
// a real toolchain. hack/components.sh builds it as js-counter.wasm.
//
//   handle-send     counts the messages sent to it and keeps the last one;
//   handle-request  answers {"id", "count", "echo"} for a request,
//                   "ask:<actor>" asks <actor> (message-server-host's
//                   request) and answers with its response, "tell:<actor>"
//                   sends it one (send), and "fail" fails the request.
import { log } from 'theater:simple/runtime';
import { request, send } from 'theater:simple/message-server-host';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function load(state) {
  if (state === undefined || state.length === 0) {
    return { count: 0, last: '' };
  }
  return JSON.parse(decoder.decode(state));
}

const save = (s) => encoder.encode(JSON.stringify(s));

export const actor = {
  init(state, [actorId]) {
    const s = load(state);
    log('info', `js-counter ${actorId} starts at ${s.count}`);
    return [save(s)];
  },
};

export const messageServerClient = {
  // handle-send(state, tuple<list<u8>>) -> result<tuple<option<list<u8>>>, string>
  handleSend(state, [msg]) {
    const s = load(state);
    s.count += 1;
    s.last = decoder.decode(msg);
    return [save(s)];
  },
  // handle-request(state, tuple<string, list<u8>>)
  //   -> result<tuple<option<list<u8>>, tuple<option<list<u8>>>>, string>
  handleRequest(state, [requestId, msg]) {
    const s = load(state);
    const text = decoder.decode(msg);
    if (text === 'fail') {
      throw `js-counter: asked to fail request ${requestId}`;
    }
    if (text.startsWith('ask:')) {
      // request throws the host's or the target's error string.
      const answer = request(text.slice(4), encoder.encode('from js-counter'));
      return [save(s), [encoder.encode(`forwarded: ${decoder.decode(answer)}`)]];
    }
    if (text.startsWith('tell:')) {
      send(text.slice(5), encoder.encode('told by js-counter'));
      return [save(s), [encoder.encode('told')]];
    }
    const response = { id: requestId, count: s.count, last: s.last, echo: text };
    return [save(s), [encoder.encode(JSON.stringify(response))]];
  },
};
