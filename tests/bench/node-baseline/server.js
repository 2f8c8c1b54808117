// Minimal broadcast server on npm `ws`, speaking the subset of Switchboard's
// native protocol the fan-out benchmark uses: subscribe to a channel,
// publish to it. Each message is serialised once and sent to every
// subscriber — the idiomatic ws broadcast. Prints its port, then serves.
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
const channels = new Map();

wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'connected' }));
  ws.on('message', (raw) => {
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    if (msg.type === 'subscribe') {
      if (!channels.has(msg.channel)) channels.set(msg.channel, new Set());
      channels.get(msg.channel).add(ws);
      ws.send(JSON.stringify({ type: 'subscribed', channel: msg.channel, requestId: msg.requestId }));
    } else if (msg.type === 'publish') {
      const subs = channels.get(msg.channel) || new Set();
      const frame = JSON.stringify({ type: 'message', channel: msg.channel, data: msg.message });
      for (const s of subs) s.send(frame);
      ws.send(JSON.stringify({ type: 'published', delivered: subs.size, requestId: msg.requestId }));
    }
  });
  ws.on('close', () => { for (const subs of channels.values()) subs.delete(ws); });
});

wss.on('listening', () => console.log(`listening ${wss.address().port}`));
