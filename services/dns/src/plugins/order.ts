/**
 * The order plugins run in, whatever order the Corefile lists them: CoreDNS's plugin.cfg,
 * restricted to the plugins klab implements. A query enters at the top and each plugin either
 * answers or calls the next one.
 */
import type { Setup } from "../setup.ts";
import { setup as reload } from "./reload/plugin.ts";
import { setup as bind } from "./bind/plugin.ts";
import { setup as ready } from "./ready/plugin.ts";
import { setup as health } from "./health/plugin.ts";
import { setup as prometheus } from "./prometheus/plugin.ts";
import { setup as errors } from "./errors/plugin.ts";
import { setup as log } from "./log/plugin.ts";
import { setup as fault } from "./fault/plugin.ts";
import { setup as loadbalance } from "./loadbalance/plugin.ts";
import { setup as rewrite } from "./rewrite/plugin.ts";
import { setup as cache } from "./cache/plugin.ts";
import { setup as hosts } from "./hosts/plugin.ts";
import { setup as kubernetes } from "./kubernetes/plugin.ts";
import { setup as loop } from "./loop/plugin.ts";
import { setup as forward } from "./forward/plugin.ts";

export const PLUGIN_ORDER: readonly (readonly [string, Setup])[] = [
  ["reload", reload],
  ["bind", bind],
  ["ready", ready],
  ["health", health],
  ["prometheus", prometheus],
  ["errors", errors],
  ["log", log],
  ["fault", fault],
  ["loadbalance", loadbalance],
  ["rewrite", rewrite],
  ["cache", cache],
  ["hosts", hosts],
  ["kubernetes", kubernetes],
  ["loop", loop],
  ["forward", forward],
];

export const KNOWN_PLUGINS = new Set(PLUGIN_ORDER.map(([name]) => name));
