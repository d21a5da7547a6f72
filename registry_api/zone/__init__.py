"""The data zone's core (可用不可见): data kept where the zone runs, pinned algorithms, disclosure control, masking.

    datasets     synthetic demo data per catalog entry, deterministic and cached: dataset_for(classification, id)
    algorithms   built-in algorithms pinned by code hash: implementation_for(hash).execute(dataset, params)
    disclosure   k-suppression and OpenDP noise: release(raw, k=..., epsilon=...) -> Released
    masking      the desensitized form: desensitize(rows, schema, secret), check_schema(schema)
    policy       k and epsilon budget per entry: policy_for(schema, grade), admit_epsilon(policy, eps, spent)
    errors       ZoneError and its coded subclasses

A job, as the zone service runs it (the service, routes and receipts live beside, in service.py):

    policy = policy_for(entry.schema, entry.grade)
    admit_epsilon(policy, epsilon, spent_by_grant)            # BudgetRefused
    impl = implementation_for(code_hash)                      # UnknownAlgorithm
    raw = impl.execute(dataset_for(entry.classification, entry.id), params)   # InvalidParams
    released = release(raw, k=policy.k, epsilon=epsilon)     # only released.as_dict() leaves the zone
"""

from registry_api.zone.algorithms import BUILTIN_ALGORITHMS, Implementation, RawResult, implementation_for
from registry_api.zone.datasets import Dataset, dataset_for
from registry_api.zone.disclosure import Released, release
from registry_api.zone.errors import ZoneError
from registry_api.zone.masking import check_schema, desensitize
from registry_api.zone.policy import PrivacyPolicy, admit_epsilon, policy_for

__all__ = [
    "BUILTIN_ALGORITHMS",
    "Dataset",
    "Implementation",
    "PrivacyPolicy",
    "RawResult",
    "Released",
    "ZoneError",
    "admit_epsilon",
    "check_schema",
    "dataset_for",
    "desensitize",
    "implementation_for",
    "policy_for",
    "release",
]
