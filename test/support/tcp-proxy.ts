import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A failover TCP proxy, standing in for the load balancer in front of several control-plane
 * replicas: each client connection goes to the first backend (in order) that accepts it, and is
 * piped both ways until either side closes. A backend that died therefore closes its clients'
 * connections, and their reconnects land on the next backend.
 */
export interface TcpProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Which backend port each accepted client connection went to, in order. */
  routed: number[];
  close(): Promise<void>;
}

export async function startFailoverProxy(backendPorts: number[]): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const routed: number[] = [];
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.pause();
    const tryBackend = (i: number) => {
      const port = backendPorts[i];
      if (port === undefined) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: "127.0.0.1", port });
      const onError = () => {
        upstream.destroy();
        tryBackend(i + 1);
      };
      upstream.once("error", onError);
      upstream.once("connect", () => {
        upstream.off("error", onError);
        routed.push(port);
        sockets.add(upstream);
        upstream.on("close", () => sockets.delete(upstream));
        upstream.on("error", () => client.destroy());
        client.on("error", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
        client.on("close", () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    routed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
