import { describe, expect, it } from "vitest";
import {
  endpointRefusal,
  isIpLiteral,
  isLocalhostName,
  nonPublicAddress,
  type Resolver,
  resolvedRefusal,
  systemResolve,
} from "./endpoint-guard.js";

/** Address classification (pure parsing) and the endpoint check built on it. */

describe("nonPublicAddress", () => {
  it.each([
    // IPv4
    ["127.0.0.1", "a loopback address"],
    ["127.255.0.9", "a loopback address"],
    ["10.1.2.3", "a private address"],
    ["172.16.0.1", "a private address"],
    ["172.31.255.254", "a private address"],
    ["192.168.1.10", "a private address"],
    ["169.254.169.254", "a link-local address (where cloud metadata services answer)"],
    ["100.64.0.1", "a shared (carrier-grade NAT) address"],
    ["100.127.255.255", "a shared (carrier-grade NAT) address"],
    ["0.0.0.0", "an unspecified address"],
    ["224.0.0.251", "a multicast address"],
    ["255.255.255.255", "a reserved address"],
    // IPv6
    ["::", "an unspecified address"],
    ["::1", "a loopback address"],
    ["[::1]", "a loopback address"],
    ["0:0:0:0:0:0:0:1", "a loopback address"],
    ["fc00::1", "a private (unique local) address"],
    ["fd12:3456:789a::1", "a private (unique local) address"],
    ["fe80::1%eth0", "a link-local address"],
    ["febf::1", "a link-local address"],
    ["ff02::1", "a multicast address"],
    // IPv6 that carries IPv4: judged by the IPv4 address
    ["::ffff:127.0.0.1", "a loopback address"],
    ["::ffff:7f00:1", "a loopback address"],
    ["::ffff:169.254.169.254", "a link-local address (where cloud metadata services answer)"],
    ["::ffff:a00:1", "a private address"],
    ["::10.0.0.1", "a private address"],
    ["64:ff9b::192.168.0.1", "a private address"],
    ["2002:7f00:1::", "a loopback address"],
  ])("%s is %s", (ip, why) => {
    expect(nonPublicAddress(ip)).toBe(why);
  });

  it.each([
    "1.1.1.1",
    "8.8.8.8",
    "172.15.255.255",
    "172.32.0.1",
    "192.169.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "169.253.1.1",
    "2606:4700:4700::1111",
    "2001:db8::1",
    "::ffff:8.8.8.8",
    "64:ff9b::1.1.1.1",
    "fe7f::1",
  ])("%s is public", (ip) => {
    expect(nonPublicAddress(ip)).toBeNull();
  });

  it.each(["s3.example.com", "256.1.1.1", "1.2.3", "1::2::3", "12345::1", "::ffff:1.2.3.999", ""])(
    "%s is not an IP address",
    (s) => {
      expect(isIpLiteral(s)).toBe(false);
      expect(nonPublicAddress(s)).toBeNull();
    },
  );
});

describe("isLocalhostName", () => {
  it.each([
    ["localhost", true],
    ["LOCALHOST", true],
    ["localhost.", true],
    ["minio.localhost", true],
    ["localhost.example.com", false],
    ["notlocalhost", false],
  ])("%s → %s", (name, expected) => {
    expect(isLocalhostName(name)).toBe(expected);
  });
});

describe("resolvedRefusal", () => {
  it("refuses a name the system resolver maps to loopback (localhost, through the real lookup)", async () => {
    expect(await systemResolve("localhost")).toContain("127.0.0.1");
    expect(await resolvedRefusal("localhost", systemResolve)).toBe("the host localhost resolves to a loopback address");
  });

  it("answers [] for a name that does not resolve, and refuses nothing for it", async () => {
    expect(await systemResolve("no-such-host.invalid")).toEqual([]);
    expect(await resolvedRefusal("no-such-host.invalid", systemResolve)).toBeNull();
  });
});

describe("endpointRefusal", () => {
  /** Answers from a fixed table, recording what was asked. */
  function table(answers: Record<string, string[]>): Resolver & { asked: string[] } {
    const asked: string[] = [];
    const resolve = async (host: string) => {
      asked.push(host);
      return answers[host] ?? [];
    };
    return Object.assign(resolve, { asked });
  }
  const target = (endpoint: string | null, forcePathStyle = true) => ({ endpoint, bucket: "backups", forcePathStyle });

  it.each([
    ["http://127.0.0.1:9000", "127.0.0.1 is a loopback address"],
    ["http://169.254.169.254", "169.254.169.254 is a link-local address"],
    ["http://[::1]:9000", "::1 is a loopback address"],
    ["http://[::ffff:10.0.0.1]", "::ffff:a00:1 is a private address"],
    // WHATWG URL parsing normalizes other IPv4 spellings to dotted quads before the check.
    ["http://2130706433", "127.0.0.1 is a loopback address"],
    ["http://0x7f.1", "127.0.0.1 is a loopback address"],
    ["http://localhost:9000", "localhost always names the control plane's own machine"],
    ["http://minio.localhost", "minio.localhost always names the control plane's own machine"],
    ["https://minio.internal", "the host minio.internal resolves to a private address"],
  ])("refuses %s", async (endpoint, why) => {
    const message = await endpointRefusal(target(endpoint), table({ "minio.internal": ["8.8.8.8", "10.0.0.5"] }));
    expect(message).toContain(why);
    expect(message).toContain("SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=allow");
  });

  it("allows AWS (no endpoint), public literals and names resolving only to public addresses", async () => {
    const resolve = table({ "s3.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] });
    expect(await endpointRefusal(target(null), resolve)).toBeNull();
    expect(await endpointRefusal(target("https://1.1.1.1"), resolve)).toBeNull();
    expect(await endpointRefusal(target("https://s3.example.com"), resolve)).toBeNull();
    expect(resolve.asked).toEqual(["s3.example.com"]);
  });

  it("also checks the virtual-hosted name <bucket>.<host> the SDK sends requests to", async () => {
    const resolve = table({ "s3.example.com": ["93.184.215.14"], "backups.s3.example.com": ["192.168.0.7"] });
    expect(await endpointRefusal(target("https://s3.example.com", true), resolve)).toBeNull();
    expect(await endpointRefusal(target("https://s3.example.com", false), resolve)).toContain(
      "the host backups.s3.example.com resolves to a private address",
    );
  });

  it("checks literals and localhost names where names cannot be resolved (resolver answers null)", async () => {
    const none: Resolver = async () => null;
    expect(await endpointRefusal(target("http://10.0.0.1"), none)).toContain("10.0.0.1 is a private address");
    expect(await endpointRefusal(target("http://localhost"), none)).toContain("localhost");
    expect(await endpointRefusal(target("https://minio.internal"), none)).toBeNull();
  });
});
