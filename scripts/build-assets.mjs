// Bundles the pages' browser code: every web/assets/<name>.js entry (ES modules importing npm
// packages such as bpmn-js, dmn-js, chart.js) becomes web/static/build/<name>.js (+ .css when it
// imports CSS), served by Flask's static route, so nothing is fetched from a CDN.
// Run by `make node` after `npm ci`; `node scripts/build-assets.mjs --watch` rebuilds on change.
import { build, context } from "esbuild";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "web", "assets");
const entryPoints = readdirSync(src).filter((f) => f.endsWith(".js")).map((f) => join(src, f));

// `import lintConfig from "bpmnlint-config"` is the repository's .bpmnlintrc packed for the browser
// with bpmnlint's own compiler (as bpmnlint-pack-config does), so the modeler lints with exactly the
// rules the server runs on deploy: one file, no hand copy.
const require = createRequire(import.meta.url);
const bpmnlintConfig = {
  name: "bpmnlint-config",
  setup(b) {
    b.onResolve({ filter: /^bpmnlint-config$/ }, () => ({ path: join(root, ".bpmnlintrc"), namespace: "bpmnlint-config" }));
    b.onLoad({ filter: /.*/, namespace: "bpmnlint-config" }, async (args) => {
      const compileConfig = require("bpmnlint/lib/support/compile-config");
      const contents = await compileConfig(JSON.parse(readFileSync(args.path, "utf8")));
      return { contents, resolveDir: root, loader: "js", watchFiles: [args.path] };
    });
  },
};

const options = {
  entryPoints,
  plugins: [bpmnlintConfig],
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
