/** proxy-connect-timeout / proxy-read-timeout / proxy-send-timeout, unitless seconds (defaults 5 / 60 / 60). */
import { type AnnotationMap, AnnotationError, get } from "./common.ts";

export interface ProxyTimeouts {
  connectSeconds: number;
  readSeconds: number;
  sendSeconds: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = { connectSeconds: 5, readSeconds: 60, sendSeconds: 60 };

function seconds(a: AnnotationMap, name: string, dflt: number): number {
  const v = get(a, name);
  if (v === undefined || v === "") return dflt;
  // nginx also accepts a time with a unit; ingress-nginx documents plain seconds.
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);
  if (!m) throw new AnnotationError(name, `'${v}' is not a number of seconds`);
  const n = Number(m[1]);
  const value = m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
  if (value <= 0) throw new AnnotationError(name, "must be greater than 0");
  return value;
}

export function parse(a: AnnotationMap, defaults: ProxyTimeouts = DEFAULT_TIMEOUTS): ProxyTimeouts {
  return {
    connectSeconds: seconds(a, "proxy-connect-timeout", defaults.connectSeconds),
    readSeconds: seconds(a, "proxy-read-timeout", defaults.readSeconds),
    sendSeconds: seconds(a, "proxy-send-timeout", defaults.sendSeconds),
  };
}
