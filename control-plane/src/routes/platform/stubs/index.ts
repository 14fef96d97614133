import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";

export function stubRoutes() {
  const app = new Hono<AppEnv>();
  return app;
}
