// Prints the side-by-side table of one scripts/bench-compare run.
//
// Usage: node scripts/bench/report.mjs RESULTS_DIR
//
// Reads RESULTS_DIR/raw.jsonl (one line per `atoll bench` command, written by
// bench-compare), servers.jsonl and machine.txt; writes the table to stdout.
// Plain Node.js, no packages: it runs wherever dynalite does.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: report.mjs RESULTS_DIR");
  process.exit(2);
}

const lines = (file) =>
  existsSync(join(dir, file))
    ? readFileSync(join(dir, file), "utf8")
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l))
    : [];

const raw = lines("raw.jsonl");
const servers = lines("servers.jsonl");
const command = existsSync(join(dir, "command.txt"))
  ? readFileSync(join(dir, "command.txt"), "utf8")
  : "";
const machine = existsSync(join(dir, "machine.txt"))
  ? readFileSync(join(dir, "machine.txt"), "utf8")
  : "";

const TARGETS = ["atoll", "dynoxide", "dynalite", "null"].filter(
  (t) => servers.some((s) => s.target === t) || raw.some((r) => r.target === t),
);
const PEERS = TARGETS.filter((t) => t !== "atoll");
const TITLE = { null: "null (HTTP ceiling)" };

const WHAT = {
  load: "load: PutItem",
  c: "c: GetItem",
  a: "a: 50% Get, 50% Update",
  b: "b: 95% Get, 5% Update",
  d: "d: 95% Get latest, 5% Put",
  e: "e: 95% Query, 5% Put",
  f: "f: 50% Get, 50% RMW",
  write: "write: PutItem",
  query: "query: Query Limit 10",
};

// Rows in the order they ran: the load first, then the plan.
const rows = [];
const rowKey = (r) => (r.phase === "load" ? "load" : `${r.workload}/${r.concurrency}`);
for (const r of raw) {
  if (r.phase === "setup") continue;
  const key = rowKey(r);
  if (!rows.some((row) => row.key === key)) {
    rows.push({
      key,
      label: r.phase === "load" ? WHAT.load : WHAT[r.workload] ?? r.workload,
      concurrency: r.concurrency,
    });
  }
}
const cell = (row, target) => raw.find((r) => r.target === target && rowKey(r) === row.key);
const setupFailure = (target) =>
  raw.find((r) => r.target === target && r.phase === "setup" && r.failure);

const errorCount = (r) =>
  Object.values(r?.result?.errors ?? {}).reduce((a, b) => a + b, 0);

