'use strict';
// Benchmark peer: the subset of Parlor's protocol that tests/bench.sh drives with
// parlor-load, on Node's `ws` package. Subset: welcome, join_room (kind "chat"),
// leave_room, broadcast, echo, heartbeat (ping every 5 s, evict after 15 s without any
// frame), error frames for bad input. Written the way a typical `ws` user would: one
// process, one global heartbeat interval.
//
// Run with: npm ci && PORT=9300 node server.js   (listens on 127.0.0.1:$PORT)

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 9300);
const HEARTBEAT_MS = 5000;
const TIMEOUT_MS = 15000;
const MAX_LISTED_MEMBERS = 100; // room_joined.members is capped for the bench
const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;

if (!/^127\.|^::1$|^localhost$/.test(HOST)) {
  console.error(`refusing to listen on non-loopback ${HOST}`);
  process.exit(2);
}

const ADJ = ['Quiet', 'Brave', 'Swift', 'Calm', 'Lucky', 'Witty', 'Bold', 'Merry', 'Gentle', 'Clever'];
const ANIMALS = ['Otter', 'Falcon', 'Badger', 'Heron', 'Lynx', 'Panda', 'Fox', 'Koala', 'Moose', 'Wren'];
const pick = (a) => a[crypto.randomInt(a.length)];

const sessions = new Map(); // id -> session
const rooms = new Map(); // name -> { kind, members: Map(id -> session) }

function send(s, obj) {
  s.ws.send(JSON.stringify(obj));
}
function error(s, code, message, ref) {
  const e = { type: 'error', code, message };
  if (ref !== undefined) e.ref = ref;
  send(s, e);
}
function memberInfo(s) {
  return { session: s.id, name: s.name, color: s.color, role: 'member' };
}

function leave(s, name, reason) {
  const room = rooms.get(name);
  if (!room || !room.members.delete(s.id)) return false;
  s.rooms.delete(name);
  const out = JSON.stringify({ type: 'member_left', room: name, session: s.id, reason });
  for (const m of room.members.values()) m.ws.send(out);
  if (room.members.size === 0) rooms.delete(name);
  return true;
}

function onMessage(s, data, isBinary) {
  s.lastSeen = Date.now();
  if (isBinary) return error(s, 'unsupported', 'binary frames are not supported');
  let msg;
  try {
    msg = JSON.parse(data.toString());
  } catch (_) {
    msg = undefined;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return error(s, 'bad_json', 'frame is not a JSON object');
  }
  if (typeof msg.type !== 'string') return error(s, 'bad_request', 'type');
  switch (msg.type) {
    case 'echo':
      return send(s, { type: 'echo', data: msg.data === undefined ? null : msg.data });
    case 'join_room': {
      const name = msg.room;
      if (typeof name !== 'string' || !ROOM_RE.test(name)) return error(s, 'bad_request', 'room', 'join_room');
      const kind = msg.kind === undefined ? 'chat' : msg.kind;
      if (kind !== 'chat') return error(s, 'unsupported', 'only chat rooms in this peer', 'join_room');
      let room = rooms.get(name);
      if (!room) {
        room = { kind, members: new Map() };
        rooms.set(name, room);
      } else if (room.kind !== kind) {
        return error(s, 'bad_request', 'kind', 'join_room');
      }
      const fresh = !room.members.has(s.id);
      room.members.set(s.id, s);
      s.rooms.add(name);
      const members = [];
      for (const m of room.members.values()) {
        if (members.length >= MAX_LISTED_MEMBERS) break;
        members.push(memberInfo(m));
      }
      send(s, { type: 'room_joined', room: name, kind, you: s.id, members });
      if (fresh) {
        const out = JSON.stringify({ type: 'member_joined', room: name, member: memberInfo(s) });
        for (const m of room.members.values()) if (m !== s) m.ws.send(out);
      }
      return;
    }
    case 'leave_room': {
      if (typeof msg.room !== 'string') return error(s, 'bad_request', 'room', 'leave_room');
      if (!leave(s, msg.room, 'left')) return error(s, 'not_in_room', msg.room, 'leave_room');
      return send(s, { type: 'room_left', room: msg.room });
    }
    case 'broadcast': {
      const room = typeof msg.room === 'string' ? rooms.get(msg.room) : undefined;
      if (!room || !room.members.has(s.id)) return error(s, 'not_in_room', String(msg.room), 'broadcast');
      const out = JSON.stringify({ type: 'message', room: msg.room, from: s.id, data: msg.data === undefined ? null : msg.data });
      for (const m of room.members.values()) if (m !== s) m.ws.send(out);
      return;
    }
    default:
      return error(s, 'unknown_type', msg.type, msg.type);
  }
}

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', sessions: sessions.size }));
    return;
  }
  res.writeHead(404);
  res.end();
});

const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 64 * 1024 });

wss.on('connection', (ws) => {
  const s = {
    id: 's_' + crypto.randomBytes(12).toString('base64url'),
    name: `${pick(ADJ)} ${pick(ANIMALS)}`,
    color: '#' + crypto.randomBytes(3).toString('hex'),
    ws,
    rooms: new Set(),
    lastSeen: Date.now(),
    evicted: false,
  };
  sessions.set(s.id, s);
  send(s, {
    type: 'welcome', protocol: 1, session: s.id, name: s.name, color: s.color,
    resume: crypto.randomBytes(24).toString('base64url'), heartbeat_ms: HEARTBEAT_MS, timeout_ms: TIMEOUT_MS,
  });
  ws.on('message', (data, isBinary) => onMessage(s, data, isBinary));
  ws.on('pong', () => { s.lastSeen = Date.now(); });
  ws.on('ping', () => { s.lastSeen = Date.now(); });
  ws.on('error', () => {});
  ws.on('close', () => {
    sessions.delete(s.id);
    for (const name of [...s.rooms]) leave(s, name, s.evicted ? 'timeout' : 'disconnected');
  });
});

// one global heartbeat timer, as in the ws README
const heartbeat = setInterval(() => {
  const now = Date.now();
  for (const s of sessions.values()) {
    if (now - s.lastSeen > TIMEOUT_MS) {
      s.evicted = true;
      s.ws.terminate();
    } else {
      s.ws.ping();
    }
  }
}, HEARTBEAT_MS);

server.on('error', (e) => console.error('server error:', e.message));
server.listen(PORT, HOST, () => console.error(`node-ws listening on ws://${HOST}:${PORT}/ws (pid ${process.pid})`));

function shutdown() {
  clearInterval(heartbeat);
  for (const s of sessions.values()) s.ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
