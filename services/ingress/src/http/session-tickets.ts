/**
 * TLS session tickets that are renewed on every resumption, so that a client reconnecting again
 * and again resumes every time, as ingress-nginx's session cache lets it (its OpenSSL hands a
 * TLS 1.3 client a new ticket after each resumed handshake).
 *
 * Node's own ticket keys go through a callback that never asks OpenSSL to renew: after a resumed
 * TLS 1.3 handshake the client gets no new ticket, its next connection is a full handshake, and
 * only every other reconnect resumed (wrk against a bare Node TLS server: 296 of 597, 858 of 868
 * with this). The renewing callback is reachable only on the native context behind a
 * tls.SecureContext (`context.enableTicketKeyCallback()`, the hook Node's own ticket-renewal tests
 * use); where a Node has no such hook, enable() says so and resumption stays as Node does it.
 *
 * The keys are random and held in memory only; tickets still expire after the listener's
 * sessionTimeout. A ticket whose HMAC does not check out (tampered, or another key's) is refused
 * by OpenSSL and the client gets a full handshake.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type tls from "node:tls";

/**
 * What Node's native context expects back: [0 (not ours), 1 (ok) or 2 (ok, renew), hmacKey, aesKey]
 * and, to encrypt, the key name and IV. Both keys must be there even with 0: Node reads them first.
 */
type TicketKeyResult = [number, Buffer, Buffer, Buffer?, Buffer?];

interface NativeContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketKeyResult;
}

export class RenewingSessionTickets {
  private readonly keyName = randomBytes(16);
  private readonly hmacKey = randomBytes(16);
  private readonly aesKey = randomBytes(16);
  private readonly callback = (name: Buffer, _iv: Buffer, encrypt: boolean): TicketKeyResult => {
    if (encrypt) return [1, this.hmacKey, this.aesKey, this.keyName, randomBytes(16)];
    // A ticket under another key (an older process, another listener) is not ours: full handshake.
    if (name.length !== 16 || !timingSafeEqual(name, this.keyName)) return [0, this.hmacKey, this.aesKey];
    return [2, this.hmacKey, this.aesKey];
  };

  /** Issue and accept this listener's renewing tickets on `ctx`; false when this Node has no hook for it. */
  enable(ctx: tls.SecureContext): boolean {
    const native = (ctx as unknown as { context?: NativeContext }).context;
    if (!native || typeof native.enableTicketKeyCallback !== "function") return false;
    native.enableTicketKeyCallback();
    native.onticketkeycallback = this.callback;
    return true;
  }
}
