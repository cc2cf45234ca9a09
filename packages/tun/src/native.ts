import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** The shape of the compiled addon (native/tun.cc). */
export interface NativeTunDevice {
  readonly name: string;
  readonly fd: number;
  startReading(cb: (arena: Buffer, lengths: Uint32Array, errno: number, peers?: Uint32Array) => void): void;
  sendTo(datagrams: readonly Uint8Array[], destinations: Uint32Array, port: number): number;
  write(packets: readonly Uint8Array[]): number;
  dropped(): number;
  close(): Promise<void>;
  ref(): void;
  unref(): void;
}

interface NativeModule {
  TunDevice: {
    new (name: string, persist: boolean, netns?: string): NativeTunDevice;
    new (opts: { udp: { address: string; port: number } }): NativeTunDevice;
  };
}

const addonPath = fileURLToPath(new URL("../build/Release/klab_tun.node", import.meta.url));
let loaded: NativeModule | undefined;

export function nativeAddon(): NativeModule {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new Error(
      `the TUN addon is not built (${addonPath} is missing): run 'npm ci' or 'npm run build -w @klab/tun' (needs python3, make, g++)`,
    );
  }
  loaded = createRequire(import.meta.url)(addonPath) as NativeModule;
  return loaded;
}