const num = (x, digits) => (x == null ? "-" : Number(x).toFixed(digits));
const ops = (x) => (x == null ? "-" : Math.round(x).toString());
const ms = (x) => (x == null ? "-" : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const ratio = (a, b) => (a == null || b == null || b === 0 ? "-" : `${(a / b).toFixed(2)}x`);

// Failures and error types become numbered notes under the table.
const notes = [];
const note = (text) => {
  const i = notes.indexOf(text);
  if (i >= 0) return `[${i + 1}]`;
  notes.push(text);
  return `[${notes.length}]`;
};

// One target's cell: ops/s, p50 and p99 in ms, errors.
const OPS_W = 7, LAT_W = 13, ERR_W = 6;
const CELL_W = OPS_W + 1 + LAT_W + 1 + ERR_W;
function renderCell(row, target) {
  const r = cell(row, target);
  if (!r) return "".padEnd(CELL_W);
  if (r.failure || !r.result) {
    return `FAILED ${note(`${target} ${row.key}: ${r.failure ?? "no result"}`)}`.padEnd(CELL_W);
  }
  const res = r.result;
  const errors = errorCount(r);
  let err = String(errors);
  if (errors > 0) {
    const kinds = Object.entries(res.errors)
      .map(([k, n]) => `${k} x${n}`)
      .join(", ");
    const total = res.operations + errors;
    err += note(`${target} ${row.key}: ${errors} errors of ${total} requests (${kinds})`);
  }
  return [
    ops(res.ops_per_sec).padStart(OPS_W),
    `${ms(res.p50_ms)}/${ms(res.p99_ms)}`.padStart(LAT_W),
    err.padStart(ERR_W),
  ].join(" ");
}

const LABEL_W = Math.max(...rows.map((r) => r.label.length), 8);
const sep = " | ";
const out = [];

// Header: what was run.
const setting = (name) => (command.match(new RegExp(`\\b${name}=(\\S+)`)) ?? [])[1] ?? "?";
out.push(
  `bench-compare: ${setting("items")} items of ~${setting("item_size")} B over ${setting("partitions")} partition keys, ` +
    `${setting("distribution")} keys, ${setting("duration")} s measured after ${setting("warmup")} s warm-up`,
);
for (const key of ["cpus \\(nproc\\)", "cpu model", "memory", "fsync latency"]) {
  const m = machine.match(new RegExp(`^${key}:\\s*(.*)$`, "m"));
  if (m) out.push(`  ${key.replace(/\\/g, "")}: ${m[1]}`);
}
out.push("");
out.push("Each cell: ops/s, p50/p99 latency in ms, err = requests that failed. Ratios are ops/s of atoll over the peer.");
out.push("");

const ratioHeads = PEERS.map((p) => `atoll/${p}`);
const head1 = [
  "workload".padEnd(LABEL_W) + " conc",
  ...TARGETS.map((t) => (TITLE[t] ?? t).padEnd(CELL_W)),
  ratioHeads.map((h) => h.padStart(Math.max(h.length, 8))).join(" "),
].join(sep);
const head2 = [
  "".padEnd(LABEL_W + 5),
  ...TARGETS.map(() =>
    ["ops/s".padStart(OPS_W), "p50/p99 ms".padStart(LAT_W), "err".padStart(ERR_W)].join(" "),
  ),
  "",
].join(sep);
out.push(head1, head2.trimEnd(), "-".repeat(head1.length));
for (const row of rows) {
  const atoll = cell(row, "atoll")?.result?.ops_per_sec;
  const ratios = PEERS.map((p, i) =>
    ratio(atoll, cell(row, p)?.result?.ops_per_sec).padStart(Math.max(ratioHeads[i].length, 8)),
  );
  out.push(
    [
      row.label.padEnd(LABEL_W) + String(row.concurrency).padStart(5),
      ...TARGETS.map((t) => renderCell(row, t)),
      ratios.join(" "),
    ].join(sep),
  );
}

// CPU: is the client or the server the bottleneck? (2 cores are shared.)
out.push("");
out.push("CPU in % of one core during each run, client (atoll bench) / server:");
const CPU_W = 13;
out.push(
  ["workload".padEnd(LABEL_W) + " conc", ...TARGETS.map((t) => t.padStart(CPU_W))].join(sep),
);
for (const row of rows) {
  out.push(
    [
      row.label.padEnd(LABEL_W) + String(row.concurrency).padStart(5),
      ...TARGETS.map((t) => {
        const r = cell(row, t);
        if (!r) return "".padStart(CPU_W);
        const client = r.result?.client_cpu_percent;
        return `${num(client, 0)} / ${num(r.server_cpu_percent, 0)}`.padStart(CPU_W);
      }),
    ].join(sep),
  );
}

// Servers: what ran, how, and how much memory it took.
out.push("");
out.push("Servers:");
const sHead = ["target".padEnd(9), "version".padEnd(14), "ready ms", "RSS idle", "RSS loaded", "RSS end", "mode"];
out.push(sHead.join("  "));
for (const s of servers) {
  const mb = (kb) => (kb == null ? "-" : `${(kb / 1024).toFixed(0)} MiB`);
  out.push(
    [
      s.target.padEnd(9),
      String(s.version ?? "").padEnd(14),
      String(s.ready_ms ?? "-").padStart(8),
      mb(s.idle_rss_kb).padStart(8),
      mb(s.loaded_rss_kb).padStart(10),
      mb(s.final_rss_kb).padStart(7),
      s.mode,
    ].join("  "),
  );
}
const atoll = servers.find((s) => s.target === "atoll");
if (atoll?.startup_ms != null) {
  out.push(`Atoll start-up (startup_ms in its log): ${atoll.startup_ms} ms`);
}
for (const t of TARGETS) {
  const f = setupFailure(t);
  if (f) out.push(`${t}: setup failed, so no load and no reads of real items: ${f.failure}`);
}

if (notes.length) {
  out.push("");
  out.push("Notes:");
  notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
}
console.log(out.join("\n"));
