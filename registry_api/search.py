"""Full-text search of the catalog: SQLite FTS5 or PostgreSQL tsvector/GIN over the indexer's `catalog_search`.

Neither FTS5's unicode61 tokenizer nor PostgreSQL's 'simple' parser splits Chinese text into words (a run of
Han characters is one token), so "卡口过车流量" would only be found by the whole run. Text is therefore
segmented here, the way Lucene's CJKAnalyzer and Elasticsearch's `cjk_bigram` filter do it: a run of CJK
characters becomes its overlapping bigrams ("卡口 口过 过车 车流 流量"), other words stay whole and lower-cased.
A query is segmented the same way and each CJK run becomes a phrase of its bigrams, so any word of a title
("过车", "车流量") is found, with no dictionary to keep up to date. A one-character CJK query falls back to
a substring match of the search text.

The index is the API's own table (`catalog_fts`), derived from `catalog_search`, which the indexer keeps equal
to the chain (through reorgs). Before a search the index is brought up to date with the rows of
`catalog_search` whose text changed, appeared or went away: a diff of two small tables, no triggers on the
indexer's tables, and nothing to do when the indexer runs in another process.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, text

__all__ = ["create_search_tables", "match_clause", "refresh_index", "segment", "to_query"]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_RUN = re.compile(rf"[{_CJK}]+|[^\W_]+")  # a run of CJK characters, or a word of other letters and digits
_IS_CJK = re.compile(rf"[{_CJK}]")


def _is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


def segment(value: str) -> str:
    """The text as index terms separated by spaces: CJK runs as overlapping bigrams, other words lower-cased."""
    terms: list[str] = []
    for run in _RUN.findall(value.lower()):
        terms.extend(_bigrams(run) if _IS_CJK.match(run) else [run])
    return " ".join(terms)


def to_query(q: str, postgres: bool) -> tuple[str | None, list[str]]:
    """(full-text query, one-character CJK terms to match as substrings) for the words of `q`, all required.

    FTS5: `"过车 车流" "pm25"*`; PostgreSQL to_tsquery: `'过车' <-> '车流' & 'pm25':*` (other words by prefix).
    """
    parts: list[str] = []
    singles: list[str] = []
    for run in _RUN.findall(q.lower()):
        if _IS_CJK.match(run):
            if len(run) == 1:
                singles.append(run)
                continue
            grams = _bigrams(run)
            parts.append(" <-> ".join(f"'{g}'" for g in grams) if postgres else '"' + " ".join(grams) + '"')
        else:
            parts.append(f"'{run}':*" if postgres else f'"{run}"*')
    if not parts:
        return None, singles
    return (" & ".join(f"({p})" for p in parts) if postgres else " ".join(parts)), singles


def create_search_tables(engine: Engine) -> None:
    """The search index tables (idempotent)."""
    with engine.begin() as conn:
        if _is_postgres(conn):
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS catalog_fts "
                    "(entry_id BIGINT PRIMARY KEY, source TEXT NOT NULL, terms TSVECTOR NOT NULL)"
                )
            )
            conn.execute(text("CREATE INDEX IF NOT EXISTS catalog_fts_terms ON catalog_fts USING GIN (terms)"))
        else:
            conn.execute(text("CREATE VIRTUAL TABLE IF NOT EXISTS catalog_fts USING fts5(terms, tokenize='unicode61')"))
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS catalog_fts_source (entry_id INTEGER PRIMARY KEY, source TEXT NOT NULL)"
                )
            )


def refresh_index(engine: Engine) -> int:
    """Bring the index up to date with `catalog_search`; returns how many entries were (re)indexed or dropped."""
    postgres = engine.dialect.name == "postgresql"
    source = "catalog_fts" if postgres else "catalog_fts_source"
    changed_sql = text(
        f"SELECT s.entry_id, s.text FROM catalog_search s LEFT JOIN {source} i ON i.entry_id = s.entry_id "
        "WHERE i.entry_id IS NULL OR i.source <> s.text"
    )
    gone_sql = text(
        f"SELECT i.entry_id FROM {source} i LEFT JOIN catalog_search s ON s.entry_id = i.entry_id "
        "WHERE s.entry_id IS NULL"
    )
    with engine.connect() as conn:
        changed = conn.execute(changed_sql).all()
        gone = [row[0] for row in conn.execute(gone_sql).all()]
    if not changed and not gone:
        return 0
    with engine.begin() as conn:
        for entry_id in gone:
            conn.execute(text(f"DELETE FROM {source} WHERE entry_id = :id"), {"id": entry_id})
            if not postgres:
                conn.execute(text("DELETE FROM catalog_fts WHERE rowid = :id"), {"id": entry_id})
        for entry_id, value in changed:
            params: dict[str, Any] = {"id": entry_id, "source": value, "terms": segment(value)}
            if postgres:
                conn.execute(
                    text(
                        "INSERT INTO catalog_fts (entry_id, source, terms) "
                        "VALUES (:id, :source, to_tsvector('simple', :terms)) ON CONFLICT (entry_id) "
                        "DO UPDATE SET source = EXCLUDED.source, terms = EXCLUDED.terms"
                    ),
                    params,
                )
            else:
                conn.execute(text("DELETE FROM catalog_fts WHERE rowid = :id"), params)
                conn.execute(text("INSERT INTO catalog_fts (rowid, terms) VALUES (:id, :terms)"), params)
                conn.execute(text("INSERT OR REPLACE INTO catalog_fts_source VALUES (:id, :source)"), params)
    return len(changed) + len(gone)


def match_clause(engine: Engine, q: str) -> tuple[str, dict[str, Any]] | None:
    """SQL (a condition on `catalog_entries.entry_id`) and its parameters for the words of `q`; None if no words."""
    postgres = engine.dialect.name == "postgresql"
    query, singles = to_query(q, postgres)
    if query is None and not singles:
        return None
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if query is not None:
        params["fts_query"] = query
        if postgres:
            conditions.append(
                "catalog_entries.entry_id IN (SELECT entry_id FROM catalog_fts "
                "WHERE terms @@ to_tsquery('simple', :fts_query))"
            )
        else:
            conditions.append(
                "catalog_entries.entry_id IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH :fts_query)"
            )
    for i, char in enumerate(singles):
        params[f"fts_char_{i}"] = f"%{char}%"
        conditions.append(
            f"catalog_entries.entry_id IN (SELECT entry_id FROM catalog_search WHERE text LIKE :fts_char_{i})"
        )
    return " AND ".join(conditions), params
