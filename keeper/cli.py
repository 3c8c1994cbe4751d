"""The `keeper` command: argv only; what it runs lives in keeper.app, keeper.offline and keeper.devtools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from keeper.errors import ConfigError, FatalError, KeeperError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--network", default="local", help="config/<network>.toml, or a path to a TOML file (default: local)"
    )
    p.add_argument(
        "--env-file",
        default=None,
        help="env file with KEEPER_RPC_URL and the key (KEEPER_PRIVATE_KEY or KEEPER_KEYSTORE + "
        "KEEPER_KEYSTORE_PASSWORD); the process environment wins over it",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keeper",
        description="On-chain keeper for Aave v3, Compound v3 and Synthetix v3 perps: protects your positions and "
        "liquidates others'. Configuration: config/<network>.toml and the environment (see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"keeper {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="watch the market each block: protect your accounts, liquidate others")
    _common(run)
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="simulate every action with eth_call, never sign or send (KEEPER_ADDRESS suffices)",
    )
    run.add_argument("--blocks", type=int, default=None, help="stop after this many new blocks (default: run forever)")
    run.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="operations server for /metrics, /healthz and the status page (default: [ops] listen, "
        "127.0.0.1:9108; 'off' to disable)",
    )
    run.add_argument(
        "--report", default=None, metavar="PATH", help="write every action of the run as JSON lines to PATH at the end"
    )
    status = sub.add_parser("status", help="print monitored accounts: health, liquidation price, distance")
    _common(status)
    status.add_argument("--top", type=int, default=25, help="show the N riskiest accounts (default 25)")
    deploy = sub.add_parser(
        "deploy-testnet", help="deploy our Aave v3-compatible test market to a dev node (anvil) and print its config"
    )
    deploy.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="dev node with unlocked accounts")
    deploy.add_argument("--write", default=None, metavar="PATH", help="also write the config TOML to PATH")
    rehearse = sub.add_parser(
        "rehearse",
        help="run the keeper on a local anvil fork of the chain (funded, optionally with price shocks) and report",
        description="Starts anvil --fork-url (KEEPER_RPC_URL by default) at a block, funds the keeper's address on "
        "the fork, applies price shocks by overriding the price sources' code, runs the keeper for N blocks and "
        "reports every action and whether each transaction succeeded. Nothing is sent to the real chain. Without "
        "a configured key an ephemeral one is used on the fork. Exit code 1 if a transaction failed.",
    )
    _common(rehearse)
    rehearse.add_argument("--fork-url", default=None, help="RPC to fork (default: the first KEEPER_RPC_URL)")
    rehearse.add_argument("--fork-block", type=int, default=None, help="block to fork at (default: the latest)")
    rehearse.add_argument("--blocks", type=int, default=5, help="blocks to run the keeper for on the fork (default 5)")
    rehearse.add_argument(
        "--shock",
        action="append",
        default=[],
        metavar="SYMBOL=PCT",
        help="move an asset's oracle price by PCT percent on the fork, e.g. WETH=-25 (repeatable)",
    )
    rehearse.add_argument(
        "--fund",
        action="append",
        default=[],
        metavar="SYMBOL=AMOUNT",
        help="give the keeper AMOUNT tokens on the fork, e.g. USDC=100000 (repeatable)",
    )
    rehearse.add_argument(
        "--fund-native", type=float, default=10.0, help="native coin for gas on the fork (default 10)"
    )
    rehearse.add_argument("--dry-run", action="store_true", help="simulate only, even on the fork")
    rehearse.add_argument("--block-time", type=float, default=1.0, help="fork block interval, seconds (default 1)")
    bt = sub.add_parser(
        "backtest",
        help="replay price paths (CSV) against positions: predictive vs static-threshold vs alert-only",
    )
    bt.add_argument("paths", nargs="+", metavar="CSV", help="timestamp, one USD price column per asset, [gas_gwei]")
    bt.add_argument(
        "--scenario", default="config/backtest.toml", help="assets, feeds, positions, [protect] (default: %(default)s)"
    )
    bt.add_argument("--png", default=None, metavar="PATH", help="chart path (default: <csv name>.png here)")
    bt.add_argument("--no-png", action="store_true", help="print the table only")
    stress = sub.add_parser(
        "stress", help="health of each position under price shocks and correlated Monte Carlo; table + PNG heatmap"
    )
    _common(stress)
    stress.add_argument(
        "--scenario", default=None, metavar="TOML", help="stress a backtest file's positions instead of the chain's"
    )
    stress.add_argument(
        "--prices", default=None, metavar="CSV", help="with --scenario: price the assets at this CSV's first row"
    )
    stress.add_argument("--top", type=int, default=10, help="chain: the N riskiest accounts besides protected ones")
    stress.add_argument("--horizon", type=float, default=86_400, help="Monte Carlo horizon, seconds (default 1 day)")
    stress.add_argument(
        "--vol", action="append", default=[], metavar="SYM=VOL", help="annualised volatility of an asset (repeat)"
    )
    stress.add_argument("--default-vol", type=float, default=0.8, help="for assets without --vol (default 0.8)")
    stress.add_argument("--corr", type=float, default=0.7, help="pairwise correlation of the assets (default 0.7)")
    stress.add_argument(
        "--df", type=float, default=4.0, help="Student-t degrees of freedom; 0 for Gaussian (default 4)"
    )
    stress.add_argument("--paths", type=int, default=20_000, help="Monte Carlo paths (default 20000)")
    stress.add_argument("--png", default="stress.png", metavar="PATH", help="heatmap path (default: %(default)s)")
    stress.add_argument("--no-png", action="store_true", help="print the table only")
    dl = sub.add_parser(
        "deploy-liquidator",
        help="deploy keeper's FlashLiquidator (flash-loan liquidations) owned by the keeper's key; print its config",
    )
    _common(dl)
    dl.add_argument("--router", default=None, help="Uniswap v3 SwapRouter for the sales (default: [flash] router)")
    dl.add_argument("--dry-run", action="store_true", help="simulate the deployment only, send nothing")
    dd = sub.add_parser(
        "deploy-deleverager",
        help="deploy keeper's Deleverager (protection with the position's own collateral) owned by the keeper's key",
    )
    _common(dd)
    dd.add_argument("--router", default=None, help="Uniswap v3 SwapRouter for the sales (default: [flash] router)")
    dd.add_argument("--dry-run", action="store_true", help="simulate the deployment only, send nothing")
    ps = sub.add_parser(
        "protect-setup",
        help="show (and with --send, give) what each protected account must allow the Deleverager, and how to revoke",
    )
    _common(ps)
    ps.add_argument("--send", action="store_true", help="send the keeper's own address's grants (simulated first)")
    ps.add_argument("--revoke", action="store_true", help="take the grants back instead")
    demo = sub.add_parser("demo", help="run the keeper on an embedded local chain through a price crash")
    demo.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("keeper")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("web3", "eth", "urllib3", "asyncio", "eth_tester", "evm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "verbose", False))
    if args.command in ("demo", "deploy-testnet"):
        logging.getLogger("keeper").setLevel(logging.WARNING)  # the demo prints its own narrative
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as exc:
        print(f"keeper: configuration error: {exc}", file=sys.stderr)
        return 2
    except FatalError as exc:
        print(f"keeper: fatal: {exc}", file=sys.stderr)
        return 3
    except KeeperError as exc:
        print(f"keeper: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: Any) -> int:
    if args.command == "demo":
        from keeper.devtools.demo import run_demo

        result = await run_demo()
        return 0 if result.failures == 0 and result.protections and result.liquidations else 1
    if args.command == "deploy-testnet":
        from keeper.devtools.testnet import deploy_testnet

        text = await deploy_testnet(args.rpc_url)
        print(text)
        if args.write:
            with open(args.write, "w") as f:
                f.write(text)
        return 0
    if args.command == "backtest":
        return _backtest(args)
    if args.command in ("deploy-liquidator", "deploy-deleverager"):
        from keeper.app.deploy import deploy_liquidator

        contract = "FlashLiquidator" if args.command == "deploy-liquidator" else "Deleverager"
        print(await deploy_liquidator(args.network, args.env_file, router=args.router, dry_run=args.dry_run,
                                      contract=contract))  # fmt: skip
        return 0
    if args.command == "stress" and args.scenario:
        from keeper.offline import stress

        prices = None
        if args.prices:
            from keeper.offline.backtest import load_path

            path = load_path(args.prices)
            prices = {k: float(v[0]) for k, v in path.prices.items()}
        _stress([stress.from_scenario(args.scenario, prices)], args)
        return 0
    if args.command == "rehearse":
        from keeper.devtools.rehearse import parse_amounts, rehearse

        rehearsal = await rehearse(
            args.network,
            args.env_file,
            fork_url=args.fork_url,
            fork_block=args.fork_block,
            blocks=args.blocks,
            shocks=parse_amounts(args.shock, "--shock"),
            fund=parse_amounts(args.fund, "--fund"),
            fund_native=args.fund_native,
            dry_run=args.dry_run,
            block_time=args.block_time,
        )
        print(rehearsal.summary())
        return 1 if rehearsal.failed else 0
    from keeper.app.report import print_status, write_report
    from keeper.app.runtime import open_keeper, serve

    live = (args.command == "run" and not args.dry_run) or (args.command == "protect-setup" and args.send)
    keeper = await open_keeper(args.network, args.env_file, dry_run=not live, require_key=live)
    try:
        if args.command == "status":
            from keeper.app.protect_setup import note_readiness

            await keeper.start()
            await note_readiness(keeper)
            print_status(keeper, args.top)
        elif args.command == "protect-setup":
            from keeper.app.protect_setup import protect_setup

            text, code = await protect_setup(keeper, send=args.send, revoke=args.revoke)
            print(text)
            return code
        elif args.command == "stress":
            from keeper.offline import stress

            await keeper.start()
            found = stress.from_keeper(keeper, args.top)
            if not found:
                raise KeeperError("no Aave v3 positions to stress (stress reads Aave v3 markets)")
            _stress(found, args)
        else:
            async with serve(keeper, listen=args.listen):
                await keeper.run(blocks=args.blocks)
            if args.report:
                write_report(keeper, args.report)
            if keeper.executor.dry_run and keeper.simulation_reverts:
                print(f"dry-run: {keeper.simulation_reverts} action(s) whose simulation reverted (see the log"
                      f"{' and ' + args.report if args.report else ''})", file=sys.stderr)  # fmt: skip
                return 1
    finally:
        if keeper.executor.relay is not None:
            await keeper.executor.relay.close()
        await keeper.chain.close()
    return 0


def _backtest(args: Any) -> int:
    from keeper.offline import backtest

    scenario = backtest.load_scenario(args.scenario)
    for csv_path in args.paths:
        path = backtest.load_path(csv_path)
        results = backtest.run(scenario, path)
        hours = (path.times[-1] - path.times[0]) / 3600
        print(f"\n{csv_path}: {len(path.times)} rows over {hours:.1f} h; scenario {args.scenario}")
        print(backtest.table(results))
        if not args.no_png:
            out = args.png if args.png and len(args.paths) == 1 else Path(csv_path).stem + ".png"
            backtest.chart(results, path, scenario, out)
            print(f"chart: {out}")
    return 0


def _stress(found: list[Any], args: Any) -> None:
    from keeper.offline import stress

    vols = {}
    for item in args.vol:
        sym, _, value = item.partition("=")
        try:
            vols[sym.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--vol {item!r}: expected SYMBOL=annualised volatility, e.g. WETH=0.8") from None
    if not -1 < args.corr < 1 or args.paths <= 0 or args.horizon <= 0 or (args.df and args.df <= 2):
        raise ConfigError("--corr must be in (-1, 1), --paths and --horizon positive, --df above 2 (or 0)")
    for k, e in enumerate(found):
        cov = stress.covariance(e.symbols, vols, args.default_vol, args.corr)
        result = stress.run(e, cov, args.horizon, df=args.df or None, paths=args.paths)
        print(stress.table(e, result, args.horizon))
        if not args.no_png:
            out = args.png if k == 0 else f"{Path(args.png).stem}-{k}.png"
            stress.heatmap(e, result, out)
            print(f"heatmap: {out}")


if __name__ == "__main__":
    raise SystemExit(main())
