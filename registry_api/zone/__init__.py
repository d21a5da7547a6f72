"""The data zone's core (可用不可见): data kept where the zone runs, pinned algorithms, disclosure control, masking.

    datasets     synthetic demo data per catalog entry, deterministic and cached: dataset_for(classification, id)
    algorithms   built-in algorithms pinned by code hash: implementation_for(hash).execute(dataset, params)
    disclosure   k-suppression and OpenDP noise: release(raw, k=..., epsilon=...) -> Released
    masking      the desensitized form: desensitize(rows, schema, secret), check_schema(schema)
    policy       k and epsilon budget per entry: policy_for(schema, grade), admit_epsilon(policy, eps, spent)
    errors       ZoneError and its coded subclasses

A job, as the zone service runs it (the service, routes and receipts live beside, in service.py):

    policy = policy_for(entry.schema, entry.grade)
    admit_epsilon(policy, epsilon, spent_by_grant)
    impl = implementation_for(code_hash)
    raw = impl.execute(dataset_for(entry.classification, entry.id), params)
    released = release(raw, k=policy.k, epsilon=epsilon)
"""
