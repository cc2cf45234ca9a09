import { EventEmitter } from "node:events";
import { nativeAddon, type NativeTunDevice } from "./native.ts";

/**
 * A UDP socket served by native threads, for the overlay: datagrams arrive in batches with
 * their senders' IPv4 addresses (as numbers), and `sendTo` queues a batch for a writer thread,
 * so neither recvfrom(2) nor sendto(2) and the kernel work behind them run on the event loop.
 * Events: "error" (Error).
 */
export class UdpSocket extends EventEmitter {
  readonly address: string;
  /** The bound port (the one the kernel chose when 0 was asked). */
  readonly port: number;
  private readonly native: NativeTunDevice;
  private closing: Promise<void> | undefined;

  constructor(address: string, port: number) {
    super();
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid UDP port ${port}`);
    const { TunDevice: Native } = nativeAddon();
    this.native = new Native({ udp: { address, port } });
    this.address = address;
    this.port = Number(this.native.name.slice(this.native.name.lastIndexOf(":") + 1));
  }

  /** Deliver received datagrams in batches, with each one's source IPv4 address. */
  onDatagrams(cb: (datagrams: Buffer[], from: Uint32Array) => void): void {
    this.native.startReading((arena, lengths, errno, peers) => {
      if (this.closing) return;
      if (lengths.length > 0) {
        const datagrams = new Array<Buffer>(lengths.length);
        let offset = 0;
        for (let i = 0; i < lengths.length; i++) {
          datagrams[i] = arena.subarray(offset, offset + lengths[i]);
          offset += (lengths[i] + 7) & ~7;
        }
        try {
          cb(datagrams, peers ?? new Uint32Array(0));
        } catch (err) {
          this.emit("error", err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (errno !== 0 && this.listenerCount("error") > 0) {
        this.emit(
          "error",
          Object.assign(new Error(`reading UDP ${this.address}:${this.port} failed (errno ${errno})`), {
            errno,
          }),
        );
      }
    });
  }

  /** Queue datagrams, the i-th to destinations[i]:port. Returns how many were queued. */
  sendTo(datagrams: readonly Uint8Array[], destinations: Uint32Array, port: number): number {
    if (this.closing || datagrams.length === 0) return 0;
    return this.native.sendTo(datagrams, destinations, port);
  }

  get dropped(): number {
    return this.closing ? 0 : this.native.dropped();
  }

  unref(): this {
    this.native.unref();
    return this;
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.native.close();
    return this.closing;
  }
}
