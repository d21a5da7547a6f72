"""Audit: check what the service says against the chain, without trusting the service.

Every module reads the chain over plain JSON-RPC; the mirror is only ever the thing being checked.

- `mirror`: the mirror verification as served (`indexer.verify` rebuilds every projection from the chain's logs
  into a scratch store and compares it with the live mirror table by table, with a digest per block that locates
  the first divergent block).
- `trail` (+ `trail_chain`, `trail_kinds`, `trail_replay`, `trail_checks`, `trail_hashes`, `trail_errors`): one
  record's on-chain trail (every event that shaped it, with signer), its hashes recomputed from the mirrored
  record, its mirror rows against the trail replayed.
- `proofs`, `proof_layout`: the record's storage slots located from solc's storage layout, proved with
  `eth_getProof` and verified locally against the block's state root (EIP-1186).
- `approvals` (+ `approval_chain`, `approval_signature`, `approval_roles`, `approval_prover`, `approval_mirror`,
  `approval_errors`): each sharing decision's signer recovered from the EIP-712 signature in its transaction, shown
  to have held the owner org's APPROVER role at that log; the mirror's decision rows against the logs.
- `code` (+ `code_build`, `code_compare`, `code_values`): the contracts rebuilt from source with the pinned
  compiler and compared with the deployed bytecode as Sourcify does (immutables, metadata, creation input).
- `report` (+ `report_range`, `report_members`, `report_events`, `report_html`): who did what and when over a time
  range, as printable HTML or JSON.
"""
