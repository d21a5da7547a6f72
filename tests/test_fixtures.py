from sqlalchemy import create_engine, text

from chain_gateway.devnet import SeededConsortium
from chain_gateway.governance import contract


def test_seeded_consortium_has_threshold_two_of_three_admins(chain: SeededConsortium, w3) -> None:
    consortium = contract(w3, chain.deployment, "Consortium")
    assert consortium.functions.threshold().call() == 2
    assert consortium.functions.adminOrgCount().call() == 3
    assert consortium.functions.orgCount().call() == len(chain.orgs)


def test_database_url_is_usable(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1
    engine.dispose()
