import { afterAll, beforeAll, expect, it } from "vitest";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { randomBytes } from "node:crypto";
import { describeWith } from "../support/prereq.ts";
import {
  startController,
  startUpstream,
  type Controller,
  type Upstream,
} from "../../services/ingress/src/harness.ts";
import { endpointSlice, ingress, service } from "../../services/ingress/src/fixtures.ts";

describeWith({}, "ingress robustness: broken clients, broken upstreams, garbage", () => {
  let ctl: Controller;
  let streaming: Upstream;
  let resetting: Upstream;
  let stalling: Upstream;

  beforeAll(async () => {
    // Streams a chunk every 20 ms for a second.
    streaming = await startUpstream("streaming", {
      handler: (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        let n = 0;
        const t = setInterval(() => {
          if (res.destroyed || n++ > 50) {
            clearInterval(t);
            res.end();
            return;
          }
          res.write(`chunk ${n}\n`);
        }, 20);
      },
    });
    // Sends half a response, then resets the connection.
    resetting = await startUpstream("resetting", {
      handler: (req, res) => {
        res.writeHead(200, { "content-length": "1000" });
        res.write("partial");
        setTimeout(() => req.socket.destroy(), 20);
      },
    });
    // Sends its head and a first chunk, then nothing.
    stalling = await startUpstream("stalling", {
      handler: (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("first chunk\n");
      },
    });
    ctl = await startController({
      services: [service("streaming"), service("resetting"), service("stalling")],
      slices: [
        endpointSlice("streaming", [{ ip: streaming.ip }], { port: streaming.port }),
        endpointSlice("resetting", [{ ip: resetting.ip }], { port: resetting.port }),
        endpointSlice("stalling", [{ ip: stalling.ip }], { port: stalling.port }),
      ],
      ingresses: [
        ingress("r", {
          rules: [
            { host: "stream.com", paths: [{ path: "/", service: "streaming" }] },
            { host: "reset.com", paths: [{ path: "/", service: "resetting" }] },
          ],
        }),
        ingress("stall", {
          annotations: { "nginx.ingress.kubernetes.io/proxy-read-timeout": "1" },
          rules: [{ host: "stall.com", paths: [{ path: "/", service: "stalling" }] }],
        }),
      ],
    });
  });
  afterAll(async () => {
    await ctl?.close();
    await streaming?.close();
    await resetting?.close();
    await stalling?.close();
  });

  const healthy = () =>
    new Promise<number>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port: ctl.http, path: "/", headers: { host: "stream.com" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        })
        .on("error", reject);
    });

  it("survives clients that hang up mid-response, over HTTP/1.1 and HTTP/2", async () => {
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve) => {
        const req = http.get(
          { host: "127.0.0.1", port: ctl.http, path: "/", headers: { host: "stream.com" } },
          (res) => {
            res.once("data", () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on("error", () => resolve());
      });
      await new Promise<void>((resolve) => {
        const client = http2.connect(`https://127.0.0.1:${ctl.https}`, { rejectUnauthorized: false });
        client.on("error", () => resolve());
        const s = client.request({ ":path": "/", ":authority": "stream.com" });
        s.on("error", () => undefined);
        s.once("data", () => {
          client.destroy();
          resolve();
        });
      });
    }
    expect(await healthy()).toBe(200);
  });

  it("logs 499 and sends nothing upstream when an HTTP/2 client resets its stream mid-body", async () => {
    const before = ctl.accessLog.length;
    await new Promise<void>((resolve) => {
      const client = http2.connect(`https://127.0.0.1:${ctl.https}`, { rejectUnauthorized: false });
      client.on("error", () => resolve());
      const s = client.request({
        ":method": "POST",
        ":path": "/h2-left-early",
        ":authority": "stream.com",
        "content-length": "100",
      });
      s.on("error", () => undefined);
      s.write("ten bytes.");
      setTimeout(() => {
        s.close(http2.constants.NGHTTP2_CANCEL);
        client.close();
        resolve();
      }, 200);
    });
    for (let i = 0; i < 100 && ctl.accessLog.length === before; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(ctl.accessLog.slice(before).join("\n")).toMatch(/"POST \/h2-left-early HTTP\/2\.0" 499 /);
    expect(streaming.seen.map((r) => r.url)).not.toContain("/h2-left-early");
    expect(await healthy()).toBe(200);
  });

  it("cuts the client's response when the upstream resets mid-body, and carries on", async () => {
    const outcome = await new Promise<string>((resolve) => {
      http
        .get({ host: "127.0.0.1", port: ctl.http, path: "/", headers: { host: "reset.com" } }, (res) => {
          res.on("data", () => undefined);
          res.on("end", () => resolve("complete"));
          res.on("error", () => resolve("cut"));
          res.on("aborted", () => resolve("cut"));
        })
        .on("error", () => resolve("cut"));
    });
    expect(outcome).toBe("cut");
    expect(await healthy()).toBe(200);
  });

  it("cuts a response whose body stalls longer than proxy-read-timeout", async () => {
    const outcome = await new Promise<string>((resolve) => {
      http
        .get({ host: "127.0.0.1", port: ctl.http, path: "/", headers: { host: "stall.com" } }, (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve(`complete: ${body}`));
          res.on("error", () => resolve(`cut after: ${body}`));
          res.on("aborted", () => resolve(`cut after: ${body}`));
        })
        .on("error", () => resolve("cut"));
    });
    expect(outcome).toBe("cut after: first chunk\n");
  });

  it("answers or drops 300 random byte strings without crashing, on both ports", async () => {
    const send = (port: number, data: Buffer) =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => s.end(data));
        s.on("data", () => undefined);
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.setTimeout(2000, () => s.destroy());
      });
    const payloads: Buffer[] = [];
    for (let i = 0; i < 150; i++) payloads.push(randomBytes(1 + (i % 64) * 16));
    for (let i = 0; i < 150; i++)
      payloads.push(
        Buffer.from(
          `GET /${randomBytes(8).toString("hex")} HTTP/1.1\r\nHost: stream.com\r\n${"X".repeat(i)}: ${randomBytes(4).toString("latin1")}\r\nContent-Length: ${i % 3 ? "5" : "-1"}\r\n\r\nhello`,
          "latin1",
        ),
      );
    for (let i = 0; i < payloads.length; i += 20)
      await Promise.all(payloads.slice(i, i + 20).flatMap((p) => [send(ctl.http, p), send(ctl.https, p)]));
    // HTTP/2 (ALPN h2) preface followed by garbage frames, on a raw TLS socket.
    for (let i = 0; i < 10; i++)
      await new Promise<void>((resolve) => {
        const s = tls.connect(
          {
            port: ctl.https,
            host: "127.0.0.1",
            servername: "stream.com",
            ALPNProtocols: ["h2"],
            rejectUnauthorized: false,
          },
          () => {
            s.write(
              Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), randomBytes(64 + i * 32)]),
            );
          },
        );
        s.on("data", () => undefined);
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.setTimeout(2000, () => s.destroy());
      });
    expect(await healthy()).toBe(200);
  });
});
