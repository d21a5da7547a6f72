"""A 4-signer Clique (proof-of-authority) network of geth nodes on loopback (`scripts/network`).

geth v1.13.15 is the last release line that seals Clique blocks; it is built once from the Go module proxy
into `.cache/geth/<version>/` (Go >= 1.23 needs `-ldflags=-checklinkname=0` to link it). Each node gets a
random p2p node key, a signer account from the consortium's dev mnemonic (indexes no demo org uses),
static peers in its TOML config (geth 1.13 ignores static-nodes.json), `--nodiscover` and
`--netrestrict 127.0.0.1/32` as the node allowlist. Dev keys only: never give these accounts value.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from eth_account import Account
from eth_keys import keys

from chain_gateway.compiler import PROJECT_ROOT
from chain_gateway.deployments import write_deployment
from chain_gateway.devnet import SeededConsortium, dev_key, free_port, seed_demo_consortium
from chain_gateway.errors import GatewayConfigError
from chain_gateway.governance import GovernedCall, govern
from chain_gateway.web3_connect import connect_web3

__all__ = [
    "CHAIN_ID",
    "GETH_VERSION",
    "CliqueNetwork",
    "CliqueNode",
    "VALIDATOR_ORGS",
    "deploy_demo",
    "ensure_geth",
    "register_validators",
]

GETH_VERSION = "v1.13.15"
GETH_MODULE = "github.com/ethereum/go-ethereum/cmd/geth"
GO_TOOLCHAIN = "go1.23.12"  # fetched only when no Go >= 1.23 is installed
CACHE_DIR = PROJECT_ROOT / ".cache" / "geth"
DEFAULT_DIR = PROJECT_ROOT / "var" / "network"
CHAIN_ID = 1337
BLOCK_PERIOD_S = 1
EPOCH_BLOCKS = 30_000
GAS_LIMIT = 30_000_000
FUNDED_DEV_ACCOUNTS = 40  # as many as anvil's dev accounts, so seeding code runs unchanged
FUNDING_WEI = 10_000 * 10**18
SIGNER_DEV_INDEXES = (36, 37, 38, 39)  # one sealing account per member node; the demo orgs use 0..17
# The member org that runs each node and owns its sealing account (registered as the org's account on-chain).
VALIDATOR_ORGS = ("BJ-EIB", "BJ-PSB", "BJ-CMC", "BJ-EMB")
STATE_FILE = "network.json"


def ensure_geth(version: str = GETH_VERSION) -> Path:
    """Path of the cached geth binary, built from the Go module proxy on first use (a few minutes)."""
    binary = CACHE_DIR / version / "geth"
    if binary.exists():
        return binary
    go = _go_binary()
    env = {**os.environ, "GOBIN": str(binary.parent), "GOTOOLCHAIN": "local"}
    binary.parent.mkdir(parents=True, exist_ok=True)
    # -checklinkname=0: geth 1.13 links to runtime internals by go:linkname, which Go >= 1.23 refuses.
    cmd = [str(go), "install", "-ldflags=-checklinkname=0", f"{GETH_MODULE}@{version}"]
    started = time.monotonic()
    typer.echo(f"building geth {version} with {go} (a few minutes, once)", err=True)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not binary.exists():
        raise GatewayConfigError(f"{' '.join(cmd)} failed:\n{result.stderr[-4000:]}")
    typer.echo(f"built geth {version} in {time.monotonic() - started:.0f} s -> {binary}", err=True)
    return binary


def _go_binary() -> Path:
    """A Go >= 1.23 toolchain: $GO, `go` on PATH or /usr/local/go, else the official toolchain module fetched
    from the Go module proxy into .cache/go/ (what `GOTOOLCHAIN` does, without needing a Go to start from)."""
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and Path(candidate).exists() and _go_is_recent(Path(candidate)):
            return Path(candidate)
    root = PROJECT_ROOT / ".cache" / "go" / GO_TOOLCHAIN
    go = root / "bin" / "go"
    if not go.exists():
        proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].rstrip("/")
        module = f"v0.0.1-{GO_TOOLCHAIN}.linux-{_go_arch()}"
        typer.echo(f"fetching the Go toolchain {module} from {proxy}", err=True)
        archive = PROJECT_ROOT / ".cache" / "go" / f"{module}.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", f"{proxy}/golang.org/toolchain/@v/{module}.zip", timeout=120) as response:
            response.raise_for_status()
            with open(archive, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        prefix = f"golang.org/toolchain@{module}/"
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                target = root / info.filename[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zipped.read(info))
                target.chmod(info.external_attr >> 16 or 0o644)  # zip keeps the executables' mode bits
        archive.unlink()
    return go


def _go_is_recent(go: Path) -> bool:
    """True if `go version` is 1.23 or newer (the link flag geth 1.13 needs exists from 1.23)."""
    result = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True)
    parts = result.stdout.strip().removeprefix("go").split(".")
    return result.returncode == 0 and len(parts) >= 2 and (int(parts[0]), int(parts[1].split("rc")[0])) >= (1, 23)


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@dataclass
class CliqueNode:
    """One geth node: its datadir, signer, ports and (while running) process id."""

    index: int
    org: str  # the member org that runs the node
    datadir: Path
    signer: str
    node_key: str  # hex, the p2p identity
    http_port: int
    p2p_port: int
    auth_port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def enode(self) -> str:
        public = keys.PrivateKey(bytes.fromhex(self.node_key)).public_key.to_bytes().hex()
        return f"enode://{public}@127.0.0.1:{self.p2p_port}"

    def rpc(self, method: str, *params: Any, timeout: float = 2.0) -> Any:
        """Call JSON-RPC `method`; raise GatewayConfigError on an RPC error."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        reply = httpx.post(self.url, json=body, timeout=timeout).json()
        if "error" in reply:
            raise GatewayConfigError(f"node {self.index} {method}: {reply['error']}")
        return reply["result"]

    def unlocked(self) -> bool:
        """True once geth answers and has unlocked the signer (after RPC is up; sealing before fails for good)."""
        try:
            self.rpc("eth_sign", self.signer, "0x00")
        except (GatewayConfigError, httpx.TransportError):
            return False
        return True

    def running(self) -> bool:
        """True while our geth process for this datadir is alive (a recycled pid is not ours)."""
        if self.pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(self.datadir).encode() in cmdline


