export * from "./types.ts";
export * from "./resources.ts";
