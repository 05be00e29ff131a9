"""Running the requests that queue while a model is busy as one batch."""

import asyncio

import numpy as np

# Rows run together when requests queue up.
MAX_BATCH_ROWS = 256


class Batcher:
    """Runs a function on the requests that queue while it is busy, as one batch.

    A request arriving at an idle batcher runs at once; those arriving while a
    batch runs wait for it and then run together, up to `max_rows` rows. No
    request waits for others that have not arrived. If a batch of several
    requests fails, each of its requests runs again alone, so that only a
    request that fails by itself gets an error. A request of more rows than
    a batch holds (at least `MAX_BATCH_ROWS`) is computed in parts of that
    size, so that no call needs the memory of more rows.

    Args:
        function: takes one array per input, each with the batch as its first
            axis, and returns a tuple of arrays with the same first axis. It
            runs in a worker thread.
        max_rows: the most rows run together (a larger request runs alone).
    """

    def __init__(self, function, max_rows=MAX_BATCH_ROWS):
        if max_rows < 1:
            raise ValueError(f"Expected `max_rows` of at least 1. Received: {max_rows}")
        self.function = function
        self.max_rows = max_rows
        self.part_rows = max(max_rows, MAX_BATCH_ROWS)
        self._pending = []
        self._worker = None

    async def __call__(self, *inputs):
        """Returns `function(*inputs)`, computed within a batch of queued requests."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((inputs, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self):
        while self._pending:
            batch, count = [], 0
            while self._pending and (
                not batch or count + len(self._pending[0][0][0]) <= self.max_rows
            ):
                batch.append(self._pending.pop(0))
                count += len(batch[-1][0][0])
            if len(batch) == 1:
                await self._run_alone(*batch[0])
                continue
            columns = zip(*(inputs for inputs, _ in batch), strict=True)
            joined = [np.concatenate(parts) for parts in columns]
            try:
                outputs = await self._run(joined)
            except Exception:
                for inputs, future in batch:
                    await self._run_alone(inputs, future)
                continue
            start = 0
            for inputs, future in batch:
                end = start + len(inputs[0])
                if not future.cancelled():
                    future.set_result(tuple(output[start:end] for output in outputs))
                start = end

    async def _run(self, inputs):
        return await asyncio.get_running_loop().run_in_executor(None, self._in_parts, *inputs)

    def _in_parts(self, *inputs):
        """`function(*inputs)`, computed `part_rows` rows at a time."""
        if len(inputs[0]) <= self.part_rows:
            return self.function(*inputs)
        starts = range(0, len(inputs[0]), self.part_rows)
        parts = [self.function(*(x[i : i + self.part_rows] for x in inputs)) for i in starts]
        return tuple(np.concatenate(outputs) for outputs in zip(*parts, strict=True))

    async def _run_alone(self, inputs, future):
        try:
            outputs = await self._run(inputs)
        except Exception as error:
            if not future.cancelled():
                future.set_exception(error)
            return
        if not future.cancelled():
            future.set_result(tuple(outputs))