@dataclass
class CliqueNetwork:
    """The nodes of one network under `root`; state (ports, pids) is kept in `root/network.json`."""

    root: Path
    nodes: list[CliqueNode] = field(default_factory=list)
    geth: Path | None = None
    # the processes this object started, reaped on stop (nodes started by an earlier `up` are found by pid)
    _processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, root: Path) -> CliqueNetwork:
        state = json.loads((root / STATE_FILE).read_text())
        nodes = [CliqueNode(**{**n, "datadir": Path(n["datadir"])}) for n in state["nodes"]]
        return cls(root, nodes, Path(state["geth"]))

    def save(self) -> None:
        state = {
            "geth": str(self.geth),
            "chain_id": CHAIN_ID,
            "nodes": [{**vars(n), "datadir": str(n.datadir)} for n in self.nodes],
        }
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def launch(cls, root: Path, signers: int = 4, timeout: float = 90.0) -> CliqueNetwork:
        """A fresh network under `root` (missing, empty, or an earlier stopped network's, which is replaced: old
        blocks would not match new keys) with every node started, sealing and peered; geth is built first if
        needed. On failure the nodes started are stopped again."""
        if (root / STATE_FILE).exists() and any(n.running() for n in cls.load(root).nodes):
            raise GatewayConfigError(f"a network under {root} is running: `scripts/network down --dir {root}` first")
        if root.exists():
            if any(root.iterdir()) and not (root / "genesis.json").exists():
                raise GatewayConfigError(f"{root} is not empty and not a network directory")
            shutil.rmtree(root)
        network = cls(root)
        network.create(ensure_geth(), signers)
        try:
            for node in network.nodes:
                network.start_node(node)
            network.start_sealing(network.nodes, timeout)
            network.wait_ready(timeout)
        except BaseException:
            network.stop()
            raise
        return network

    def stop(self) -> None:
        """Stop every node (their data stays)."""
        for node in self.nodes:
            self.stop_node(node)

    def create(self, geth: Path, signers: int = 4) -> None:
        """Write keys, genesis and configs under a fresh `root` and `geth init` each datadir."""
        self.geth = geth
        self.root.mkdir(parents=True, exist_ok=True)
        password = self.root / "password"
        password.write_text(secrets.token_hex(16))
        password.chmod(0o600)
        for i in range(signers):
            key = dev_key(SIGNER_DEV_INDEXES[i])
            node = CliqueNode(
                index=i + 1,
                org=VALIDATOR_ORGS[i],
                datadir=self.root / f"node{i + 1}",
                signer=Account.from_key(key).address,
                node_key=secrets.token_bytes(32).hex(),
                http_port=free_port(),
                p2p_port=free_port(),
                auth_port=free_port(),
            )
            (node.datadir / "geth").mkdir(parents=True)
            (node.datadir / "geth" / "nodekey").write_text(node.node_key)
            keystore = node.datadir / "keystore"
            keystore.mkdir()
            encrypted = Account.encrypt(key, password.read_text())
            (keystore / f"signer-{node.signer.lower()[2:]}.json").write_text(json.dumps(encrypted))
            self.nodes.append(node)
        genesis = self.root / "genesis.json"
        genesis.write_text(json.dumps(_genesis([n.signer for n in self.nodes]), indent=2))
        for node in self.nodes:
            peers = [p.enode for p in self.nodes if p is not node]
            # Partial TOML: geth keeps its defaults for everything not named here.
            (node.datadir / "config.toml").write_text(
                f"[Node.P2P]\nStaticNodes = {json.dumps(peers)}\nTrustedNodes = {json.dumps(peers)}\n"
            )
            _run([str(geth), "init", "--datadir", str(node.datadir), str(genesis)], node.datadir / "init.log")
        self.save()

    def start_node(self, node: CliqueNode) -> None:
        """Start `node` detached (it outlives this process), not sealing yet: see `start_sealing`.

        With `--mine` each node would seal as soon as its signer is unlocked (scrypt, ~2 s), while nodes
        still starting throw its blocks away; the chain then halts on forks of block 1 (see start_sealing).
        """
        if node.running():
            return
        args = [
            str(self.geth),
            "--datadir", str(node.datadir),
            "--config", str(node.datadir / "config.toml"),
            "--networkid", str(CHAIN_ID),
            "--port", str(node.p2p_port),
            "--nodiscover", "--nat", "none",
            "--netrestrict", "127.0.0.1/32",
            "--http", "--http.addr", "127.0.0.1", "--http.port", str(node.http_port),
            "--http.api", "eth,net,web3,clique,admin,txpool,miner",
            "--authrpc.addr", "127.0.0.1", "--authrpc.port", str(node.auth_port),
            "--ipcdisable",
            "--syncmode", "full",
            "--cache", "128",
            "--txpool.globalslots", "20000", "--txpool.accountslots", "2048", "--txpool.globalqueue", "4096",
            "--miner.etherbase", node.signer, "--miner.gaslimit", str(GAS_LIMIT),
            "--unlock", node.signer, "--password", str(self.root / "password"), "--allow-insecure-unlock",
        ]  # fmt: skip
        with open(node.datadir / "geth.log", "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        node.pid = process.pid
        self._processes[node.index] = process
        self.save()

    def start_sealing(self, nodes: list[CliqueNode], timeout: float = 60.0) -> None:
        """Start the miners of `nodes` together, once each has its signer unlocked, its peers and their head.

        geth discards propagated blocks until its miner starts (or a sync completes), so starting them
        one by one lets a fast node seal block 1 while the others throw it away, and seal their own: equal
        total difficulty, each signed recently on its own fork, the chain halts. Started within
        milliseconds, with the in-turn signer of the next block last, every node takes the others' blocks.
        """
        live = [n for n in self.nodes if n.running()]
        deadline = time.monotonic() + timeout
        while True:
            try:
                heads = {n.index: int(n.rpc("eth_blockNumber"), 16) for n in live}
                ready = all(
                    int(n.rpc("net_peerCount"), 16) >= len(live) - 1
                    and heads[n.index] >= max(heads.values())
                    and n.unlocked()
                    for n in nodes
                )
            except (httpx.TransportError, GatewayConfigError):
                ready = False
            if ready:
                break
            if time.monotonic() > deadline:
                raise GatewayConfigError(f"nodes {[n.index for n in nodes]} not unlocked and peered within {timeout} s")
            time.sleep(0.2)
        signers = sorted((n.signer for n in self.nodes), key=lambda a: int(a, 16))
        in_turn = signers[(max(heads.values()) + 1) % len(signers)]  # Clique: block n's in-turn signer
        for node in sorted(nodes, key=lambda n: n.signer == in_turn):
            node.rpc("miner_start")

    def stop_node(self, node: CliqueNode, timeout: float = 20.0) -> None:
        """SIGTERM `node` and wait for it to exit (SIGKILL after `timeout` seconds)."""
        if node.running():
            assert node.pid is not None
            os.kill(node.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while node.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            if node.running():
                os.kill(node.pid, signal.SIGKILL)
        process = self._processes.pop(node.index, None)
        if process is not None:
            process.wait()
        node.pid = None
        self.save()

    def partition(self, node: CliqueNode, timeout: float = 30.0, settle: float = 3.0) -> None:
        """Cut `node` off from the other nodes: both ends drop it as static and trusted peer, so neither redials.

        The node keeps running (and sealing when its turn allows): the fault of a member whose link is down.
        A dial already under way when the peer is removed can still connect a moment later, so the removal is
        repeated until the node has had no peer for `settle` seconds.
        """
        deadline = time.monotonic() + timeout
        alone_since: float | None = None
        while True:
            if int(node.rpc("net_peerCount"), 16) == 0:
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since >= settle:
                    return
            else:
                alone_since = None
                for other in self._live_others(node):
                    for a, b in ((node, other), (other, node)):
                        a.rpc("admin_removeTrustedPeer", b.enode)
                        a.rpc("admin_removePeer", b.enode)
            if time.monotonic() > deadline:
                raise GatewayConfigError(f"node {node.index} not cut off within {timeout} s")
            time.sleep(0.2)

    def rejoin(self, node: CliqueNode, timeout: float = 30.0) -> None:
        """Undo `partition`: peer `node` with the other running nodes again (it then syncs the heavier chain)."""
        others = self._live_others(node)
        for other in others:
            for a, b in ((node, other), (other, node)):
                a.rpc("admin_addPeer", b.enode)
                a.rpc("admin_addTrustedPeer", b.enode)
        want = len(others)
        self._wait_for(lambda: int(node.rpc("net_peerCount"), 16) >= want, timeout, f"node {node.index} not rejoined")

    def _live_others(self, node: CliqueNode) -> list[CliqueNode]:
        return [n for n in self.nodes if n is not node and n.running()]

    @staticmethod
    def _wait_for(condition: Callable[[], bool], timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise GatewayConfigError(f"{failure} within {timeout} s")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait until every running node has all other running nodes as peers and blocks advance."""
        live = [n for n in self.nodes if n.running()]
        deadline = time.monotonic() + timeout
        first: dict[int, int] = {}
        while time.monotonic() < deadline:
            try:
                peers = [int(n.rpc("net_peerCount"), 16) for n in live]
                heights = {n.index: int(n.rpc("eth_blockNumber"), 16) for n in live}
            except (httpx.TransportError, GatewayConfigError):
                time.sleep(0.2)
                continue
            first = first or heights
            if all(p >= len(live) - 1 for p in peers) and all(heights[i] > first[i] + 1 for i in heights):
                return
            time.sleep(0.2)
        dead = [n.index for n in self.nodes if n.pid is not None and not n.running()]
        raise GatewayConfigError(f"network not ready within {timeout} s (exited nodes: {dead}; see geth.log)")


def _genesis(signers: list[str]) -> dict[str, Any]:
    """Clique genesis: London rules (Clique cannot seal Shanghai), extraData = vanity + signers + seal."""
    forks = ["homestead", "eip150", "eip155", "eip158", "byzantium", "constantinople", "petersburg", "istanbul"]
    forks += ["muirGlacier", "berlin", "london", "arrowGlacier", "grayGlacier"]
    ordered = sorted(signers, key=lambda a: int(a, 16))
    funded = [Account.from_key(dev_key(i)).address for i in range(FUNDED_DEV_ACCOUNTS)] + signers
    return {
        "config": {
            "chainId": CHAIN_ID,
            **{f"{fork}Block": 0 for fork in forks},
            "clique": {"period": BLOCK_PERIOD_S, "epoch": EPOCH_BLOCKS},
        },
        "timestamp": hex(int(time.time())),
        "difficulty": "0x1",
        "gasLimit": hex(GAS_LIMIT),
        "extraData": "0x" + "00" * 32 + "".join(a[2:].lower() for a in ordered) + "00" * 65,
        "alloc": {a: {"balance": hex(FUNDING_WEI)} for a in funded},
    }


def deploy_demo(network: CliqueNetwork, deployment_path: Path) -> SeededConsortium:
    """Deploy and seed the demo consortium through node 1, register the nodes' signers (`register_validators`)
    and write the deployment to `deployment_path`."""
    w3 = connect_web3(network.nodes[0].url, timeout=60)
    consortium = seed_demo_consortium(w3)
    register_validators(network, consortium)
    write_deployment(consortium.deployment, deployment_path)
    return consortium


def register_validators(network: CliqueNetwork, consortium: SeededConsortium) -> None:
    """Register each node's sealing account as an account of the member org that runs it (one governed proposal),
    so the chain itself says which member runs which validator."""
    w3 = connect_web3(network.nodes[0].url, timeout=60)
    calls: list[GovernedCall] = [("Consortium", "addAccount", [n.org, n.signer]) for n in network.nodes]
    govern(w3, consortium.deployment, consortium.admin_keys(), calls, "sealing accounts of the member nodes")


def _run(args: list[str], log_path: Path) -> None:
    with open(log_path, "ab") as log:
        if subprocess.run(args, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            raise GatewayConfigError(f"{' '.join(args)} failed; see {log_path}")


app = typer.Typer(help="A 4-signer Clique network of geth nodes on loopback (dev keys only).")
DirOption = Annotated[Path, typer.Option("--dir", help="network directory (datadirs, keys, genesis, logs)")]


@app.command("up")
def up(
    root: DirOption = DEFAULT_DIR,
    timeout: Annotated[float, typer.Option(help="seconds to wait for peers and blocks")] = 90.0,
) -> None:
    """Build geth if needed, create a fresh network under --dir, start 4 signers and wait until blocks advance.

    The whole dev profile (demo consortium, keystore, tokens, API) on such a network: `scripts/run --network clique`.
    """
    started = time.monotonic()
    try:
        network = CliqueNetwork.launch(root, timeout=timeout)
    except GatewayConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for node in network.nodes:
        typer.echo(f"node{node.index} {node.url} run by {node.org}, signer {node.signer}, pid {node.pid}")
    typer.echo(f"chain {CHAIN_ID} up in {time.monotonic() - started:.1f} s; stop with scripts/network down")


@app.command("down")
def down(root: DirOption = DEFAULT_DIR) -> None:
    """Stop the nodes of the network under --dir (its data stays until the next `up`)."""
    network = CliqueNetwork.load(root)
    network.stop()
    typer.echo(f"stopped {len(network.nodes)} nodes under {root}")


@app.command("stop-node")
def stop_node(index: Annotated[int, typer.Argument(help="node number, 1..4")], root: DirOption = DEFAULT_DIR) -> None:
    """Stop one node (fault drills: 4 signers keep sealing with 1 down)."""
    network = CliqueNetwork.load(root)
    network.stop_node(network.nodes[index - 1])


@app.command("start-node")
def start_node(index: Annotated[int, typer.Argument(help="node number, 1..4")], root: DirOption = DEFAULT_DIR) -> None:
    """Start one stopped node again; it rejoins its static peers and syncs."""
    network = CliqueNetwork.load(root)
    network.start_node(network.nodes[index - 1])
    network.start_sealing([network.nodes[index - 1]])


@app.command("partition")
def partition(index: Annotated[int, typer.Argument(help="node number, 1..4")], root: DirOption = DEFAULT_DIR) -> None:
    """Cut one node off from its peers while it keeps running (fault drills: it forks, then reorgs on rejoin)."""
    network = CliqueNetwork.load(root)
    network.partition(network.nodes[index - 1])


@app.command("rejoin")
def rejoin(index: Annotated[int, typer.Argument(help="node number, 1..4")], root: DirOption = DEFAULT_DIR) -> None:
    """Peer a partitioned node with the others again; it drops its fork for the heavier chain."""
    network = CliqueNetwork.load(root)
    network.rejoin(network.nodes[index - 1])


@app.command("status")
def status(root: DirOption = DEFAULT_DIR) -> None:
    """Print each node's URL, liveness, peers, head block and the signer of its head."""
    for node in CliqueNetwork.load(root).nodes:
        if not node.running():
            typer.echo(f"node{node.index} {node.url} stopped")
            continue
        head = node.rpc("eth_blockNumber")
        peers, sealer = int(node.rpc("net_peerCount"), 16), node.rpc("clique_getSigner", head)
        typer.echo(f"node{node.index} {node.url} peers {peers} head {int(head, 16)} sealed by {sealer}")


if __name__ == "__main__":
    app()
