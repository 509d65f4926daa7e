#!/usr/bin/env node
// Builds the player with esbuild (no other build tool):
//   node build.mjs bundle   writes dist/player.js (one minified ES module, hls.js inside)
//   node build.mjs verify   fails when dist/player.js is not what the sources build to
//   node build.mjs test     bundles test/*.test.ts and runs them with node's test runner
// dist/player.js is committed so that `cargo build` works on a fresh clone without npm;
// `make test` runs `verify` so that it never drifts from src/.
import { build } from 'esbuild';
import { readFileSync, readdirSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, 'dist', 'player.js');
const hlsVersion = JSON.parse(readFileSync(join(here, 'node_modules/hls.js/package.json'), 'utf8')).version;
const ownVersion = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).version;

async function bundle() {
  const r = await build({
    entryPoints: [join(here, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    write: false,
    banner: { js: `/* @popcast/player ${ownVersion} (with hls.js ${hlsVersion}, Apache-2.0) */` },
    logLevel: 'warning',
  });
  return r.outputFiles[0].contents;
}

const mode = process.argv[2];
if (mode === 'bundle') {
  const js = await bundle();
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, js);
  console.log(`player: wrote dist/player.js (${js.length} bytes)`);
} else if (mode === 'verify') {
  const js = await bundle();
  let have;
  try {
    have = readFileSync(OUT);
  } catch {
    have = Buffer.alloc(0);
  }
  if (!Buffer.from(js).equals(have)) {
    console.error('player: dist/player.js does not match src/ — run `make player` and commit dist/player.js');
    process.exit(1);
  }
  console.log(`player: dist/player.js matches its sources (${js.length} bytes)`);
} else if (mode === 'test') {
  const tmp = join(here, 'node_modules', '.test-build');
  rmSync(tmp, { recursive: true, force: true });
  const tests = readdirSync(join(here, 'test')).filter((f) => f.endsWith('.test.ts'));
  await build({
    entryPoints: tests.map((f) => join(here, 'test', f)),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  const files = readdirSync(tmp).map((f) => join(tmp, f));
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
} else {
  console.error('usage: node build.mjs bundle|verify|test');
  process.exit(2);
}
