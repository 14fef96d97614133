import { parseArgs } from "node:util";
import { z } from "zod";
import { usageError } from "./errors.js";

export interface OptionDef {
  type: "string" | "boolean";
  short?: string;
  /** Shown in help: `--region <region>`. */
  placeholder?: string;
  description: string;
}

export interface ArgDef {
  name: string;
  description: string;
}

export interface ParsedInput {
  /** Positional arguments by name (every declared argument is required). */
  args: Record<string, string>;
  values: Record<string, string | boolean | undefined>;
  json: boolean;
  /** --url / --token given on the command line (they beat the environment and the stored login). */
  url?: string;
  token?: string;
}

/** A leaf command: `supamanager <path…> <args…> [options]`. */
export interface CommandSpec<R> {
  path: string[];
  summary: string;
  description?: string;
  args?: ArgDef[];
  options?: Record<string, OptionDef>;
  examples?: string[];
  run: R;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionDef> = {
  json: { type: "boolean", description: "Print machine-readable JSON on stdout" },
  url: {
    type: "string",
    placeholder: "url",
    description: "Control plane URL (default: $SUPAMANAGER_URL, then the stored login)",
  },
  token: {
    type: "string",
    placeholder: "token",
    description: "Access token (default: $SUPAMANAGER_TOKEN, then the stored login)",
  },
  help: { type: "boolean", short: "h", description: "Show help for this command" },
};

export type Resolution<R> =
  | { kind: "help"; path: string[]; command?: CommandSpec<R>; error?: string }
  | { kind: "run"; command: CommandSpec<R>; input: ParsedInput };

type ParseArgsOptions = Record<string, { type: "string" | "boolean"; short?: string }>;

function toParseArgs(options: Record<string, OptionDef>): ParseArgsOptions {
  return Object.fromEntries(
    Object.entries(options).map(([k, o]) => [k, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
  );
}

/**
 * Resolve argv to a command and its validated input, or to the help to show. Options may come
 * anywhere (`supamanager --json hosts list`). An unknown command or option, a missing or extra
 * argument, or an option without its value is a usage error (exit 1).
 */
export function resolve<R>(argv: string[], commands: CommandSpec<R>[]): Resolution<R> {
  // First pass, lenient, over every option any command knows: just to find the positionals.
  const all: Record<string, OptionDef> = { ...GLOBAL_OPTIONS };
  for (const c of commands) Object.assign(all, c.options ?? {});
  const loose = parseArgs({ args: argv, options: toParseArgs(all), strict: false, allowPositionals: true });
  const words = loose.positionals;
  const wantsHelp = loose.values.help === true || words[0] === "help";
  const pathWords = words[0] === "help" ? words.slice(1) : words;

  // The longest command path that prefixes the words.
  let command: CommandSpec<R> | undefined;
  for (const c of commands) {
    if (c.path.every((p, i) => pathWords[i] === p) && (!command || c.path.length > command.path.length)) command = c;
  }
  if (!command) {
    // A group (`hosts`) or nothing: the longest known group prefix gets its help.
    const groups = new Set(commands.map((c) => c.path[0]));
    const path = pathWords[0] !== undefined && groups.has(pathWords[0]) ? [pathWords[0]] : [];
    const unknown = pathWords[path.length];
    if (wantsHelp && unknown === undefined) return { kind: "help", path };
    if (unknown !== undefined)
      return { kind: "help", path, error: `unknown command "${[...path, unknown].join(" ")}"` };
    return { kind: "help", path, error: path.length ? `"${path.join(" ")}" needs a subcommand` : "missing command" };
  }
  if (wantsHelp) return { kind: "help", path: command.path, command };

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: toParseArgs({ ...GLOBAL_OPTIONS, ...(command.options ?? {}) }),
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw usageError(
      `${(err as Error).message.replace(/\. To specify a positional.*$/s, "")} (see \`supamanager ${command.path.join(" ")} --help\`)`,
    );
  }
  const rest = parsed.positionals.slice(command.path.length);
  const declared = command.args ?? [];
  if (rest.length < declared.length) {
    throw usageError(
      `missing ${declared
        .slice(rest.length)
        .map((a) => `<${a.name}>`)
        .join(" ")} (usage: ${usageLine(command)})`,
    );
  }
  if (rest.length > declared.length) {
    throw usageError(`unexpected argument "${rest[declared.length]}" (usage: ${usageLine(command)})`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const input: ParsedInput = {
    args: Object.fromEntries(declared.map((a, i) => [a.name, rest[i] as string])),
    values,
    json: values.json === true,
  };
  if (typeof values.url === "string") input.url = values.url;
  if (typeof values.token === "string") input.token = values.token;
  return { kind: "run", command, input };
}

export function usageLine(c: CommandSpec<unknown>): string {
  const args = (c.args ?? []).map((a) => `<${a.name}>`);
  return ["supamanager", ...c.path, ...args, "[options]"].join(" ");
}

function optionLines(options: Record<string, OptionDef>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${o.placeholder ? ` <${o.placeholder}>` : ""}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`);
}

/** Help of one command: usage, description, arguments, options, examples. */
export function commandHelp(c: CommandSpec<unknown>): string {
  const lines = [`Usage: ${usageLine(c)}`, "", c.description ?? c.summary];
  if (c.args?.length) {
    const width = Math.max(...c.args.map((a) => a.name.length + 2));
    lines.push("", "Arguments:", ...c.args.map((a) => `  ${`<${a.name}>`.padEnd(width)}  ${a.description}`));
  }
  if (c.options && Object.keys(c.options).length) lines.push("", "Options:", ...optionLines(c.options));
  lines.push("", "Global options:", ...optionLines(GLOBAL_OPTIONS));
  if (c.examples?.length) lines.push("", "Examples:", ...c.examples.map((e) => `  ${e}`));
  return lines.join("\n");
}

/** Help of a group (`hosts`) or of the whole tool (path []). */
export function groupHelp(path: string[], commands: CommandSpec<unknown>[], groups: Record<string, string>): string {
  const inGroup = commands.filter((c) => path.every((p, i) => c.path[i] === p));
  const entries = inGroup.map((c) => [
    c.path.join(" ") + (c.args ?? []).map((a) => ` <${a.name}>`).join(""),
    c.summary,
  ]);
  const width = Math.max(...entries.map((e) => (e[0] ?? "").length));
  const lines = [
    `Usage: supamanager ${path.length ? `${path.join(" ")} ` : ""}<command> [options]`,
    "",
    path.length
      ? (groups[path[0] as string] ?? "")
      : "Operate a SupaManager control plane: hosts, regions, organizations and projects.",
    "",
    "Commands:",
    ...entries.map(([n, s]) => `  ${(n ?? "").padEnd(width)}  ${s}`),
    "",
    "Global options:",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    `Run \`supamanager ${path.length ? `${path.join(" ")} ` : ""}<command> --help\` for a command's options.`,
  ];
  if (!path.length) {
    lines.push(
      "Exit codes: 0 ok, 1 usage, 2 refused by the API (4xx), 3 unreachable or server error, 4 operation failed or timed out (5 is reserved).",
    );
  }
  return lines.join("\n");
}

// ---- Value parsing (zod), shared by the commands ----

const wholeNumber = (flag: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `--${flag} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `--${flag} must be at least ${min}`).max(max, `--${flag} must be at most ${max}`));

/** A whole-number option, or undefined when absent. Invalid → usage error. */
export function intOption(values: ParsedInput["values"], flag: string, min: number, max: number): number | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const r = wholeNumber(flag, min, max).safeParse(v);
  if (!r.success) throw usageError(r.error.issues[0]?.message ?? `--${flag} is invalid`);
  return r.data;
}

export function stringOption(values: ParsedInput["values"], flag: string): string | undefined {
  const v = values[flag];
  return typeof v === "string" ? v : undefined;
}

export function requiredString(values: ParsedInput["values"], flag: string, hint = ""): string {
  const v = stringOption(values, flag);
  if (v === undefined || v === "") throw usageError(`--${flag} is required${hint}`);
  return v;
}

export const COMPUTE_SIZES = ["nano", "micro", "small", "medium", "large", "xlarge"] as const;

export function enumOption<T extends string>(
  values: ParsedInput["values"],
  flag: string,
  allowed: readonly T[],
): T | undefined {
  const v = stringOption(values, flag);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw usageError(`--${flag} must be one of ${allowed.join(", ")}`);
  return v as T;
}

/** Project refs are 20 lowercase letters. */
export const ProjectRef = z.string().regex(/^[a-z]{20}$/, "a project ref is 20 lowercase letters");
export const HostId = z.string().regex(/^host_[a-z0-9]{20}$/, "a host id looks like host_ followed by 20 characters");

export function checkArg(schema: z.ZodType<string>, value: string, name: string): string {
  const r = schema.safeParse(value);
  if (!r.success) throw usageError(`<${name}> "${value}": ${r.error.issues[0]?.message ?? "invalid"}`);
  return r.data;
}
