import type { Setup } from "../../setup.ts";
import { parseBind } from "./parse.ts";

/** Setup only: the listener addresses; no handler in the chain. */
export const setup: Setup = (dirs, ctx) => {
  ctx.bind(parseBind(dirs));
  return [];
};
