import { EventEmitter } from "node:events";
import { nativeAddon, type NativeTunDevice } from "./native.ts";

export interface OpenTunOptions {
  /**
   * Make the device persistent (TUNSETPERSIST): it survives this process, so a restarted agent
   * re-attaches with openTun(sameName) and the pod's eth0, its address and routes are kept.
   */
  persist?: boolean;
  /**
   * Create (or re-attach to) the device inside this network namespace, given by path
   * (`/run/netns/NAME` or `/proc/PID/ns/net`). The native code switches namespace on a helper
   * thread only, so the process itself stays where it is and the descriptor works from here.
   */
  netns?: string;
}

/**
 * One TUN device (IFF_TUN | IFF_NO_PI): raw IPv4/IPv6 packets, no extra header.
 * Events: "error" (Error) when the device fails (e.g. deleted under us); "close".
 */
export class TunDevice extends EventEmitter {
  readonly name: string;
  private readonly native: NativeTunDevice;
  private closing: Promise<void> | undefined;

  constructor(native: NativeTunDevice) {
    super();
    this.native = native;
    this.name = native.name;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Deliver packets read from the device, in batches. The Buffers are views into one fresh
   * allocation per batch and stay valid after the callback returns. One listener per device.
   */
  onPackets(cb: (packets: Buffer[]) => void): void {
    this.native.startReading((arena, lengths, errno) => {
      if (this.closing) return;
      if (lengths.length > 0) {
        const packets = new Array<Buffer>(lengths.length);
        let offset = 0;
        for (let i = 0; i < lengths.length; i++) {
          packets[i] = arena.subarray(offset, offset + lengths[i]);
          offset += (lengths[i] + 7) & ~7; // the native reader aligns each packet to 8 bytes
        }
        try {
          cb(packets);
        } catch (err) {
          this.emit("error", err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (errno !== 0) {
        const err = Object.assign(new Error(`reading TUN ${this.name} failed (errno ${errno})`), { errno });
        if (this.listenerCount("error") > 0) this.emit("error", err);
      }
    });
  }

  /**
   * Queue whole IP packets for the device; a native writer thread hands them to the kernel
   * (whose receive path runs inside that write). Returns how many were queued: when the queue
   * is full the rest are dropped, as a full device queue drops. Nothing is written once closed.
   */
  write(packets: readonly Uint8Array[]): number {
    if (this.closing || packets.length === 0) return 0;
    return this.native.write(packets);
  }

  /** Packets dropped so far: refused by the kernel or finding the write queue full. */
  get dropped(): number {
    return this.closing ? 0 : this.native.dropped();
  }

  /** Let the process exit even while this device is being read. */
  unref(): this {
    this.native.unref();
    return this;
  }

  ref(): this {
    this.native.ref();
    return this;
  }

  /** Stop reading and close the descriptor (a non-persistent device disappears then). */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = this.native.close().then(() => {
        this.emit("close");
      });
    }
    return this.closing;
  }
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Create a TUN device, or attach to the existing persistent one of that name. */
export function openTun(name: string, opts: OpenTunOptions = {}): TunDevice {
  if (!IFNAME.test(name)) {
    throw new TypeError(`invalid interface name ${JSON.stringify(name)}: 1-15 of [A-Za-z0-9_.-]`);
  }
  const { TunDevice: Native } = nativeAddon();
  return new TunDevice(new Native(name, opts.persist ?? false, opts.netns));
}
