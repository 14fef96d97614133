import { interpolate } from "../variables.js";

/**
 * Log shipping (Vector), written by us. Vector reads container logs through the host's Docker
 * socket, which shows EVERY container on the host, so the source is limited to containers that
 * carry this project's `org.supamanager.ref` label (render.ts labels every container), a filter
 * drops anything else that slips through, and services are told apart by the
 * `org.supamanager.service` label rather than by container names. Events go to the project's own
 * analytics service over the project's own network.
 *
 * Rendered as JSON (`vector.json`; Vector picks the format from the extension). `${PROJECT_REF}`
 * and the Logflare token are filled in at render time; a ref is lowercase letters only, so it is
 * safe inside the VRL string literals below. Nothing here may contain a `$`: Vector interpolates
 * environment variables in its config text.
 */

const REF = interpolate("PROJECT_REF");
const REF_LABEL = `.label."org.supamanager.ref"`;
const SERVICE_LABEL = `.label."org.supamanager.service"`;

/** Logflare source name per service whose logs Studio shows (names the analytics service expects). */
const SOURCES: Record<string, string> = {
  kong: "cloudflare.logs.prod",
  auth: "gotrue.logs.prod",
  rest: "postgREST.logs.prod",
  realtime: "realtime.logs.prod",
  storage: "storage.logs.prod.2",
  functions: "deno-relay-logs",
  db: "postgres.logs",
};

/** Per-service shaping (VRL), run after the common fields are set. */
const SHAPES: Record<string, string> = {
  kong: [
    'req, err = parse_nginx_log(.event_message, "combined")',
    "if err == null {",
    "  .timestamp = req.timestamp",
    "  .metadata.request.method = req.method",
    "  .metadata.request.path = req.path",
    "  .metadata.request.protocol = req.protocol",
    "  .metadata.request.headers.user_agent = req.agent",
    "  .metadata.request.headers.cf_connecting_ip = req.client",
    "  .metadata.response.status_code = req.status",
    "}",
  ].join("\n"),
  auth: [
    "parsed, err = parse_json(.event_message)",
    "if err == null {",
    "  .metadata = parsed",
    "  .metadata.timestamp = parsed.time",
    "}",
  ].join("\n"),
  rest: [
    "parsed, err = parse_regex(.event_message, r'^(?P<time>[^:]+:[^:]+:[^:]+): (?P<msg>.*)')",
    "if err == null {",
    "  .event_message = parsed.msg",
    "  .metadata.host = .project",
    "}",
  ].join("\n"),
  realtime: [
    ".metadata.external_id = .project",
    "parsed, err = parse_regex(.event_message, r'^(?P<time>\\d+:\\d+:\\d+\\.\\d+) \\[(?P<level>\\w+)\\] (?P<msg>.*)')",
    "if err == null {",
    "  .event_message = parsed.msg",
    "  .metadata.level = parsed.level",
    "}",
  ].join("\n"),
  storage: [
    ".metadata.tenantId = .project",
    "parsed, err = parse_json(.event_message)",
    "if err == null {",
    "  .event_message = parsed.msg",
    "  .metadata.level = parsed.level",
    "  .metadata.timestamp = parsed.time",
    "}",
  ].join("\n"),
  functions: ".metadata.project_ref = .project",
  db: [
    '.metadata.host = "db-default"',
    ".metadata.parsed.timestamp = .timestamp",
    "parsed, err = parse_regex(.event_message, r'(?P<level>INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC):')",
    'level = if err == null { parsed.level } else { "LOG" }',
    ".metadata.parsed.error_severity = level",
  ].join("\n"),
};

export const VECTOR_CONFIG = {
  api: { enabled: true, address: "0.0.0.0:9001" },
  sources: {
    project_containers: {
      type: "docker_logs",
      include_labels: [`org.supamanager.ref=${REF}`],
      exclude_containers: [`${REF}-vector`],
    },
  },
  transforms: {
    own_project: {
      type: "filter",
      inputs: ["project_containers"],
      condition: `${REF_LABEL} == "${REF}"`,
    },
    common: {
      type: "remap",
      inputs: ["own_project"],
      source: [
        `.project = "${REF}"`,
        `.appname = string(${SERVICE_LABEL}) ?? "unknown"`,
        ".event_message = del(.message)",
        "del(.container_created_at)",
        "del(.container_id)",
        "del(.container_name)",
        "del(.source_type)",
        "del(.stream)",
        "del(.label)",
        "del(.image)",
        "del(.host)",
      ].join("\n"),
    },
    router: {
      type: "route",
      inputs: ["common"],
      route: Object.fromEntries(Object.keys(SOURCES).map((s) => [s, `.appname == "${s}"`])),
    },
    ...Object.fromEntries(
      Object.keys(SOURCES).map((s) => [
        `${s}_logs`,
        { type: "remap", inputs: [`router.${s}`], source: SHAPES[s] ?? "" },
      ]),
    ),
  },
  sinks: Object.fromEntries(
    Object.entries(SOURCES).map(([s, source]) => [
      `analytics_${s}`,
      {
        type: "http",
        inputs: [`${s}_logs`],
        uri: `http://analytics:4000/api/logs?source_name=${source}`,
        method: "post",
        encoding: { codec: "json" },
        request: {
          retry_max_duration_secs: 30,
          retry_initial_backoff_secs: 1,
          headers: { "x-api-key": interpolate("LOGFLARE_PUBLIC_ACCESS_TOKEN") },
        },
      },
    ]),
  ),
};

export const VECTOR_TEMPLATE = `${JSON.stringify(VECTOR_CONFIG, null, 2)}\n`;
