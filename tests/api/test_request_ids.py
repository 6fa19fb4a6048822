"""Generated request ids: UUID4 hex, never repeated, also not by a forked process."""

from __future__ import annotations

import os
import uuid
import warnings

from smg.api.middleware import _new_request_id


def test_generated_ids_are_uuid4_hex_and_distinct_across_batches() -> None:
    ids = [_new_request_id() for _ in range(1000)]  # several batches of 256
    assert len(set(ids)) == len(ids)
    for raw in ids:
        parsed = uuid.UUID(hex=raw.decode())
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert raw.decode() == parsed.hex


def test_a_forked_process_never_hands_out_its_parents_pending_ids() -> None:
    _new_request_id()  # a batch is pending in this process now
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its first ids, sent to the parent
        try:
            os.write(write, b"".join(_new_request_id() for _ in range(8)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    child_ids = {child[i : i + 32] for i in range(0, len(child), 32)}
    parent_ids = {_new_request_id() for _ in range(300)}
    assert len(child_ids) == 8
    assert not child_ids & parent_ids
