// The TLS reverse proxy of deploy/nginx/parlor.conf, for real: Debian's
// nginx with a throwaway self-signed certificate (deploy/nginx/selfsigned.sh)
// in front of two Parlor nodes on one redis-server; two people play a game
// and chat over wss:// through it. Skipped, saying so, where nginx is not
// installed (.ci/run installs it).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

import {
  REPO, joinRoom, launchBrowser, movesShown, playCell, quickMatch, startServer, waitForFrame, withPages,
} from "./helpers.mjs";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((bin) => existsSync(bin));

/** Whether `port` is free on loopback now. */
function isFree(port) {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/**
 * A free port for nginx below Linux's ephemeral range (32768 and up), so
 * that the nodes, which bind port 0 after it is chosen, cannot take it.
 */
async function freePort() {
  for (let tries = 0; tries < 50; tries += 1) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await isFree(port)) return port;
  }
  throw new Error("no free port for nginx between 20000 and 32000");
}

/** Waits until `file` exists (a socket or pid file), up to `ms`. */
async function appears(file, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * deploy/nginx/parlor.conf made to run here: its upstream on `nodes`, its
 * TLS server on `port` with the certificate in `dir`, its port-80 redirect
 * left out; wrapped in a main config with every path in `dir`.
 */
async function nginxConfig(dir, port, nodes) {
  let site = await readFile(path.join(REPO, "deploy/nginx/parlor.conf"), "utf8");
  site = site
    .replace(/server 127\.0\.0\.1:8081/, `server 127.0.0.1:${nodes[0]}`)
    .replace(/server 127\.0\.0\.1:8082/, `server 127.0.0.1:${nodes[1]}`)
    .replace(/server \{\s*listen 80;[\s\S]*?\n\}\n/, "")
    .replace("listen 443 ssl;", `listen 127.0.0.1:${port} ssl;`)
    .replace("/etc/ssl/certs/parlor.pem", path.join(dir, "cert.pem"))
    .replace("/etc/ssl/private/parlor.key", path.join(dir, "key.pem"));
  assert.match(site, new RegExp(`listen 127.0.0.1:${port} ssl`), "the TLS server was rewritten");
  assert.doesNotMatch(site, /listen 80;/);
  return `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/nginx-access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${site}
}
`;
}

describe("TLS proxy in front of two nodes", { timeout: 90000, skip: NGINX ? false : "nginx is not installed (sudo apt-get install nginx-light)" }, () => {
  let dir;
  let redis;
  let nodes = [];
  let nginx;
  let browser;
  let url;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "parlor-tls-"));
    execFileSync(path.join(REPO, "deploy/nginx/selfsigned.sh"), [dir]);
    const socket = path.join(dir, "redis.sock");
    redis = spawn("redis-server", ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: "ignore" });
    await appears(socket);
    // Three candidate ports for nginx, each an allowed origin: a port taken
    // meanwhile makes nginx exit, and the next one is tried.
    const ports = [];
    while (ports.length < 3) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    for (const id of ["tls-1", "tls-2"]) {
      nodes.push(await startServer({
        PARLOR_CLUSTER__REDIS_URL: `redis+unix://${socket}`,
        PARLOR_CLUSTER__NODE_ID: id,
        PARLOR_SERVER__ALLOWED_ORIGINS: ports.map((port) => `https://127.0.0.1:${port}`).join(","),
      }));
    }
    const nodePorts = nodes.map((node) => new URL(node.url).port);
    const conf = path.join(dir, "nginx.conf");
    const errorLog = path.join(dir, "nginx-error.log");
    const failures = [];
    for (const port of ports) {
      await writeFile(conf, await nginxConfig(dir, port, nodePorts));
      const said = [];
      nginx = spawn(NGINX, ["-c", conf, "-p", dir], { stdio: ["ignore", "ignore", "pipe"] });
      nginx.stderr.on("data", (chunk) => said.push(String(chunk)));
      const exited = new Promise((resolve) => nginx.once("exit", () => resolve(false)));
      const started = appears(path.join(dir, "nginx.pid"), 10000).then(() => true, () => false);
      if (await Promise.race([started, exited])) {
        url = `https://127.0.0.1:${port}/`;
        break;
      }
      nginx.kill("SIGKILL");
      const log = existsSync(errorLog) ? await readFile(errorLog, "utf8") : "";
      failures.push(`port ${port}: ${said.join("")} ${log}`);
    }
    assert.ok(url, `nginx did not start: ${failures.join(" | ")}`);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    nginx?.kill("SIGQUIT");
    for (const node of nodes) await node.stop();
    redis?.kill();
  });

  test("two people play tic-tac-toe and chat over wss:// through nginx", async (t) => {
    const people = [{ name: "Ada", ignoreHTTPSErrors: true }, { name: "Grace", ignoreHTTPSErrors: true }];
    await withPages(browser, t, people, async (a, b) => {
      const [x, o] = await quickMatch(a, b, url, "tictactoe");
      for (const [i, [page, cell]] of [[x, 0], [o, 3], [x, 1], [o, 4], [x, 2]].entries()) {
        await playCell(page, cell);
        await movesShown([x, o], i + 1);
      }
      for (const page of [x, o]) {
        await page.waitForSelector('#status[data-state="over"]');
        assert.equal(await page.textContent("#status"), "X wins");
      }
      await joinRoom(a, url, "tls-lounge", "chat");
      await joinRoom(b, url, "tls-lounge", "chat");
      await a.fill("#chat-input", "hello through TLS");
      await a.press("#chat-input", "Enter");
      await waitForFrame(b, (m) => m.type === "message" && m.data && m.data.text === "hello through TLS");
      for (const page of [a, b]) {
        assert.ok(page.sockets.length > 0 && page.sockets.every((s) => s.startsWith(`wss://127.0.0.1:${new URL(url).port}/ws`)),
          page.sockets.join(" "));
      }
      // The two open sessions reached the nodes behind the proxy.
      const health = await Promise.all(nodes.map((node) => fetch(new URL("healthz", node.url)).then((r) => r.json())));
      assert.equal(health.reduce((sum, h) => sum + h.sessions, 0), 2, JSON.stringify(health));
      assert.ok(health.every((h) => h.cluster && h.cluster.nodes === 2), JSON.stringify(health));
    });
  });
});
