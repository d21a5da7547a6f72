"""The chain gateway: simulate, enqueue into the durable outbox, and the worker that signs, sends and follows.

`enqueue` commits a queued row before it returns. `process_once` then moves rows along:

1. new rows: size gas (`chain_gateway.gas`: node estimates, batched, a revert fails the row with its
   decoded error and uses no nonce; or a limit cached per call shape), reserve nonces, sign, commit
   nonce + raw tx + tx hash, and only then broadcast (batched), one batch at a time in the signing thread so each
   account's nonces go in order;
2. receipts of the transactions in new blocks (`chain_gateway.inclusions`: one that logged succeeded,
   the others are looked up): status 1 -> mined; status 0 -> mined with the error decoded by replaying
   the call, failed once confirmed (a cached gas limit that ran out of gas: signed again, sized by the node);
3. rows signed but not sent (a crash between commit and send) or sent without a receipt for a while are
   broadcast again (each row's receipt is asked for first: the block scan may have passed its block before
   the row was recorded, or a killed worker's broadcast was mined before it was recorded): the same bytes,
   so a duplicate is harmless; a nonce proven taken by another transaction (our raw tx can then never be
   mined) sends the row back to be signed anew; a nonce below the waiting rows that nobody sent (a foreign
   transaction gone from the pool) is filled with a zero-value self-transfer;
4. mined rows with `confirmations` blocks on top and still-canonical block hash -> confirmed (or failed
   if they reverted); a changed hash (reorg) -> back to submitted and broadcast again.

Crash-test hook: with `DIRCHAIN_GATEWAY_CRASH_AT=after_sign` in the environment the process exits with
`os._exit(137)` right after committing signed transactions and before sending them (tests only).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from sqlalchemy import Engine, Row, Table, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlmodel import SQLModel
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from chain_gateway.calldata import CalldataEncoder
from chain_gateway.deployments import Deployment, load_deployment
from chain_gateway.errors import ContractRevert, GatewayConfigError, GatewayRPCError, IdempotencyConflict
from chain_gateway.finality import clique_confirmations_advice
from chain_gateway.gas import GasCall, GasEstimator, GasSizer, ShapeKey
from chain_gateway.inclusions import STALE_SECONDS, InclusionTracker
from chain_gateway.keystore import Keystore
from chain_gateway.nonces import NonceManager
from chain_gateway.outbox import (
    CONFIRMED,
    FAILED,
    MINED,
    QUEUED,
    SUBMITTED,
    AccountNonce,
    Operation,
    canonical_json,
    create_outbox_engine,
    request_hash,
    update_rows,
)
from chain_gateway.resources import OwnsResources
from chain_gateway.revert import REVERTED_WITHOUT_DATA, RevertDecoder
from chain_gateway.rpc import EndpointWatch, JsonRpcClient, RpcErrorAnswer
from chain_gateway.settings import Settings
from chain_gateway.signer import Fees, TxSigner

__all__ = ["CRASH_ENV", "GasEstimator", "Gateway", "IdempotencyConflict", "WriteRequest"]

log = structlog.get_logger("chain_gateway")

CRASH_ENV = "DIRCHAIN_GATEWAY_CRASH_AT"
CRASH_EXIT_CODE = 137
REBROADCAST_AFTER_SECONDS = 10.0
QUEUED_RESEND_AFTER_SECONDS = 1.0
FOLLOW_AT_LEAST_EVERY_SECONDS = 1.0  # under a backlog, steps 2-4 run at least this often
SQL_IN_CHUNK = 500  # values per IN (...) list
RPC_CHUNK = 500  # calls per JSON-RPC batch
RPC_CHUNK_BYTES = 1_000_000  # bytes of params per JSON-RPC batch: nodes cap request bodies
BATCH_SIZE = 1_000  # rows per step of process_once
FILL_GAS = 21_000  # gas of the zero-value self-transfer that fills a nonce the node rejected
FILLER_CONTRACT = "_gateway"  # pseudo contract of internal nonce-filler rows
GAP_FILL_AFTER_RESENDS = 2  # resend periods a write waits above a nonce nobody sent before that nonce is filled
# Answers to eth_sendRawTransaction that mean "a transaction with this nonce is known": look for a receipt.
KNOWN_ANSWERS = ("already known", "already imported", "known transaction", "nonce too low", "underpriced")


_checksum = functools.lru_cache(maxsize=65_536)(to_checksum_address)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, GatewayRPCError) and exc.retryable


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


@dataclass(frozen=True)
class WriteRequest:
    """One write for `Gateway.enqueue_many`: the same fields as `Gateway.enqueue` takes."""

    org_code: str
    account: str
    contract: str
    function: str
    args: Sequence[Any]
    idempotency_key: str | None = None


class _Signed(Protocol):
    """A signed row as the receipt step reads it: an `Operation` or an (id, tx_hash) result row."""

    @property
    def id(self) -> str: ...

    @property
    def tx_hash(self) -> str | None: ...


@dataclass
class _Stats:
    changed: int = 0


class Gateway(OwnsResources):
    """Relayer and key custodian: the only writer of transactions, the only reader/writer of the outbox.

    One object is driven by one thread (`run`, or `process_once` calls in turn): its nonce cursors and inclusion
    tracker are its own and unlocked. Several gateways (objects or processes) may share
    one outbox; `enqueue`/`enqueue_many` are safe from any thread.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        deployment: Deployment,
        keystore: Keystore,
        rpc: JsonRpcClient,
        *,
        batch_size: int = BATCH_SIZE,
        rebroadcast_after_seconds: float = REBROADCAST_AFTER_SECONDS,
        gas_estimator: GasEstimator | None = None,
        gas_cache: bool | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.deployment = deployment
        self.keystore = keystore
        self.rpc = rpc
        self.batch_size = batch_size
        self.rebroadcast_after_seconds = rebroadcast_after_seconds
        self._calldata = CalldataEncoder(deployment)
        self._revert = RevertDecoder(deployment["errors_abi"])
        self._nonces = NonceManager()
        self._signers: dict[str, TxSigner] = {}
        self._keyed: set[str] = set()  # accounts whose keystore file was seen
        self._inclusions = InclusionTracker(self._batch)
        self._followed_at = 0.0  # time.monotonic() of the last receipts/resend/confirm steps
        self._recheck: set[str] = set()  # tx hashes seen in a block whose receipt was not to be had yet
        self._gaps: dict[str, tuple[int, int, float]] = {}  # account -> nonce gap [from, to) and when first seen
        self._gaps_checked_at = 0.0  # time.monotonic()
        self._gas = GasSizer(
            self._batch,
            gas_estimator or settings.gas_estimator,
            settings.gas_limit_cap,
            cached=settings.gas_cache if gas_cache is None else gas_cache,
        )
        self._cached_gas: dict[str, ShapeKey] = {}  # rows signed with a cached gas limit, until their receipt
        self._chain_id: int | None = settings.chain_id
        self._owned = []
        self._crash_at = os.environ.get(CRASH_ENV)
        self._endpoints = EndpointWatch(rpc, settings.rpc_max_lag_blocks, settings.rpc_check_seconds)
        self._endpoint = rpc.url
        self._endpoint_moved_at = 0.0  # unix seconds of the last failover: rows sent before it are sent again

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        """A gateway wired from settings; `close()` releases the engine and RPC client it made."""
        rpc = JsonRpcClient(settings.rpc_urls)
        try:
            chain_id = settings.chain_id or rpc.chain_id()
            deployment = load_deployment(settings.deployments_file(chain_id))
        except Exception:
            rpc.close()
            raise
        engine = create_outbox_engine(settings.database_url)
        keystore = Keystore(settings.keystore_dir, settings.keystore_password)
        gateway = cls(settings, engine, deployment, keystore, rpc)
        gateway._chain_id = chain_id
        gateway._owned = [rpc, engine]
        return gateway

    def create_tables(self) -> None:
        SQLModel.metadata.create_all(self.engine, tables=[Operation.__table__, AccountNonce.__table__])  # type: ignore[list-item]

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.rpc.chain_id()
        if self._chain_id != self.deployment["chain_id"]:
            raise GatewayConfigError(f"node chain id {self._chain_id} != deployment's {self.deployment['chain_id']}")
        return self._chain_id

    # ------------------------------------------------------------------ API side

    def simulate(self, account: str, contract: str, function: str, args: Sequence[Any]) -> None:
        """Run the call from `account` with eth_call and eth_estimateGas; raise `ContractRevert` if it reverts."""
        to, data = self._calldata.encode(contract, function, args)
        call = {"from": _checksum(account), "to": to, "data": _hex(data)}
        for answer in self.rpc.batch([("eth_call", [call, "latest"]), ("eth_estimateGas", [call])]):
            if isinstance(answer, RpcErrorAnswer):
                revert = self._revert.from_rpc_error(answer)
                raise revert if revert is not None else answer

    def enqueue(
        self,
        *,
        org_code: str,
        account: str,
        contract: str,
        function: str,
        args: Sequence[Any],
        idempotency_key: str | None = None,
        simulate: bool = True,
    ) -> Operation:
        """Accept a write: (simulate,) commit a queued row and return it. Durable once this returns.

        The same `idempotency_key` and request for the same account returns the first operation; the same key
        with a different request raises `IdempotencyConflict`.
        """
        account = _checksum(account)
        args = json.loads(canonical_json(list(args)))  # what is stored is what is encoded later
        digest = request_hash(contract, function, args)
        if idempotency_key is not None:
            existing = self._by_key(account, idempotency_key)
            if existing is not None:
                return self._replayed(existing, digest)
        self._calldata.encode(contract, function, args)  # raises InvalidCall before anything is stored
        self._require_key(account)
        if simulate:
            try:
                self.simulate(account, contract, function, args)
            except ContractRevert:
                # The same key sent to two API processes at once: the other may have queued this write after our
                # look and the chain mined it before our simulation, which then reverts because of it. Its row
                # exists (it is committed before it is signed): the answer is that operation, not the revert.
                existing = None if idempotency_key is None else self._by_key(account, idempotency_key)
                if existing is None:
                    raise
                return self._replayed(existing, digest)
        op = Operation(
            idempotency_key=idempotency_key,
            org_code=org_code,
            account=account,
            contract=contract,
            function=function,
            args_json=canonical_json(args),
            request_hash=digest,
        )
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add(op)
                session.commit()
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = self._by_key(account, idempotency_key)  # a concurrent request with the same key won
            if existing is None:
                raise
            return self._replayed(existing, digest)
        log.info("operation queued", op=op.id, org=org_code, call=f"{contract}.{function}")
        return op

    def enqueue_many(self, requests: Sequence[WriteRequest]) -> list[Operation]:
        """Accept many writes in one commit (bulk imports), without simulation; idempotency as in `enqueue`.

        Every request is checked (ABI, key held, idempotency conflicts) before anything is stored: either all
        are accepted or none is.
        """
        ops: list[Operation] = []
        fresh: list[Operation] = []
        for request in requests:
            account = _checksum(request.account)
            args = json.loads(canonical_json(list(request.args)))
            digest = request_hash(request.contract, request.function, args)
            existing = None if request.idempotency_key is None else self._by_key(account, request.idempotency_key)
            if existing is not None:
                ops.append(self._replayed(existing, digest))
                continue
            self._calldata.encode(request.contract, request.function, args)
            self._require_key(account)
            op = Operation(
                idempotency_key=request.idempotency_key,
                org_code=request.org_code,
                account=account,
                contract=request.contract,
                function=request.function,
                args_json=canonical_json(args),
                request_hash=digest,
            )
            ops.append(op)
            fresh.append(op)
        if fresh:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add_all(fresh)
                session.commit()
            log.info("operations queued", count=len(fresh))
        return ops

    def _require_key(self, account: str) -> None:
        if account not in self._keyed:
            if not self.keystore.has(account):
                raise GatewayConfigError(f"the gateway holds no key for {account}")
            self._keyed.add(account)

    def _by_key(self, account: str, key: str) -> Operation | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.execute(
                select(Operation).where(Operation.account == account, Operation.idempotency_key == key)
            ).scalar_one_or_none()

    @staticmethod
    def _replayed(existing: Operation, digest: str) -> Operation:
        if existing.request_hash != digest:
            raise IdempotencyConflict(existing.idempotency_key or "", existing.id)
        return existing

    def get_operation(self, op_id: str) -> Operation | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Operation, op_id)

    # ------------------------------------------------------------------ worker

    def run(self, stop: threading.Event) -> None:
        """Process the outbox until `stop` is set; retryable RPC failures back off, others are logged."""
        log.info("gateway worker started", rpc=self.rpc.url, chain_id=self.chain_id)
        advised = clique_confirmations_advice(self.rpc, self.settings.confirmations)
        if advised is not None:  # a write could be reported confirmed on a fork that a rejoining minority sealed
            log.warning(
                "DIRCHAIN_CONFIRMATIONS is below what Clique forks need",
                confirmations=self.settings.confirmations,
                advised=advised,
            )
        step = retry(
            retry=retry_if_exception(_is_retryable),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_attempt(6),
            reraise=True,
        )(self.process_once)
        while not stop.is_set():
            try:
                changed = step()
            except (GatewayRPCError, OperationalError) as exc:
                log.warning("gateway step failed", error=str(exc).splitlines()[0])
                changed = 0
            if changed == 0:
                stop.wait(self.settings.gateway_poll_seconds)
        log.info("gateway worker stopped")

    def process_once(self) -> int:
        """One pass over the outbox; returns how many rows changed status (or were signed)."""
        stats = _Stats()
        self._follow_failover()
        saturated = self._sign_and_send(stats)
        if saturated and time.monotonic() - self._followed_at < FOLLOW_AT_LEAST_EVERY_SECONDS:
            return stats.changed  # a backlog of new rows: send first, follow receipts a little later
        self._followed_at = time.monotonic()
        self._follow_receipts(stats)
        self._rebroadcast(stats)
        self._fill_nonce_gaps(stats)
        self._confirm(stats)
        return stats.changed

    # -- 1. new rows

    def _fees(self) -> Fees:
        block, gas_price, tip = self.rpc.batch(
            [("eth_getBlockByNumber", ["latest", False]), ("eth_gasPrice", []), ("eth_maxPriorityFeePerGas", [])]
        )
        if isinstance(block, RpcErrorAnswer) or isinstance(gas_price, RpcErrorAnswer):
            raise block if isinstance(block, RpcErrorAnswer) else gas_price
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:  # no London: legacy gas price, often 0 on consortium chains
            return Fees(gas_price=int(gas_price, 16))
        priority = 0 if isinstance(tip, RpcErrorAnswer) else int(tip, 16)
        return Fees(max_fee=2 * int(base_fee, 16) + priority, max_priority_fee=priority)

    def _signer(self, account: str) -> TxSigner:
        signer = self._signers.get(account)
        if signer is None:
            local: LocalAccount = self.keystore.signer(account)
            signer = self._signers[account] = TxSigner(local, self.chain_id)
        return signer

    def _sign_and_send(self, stats: _Stats) -> bool:
        """Step 1 on up to `batch_size` queued rows; True if the batch was full (more are likely waiting)."""
        with Session(self.engine, expire_on_commit=False) as session:
            rows = list(
                session.execute(
                    select(Operation)
                    .where(Operation.status == QUEUED, Operation.raw_tx.is_(None))  # type: ignore[union-attr]
                    .order_by(Operation.created_at)  # type: ignore[arg-type]
                    .limit(self.batch_size)
                ).scalars()
            )
        if not rows:
            return False
        in_flight = self._accounts_in_flight({r.account for r in rows})
        encoded: dict[str, tuple[ChecksumAddress, bytes]] = {}
        failures: dict[str, ContractRevert] = {}
        for op in rows:
            try:
                encoded[op.id] = self._calldata.encode(op.contract, op.function, op.args, checked=True)
            except ValueError as exc:
                failures[op.id] = ContractRevert("GatewayInvalidCall", {"message": str(exc)})
        ready = [op for op in rows if op.id in encoded]
        calls = [GasCall(op.account, encoded[op.id][0], encoded[op.id][1]) for op in ready]
        to_sign: list[tuple[Operation, int]] = []
        for op, call, (gas, cached) in zip(ready, calls, self._gas.size(calls), strict=True):
            if isinstance(gas, RpcErrorAnswer):
                revert = self._revert.from_rpc_error(gas)
                if op.account in in_flight:
                    continue  # may depend on an earlier write of the same account: estimate again later
                failures[op.id] = revert or ContractRevert("GatewayEstimateFailed", {"message": gas.message})
                continue
            to_sign.append((op, gas))
            if cached:
                self._cached_gas[op.id] = call.shape
            in_flight.add(op.account)  # later rows of this account may depend on this one
        if failures:
            stats.changed += self._mark_failed(failures)
        if not to_sign:
            return len(rows) == self.batch_size
        signed = self._sign_and_persist(to_sign, encoded)
        if self._crash_at == "after_sign" and signed:
            os._exit(CRASH_EXIT_CODE)  # crash-test hook, see the module docstring
        # Broadcast in this thread, one batch at a time, so each account's nonces reach the node in order.
        self._send(signed, stats)
        return len(rows) == self.batch_size

    def _accounts_in_flight(self, accounts: Iterable[str]) -> set[str]:
        """Accounts with a signed write not yet mined (a later write may depend on it)."""
        with Session(self.engine) as session:
            found = session.execute(
                select(Operation.account)
                .where(
                    Operation.account.in_(list(accounts)),  # type: ignore[attr-defined]
                    Operation.status.in_([QUEUED, SUBMITTED]),  # type: ignore[attr-defined]
                    Operation.raw_tx.is_not(None),  # type: ignore[union-attr]
                )
                .distinct()
            ).scalars()
            return set(found)

    def _sign_and_persist(
        self, to_sign: list[tuple[Operation, int]], encoded: dict[str, tuple[ChecksumAddress, bytes]]
    ) -> list[Operation]:
        """Reserve nonces, sign and commit; rows another worker claimed meanwhile are left out."""
        by_account: dict[str, list[tuple[Operation, int]]] = defaultdict(list)
        for op, gas in to_sign:
            by_account[op.account].append((op, gas))
        accounts = sorted(by_account)
        pending = self._batch([("eth_getTransactionCount", [a, "pending"]) for a in accounts])
        for answer in pending:
            if isinstance(answer, RpcErrorAnswer):
                raise answer
        fees = self._fees()
        now = time.time()
        signed: list[Operation] = []
        updates: list[dict[str, Any]] = []
        reserved: list[tuple[str, int, int]] = []  # (account, first nonce, count) for the log line below
        with Session(self.engine, expire_on_commit=False) as session:
            claimable = select(Operation.id).where(
                Operation.id.in_([op.id for op, _ in to_sign]),  # type: ignore[attr-defined]
                Operation.status == QUEUED,
                Operation.raw_tx.is_(None),  # type: ignore[union-attr]
            )
            if self.engine.dialect.name == "postgresql":
                claimable = claimable.with_for_update(skip_locked=True)
            claimed = set(session.execute(claimable).scalars())
            for account, count_hex in zip(accounts, pending, strict=True):
                ops = [(op, gas) for op, gas in by_account[account] if op.id in claimed]
                if not ops:
                    continue
                first = self._nonces.reserve(session, account, len(ops), int(count_hex, 16))
                reserved.append((account, first, len(ops)))
                signer = self._signer(account)
                for offset, (op, gas) in enumerate(ops):
                    to, data = encoded[op.id]
                    tx = signer.sign(nonce=first + offset, gas=gas, to=bytes.fromhex(to[2:]), data=data, fees=fees)
                    op.nonce, op.gas_limit = first + offset, gas
                    op.raw_tx, op.tx_hash, op.updated_at = _hex(tx.raw), _hex(tx.tx_hash), now
                    updates.append(
                        {
                            "id": op.id,
                            "nonce": op.nonce,
                            "gas_limit": gas,
                            "raw_tx": op.raw_tx,
                            "tx_hash": op.tx_hash,
                            "updated_at": now,
                        }
                    )
                    signed.append(op)
            if updates:
                update_rows(session, updates)
            session.commit()
        # Several workers may share the outbox: this line (after the commit, so only nonces really taken) tells which
        # worker signed which nonces, without a column in the outbox for it.
        for account, first, count in reserved:
            log.info("transactions signed", account=account, first_nonce=first, count=count, pid=os.getpid())
        return signed

    def _send(self, ops: Sequence[Operation], stats: _Stats) -> None:
        """Broadcast signed rows in nonce order; a row stays queued (and is resent) if the node was unreachable."""
        ordered = sorted(ops, key=lambda o: (o.account, o.nonce or 0))
        try:
            answers = self._batch([("eth_sendRawTransaction", [op.raw_tx]) for op in ordered])
        except GatewayRPCError as exc:
            log.warning("broadcast failed; will resend", count=len(ordered), error=str(exc))
            return
        now = time.time()
        accepted: list[dict[str, Any]] = []
        known: list[Operation] = []
        rejected: list[tuple[Operation, RpcErrorAnswer]] = []
        for op, answer in zip(ordered, answers, strict=True):
            if not isinstance(answer, RpcErrorAnswer):
                accepted.append({"id": op.id, "status": SUBMITTED, "broadcast_at": now, "updated_at": now})
            elif any(k in answer.message.lower() for k in KNOWN_ANSWERS):
                known.append(op)
            else:
                rejected.append((op, answer))
        displaced = self._displaced(known)
        for op in known:
            if op.id not in displaced:
                accepted.append({"id": op.id, "status": SUBMITTED, "broadcast_at": now, "updated_at": now})
        with Session(self.engine) as session:
            if accepted:
                # a row another worker (or the receipt step) saw mined meanwhile stays mined
                update_rows(session, accepted, only_if=(QUEUED, SUBMITTED))
            for op in known:
                if op.id in displaced:
                    self._resign_later(session, op)
            session.commit()
        was_queued = {op.id for op in ordered if op.status == QUEUED}
        stats.changed += sum(1 for change in accepted if change["id"] in was_queued) + len(displaced)
        for op, answer in rejected:
            self._reject(op, answer, stats)

    def _displaced(self, ops: Sequence[Operation]) -> set[str]:
        """Rows whose nonce the chain has used for another transaction: their raw tx can never be mined.

        Signing a row anew is safe only if its first transaction can never land, so all must hold: it was
        last broadcast over `rebroadcast_after_seconds` ago, the account's mined count is past its nonce,
        and, asked after that count, the node knows neither a receipt nor the transaction itself.
        """
        old_enough = time.time() - self.rebroadcast_after_seconds
        suspects = [op for op in ops if op.nonce is not None and op.broadcast_at and op.broadcast_at < old_enough]
        if not suspects:
            return set()
        accounts = sorted({op.account for op in suspects})
        counts = self._batch([("eth_getTransactionCount", [a, "latest"]) for a in accounts])
        latest = {a: int(c, 16) for a, c in zip(accounts, counts, strict=True) if not isinstance(c, RpcErrorAnswer)}
        suspects = [op for op in suspects if op.account in latest and latest[op.account] > (op.nonce or 0)]
        if not suspects:
            return set()
        receipts = self._batch([("eth_getTransactionReceipt", [op.tx_hash]) for op in suspects])
        known = self._batch([("eth_getTransactionByHash", [op.tx_hash]) for op in suspects])
        return {
            op.id
            for op, receipt, tx in zip(suspects, receipts, known, strict=True)
            if receipt is None and tx is None  # an error answer is not proof: keep waiting
        }

    @classmethod
    def _resign_later(cls, session: Session, op: Operation) -> None:
        log.warning("nonce taken by another transaction; signing again", op=op.id, nonce=op.nonce)
        cls._requeue(session, op.id, op.tx_hash)

    @staticmethod
    def _requeue(session: Session, op_id: str, tx_hash: str | None) -> None:
        """Back to queued and unsigned, if the row still holds the transaction `tx_hash`."""
        session.execute(
            update(Operation)
            .where(Operation.id == op_id, Operation.tx_hash == tx_hash, Operation.status.in_([QUEUED, SUBMITTED]))  # type: ignore[arg-type, attr-defined]
            .values(
                status=QUEUED,
                nonce=None,
                raw_tx=None,
                tx_hash=None,
                gas_limit=None,
                broadcast_at=None,
                block_number=None,
                block_hash=None,
                updated_at=time.time(),
            )
        )

    def _reject(self, op: Operation, answer: RpcErrorAnswer, stats: _Stats) -> None:
        """The node refused the raw tx itself: fail the row and fill its nonce so later ones are not stuck."""
        log.error("transaction rejected by the node", op=op.id, nonce=op.nonce, error=answer.message)
        if not self._mark_failed(
            {op.id: ContractRevert("GatewayTxRejected", {"message": answer.message})}, signed_as=op.tx_hash
        ):
            return  # another worker moved the row on meanwhile (mined, signed anew): its nonce is not ours to fill
        stats.changed += 1
        if op.contract == FILLER_CONTRACT or op.nonce is None:
            log.error("nonce gap cannot be filled; later writes of this account wait", account=op.account)
            return
        self._send([self._filler(op.org_code, op.account, op.nonce, f"fill-nonce:{op.id}")], stats)

    def _filler(self, org_code: str, account: str, nonce: int, key: str) -> Operation:
        """Sign and commit a zero-value self-transfer at `nonce` (an internal row, idempotent by `key`)."""
        signer = self._signer(account)
        tx = signer.sign(nonce=nonce, gas=FILL_GAS, to=bytes.fromhex(account[2:]), data=b"", fees=self._fees())
        filler = Operation(
            idempotency_key=key,
            org_code=org_code,
            account=account,
            contract=FILLER_CONTRACT,
            function="fillNonce",
            args_json=canonical_json([nonce]),
            request_hash=request_hash(FILLER_CONTRACT, "fillNonce", [nonce]),
            nonce=nonce,
            raw_tx=_hex(tx.raw),
            tx_hash=_hex(tx.tx_hash),
            gas_limit=FILL_GAS,
        )
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add(filler)
                session.commit()
        except IntegrityError:
            # another worker on the outbox stored the filler of this nonce since we looked: send theirs (the same
            # nonce, so the node keeps one) instead of stopping this worker on the unique key
            existing = self._by_key(account, key)
            if existing is None:
                raise
            return existing
        return filler

    # -- 2. receipts

    def _follow_receipts(self, stats: _Stats) -> None:
        new = self._inclusions.poll()
        try:
            # rows whose transaction was in a block read before without a receipt to show yet come again
            hashes = set(new.mined) | self._recheck
            rows = {row.id: row for row in self._submitted_among(hashes)} if hashes else {}
            if new.rescan != "none":
                rows.update((row.id, row) for row in self._submitted(stale_only=new.rescan == "stale"))
            unresolved = self._record_receipts(list(rows.values()), new.mined, stats)
        except BaseException:
            self._inclusions.reset()  # the blocks just read were not recorded: read everything again
            raise
        self._recheck = {tx_hash for tx_hash in unresolved if tx_hash in new.mined}  # asked once more

    def _record_receipts(
        self, rows: Sequence[_Signed], known: dict[str, dict[str, str] | None], stats: _Stats
    ) -> set[str]:
        """Mark mined the (id, tx_hash) rows whose receipt is known or found; the tx hashes still without one."""
        if not rows:
            return set()
        missing = [row for row in rows if known.get(row.tx_hash or "") is None]
        looked_up = self._batch([("eth_getTransactionReceipt", [row.tx_hash]) for row in missing])
        receipts = {row.id: receipt for row, receipt in zip(missing, looked_up, strict=True)}
        now = time.time()
        unresolved: set[str] = set()
        updates: list[dict[str, Any]] = []
        resign: list[tuple[str, str | None]] = []
        for row in rows:
            receipt = receipts[row.id] if row.id in receipts else known[row.tx_hash or ""]
            if receipt is None or isinstance(receipt, RpcErrorAnswer):
                unresolved.add(row.tx_hash or "")
                continue
            change: dict[str, Any] = {
                "id": row.id,
                "status": MINED,
                "block_number": int(receipt["blockNumber"], 16),
                "block_hash": receipt["blockHash"],
                "error_code": None,
                "error_args_json": None,
                "error_message": None,
                "updated_at": now,
            }
            shape = self._cached_gas.pop(row.id, None)
            if int(receipt["status"], 16) != 1 and (op := self.get_operation(row.id)) is not None:
                revert = self._replay(op, int(receipt["blockNumber"], 16), int(receipt["gasUsed"], 16))
                if shape is not None and revert.name == "GatewayOutOfGas":
                    # the reverted tx changed nothing: sign the write anew, sized by the node
                    log.warning("a cached gas limit ran out of gas; signing again", op=op.id, gas=op.gas_limit)
                    self._gas.forget(shape)
                    resign.append((op.id, op.tx_hash))
                    continue
                change.update(
                    error_code=revert.name,
                    error_args_json=canonical_json(revert.args_dict),
                    error_message=str(revert),
                )
            updates.append(change)
        if updates or resign:
            with Session(self.engine) as session:
                if updates:
                    # only rows still unmined: another worker following the same blocks may have recorded (and
                    # confirmed) a row meanwhile, which must not step back from confirmed to mined
                    update_rows(session, updates, only_if=(QUEUED, SUBMITTED))
                for op_id, tx_hash in resign:
                    self._requeue(session, op_id, tx_hash)
                session.commit()
            stats.changed += len(updates) + len(resign)
        return unresolved

    def _submitted(self, *, stale_only: bool) -> list[Row[tuple[str, str | None]]]:
        """(id, tx_hash) of the submitted rows longest without a receipt (all next time too if there are more);
        `stale_only`: of those broadcast over STALE_SECONDS ago."""
        limit = self.batch_size * 4
        query = select(Operation.id, Operation.tx_hash).where(Operation.status == SUBMITTED)
        if stale_only:
            query = query.where(Operation.broadcast_at < time.time() - STALE_SECONDS)  # type: ignore[operator]
        with Session(self.engine) as session:
            rows = list(
                session.execute(
                    query.order_by(Operation.broadcast_at).limit(limit)  # type: ignore[arg-type]
                )
            )
        if len(rows) == limit:
            self._inclusions.reset()
        return rows

    def _submitted_among(self, tx_hashes: set[str]) -> list[Row[tuple[str, str | None]]]:
        """(id, tx_hash) of the signed rows not yet mined whose transaction is one of `tx_hashes`."""
        hashes = sorted(tx_hashes)
        rows: list[Row[tuple[str, str | None]]] = []
        with Session(self.engine) as session:
            for start in range(0, len(hashes), SQL_IN_CHUNK):
                rows += session.execute(
                    select(Operation.id, Operation.tx_hash).where(
                        Operation.tx_hash.in_(hashes[start : start + SQL_IN_CHUNK]),  # type: ignore[union-attr]
                        Operation.status.in_([QUEUED, SUBMITTED]),  # type: ignore[attr-defined]
                    )
                ).all()
        return rows

    def _replay(self, op: Operation, block_number: int, gas_used: int) -> ContractRevert:
        """Why a mined transaction reverted: run it again with eth_call before its block, then at its block."""
        if op.contract == FILLER_CONTRACT:
            return ContractRevert(REVERTED_WITHOUT_DATA, {})
        to, data = self._calldata.encode(op.contract, op.function, op.args)
        call = {
            "from": op.account,
            "to": to,
            "data": _hex(data),
            "gas": hex(op.gas_limit or self.settings.gas_limit_cap),
        }
        for tag in (hex(max(block_number - 1, 0)), hex(block_number)):
            try:
                self.rpc.call("eth_call", [call, tag])
            except RpcErrorAnswer as answer:
                revert = self._revert.from_rpc_error(answer)
                if revert is not None:
                    return revert
        if op.gas_limit is not None and gas_used >= op.gas_limit:
            return ContractRevert("GatewayOutOfGas", {"gas_limit": op.gas_limit})
        return ContractRevert(REVERTED_WITHOUT_DATA, {})

    # -- 3. resend

    def _follow_failover(self) -> None:
        """Move off an endpoint that fell behind; after any move (or a transport failover inside the RPC client)
        the rows sent through the old endpoint are sent again at once: that node may be down or cut off with
        them in its pool, and waiting out the resend period would only delay them."""
        moved = self._endpoints.check()
        if moved is not None:
            log.warning("RPC endpoint fell behind the others; moved", rpc=moved)
        if self.rpc.url != self._endpoint:
            self._endpoint = self.rpc.url
            self._endpoint_moved_at = time.time()

    def _rebroadcast(self, stats: _Stats) -> None:
        stale = max(time.time() - self.rebroadcast_after_seconds, self._endpoint_moved_at)
        with Session(self.engine, expire_on_commit=False) as session:
            rows = list(
                session.execute(
                    select(Operation)
                    .where(
                        Operation.raw_tx.is_not(None),  # type: ignore[union-attr]
                        # a signed row still queued a moment later was not sent (crash, node down); the
                        # moment lets the worker that signed it send it first
                        (
                            (Operation.status == QUEUED)
                            & (Operation.updated_at < time.time() - QUEUED_RESEND_AFTER_SECONDS)
                        )
                        | ((Operation.status == SUBMITTED) & (Operation.broadcast_at < stale)),  # type: ignore[operator]
                    )
                    .order_by(Operation.account, Operation.nonce)  # type: ignore[arg-type]
                    .limit(self.batch_size)
                ).scalars()
            )
        # a row the block scan missed (its block was read before the row was recorded, its receipt could not be
        # read) is found here: its resend answers "known" and refreshes broadcast_at, so the stale rescan,
        # due as often as this resend, could otherwise never see it old enough. A signed row still queued may be
        # mined too (the worker was killed while the node mined its broadcast, before recording it sent): resent,
        # it would wait ~RESCAN_SECONDS as submitted for the periodic rescan to read its receipt.
        mined = {op.tx_hash for op in rows} - self._record_receipts(rows, {}, stats)
        rows = [op for op in rows if op.tx_hash not in mined]
        if rows:
            log.info("broadcasting again", count=len(rows))
            self._send(rows, stats)

    def _fill_nonce_gaps(self, stats: _Stats) -> None:
        """Fill nonces below an account's lowest waiting write that no transaction of the outbox holds.

        The gateway reserves nonces from the node's pending count, so a transaction outside the outbox that was
        pending then and later left the pool (dropped, a node restarted without it) leaves a nonce that no one
        will send: every later write of the account would wait forever. A gap seen unchanged for
        GAP_FILL_AFTER_RESENDS resend periods (time for such a transaction to be mined after all) gets a
        zero-value self-transfer per missing nonce; should the lost transaction come back first, its filler is
        answered "nonce too low" and followed like any displaced row, and nothing is sent twice.
        """
        now = time.monotonic()
        if now - self._gaps_checked_at < self.rebroadcast_after_seconds / 2:
            return
        self._gaps_checked_at = now
        with Session(self.engine) as session:
            waiting = session.execute(
                select(Operation.account, func.min(Operation.org_code), func.min(Operation.nonce))
                .where(Operation.status == SUBMITTED)
                .group_by(Operation.account)
            ).all()
        if not waiting:
            self._gaps.clear()
            return
        accounts = [account for account, _, _ in waiting]
        counts = self._batch([("eth_getTransactionCount", [a, "latest"]) for a in accounts])
        gaps: dict[str, tuple[int, int, float]] = {}
        for (account, org_code, first_waiting), count in zip(waiting, counts, strict=True):
            if isinstance(count, RpcErrorAnswer) or int(count, 16) >= first_waiting:
                continue
            gap = (int(count, 16), first_waiting)
            seen = self._gaps.get(account)
            since = seen[2] if seen is not None and seen[:2] == gap else now
            gaps[account] = (*gap, since)
            if now - since < GAP_FILL_AFTER_RESENDS * self.rebroadcast_after_seconds:
                continue
            for nonce in sorted(set(range(*gap)) - self._nonces_held(account, *gap)):
                key = f"fill-gap:{nonce}"
                if self._by_key(account, key) is not None:
                    continue  # filled before: its row is followed like any other
                log.warning("nonce below the waiting writes was never sent; filling it", account=account, nonce=nonce)
                self._send([self._filler(org_code, account, nonce, key)], stats)  # counted there
        self._gaps = gaps

    def _nonces_held(self, account: str, low: int, high: int) -> set[int]:
        """Nonces in [low, high) of `account` that a row of the outbox holds and may still send or has sent."""
        with Session(self.engine) as session:
            return set(
                session.execute(
                    select(Operation.nonce).where(
                        Operation.account == account,
                        Operation.nonce >= low,  # type: ignore[operator]
                        Operation.nonce < high,  # type: ignore[operator]
                        Operation.status.in_([QUEUED, SUBMITTED, MINED, CONFIRMED]),  # type: ignore[attr-defined]
                    )
                ).scalars()
            )

    # -- 4. confirmations and reorgs

    def _confirm(self, stats: _Stats) -> None:
        with Session(self.engine) as session:
            rows = session.execute(
                select(Operation.id, Operation.block_number, Operation.block_hash, Operation.error_code)
                .where(Operation.status == MINED)
                .limit(self.batch_size * 4)
            ).all()
        if not rows:
            return
        head = self.rpc.block_number()
        confirms = self.settings.confirmations
        # a block above the head means the chain got shorter: that block's writes left it
        due = [
            op
            for op in rows
            if op.block_number is not None and (head - op.block_number >= confirms or op.block_number > head)
        ]
        numbers = sorted({op.block_number for op in due if op.block_number is not None})
        blocks = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        canonical = {
            n: b["hash"] for n, b in zip(numbers, blocks, strict=True) if b and not isinstance(b, RpcErrorAnswer)
        }
        now = time.time()
        updates: list[dict[str, Any]] = []
        reorged: list[dict[str, Any]] = []
        for op in due:
            number = op.block_number or 0
            if number in canonical and canonical[number] == op.block_hash:
                updates.append({"id": op.id, "status": FAILED if op.error_code else CONFIRMED, "updated_at": now})
            elif number in canonical or number > head:
                log.warning("block of a mined write left the chain; resending", op=op.id, block=op.block_number)
                reorged.append(
                    {
                        "id": op.id,
                        "status": SUBMITTED,
                        "block_number": None,
                        "block_hash": None,
                        "error_code": None,
                        "error_args_json": None,
                        "error_message": None,
                        "broadcast_at": 0.0,
                        "updated_at": now,
                    }
                )
        for batch in (updates, reorged):
            if batch:
                with Session(self.engine) as session:
                    update_rows(session, batch, only_if=(MINED,))  # as read: another worker may have moved it on
                    session.commit()
        stats.changed += len(updates) + len(reorged)

    # -- helpers

    def _mark_failed(self, failures: dict[str, ContractRevert], signed_as: str | None = None) -> int:
        """Fail rows still as this worker saw them; returns how many it failed.

        `signed_as` None: rows still queued and unsigned (their estimate reverted); else the row still holds that
        unmined transaction (the node refused it). Several workers share the outbox: another may have signed, sent
        and mined a row between this worker's read and its estimate, which then reverts *because* the write is on
        the chain (DeviceRegistryDuplicateCode); failing that row would report a write that landed as failed.
        """
        table: Table = Operation.__table__  # type: ignore[assignment]
        if signed_as is None:
            still = (table.c.status == QUEUED) & table.c.raw_tx.is_(None)
        else:
            still = (table.c.tx_hash == signed_as) & table.c.status.in_([QUEUED, SUBMITTED])
        now = time.time()
        failed: list[tuple[str, str]] = []
        with Session(self.engine) as session:
            for op_id, revert in failures.items():  # one UPDATE each: failures are few, and we log those that held
                result = session.execute(
                    update(table)
                    .where(table.c.id == op_id, still)
                    .values(
                        status=FAILED,
                        error_code=revert.name,
                        error_args_json=canonical_json(revert.args_dict),
                        error_message=str(revert),
                        updated_at=now,
                    )
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    failed.append((op_id, revert.name))
            session.commit()
        for op_id, name in failed:
            log.info("operation failed", op=op_id, error=name)
        return len(failed)

    def _batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """`rpc.batch` in chunks of at most RPC_CHUNK calls and about RPC_CHUNK_BYTES of payload."""
        results: list[Any] = []
        chunk: list[tuple[str, Sequence[Any]]] = []
        size = 0
        for call in calls:
            call_size = _payload_size(call[1])
            if chunk and (len(chunk) >= RPC_CHUNK or size + call_size > RPC_CHUNK_BYTES):
                results.extend(self.rpc.batch(chunk))
                chunk, size = [], 0
            chunk.append(call)
            size += call_size
        if chunk:
            results.extend(self.rpc.batch(chunk))
        return results


def _payload_size(params: Sequence[Any]) -> int:
    """Roughly the JSON size of call params: hex strings (raw txs, calldata) dominate."""
    size = 64
    for param in params:
        if isinstance(param, str):
            size += len(param)
        elif isinstance(param, dict):
            size += sum(len(v) if isinstance(v, str) else 16 for v in param.values())
    return size
