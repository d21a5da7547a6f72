"""/v1/proposals and POST /v1/code-rules: the consortium's k-of-n votes, and code rules set through them.

A code rule is proposed by the lead department of its type's domain (DOMAIN.md: public security for imagery,
city management for city-pulse sensors; the lead orgs the consortium named in the ReviewBoard) and applies once
enough ADMIN orgs voted for it. The API checks a proposed rule with the same function that checks codes
(`registry_api.encoding`), which mirrors `DeviceRegistry`'s checks (tests/contracts/test_code_rule_parity.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_abi import decode as abi_decode
from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlmodel import Session, col, func, select
from web3 import Web3

from chain_gateway.calldata import abi_type
from chain_gateway.deployments import Deployment
from indexer.models import Member, Proposal, ReviewLead
from registry_api.auth import Principal
from registry_api.deps import GatewayDep, PageDep, PrincipalDep, SessionDep, require_role
from registry_api.encoding import CHARSET_DIGITS, CHARSET_HYPHEN, CHARSET_LOWER, CHARSET_UPPER
from registry_api.errors import ApiError
from registry_api.schemas.common import VALIDATION_ERROR_RESPONSE, ErrorPublic, OperationAccepted
from registry_api.schemas.governance import CodeRuleProposal, ProposalPublic, ProposalsPublic
from registry_api.writes import IdempotencyKey, Started, accepted, enqueue

__all__ = ["router"]

router = APIRouter(tags=["governance"])
AdminDep = Annotated[Principal, Depends(require_role("ADMIN"))]
# the mirror keeps proposal ids in an INTEGER column: a larger id cannot exist (PostgreSQL: out of range, a 500)
ProposalId = Annotated[int, Path(ge=0, lt=2**31, description="the proposal's id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "no or bad token"},
    422: VALIDATION_ERROR_RESPONSE,
    403: {"model": ErrorPublic, "description": "not ADMIN, or not the lead department of the type's domain"},
    404: {"model": ErrorPublic, "description": "no such proposal"},
    409: {"model": ErrorPublic, "description": "already voted, or already executed"},
}


def _deployment(request: Request) -> Deployment:
    deployment: Deployment = request.app.state.services.deployment
    return deployment


DeploymentDep = Annotated[Deployment, Depends(_deployment)]
_CHARSET_BITS = {"digits": CHARSET_DIGITS, "upper": CHARSET_UPPER, "lower": CHARSET_LOWER, "hyphen": CHARSET_HYPHEN}


def rule_domain(type_name: str) -> str:
    """The review domain whose lead department sets the code rules of a device type: cameras are imagery
    (public security), every other front end is city pulse, set by city management."""
    return "imagery" if type_name.split(".", 1)[0] == "camera" else "city_management"


def _lead_code(session: Session, domain: str) -> str | None:
    lead = session.get(ReviewLead, domain)
    member = session.get(Member, lead.org_id) if lead is not None and lead.org_id else None
    return member.code if member is not None else None


@router.post("/v1/code-rules", status_code=status.HTTP_202_ACCEPTED, summary="Propose a code rule", responses=_ERRORS)  # type: ignore[arg-type]
def propose_code_rule(
    body: CodeRuleProposal,
    principal: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    deployment: DeploymentDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Propose `DeviceRegistry.setCodeRule` as the lead department of the type's domain (your org's vote is cast
    with it); the rule applies when k of n ADMIN orgs have voted (`POST /v1/proposals/{id}/votes`)."""
    domain = rule_domain(body.type)
    lead = _lead_code(session, domain)
    if lead != principal.org_code:
        raise ApiError(
            403,
            "NOT_LEAD_DEPARTMENT",
            f"code rules of {body.type} are set by the lead department of {domain} ({lead or 'none named yet'})",
            field="type",
            lead_org=lead,
        )
    charset = sum(_CHARSET_BITS[name] for name in set(body.charset))
    registry = deployment["contracts"]["DeviceRegistry"]
    calldata = (
        Web3()
        .eth.contract(abi=registry["abi"])
        .encode_abi("setCodeRule", args=[body.type_id, body.type, body.prefix, body.length, charset])
    )
    description = body.description or f"code rule {body.type}: {body.prefix}, {body.length} characters"
    args = [registry["address"], calldata, description]  # bytes as 0x-hex: the outbox stores JSON
    op = enqueue(gateway, principal, "Consortium", "propose", args, idempotency_key)
    return accepted(op, response, started)


@router.get("/v1/proposals", summary="List consortium proposals", responses=_ERRORS)  # type: ignore[arg-type]
def list_proposals(
    session: SessionDep, deployment: DeploymentDep, _: PrincipalDep, page: PageDep, executed: bool | None = None
) -> ProposalsPublic:
    """Proposals newest first, with the call they make decoded when it is a known contract's."""
    query = select(Proposal)
    if executed is not None:
        query = query.where(Proposal.executed == executed)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Proposal.proposal_id).desc()).offset(page.offset).limit(page.limit)).all()
    return ProposalsPublic(data=[_public(session, deployment, p) for p in rows], count=count)


@router.get("/v1/proposals/{proposal_id}", summary="One proposal", responses=_ERRORS)  # type: ignore[arg-type]
def get_proposal(
    proposal_id: ProposalId, session: SessionDep, deployment: DeploymentDep, _: PrincipalDep
) -> ProposalPublic:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise ApiError(404, "PROPOSAL_NOT_FOUND", f"no proposal {proposal_id}", field="proposal_id")
    return _public(session, deployment, proposal)


@router.post(
    "/v1/proposals/{proposal_id}/votes",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Vote for a proposal",
    responses=_ERRORS,
)  # type: ignore[arg-type]
def vote(
    proposal_id: ProposalId,
    principal: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    started: Started,
    idempotency_key: IdempotencyKey = None,
) -> OperationAccepted:
    """Your ADMIN org's vote; the proposal executes in the transaction that reaches the threshold."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise ApiError(404, "PROPOSAL_NOT_FOUND", f"no proposal {proposal_id}", field="proposal_id")
    if proposal.executed:
        raise ApiError(409, "PROPOSAL_EXECUTED", f"proposal {proposal_id} was executed already", field="proposal_id")
    op = enqueue(gateway, principal, "Consortium", "vote", [proposal_id], idempotency_key)
    return accepted(op, response, started)


def _public(session: Session, deployment: Deployment, proposal: Proposal) -> ProposalPublic:
    call, args = _decode(deployment, proposal.target, proposal.data)
    proposer_org = session.get(Member, proposal.proposer_org_id)
    return ProposalPublic(
        id=proposal.proposal_id,
        proposer=proposal.proposer,
        proposer_org=proposer_org.code if proposer_org is not None else None,
        target=proposal.target,
        call=call,
        args=args,
        description=proposal.description,
        votes=proposal.votes,
        executed=proposal.executed,
        tx_hash=proposal.tx_hash,
        block_number=proposal.block_number,
    )


def _decode(deployment: Deployment, target: str, data: str) -> tuple[str | None, dict[str, Any] | None]:
    """The function and named arguments of `data` if `target` is one of the deployment's contracts."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    for item in (c for c in deployment["contracts"].values() if c["address"].lower() == target.lower()):
        for fn in (e for e in item["abi"] if e.get("type") == "function"):
            types = [abi_type(i) for i in fn["inputs"]]
            if Web3.keccak(text=f"{fn['name']}({','.join(types)})")[:4] == raw[:4]:
                values = abi_decode(types, raw[4:])
                return fn["name"], {i["name"]: _jsonable(v) for i, v in zip(fn["inputs"], values, strict=True)}
    return None, None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
