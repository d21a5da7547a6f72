"""Audit: check what the service says against the chain, without trusting the service.

- `mirror`: rebuild every projection from the chain's logs into a scratch store and compare it with the live
  mirror table by table, with a digest per block that locates the first divergent block (`indexer.verify` does
  the work; this package serves it).
- `trail`, `proofs`: a record's on-chain trail (every event that shaped it), its attributes hash recomputed, and
  its current on-chain state proved with `eth_getProof` against the block's state root.
- `approvals`: each sharing decision's signer recovered from its EIP-712 signature in the transaction, and shown
  to have held the owner org's APPROVER role at that block.
- `code`: the contracts rebuilt from source with the pinned compiler and compared with the deployed bytecode.
- `report`: who did what and when over a time range, as printable HTML.
"""
