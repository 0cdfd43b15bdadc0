// Bundles the pages' browser code: every web/assets/<name>.js entry (ES modules importing npm
// packages such as bpmn-js, dmn-js, chart.js) becomes web/static/build/<name>.js (+ .css when it
// imports CSS), served by Flask's static route, so nothing is fetched from a CDN.
// Run by `make node` after `npm ci`; `node scripts/build-assets.mjs --watch` rebuilds on change.
import { build, context } from "esbuild";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "web", "assets");
const entryPoints = readdirSync(src).filter((f) => f.endsWith(".js")).map((f) => join(src, f));

const options = {
  entryPoints,
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  target: ["es2020"],
  outdir: join(root, "web", "static", "build"),
  loader: { ".svg": "dataurl", ".woff": "dataurl", ".woff2": "dataurl", ".ttf": "dataurl", ".eot": "dataurl" },
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  const ctx = await context(options);
  await ctx.watch();
} else if (entryPoints.length) {
  await build(options);
}
