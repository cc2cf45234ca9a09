/**
 * A client that reconnects again and again resumes its TLS session every time, with and without
 * SNI, over TLS 1.3 and 1.2, as it does against ingress-nginx's session cache.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import tls from "node:tls";
import { startController, type Controller } from "../harness.ts";

/** One connection: a request, the answer, and the session the server left the client with. */
function connect(
  port: number,
  opts: { servername?: string; maxVersion: tls.SecureVersion; session?: Buffer },
): Promise<{ reused: boolean; session: Buffer | undefined; status: string }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let reused = false;
    let answer = "";
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: opts.servername,
      rejectUnauthorized: false,
      maxVersion: opts.maxVersion,
      session: opts.session,
      ALPNProtocols: ["http/1.1"],
    });
    // A new session or ticket from the server (TLS 1.3 tickets come after the handshake).
    socket.on("session", (s: Buffer) => (session = s));
    socket.on("secureConnect", () => {
      reused = socket.isSessionReused();
      socket.write("GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n");
    });
    socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve({ reused, session, status: answer.split("\r\n")[0] }));
  });
}

/** Where the ticket lies in an OpenSSL SSL_SESSION (DER: tlsext_tick is [10] EXPLICIT OCTET STRING). */
function ticketIn(session: Buffer): { start: number; end: number } {
  // a DER length: one byte below 0x80, else 0x81/0x82 and one or two bytes (undefined: none)
  const length = (at: number): { value: number; size: number } | undefined => {
    const b = session[at]!;
    if (b < 0x80) return { value: b, size: 1 };
    const n = b & 0x7f;
    return n === 1 || n === 2 ? { value: session.readUIntBE(at + 1, n), size: 1 + n } : undefined;
  };
  for (let i = 0; i < session.length - 4; i++) {
    if (session[i] !== 0xaa) continue;
    const outer = length(i + 1);
    if (!outer) continue;
    const inner = i + 1 + outer.size;
    if (session[inner] !== 0x04) continue;
    const octets = length(inner + 1);
    if (!octets) continue;
    const start = inner + 1 + octets.size;
    if (start + octets.value === i + 1 + outer.size + outer.value && octets.value >= 64)
      return { start, end: start + octets.value };
  }
  throw new Error("no ticket in the session");
}

describe("TLS session resumption on the ingress's HTTPS port", () => {
  let controller: Controller;
  beforeAll(async () => {
    controller = await startController({ ingresses: [], services: [], slices: [] }, { accessLog: false });
  });
  afterAll(() => controller?.close());

  for (const maxVersion of ["TLSv1.3", "TLSv1.2"] as const)
    for (const servername of ["myapp.com", undefined])
      it(`resumes every reconnect (${maxVersion}, ${servername ? "SNI" : "no SNI"})`, async () => {
        const reused: boolean[] = [];
        let session: Buffer | undefined;
        for (let i = 0; i < 6; i++) {
          const c = await connect(controller.https, { servername, maxVersion, session });
          expect(c.status).toBe("HTTP/1.1 404 Not Found");
          reused.push(c.reused);
          // A TLS 1.3 ticket is used once (RFC 8446 C.4, as browsers and wrk do): a resumed
          // connection that brought no new ticket leaves the client none. A TLS 1.2 session is
          // kept until the server replaces it.
          session = c.session ?? (maxVersion === "TLSv1.2" ? session : undefined);
        }
        expect(reused).toEqual([false, true, true, true, true, true]);
      });

  it("answers a client whose ticket was tampered with by a full handshake", async () => {
    const first = await connect(controller.https, { servername: "myapp.com", maxVersion: "TLSv1.3" });
    const session = Buffer.from(first.session!);
    const ticket = ticketIn(session);
    // the ticket's last bytes are its HMAC
    for (let i = ticket.end - 8; i < ticket.end; i++) session[i] ^= 0xff;
    const c = await connect(controller.https, { servername: "myapp.com", maxVersion: "TLSv1.3", session });
    expect(c).toMatchObject({ reused: false, status: "HTTP/1.1 404 Not Found" });
    const again = await connect(controller.https, {
      servername: "myapp.com",
      maxVersion: "TLSv1.3",
      session: c.session,
    });
    expect(again.reused).toBe(true);
  });
});
