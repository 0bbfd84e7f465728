// A permessage-deflate peer for anyws's interop tests: Node's `ws`, as a server or a client,
// started by tests/interop and nothing else. The same interface as peer.py:
//
//   node peer.cjs server [OPTIONS]      listens on 127.0.0.1, port chosen by the system, and
//                                       prints `listening on ws://127.0.0.1:PORT`
//   node peer.cjs client URL [OPTIONS]  connects once to URL
//
// OPTIONS: --window N (serverMaxWindowBits and clientMaxWindowBits), --no-context-takeover
// (serverNoContextTakeover and clientNoContextTakeover). Without them: `perMessageDeflate`
// with ws's defaults, except `threshold: 0`, so that every message is compressed (ws's
// default leaves messages under 1 KiB uncompressed).
//
// On each connection it first sends a text message, JSON: {peer, offer, answer}, the
// Sec-WebSocket-Extensions of the request and of the response as it sent or received them.
// Then it echoes every message with its type, until a text message `!close CODE REASON` asks
// it to close with that code and reason. When a connection has closed it prints one line,
// JSON: {"closed": {code, reason}} of the close frame it received.
'use strict';

const { WebSocket, WebSocketServer } = require('ws');

const MAX_PAYLOAD = 8 << 20;

function deflateOptions(args) {
  const options = { threshold: 0 };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--window') {
      const bits = Number(args[++i]);
      options.serverMaxWindowBits = bits;
      options.clientMaxWindowBits = bits;
    } else if (args[i] === '--no-context-takeover') {
      options.serverNoContextTakeover = true;
      options.clientNoContextTakeover = true;
    } else {
      console.error(`peer.cjs: unknown option ${args[i]}`);
      process.exit(2);
    }
  }
  return options;
}

function talk(ws, offer, answer) {
  ws.send(JSON.stringify({ peer: 'node ws', offer: offer ?? null, answer: answer ?? null }));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text.startsWith('!close ')) {
        const [, code, ...reason] = text.split(' ');
        ws.close(Number(code), reason.join(' '));
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    // 1005: the close frame had no code; 1006: there was no close frame.
    const closed = code === 1006 ? null : { code, reason: reason.toString('utf8') };
    process.stdout.write(JSON.stringify({ closed }) + '\n');
  });
  ws.on('error', (e) => console.error(`peer.cjs: ${e.message}`));
}

function server(args) {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: MAX_PAYLOAD,
    perMessageDeflate: deflateOptions(args),
  });
  wss.on('headers', (headers, request) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    request.answer = line === undefined ? null : line.slice(line.indexOf(':') + 1).trim();
  });
  wss.on('connection', (ws, request) => {
    talk(ws, request.headers['sec-websocket-extensions'], request.answer);
  });
  wss.on('listening', () => {
    process.stdout.write(`listening on ws://127.0.0.1:${wss.address().port}\n`);
  });
}

function client(url, args) {
  const ws = new WebSocket(url, {
    maxPayload: MAX_PAYLOAD,
    perMessageDeflate: deflateOptions(args),
  });
  let offer, answer;
  ws.on('upgrade', (response) => {
    // ws keeps its request until just after `upgrade`.
    offer = ws._req.getHeader('sec-websocket-extensions');
    answer = response.headers['sec-websocket-extensions'];
  });
  // Sending is possible from `open` on (`upgrade` comes before it); the process exits once
  // the connection has closed.
  ws.on('open', () => talk(ws, offer, answer));
}

const args = process.argv.slice(2);
if (args[0] === 'server') {
  server(args.slice(1));
} else if (args[0] === 'client' && args.length >= 2) {
  client(args[1], args.slice(2));
} else {
  console.error('usage: peer.cjs server [OPTIONS] | peer.cjs client URL [OPTIONS]');
  process.exit(2);
}
