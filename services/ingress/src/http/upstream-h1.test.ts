import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { H1Pool, UpstreamError, type H1Head, type H1Request } from "./upstream-h1.ts";

/** An upstream that answers each request head it reads with the next scripted reply. */
async function upstream(
  reply: (request: string, socket: net.Socket, index: number) => void,
): Promise<{ port: number; connections: number; requests: string[]; close(): Promise<void> }> {
  const state = { connections: 0, requests: [] as string[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buf = "";
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buf.slice(0, end + 4);
        const length = /content-length: (\d+)/i.exec(head);
        const total = end + 4 + (length ? Number(length[1]) : 0);
        if (buf.length < total) return;
        const request = buf.slice(0, total);
        buf = buf.slice(total);
        state.requests.push(request);
        reply(request, socket, state.requests.length - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    requests: state.requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function req(port: number, extra: Partial<H1Request> = {}): H1Request {
  return {
    ip: "127.0.0.1",
    port,
    method: "GET",
    target: "/x",
    headers: { host: "a.test" },
    body: undefined,
    connectTimeoutMs: 2000,
    readTimeoutMs: 2000,
    ...extra,
  };
}

function readAll(head: H1Head): Promise<string> {
  const whole = head.body.complete();
  if (whole) return Promise.resolve(whole.toString());
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    head.body.pipe({
      data: (c) => (parts.push(Buffer.from(c)), true),
      end: () => resolve(Buffer.concat(parts).toString()),
      error: reject,
    });
  });
}

/** Writes a reply a few bytes at a time, so every parser state meets a split. */
function dribble(socket: net.Socket, text: string, step = 3): void {
  let i = 0;
  const next = (): void => {
    if (i >= text.length || socket.destroyed) return;
    socket.write(text.slice(i, i + step));
    i += step;
    setImmediate(next);
  };
  next();
}

const pools: H1Pool[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  for (const c of closers.splice(0)) await c();
});
function newPool(): H1Pool {
  const p = new H1Pool();
  pools.push(p);
  return p;
}

describe("the keep-alive HTTP/1.1 upstream client", () => {
  it("reuses one connection for Content-Length responses and sends the head it was given", async () => {
    const up = await upstream((_r, s) =>
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"),
    );
    closers.push(up.close);
    const pool = newPool();
    for (let i = 0; i < 3; i++) {
      const head = await pool.request(req(up.port));
      expect(head.status).toBe(200);
      expect(head.headers["x-a"]).toBe("1");
      expect(await readAll(head)).toBe("hello");
    }
    expect(up.connections).toBe(1);
    expect(up.requests[0]).toBe("GET /x HTTP/1.1\r\nhost: a.test\r\n\r\n");
  });

  it("decodes a chunked body split at every byte boundary, with extensions and trailers", async () => {
    const body = "4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: y\r\n\r\n";
    const up = await upstream((_r, s) =>
      dribble(
        s,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n" + body,
        1,
      ),
    );
    closers.push(up.close);
    const pool = newPool();
    const head = await pool.request(req(up.port));
    expect(head.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(await readAll(head)).toBe("Wikipedia in \r\n\r\nchunks.");
    // The connection went back to the pool after the last chunk.
    expect(await readAll(await pool.request(req(up.port)))).toBe("Wikipedia in \r\n\r\nchunks.");
    expect(up.connections).toBe(1);
  });

  it("skips 100 Continue, and reads a body that ends with the connection", async () => {
    const up = await upstream((_r, s) => {
      s.write("HTTP/1.1 100 Continue\r\n\r\n");
      s.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
    });
    closers.push(up.close);
    const pool = newPool();
    const head = await pool.request(req(up.port));
    expect(head.status).toBe(200);
    expect(await readAll(head)).toBe("until close");
    await pool.request(req(up.port)).then(readAll);
    expect(up.connections).toBe(2);
  });

  it("expects no body after HEAD, 204 and 304", async () => {
    const up = await upstream((r, s, i) =>
      s.write(
        r.startsWith("HEAD")
          ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
          : `HTTP/1.1 ${i === 1 ? 204 : 304} X\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
    closers.push(up.close);
    const pool = newPool();
    for (const method of ["HEAD", "GET", "GET"])
      expect(await readAll(await pool.request(req(up.port, { method })))).toBe("");
    expect(up.connections).toBe(1);
  });

  it("sends a request body with its length, whatever Content-Length the client had", async () => {
    const up = await upstream((_r, s) => s.write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
    closers.push(up.close);
    const head = await newPool().request(
      req(up.port, {
        method: "POST",
        body: Buffer.from("abc"),
        headers: { host: "a", "content-length": "99" },
      }),
    );
    expect(head.status).toBe(201);
    expect(up.requests[0]).toBe("POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc");
  });

  it("says a retry is safe when a reused connection turns out closed, not when a fresh one fails mid-way", async () => {
    const up = await upstream((_r, s, i) => {
      if (i === 0) s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
      else s.destroy();
    });
    closers.push(up.close);
    const pool = newPool();
    await pool.request(req(up.port)).then(readAll);
    const stale = await pool.request(req(up.port)).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(UpstreamError);
    expect((stale as UpstreamError).safeToRetry).toBe(true);
    const fresh = await pool.request(req(up.port)).catch((e: unknown) => e);
    expect((fresh as UpstreamError).kind).toBe("error");
    expect((fresh as UpstreamError).safeToRetry).toBe(false);
  });

  it("reports refused connections, silent upstreams and garbage as 502/504 material", async () => {
    const closed = await upstream(() => undefined);
    await closed.close();
    const refused = (await newPool()
      .request(req(closed.port))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(refused.kind).toBe("error");
    expect(refused.message).toMatch(/ECONNREFUSED while connecting to upstream/);
    expect(refused.safeToRetry).toBe(true);

    const silent = await upstream(() => undefined);
    closers.push(silent.close);
    const timeout = (await newPool()
      .request(req(silent.port, { readTimeoutMs: 200 }))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(timeout.kind).toBe("timeout");
    expect(timeout.message).toMatch(/while reading response header from upstream/);

    const garbage = await upstream((_r, s) => s.write("SSH-2.0-OpenSSH\r\n\r\n"));
    closers.push(garbage.close);
    const bad = (await newPool()
      .request(req(garbage.port))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(bad.kind).toBe("error");

    const twoLengths = await upstream((_r, s) =>
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    );
    closers.push(twoLengths.close);
    const dup = (await newPool()
      .request(req(twoLengths.port))
      .catch((e: unknown) => e)) as UpstreamError;
    expect(dup.message).toMatch(/duplicate header/);
  });

  it("cuts a body when the upstream closes early or goes silent mid-body", async () => {
    const up = await upstream((_r, s, i) => {
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
      if (i === 0) s.destroy();
    });
    closers.push(up.close);
    const pool = newPool();
    await expect(pool.request(req(up.port)).then(readAll)).rejects.toThrow(/prematurely closed/);
    await expect(pool.request(req(up.port, { readTimeoutMs: 200 })).then(readAll)).rejects.toThrow(
      /timed out/,
    );
  });
});
