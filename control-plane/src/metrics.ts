/**
 * What the HTTP layer reports. The Node entry backs it with prom-client (see entry/node-metrics.ts);
 * other runtimes use `noopMetrics` and their platform's own analytics.
 */
export interface Metrics {
  observeRequest(labels: { method: string; route: string; status: number }, durationSeconds: number): void;
  /** Prometheus text exposition, or null where this runtime does not serve /metrics. */
  render(): Promise<{ contentType: string; body: string } | null>;
}

export const noopMetrics: Metrics = {
  observeRequest() {},
  render: async () => null,
};
