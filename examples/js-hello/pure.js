// js-hello built with every WASI feature of componentize-js disabled
// (`--disable-feature all`): a component that imports nothing but
// theater:simple/runtime. Without them console.log and console.error write
// nowhere, Math.random is deterministic and performance.now traps, so
// actor.js falls back on the runtime for its log line and its clock.
export { actor } from './actor.js';

// Runs once, at build time: componentize-js snapshots the module after its
// top level ran, and actor.js reads this when it is called.
globalThis.jsHelloWithoutWASI = true;
