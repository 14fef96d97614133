/**
 * The labels Studio shows for provider regions. Studio's new-project form, when it does not ask
 * us for regions (its `enableSmartRegion` era, and whenever `available-regions` fails), offers a
 * list built into Studio and posts the chosen label as `db_region`, e.g. "East US (North
 * Virginia)". These are the label → code facts of that list (Studio's shared-data regions,
 * February 2026). Our own regions are the regions of enrolled hosts; a host enrolled with one of
 * these codes is selectable under Studio's label too. See ADR 0025.
 */
const STUDIO_REGION_LABELS: Readonly<Record<string, string>> = {
  "us-west-1": "West US (North California)",
  "us-east-1": "East US (North Virginia)",
  "us-east-2": "East US (Ohio)",
  "ca-central-1": "Canada (Central)",
  "eu-west-1": "West EU (Ireland)",
  "eu-west-2": "West Europe (London)",
  "eu-west-3": "West EU (Paris)",
  "eu-central-1": "Central EU (Frankfurt)",
  "eu-central-2": "Central Europe (Zurich)",
  "eu-north-1": "North EU (Stockholm)",
  "ap-south-1": "South Asia (Mumbai)",
  "ap-southeast-1": "Southeast Asia (Singapore)",
  "ap-northeast-1": "Northeast Asia (Tokyo)",
  "ap-northeast-2": "Northeast Asia (Seoul)",
  "ap-southeast-2": "Oceania (Sydney)",
  "sa-east-1": "South America (São Paulo)",
  // Studio's one Fly region.
  sin: "Singapore",
};

const CODE_BY_LABEL: ReadonlyMap<string, string> = new Map(
  Object.entries(STUDIO_REGION_LABELS).map(([code, label]) => [label.toLowerCase(), code]),
);

/** The label Studio would show for a region code: its own label when it has one, else the code. */
export function regionLabel(code: string): string {
  return STUDIO_REGION_LABELS[code] ?? code;
}

export type RegionMatch =
  | { kind: "region"; code: string }
  /** A label of Studio's built-in list whose region has no enrolled host here. */
  | { kind: "not-enrolled"; code: string; label: string }
  | { kind: "unknown" };

/**
 * What region a `db_region` value names, among the fleet's `enrolled` region codes: the code
 * itself, or Studio's label for it (compared without regard to case or surrounding blanks).
 */
export function matchRegion(value: string, enrolled: readonly string[]): RegionMatch {
  const trimmed = value.trim();
  if (enrolled.includes(trimmed)) return { kind: "region", code: trimmed };
  const code = CODE_BY_LABEL.get(trimmed.toLowerCase());
  if (code === undefined) return { kind: "unknown" };
  if (enrolled.includes(code)) return { kind: "region", code };
  return { kind: "not-enrolled", code, label: regionLabel(code) };
}
