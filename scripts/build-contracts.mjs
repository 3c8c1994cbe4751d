// Compiles contracts/ with the pinned solcjs and writes:
//   keeper/devtools/artifacts.json : ABI + bytecode of the test contracts (deployed by `keeper demo` and the tests)
//   abis/*.json           : the interface ABIs the keeper uses at run time (real protocol interfaces)
// Usage: node scripts/build-contracts.mjs [--out DIR]   (DIR defaults to the repository root)
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outIdx = process.argv.indexOf("--out");
const outRoot = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]) : root;

const DEPLOYABLE = ["MintableERC20", "MockAggregator", "Multicall3", "AaveOracle", "Pool", "AToken", "VariableDebtToken", "Comet", "PerpsMarket", "PriceCapAdapterStable", "NonZeroApprovalERC20", "FlashLiquidator", "Deleverager", "HostileLender", "MorphoChainlinkOracle"];
const INTERFACE_ABIS = {
  IPool: "AaveV3Pool.json",
  IAaveOracle: "AaveOracle.json",
  IAggregatorV3: "AggregatorV3.json",
  IERC20: "ERC20.json",
  IScaledBalanceToken: "ScaledBalanceToken.json",
  IStableDebtToken: "StableDebtToken.json",
  IPriceCapAdapter: "PriceCapAdapter.json",
  IMulticall3: "Multicall3.json",
  IComet: "Comet.json",
  IPerpsMarketProxy: "PerpsMarketProxy.json",
  IUniswapV3Factory: "UniswapV3Factory.json",
  IUniswapV3PoolState: "UniswapV3Pool.json",
  IQuoterV2: "UniswapV3QuoterV2.json",
  FlashLiquidator: "FlashLiquidator.json",
  Deleverager: "Deleverager.json",
  IPoolFlashLoan: "AaveV3PoolFlashLoan.json",
  IMorphoOracle: "MorphoOracle.json",
};

function listSources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return listSources(p);
    return e.name.endsWith(".sol") ? [p] : [];
  });
}

export function sourceDigest() {
  const h = crypto.createHash("sha256");
  h.update(solc.version());
  for (const f of listSources(path.join(root, "contracts")).sort()) {
    h.update(path.relative(root, f));
    h.update(fs.readFileSync(f));
  }
  return h.digest("hex");
}

const sources = {};
for (const f of listSources(path.join(root, "contracts"))) {
  sources[path.relative(root, f).split(path.sep).join("/")] = { content: fs.readFileSync(f, "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "shanghai",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: (p) => ({ contents: fs.readFileSync(path.join(root, p), "utf8") }) }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

const found = {};
for (const file of Object.keys(output.contracts)) {
  for (const [name, c] of Object.entries(output.contracts[file])) found[name] = c;
}
const artifacts = { solc: solc.version(), sourceDigest: sourceDigest(), contracts: {} };
for (const name of DEPLOYABLE) {
  const c = found[name];
  if (!c) throw new Error(`contract ${name} not found`);
  artifacts.contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  const size = c.evm.bytecode.object.length / 2;
  console.log(`${name.padEnd(20)} ${size} bytes (init code)`);
}
fs.mkdirSync(path.join(outRoot, "keeper", "devtools"), { recursive: true });
fs.writeFileSync(path.join(outRoot, "keeper", "devtools", "artifacts.json"), JSON.stringify(artifacts) + "\n");
fs.mkdirSync(path.join(outRoot, "abis"), { recursive: true });
for (const [name, file] of Object.entries(INTERFACE_ABIS)) {
  fs.writeFileSync(path.join(outRoot, "abis", file), JSON.stringify(found[name].abi, null, 1) + "\n");
}
console.log(`wrote ${path.join(outRoot, "keeper", "devtools", "artifacts.json")} and ${Object.keys(INTERFACE_ABIS).length} ABIs to ${path.join(outRoot, "abis")}`);
