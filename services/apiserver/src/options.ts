// What the server factory takes besides its config: the in-process controllers' hook point.
import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";
import type { KubeObject } from "@klab/api";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { ApiServerConfig } from "./config.ts";
import type { HookMap } from "./registry/hooks.ts";

/** Handed to onStarted once the server listens: controllers talk to it over HTTPS like any client. */
export interface StartedContext {
  /** https://<bind or 127.0.0.1>:<port> */
  url: string;
  token: string;
  caPem: string;
  /** DIR/kubeconfig (cluster "klab", user "admin", context "klab"). */
  kubeconfigPath: string;
  config: ApiServerConfig;
  logger: Logger;
  metrics: Registry;
}

/** What onStarted may return: stopped (awaited) before the server closes on shutdown. */
export interface Controllers {
  stop(): Promise<void> | void;
}

/** Read access to what storage holds, before the server takes any write. */
export interface StorageView {
  /** Every stored object of a resource named as a GroupResource ("services", "deployments.apps"). */
  list(resource: string): KubeObject[];
  /** One stored object; namespace "" for cluster-scoped resources. */
  get(resource: string, namespace: string, name: string): KubeObject | undefined;
}

/** What extra routes (e.g. the kubelet proxy for pods/log|exec|attach|portforward) are given. */
export interface RouteContext {
  storage: StorageView;
  token: string;
  caPem: string;
  /** true when the request carries the admin token: for upgrade requests, which skip fastify's hooks. */
  authorize(req: IncomingMessage): boolean;
}

export interface ApiServerOptions {
  hooks?: HookMap;
  /**
   * Called once storage is open and before bootstrap or the first request: the place to rebuild
   * in-memory state from stored objects (e.g. the allocators' bitmaps, as kube's repair does).
   */
  onStorageReady?(storage: StorageView): void;
  /**
   * Registers more routes on the server before it listens. They run behind the same token check
   * (fastify onRequest) and answer errors as Status; specific paths win over the generic
   * resource routes.
   */
  routes?(app: FastifyInstance, ctx: RouteContext): Promise<void> | void;
  onStarted?(ctx: StartedContext): Promise<Controllers | void> | Controllers | void;
  logger?: Logger;
}
