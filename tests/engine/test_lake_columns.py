"""A lake written by an older kaad is refused in one line, naming the file and what it lacks."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.lake import lake_partitions, read_partition
from errors import KaadError
from events.schema import EVENT_SCHEMA


def test_a_partition_without_a_column_added_since_names_the_file_and_the_column(tmp_path):
    # Before the webhook URLs were parsed (session 8), a lake had no webhook_urls column.
    older = pa.schema([f for f in EVENT_SCHEMA if f.name != "webhook_urls"])
    folder = tmp_path / "cluster=prod" / "date=2026-03-02"
    folder.mkdir(parents=True)
    pq.write_table(older.empty_table(), folder / "part-0.parquet")
    (partition,) = lake_partitions([str(tmp_path)])
    assert (partition.cluster, partition.day) == ("prod", date(2026, 3, 2))

    with pytest.raises(KaadError, match=r"part-0\.parquet: lacks column\(s\) webhook_urls: .*older kaad"):
        read_partition(partition)


def test_a_partition_with_every_column_reads_back_in_the_event_schema(tmp_path):
    folder = tmp_path / "cluster=prod" / "date=2026-03-02"
    folder.mkdir(parents=True)
    pq.write_table(EVENT_SCHEMA.empty_table(), folder / "part-0.parquet")
    (partition,) = lake_partitions([str(tmp_path)])
    assert read_partition(partition).schema == EVENT_SCHEMA
