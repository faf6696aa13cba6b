// Builds WebAssembly components with the pinned WIT toolchain of
// package.json; hack/components.sh runs it with that toolchain installed.
//
//   node build.mjs wrap IN.wasm OUT.wasm WIT WORLD [reactor]
//       embeds WORLD of WIT (a .wit file or a directory with deps/) into the
//       core module IN and makes a component of it with wit-component (the
//       `wasm-tools component new` inside jco), with the
//       wasi_snapshot_preview1 reactor adapter jco ships when "reactor" is
//       given, with no adapter otherwise.
//   node build.mjs js ENTRY.js OUT.wasm WIT WORLD [pure]
//       builds a JavaScript actor with componentize-js; "pure" disables all
//       of its WASI features (stdio, random, clocks, http, fetch-event).
//   node build.mjs adapter
//       prints the path of the preview1 reactor adapter jco ships.
//
// Paths of WIT are given to the tools through a preopened directory: both
// run wit-parser as WebAssembly under @bytecodealliance/preview2-shim, which
// preopens nothing by default (which is why `jco embed --wit PATH` panics
// in jco 1.35).
import { readFile, writeFile, rename, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';
import { componentEmbed, componentNew, preview1AdapterReactorPath } from '@bytecodealliance/jco';

const [cmd, ...args] = process.argv.slice(2);

// witIn preopens the directory holding wit (a file, or a package
// directory whose deps/ may link to its siblings, as wit/ticking's do) and
// returns wit's path as the tools see it.
async function witIn(wit) {
  const abs = resolve(wit);
  await stat(abs);
  _setPreopens({ '/wit': dirname(abs) });
  return `/wit/${basename(abs)}`;
}

// writeAtomic writes out through a temporary file, so a reader never sees
// half a component.
async function writeAtomic(out, bytes) {
  const tmp = `${out}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, out);
}

function report(what, out, bytes, t0) {
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.error(`build.mjs: ${what} ${out}: ${bytes.length} bytes in ${s}s`);
}

switch (cmd) {
  case 'wrap': {
    const [input, out, wit, world, adapter] = args;
    const t0 = performance.now();
    const embedded = await componentEmbed({
      binary: await readFile(input),
      witPath: await witIn(wit),
      world,
    });
    const adapters = adapter === 'reactor'
      ? [['wasi_snapshot_preview1', await readFile(preview1AdapterReactorPath())]]
      : [];
    const component = await componentNew(embedded, adapters);
    await writeAtomic(out, component);
    report(`wrapped ${input} (${adapters.length ? 'preview1 reactor adapter' : 'no adapter'}) as`, out, component, t0);
    break;
  }
  case 'js': {
    const [entry, out, wit, world, pure] = args;
    const { componentize } = await import('@bytecodealliance/componentize-js');
    const t0 = performance.now();
    const { component } = await componentize({
      sourcePath: resolve(entry),
      witPath: await witIn(wit),
      worldName: world,
      disableFeatures: pure === 'pure' ? ['stdio', 'random', 'clocks', 'http', 'fetch-event'] : [],
    });
    await writeAtomic(out, component);
    report(`componentized ${entry}${pure === 'pure' ? ' (no WASI features)' : ''} as`, out, component, t0);
    break;
  }
  case 'adapter':
    console.log(fileURLToPath(preview1AdapterReactorPath()));
    break;
  default:
    console.error(`usage: node build.mjs wrap|js|adapter ... (see ${fileURLToPath(import.meta.url)})`);
    process.exit(2);
}
