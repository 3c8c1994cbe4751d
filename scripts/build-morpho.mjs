// Compiles the real Morpho Blue (npm @morpho-org/morpho-blue 1.0.0: src/Morpho.sol and the
// package's IrmMock) with the solcjs of its pinned version, 0.8.19, as Morpho builds it (via IR,
// optimizer 999,999 runs), and writes build/morpho.json: ABI, bytecode and the compiler used.
// BUSL-1.1 code: built on the machine for the tests and the demo, never committed or shipped.
// Usage: node scripts/build-morpho.mjs   (skips the compile when build/morpho.json is current)
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = path.join(root, "node_modules", "@morpho-org", "morpho-blue");
const out = path.join(root, "build", "morpho.json");
const WANTED = { "src/Morpho.sol": "Morpho", "src/mocks/IrmMock.sol": "IrmMock" };

if (!fs.existsSync(path.join(pkg, "src", "Morpho.sol"))) {
  console.error(`build-morpho: ${pkg} is missing (npm install)`);
  process.exit(1);
}
const solc = require("solc-0.8.19");
const version = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8")).version;

function read(rel) {
  return fs.readFileSync(path.join(pkg, rel), "utf8");
}

const sources = {};
for (const rel of Object.keys(WANTED)) sources[rel] = { content: read(rel) };
const digest = crypto.createHash("sha256").update(solc.version()).update(version);
for (const rel of Object.keys(WANTED).sort()) digest.update(rel).update(sources[rel].content);
const sourceDigest = digest.digest("hex");
if (fs.existsSync(out) && JSON.parse(fs.readFileSync(out, "utf8")).sourceDigest === sourceDigest) {
  console.log(`build-morpho: ${out} is current`);
  process.exit(0);
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    viaIR: true,
    optimizer: { enabled: true, runs: 999999 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const imports = (p) => {
  const file = path.join(pkg, p);
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: `not found: ${p}` };
};
const started = Date.now();
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: imports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of errors) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const artifacts = { package: `@morpho-org/morpho-blue@${version}`, solc: solc.version(), sourceDigest, contracts: {} };
for (const [rel, name] of Object.entries(WANTED)) {
  const c = output.contracts[rel][name];
  artifacts.contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  console.log(`${name.padEnd(10)} ${c.evm.deployedBytecode.object.length / 2} bytes deployed`);
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(artifacts) + "\n");
console.log(`build-morpho: wrote ${out} with solc ${solc.version()} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
