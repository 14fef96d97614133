import os from "node:os";
import type { Capacity } from "@supamanager/shared";

/** What this host can give projects right now; memReservedBytes comes from the projects it runs. */
export function readCapacity(memReservedBytes: number): Capacity {
  return {
    cpus: Math.max(1, os.availableParallelism?.() ?? os.cpus().length),
    memTotalBytes: os.totalmem(),
    memFreeBytes: os.freemem(),
    memReservedBytes: Math.max(0, Math.floor(memReservedBytes)),
    load1: Math.max(0, os.loadavg()[0] ?? 0),
  };
}
