#!/usr/bin/env node
// Tiny static file server for the self-test: serves DIR on 127.0.0.1 with
// `Access-Control-Allow-Origin: *` (python3 -m http.server sends none), prints the port on
// stdout, and exits by itself after --seconds (default 60).
//   node serve.mjs DIR [--seconds N]
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';

const [dir, flag, secs] = process.argv.slice(2);
if (!dir || (flag && flag !== '--seconds')) {
  console.error('usage: node serve.mjs DIR [--seconds N]');
  process.exit(2);
}
const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4' };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const cors = { 'access-control-allow-origin': '*', 'cache-control': 'no-store' };
  try {
    if (path.includes('..')) throw new Error('outside');
    const body = await readFile(join(dir, path));
    res.writeHead(200, { ...cors, 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404, cors).end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), Number(secs ?? 60) * 1000).unref();
